//! User groups: membership, the per-group force-2FA switch and allowed methods.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::flag;
use crate::db::sql;
use crate::factors::{Method, MethodSet};
use crate::users::{self, validate_name};
use crate::{Db, Error, Result, time};

/// A user group.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Group {
    pub id: i64,
    pub name: String,
    /// Members must pass a second factor.
    pub force_2fa: bool,
    /// Methods members may use; `None` inherits the global set.
    pub allowed_methods: Option<MethodSet>,
    pub created_at: i64,
}

const COLUMNS: &str = "id, name, force_2fa, allowed_methods, created_at";

fn from_row(row: &AnyRow) -> Result<Group> {
    let allowed: Option<String> = row.try_get("allowed_methods")?;
    Ok(Group {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        force_2fa: row.try_get::<i64, _>("force_2fa")? != 0,
        allowed_methods: allowed.map(|s| MethodSet::parse_stored(&s)),
        created_at: row.try_get("created_at")?,
    })
}

pub async fn create(db: &Db, name: &str) -> Result<Group> {
    validate_name("group name", name)?;
    let row = sqlx::query(sql!("INSERT INTO user_groups (name, created_at) VALUES ($1, $2) RETURNING {COLUMNS}"))
        .bind(name)
        .bind(time::now())
        .fetch_one(db.pool())
        .await
        .map_err(|e| Error::from_insert(e, "group", name))?;
    from_row(&row)
}

pub async fn find(db: &Db, name: &str) -> Result<Option<Group>> {
    let row = sqlx::query(sql!("SELECT {COLUMNS} FROM user_groups WHERE name = $1"))
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn get(db: &Db, name: &str) -> Result<Group> {
    find(db, name).await?.ok_or_else(|| Error::not_found("group", name))
}

pub async fn list(db: &Db) -> Result<Vec<Group>> {
    let rows = sqlx::query(sql!("SELECT {COLUMNS} FROM user_groups ORDER BY name")).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// The groups `user_id` belongs to.
pub async fn of_user(db: &Db, user_id: i64) -> Result<Vec<Group>> {
    let rows = sqlx::query(
        "SELECT g.id, g.name, g.force_2fa, g.allowed_methods, g.created_at
         FROM user_groups g JOIN group_members m ON m.group_id = g.id
         WHERE m.user_id = $1 ORDER BY g.name",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Names of the members of `group`.
pub async fn members(db: &Db, group: &str) -> Result<Vec<String>> {
    let g = get(db, group).await?;
    let names = sqlx::query_scalar(
        "SELECT u.name FROM users u JOIN group_members m ON m.user_id = u.id
         WHERE m.group_id = $1 ORDER BY u.name",
    )
    .bind(g.id)
    .fetch_all(db.pool())
    .await?;
    Ok(names)
}

/// Adds `user` to `group`; adding a member twice is an error the caller sees.
pub async fn add_member(db: &Db, group: &str, user: &str) -> Result<()> {
    let g = get(db, group).await?;
    let u = users::get(db, user).await?;
    sqlx::query("INSERT INTO group_members (group_id, user_id) VALUES ($1, $2)")
        .bind(g.id)
        .bind(u.id)
        .execute(db.pool())
        .await
        .map_err(|e| Error::from_insert(e, "membership", &format!("{user} in {group}")))?;
    Ok(())
}

pub async fn remove_member(db: &Db, group: &str, user: &str) -> Result<()> {
    let g = get(db, group).await?;
    let u = users::get(db, user).await?;
    let done = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
        .bind(g.id)
        .bind(u.id)
        .execute(db.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("membership", format!("{user} in {group}")));
    }
    Ok(())
}

/// Turns the group's force-2FA switch on or off.
pub async fn set_force_2fa(db: &Db, group: &str, on: bool) -> Result<()> {
    let done = sqlx::query("UPDATE user_groups SET force_2fa = $1 WHERE name = $2")
        .bind(flag(on))
        .bind(group)
        .execute(db.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("group", group));
    }
    Ok(())
}

/// Restricts the group to `methods` (`None`: inherit the global set).
pub async fn set_allowed_methods(db: &Db, group: &str, methods: Option<&[Method]>) -> Result<()> {
    let stored = methods.map(|m| MethodSet::from(m).to_stored());
    let done = sqlx::query("UPDATE user_groups SET allowed_methods = $1 WHERE name = $2")
        .bind(stored)
        .bind(group)
        .execute(db.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("group", group));
    }
    Ok(())
}

pub async fn delete(db: &Db, name: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM user_groups WHERE name = $1").bind(name).execute(db.pool()).await?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("group", name));
    }
    Ok(())
}
