//! Gateway users: name, password hash, flags, and the last second-factor method they
//! passed (the one the SSH gate asks for first).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::flag;
use crate::db::sql;
use crate::factors::Method;
use crate::{Db, Error, Result, access, time, vault};

/// A gateway user. The password hash never leaves this crate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    #[serde(skip)]
    pub(crate) password_hash: Option<String>,
    pub is_admin: bool,
    /// Locked by an administrator (distinct from a temporary lockout after failures).
    pub locked: bool,
    /// Never asked for a second factor, whatever the policy says.
    pub exempt_2fa: bool,
    /// The user's own force-2FA override: `None` inherits (groups, then the global
    /// switch), `Some(true)` forces a second factor, `Some(false)` does not force one even
    /// where a group or the global switch would (see [`crate::policy::Forcing`]).
    pub force_2fa: Option<bool>,
    pub last_method: Option<Method>,
    pub created_at: i64,
    /// Start of the first-login enrollment window (creation, or an administrator's reset
    /// of the factors); `None` once a factor was enrolled.
    pub enroll_from: Option<i64>,
    /// Where the password is checked.
    pub store: Store,
    /// For a directory user: the entry they were last found at.
    pub directory_dn: Option<String>,
    /// For a directory user: the directory no longer admits them (deleted, disabled or
    /// filtered out there), so nothing here does either.
    pub directory_disabled: bool,
}

/// Where a user's password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    /// The argon2id hash in the gateway's database.
    Local,
    /// A bind to the `[ldap]` directory as the user; nothing is stored here.
    Ldap,
    /// An Access-Request to the `[radius]` servers (`radius.primary`); nothing is stored
    /// here. Access-Challenge answers are further prompts.
    Radius,
}

impl Store {
    pub fn as_str(self) -> &'static str {
        match self {
            Store::Local => "local",
            Store::Ldap => "ldap",
            Store::Radius => "radius",
        }
    }

    /// How an administrator reads it.
    pub fn describe(self) -> &'static str {
        match self {
            Store::Local => "local (password kept by Gatehouse)",
            Store::Ldap => "directory (LDAP / Active Directory)",
            Store::Radius => "RADIUS (password checked by the RADIUS servers)",
        }
    }

    fn parse(s: &str) -> Store {
        match s {
            "ldap" => Store::Ldap,
            "radius" => Store::Radius,
            _ => Store::Local,
        }
    }
}

impl std::str::FromStr for Store {
    type Err = Error;

    /// What an administrator may choose: `local` or `radius` (directory users are made
    /// by their first login, not by hand).
    fn from_str(s: &str) -> Result<Store> {
        match s {
            "local" => Ok(Store::Local),
            "radius" => Ok(Store::Radius),
            _ => Err(Error::invalid("store", format!("'{}': expected local or radius", crate::audit::printable(s)))),
        }
    }
}

const DAY: i64 = 24 * 3600;

impl User {
    /// Whether nothing may let this user in: locked by an administrator, or no longer
    /// admitted by the directory.
    pub fn disabled(&self) -> bool {
        self.locked || self.directory_disabled
    }

    /// Whether, at `now`, the user may still enroll a first factor with the password
    /// alone (see [`crate::policy::Requirement::EnrollmentClosed`]).
    pub fn enrollment_window_open(&self, days: u32, now: i64) -> bool {
        self.enroll_from.is_some_and(|from| now < from + i64::from(days) * DAY)
    }

    /// When the window closes, if it is open at `now`.
    pub fn enrollment_window_end(&self, days: u32, now: i64) -> Option<i64> {
        self.enroll_from.map(|from| from + i64::from(days) * DAY).filter(|end| now < *end)
    }
}

/// What `create` needs.
#[derive(Debug, Default)]
pub struct NewUser<'a> {
    pub name: &'a str,
    pub password: Option<&'a str>,
    pub email: Option<&'a str>,
    pub is_admin: bool,
}

pub(crate) const COLUMNS: &str = "id, name, email, password_hash, is_admin, locked, exempt_2fa, force_2fa, last_method, \
     created_at, enroll_from, store, directory_dn, directory_disabled";

