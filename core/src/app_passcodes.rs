//! Application passcodes: for clients that cannot answer a second-factor prompt (scp,
//! sftp, exec, ProxyJump from scripts), a user makes a labelled passcode, shown once.
//! Over SSH a passcode stands in for password + second factor for those channels only
//! (the SSH frontend enforces that; it never opens the interactive menu).
//!
//! Stored as argon2id hashes, because people copy and type them. Every passcode of a user
//! is revoked when their password changes.

use crate::{Db, Error, Result, time, vault};

/// Most passcodes one user may hold (each login checks all of them).
pub const MAX_PER_USER: i64 = 20;

/// A passcode as listed to its owner (no secret).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppPasscode {
    pub label: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// Labels: 1-64 printable characters.
pub fn validate_label(label: &str) -> Result<()> {
    let n = label.chars().count();
    if n == 0 || n > 64 || label.chars().any(char::is_control) || label.trim() != label {
        return Err(Error::invalid("label", "must be 1-64 printable characters without leading or trailing spaces"));
    }
    Ok(())
}

/// Creates a passcode labelled `label` and returns it, for showing once (`xxxx-xxxx-xxxx-xxxx-xxxx`).
pub async fn create(db: &Db, user_id: i64, label: &str) -> Result<String> {
    validate_label(label)?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM app_passcodes WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(db.pool())
        .await?;
    if count >= MAX_PER_USER {
        return Err(Error::invalid("label", format!("at most {MAX_PER_USER} passcodes; revoke one first")));
    }
    let raw = vault::random_code(20);
    let hash = vault::hash_blocking(raw.clone()).await?;
    sqlx::query("INSERT INTO app_passcodes (user_id, label, passcode_hash, created_at) VALUES ($1, $2, $3, $4)")
        .bind(user_id)
        .bind(label)
        .bind(hash)
        .bind(time::now())
        .execute(db.pool())
        .await
        .map_err(|e| Error::from_insert(e, "passcode", label))?;
    let groups: Vec<&str> = (0..5).map(|i| &raw[i * 4..i * 4 + 4]).collect();
    Ok(groups.join("-"))
}

/// The passcodes of `user_id`, by label.
pub async fn list(db: &Db, user_id: i64) -> Result<Vec<AppPasscode>> {
    let rows: Vec<(String, i64, Option<i64>)> =
        sqlx::query_as("SELECT label, created_at, last_used_at FROM app_passcodes WHERE user_id = $1 ORDER BY label")
            .bind(user_id)
            .fetch_all(db.pool())
            .await?;
    Ok(rows
        .into_iter()
        .map(|(label, created_at, last_used_at)| AppPasscode { label, created_at, last_used_at })
        .collect())
}

/// Revokes `user_id`'s passcode labelled `label`; false when there is none.
pub async fn revoke(db: &Db, user_id: i64, label: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM app_passcodes WHERE user_id = $1 AND label = $2")
        .bind(user_id)
        .bind(label)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Revokes every passcode of `user_id` (on a password change). Returns how many went.
pub async fn revoke_all(db: &Db, user_id: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM app_passcodes WHERE user_id = $1").bind(user_id).execute(db.pool()).await?;
    Ok(done.rows_affected())
}

/// Checks `passcode` against every passcode of `user_id` (all are checked, so timing does
/// not say which matched) and returns the label of the one that matched, recording its
/// use. The caller audits the use and limits it to scp, sftp, exec and ProxyJump.
pub async fn verify(db: &Db, user_id: i64, passcode: &str) -> Result<Option<String>> {
    let typed: String =
        passcode.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect();
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, label, passcode_hash FROM app_passcodes WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(db.pool())
            .await?;
    if rows.is_empty() {
        // Same cost as one real check.
        vault::verify_blocking(typed, vault::dummy_hash().to_string()).await;
        return Ok(None);
    }
    let matched = tokio::task::spawn_blocking(move || {
        let mut matched = None;
        for (id, label, hash) in rows {
            if vault::verify_secret(&typed, &hash) && matched.is_none() {
                matched = Some((id, label));
            }
        }
        matched
    })
    .await
    .unwrap_or(None);
    let Some((id, label)) = matched else { return Ok(None) };
    sqlx::query("UPDATE app_passcodes SET last_used_at = $1 WHERE id = $2")
        .bind(time::now())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(Some(label))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::{self, NewUser};

    #[tokio::test]
    async fn created_passcode_verifies_once_listed_and_revoked() {
        let (_dir, db) = crate::db::test_db().await;
        let alice = users::create(&db, NewUser { name: "alice", ..Default::default() }).await.unwrap();
        let bob = users::create(&db, NewUser { name: "bob", ..Default::default() }).await.unwrap();
        let code = create(&db, alice.id, "backup job").await.unwrap();
        assert_eq!(code.len(), 24);
        assert!(matches!(create(&db, alice.id, "backup job").await, Err(Error::Duplicate { .. })));
        assert!(create(&db, alice.id, " padded").await.is_err());
        assert_eq!(verify(&db, alice.id, &code).await.unwrap().as_deref(), Some("backup job"));
        assert_eq!(verify(&db, alice.id, &code.to_uppercase()).await.unwrap().as_deref(), Some("backup job"));
        assert_eq!(verify(&db, bob.id, &code).await.unwrap(), None);
        assert_eq!(verify(&db, alice.id, "wrong-code").await.unwrap(), None);
        let listed = list(&db, alice.id).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].last_used_at.is_some());
        assert!(!revoke(&db, bob.id, "backup job").await.unwrap());
        create(&db, alice.id, "second").await.unwrap();
        assert!(revoke(&db, alice.id, "backup job").await.unwrap());
        assert_eq!(verify(&db, alice.id, &code).await.unwrap(), None);
        assert_eq!(revoke_all(&db, alice.id).await.unwrap(), 1);
        assert!(list(&db, alice.id).await.unwrap().is_empty());
    }
}