pub(crate) fn from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        is_admin: row.try_get::<i64, _>("is_admin")? != 0,
        locked: row.try_get::<i64, _>("locked")? != 0,
        exempt_2fa: row.try_get::<i64, _>("exempt_2fa")? != 0,
        force_2fa: row.try_get::<Option<i64>, _>("force_2fa")?.map(|v| v != 0),
        last_method: row.try_get::<Option<String>, _>("last_method")?.and_then(|m| m.parse::<Method>().ok()),
        created_at: row.try_get("created_at")?,
        enroll_from: row.try_get("enroll_from")?,
        store: Store::parse(&row.try_get::<String, _>("store")?),
        directory_dn: row.try_get("directory_dn")?,
        directory_disabled: row.try_get::<i64, _>("directory_disabled")? != 0,
    })
}

/// User, group and target names: 1–64 characters of letters, digits, `.`, `_`, `-`,
/// starting with a letter or digit. `:` and `@` are excluded because SSH user names carry
/// `user:target@gateway`.
pub fn validate_name(field: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "'{}' must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
                crate::audit::printable(name)
            ),
        ))
    }
}

/// Passwords: at least 8 characters, at most 1024.
pub fn validate_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if n < 8 {
        return Err(Error::invalid("password", "must be at least 8 characters"));
    }
    if n > 1024 {
        return Err(Error::invalid("password", "must be at most 1024 characters"));
    }
    Ok(())
}

fn validate_email(email: &str) -> Result<()> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("email", format!("'{}' is not an address", crate::audit::printable(email))))
    }
}

/// Creates a user. The password (if any) is hashed with argon2id.
pub async fn create(db: &Db, new: NewUser<'_>) -> Result<User> {
    validate_name("user name", new.name)?;
    if let Some(email) = new.email {
        validate_email(email)?;
    }
    let hash = match new.password {
        Some(p) => {
            validate_password(p)?;
            Some(vault::hash_blocking(p.to_string()).await?)
        }
        None => None,
    };
    let row = sqlx::query(sql!(
        "INSERT INTO users (name, email, password_hash, is_admin, created_at, enroll_from)
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING {COLUMNS}"
    ))
    .bind(new.name)
    .bind(new.email)
    .bind(hash)
    .bind(flag(new.is_admin))
    .bind(time::now())
    .fetch_one(db.pool())
    .await
    .map_err(|e| Error::from_insert(e, "user", new.name))?;
    from_row(&row)
}

/// The user called `name`, if any.
pub async fn find(db: &Db, name: &str) -> Result<Option<User>> {
    let row =
        sqlx::query(sql!("SELECT {COLUMNS} FROM users WHERE name = $1")).bind(name).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

/// The user called `name`, or [`Error::NotFound`].
pub async fn get(db: &Db, name: &str) -> Result<User> {
    find(db, name).await?.ok_or_else(|| Error::not_found("user", name))
}

/// The user with this id, if it still exists.
pub async fn by_id(db: &Db, id: i64) -> Result<Option<User>> {
    let row = sqlx::query(sql!("SELECT {COLUMNS} FROM users WHERE id = $1")).bind(id).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

/// All users, by name.
pub async fn list(db: &Db) -> Result<Vec<User>> {
    let rows = sqlx::query(sql!("SELECT {COLUMNS} FROM users ORDER BY name")).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// True when at least one administrator exists.
pub async fn any_admin(db: &Db) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_admin = 1").fetch_one(db.pool()).await?;
    Ok(n > 0)
}

async fn update_one(db: &Db, name: &str, sql: &'static str, value: i64) -> Result<()> {
    let done = sqlx::query(sql).bind(value).bind(name).execute(db.pool()).await?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("user", name));
    }
    Ok(())
}

/// Sets (or replaces) the password.
/// Every application passcode of the user goes with the old password, in the same
/// transaction; returns how many were revoked.
pub async fn set_password(db: &Db, name: &str, password: &str) -> Result<u64> {
    if get(db, name).await?.store != Store::Local {
        return Err(Error::invalid("password", "this account's password is kept by the directory; change it there"));
    }
    validate_password(password)?;
    let hash = vault::hash_blocking(password.to_string()).await?;
    let mut tx = db.begin().await?;
    let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE name = $2")
        .bind(hash)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("user", name));
    }
    let revoked = sqlx::query("DELETE FROM app_passcodes WHERE user_id = (SELECT id FROM users WHERE name = $1)")
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    if revoked > 0 {
        access::changed(db).await?;
    }
    Ok(revoked)
}

/// Locks or unlocks the account by an administrator's decision. A lock ends the user's
/// live connections and target sessions on every node ([`access::changed`], and each
/// session's terminate flag).
pub async fn set_locked(db: &Db, name: &str, locked: bool) -> Result<()> {
    update_one(db, name, "UPDATE users SET locked = $1 WHERE name = $2", flag(locked)).await?;
    if locked {
        crate::live_sessions::terminate_user(db, name).await?;
    }
    access::changed(db).await
}

/// Marks the user exempt from the second factor (or not).
pub async fn set_exempt(db: &Db, name: &str, exempt: bool) -> Result<()> {
    update_one(db, name, "UPDATE users SET exempt_2fa = $1 WHERE name = $2", flag(exempt)).await?;
    access::changed(db).await
}

/// Moves a user's password to `store` (`local` or `radius`). Moving to RADIUS drops the
/// stored hash (the RADIUS servers decide from now on); moving back to local leaves the
/// account without a password until an administrator sets one. Directory users stay with
/// the directory.
pub async fn set_store(db: &Db, name: &str, store: Store) -> Result<()> {
    let user = get(db, name).await?;
    if user.store == Store::Ldap || store == Store::Ldap {
        return Err(Error::invalid("store", "directory accounts follow the directory; their store cannot be changed"));
    }
    if user.store == store {
        return Ok(());
    }
    sqlx::query("UPDATE users SET store = $1, password_hash = NULL WHERE id = $2")
        .bind(store.as_str())
        .bind(user.id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Sets the user's own force-2FA override (`None` inherits). Forcing it on ends the
/// user's live logins that did not pass a second factor ([`access::changed`]).
pub async fn set_force_2fa(db: &Db, name: &str, force: Option<bool>) -> Result<()> {
    let done = sqlx::query("UPDATE users SET force_2fa = $1 WHERE name = $2")
        .bind(force.map(flag))
        .bind(name)
        .execute(db.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("user", name));
    }
    access::changed(db).await
}

/// Opens the first-login enrollment window again (an administrator reset the factors).
pub async fn reopen_enrollment(db: &Db, user_id: i64) -> Result<()> {
    sqlx::query("UPDATE users SET enroll_from = $1 WHERE id = $2")
        .bind(time::now())
        .bind(user_id)
        .execute(db.pool())
        .await?;
    access::changed(db).await
}

/// Grants or removes the administrator flag. Granting it can put the user under the
/// administrators' force-2FA scope, so live logins are re-checked ([`access::changed`]).
pub async fn set_admin(db: &Db, name: &str, admin: bool) -> Result<()> {
    update_one(db, name, "UPDATE users SET is_admin = $1 WHERE name = $2", flag(admin)).await?;
    access::changed(db).await
}

/// Remembers the method the user last passed; the SSH gate asks for it first.
pub async fn set_last_method(db: &Db, user_id: i64, method: Method) -> Result<()> {
    sqlx::query("UPDATE users SET last_method = $1 WHERE id = $2")
        .bind(method.as_str())
        .bind(user_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Deletes the user; keys, factors, memberships and grants go with it (foreign keys).
/// The id is never given to another user, and the user's live connections and target
/// sessions end on every node.
pub async fn delete(db: &Db, name: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM users WHERE name = $1").bind(name).execute(db.pool()).await?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("user", name));
    }
    crate::live_sessions::terminate_user(db, name).await?;
    access::changed(db).await
}

impl User {
    /// Checks the password in constant time. Users without a password never match, but
    /// still pay for one hash, so timing does not tell them apart.
    pub async fn check_password(&self, password: &str) -> bool {
        let hash = self.password_hash.clone();
        let ok = vault::verify_blocking(
            password.to_string(),
            hash.clone().unwrap_or_else(|| vault::dummy_hash().to_string()),
        )
        .await;
        ok && hash.is_some()
    }
}

/// Marks a password as one-time: the web UI asks for a new one at the next login.
pub async fn set_must_change_password(db: &Db, user_id: i64, on: bool) -> Result<()> {
    sqlx::query("UPDATE users SET must_change_password = $1 WHERE id = $2")
        .bind(flag(on))
        .bind(user_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Whether the user must choose a new password before anything else (web UI).
pub async fn must_change_password(db: &Db, user_id: i64) -> Result<bool> {
    let v: Option<i64> = sqlx::query_scalar("SELECT must_change_password FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(v.unwrap_or(0) != 0)
}
