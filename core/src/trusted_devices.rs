//! Trusted browsers: a browser a user chose to trust for N days skips the second factor on
//! the web login, and nowhere else (the SSH gate never looks at this table).
//!
//! The browser keeps a 256-bit random token in a cookie; the table keeps only its SHA-256
//! (computed by the web front end), bound to one user, with an expiry.

use crate::{Db, Error, Result, time};

/// Longest trust period a user may choose.
pub const MAX_DAYS: i64 = 90;

/// A trusted browser as listed to its owner.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrustedDevice {
    pub id: i64,
    pub label: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    #[serde(skip)]
    pub token_hash: String,
}

/// Trusts the browser holding the token whose hash is `token_hash` for `days` days.
pub async fn trust(db: &Db, user_id: i64, token_hash: &str, label: &str, days: i64) -> Result<()> {
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(Error::invalid("days", format!("must be 1-{MAX_DAYS}")));
    }
    let now = time::now();
    let label: String = crate::audit::printable(label).chars().take(120).collect();
    sqlx::query(
        "INSERT INTO trusted_devices (user_id, token_hash, label, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user_id)
    .bind(token_hash)
    .bind(label)
    .bind(now)
    .bind(now + days * 86_400)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// True when `token_hash` is an unexpired trusted browser of `user_id`; records the use.
pub async fn check(db: &Db, user_id: i64, token_hash: &str) -> Result<bool> {
    let now = time::now();
    let done = sqlx::query(
        "UPDATE trusted_devices SET last_used_at = $1 WHERE user_id = $2 AND token_hash = $3 AND expires_at > $1",
    )
    .bind(now)
    .bind(user_id)
    .bind(token_hash)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The unexpired trusted browsers of `user_id`, newest first.
pub async fn of_user(db: &Db, user_id: i64) -> Result<Vec<TrustedDevice>> {
    let rows: Vec<(i64, String, i64, i64, Option<i64>, String)> = sqlx::query_as(
        "SELECT id, label, created_at, expires_at, last_used_at, token_hash FROM trusted_devices
         WHERE user_id = $1 AND expires_at > $2 ORDER BY id DESC",
    )
    .bind(user_id)
    .bind(time::now())
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, label, created_at, expires_at, last_used_at, token_hash)| TrustedDevice {
            id,
            label,
            created_at,
            expires_at,
            last_used_at,
            token_hash,
        })
        .collect())
}

/// Revokes one of `user_id`'s trusted browsers; false when it is not theirs or not there.
pub async fn revoke(db: &Db, user_id: i64, id: i64) -> Result<bool> {
    let done = sqlx::query("DELETE FROM trusted_devices WHERE user_id = $1 AND id = $2")
        .bind(user_id)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Revokes every trusted browser of `user_id` except the one with `keep_hash` (pass an
/// empty string to revoke all). Returns how many went.
pub async fn revoke_others(db: &Db, user_id: i64, keep_hash: &str) -> Result<u64> {
    let done = sqlx::query("DELETE FROM trusted_devices WHERE user_id = $1 AND token_hash <> $2")
        .bind(user_id)
        .bind(keep_hash)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::{self, NewUser};

    #[tokio::test]
    async fn trust_is_per_user_expires_and_revokes() {
        let (_dir, db) = crate::db::test_db().await;
        let alice = users::create(&db, NewUser { name: "alice", ..Default::default() }).await.unwrap();
        let bob = users::create(&db, NewUser { name: "bob", ..Default::default() }).await.unwrap();
        assert!(trust(&db, alice.id, "h1", "Firefox on Linux", 0).await.is_err());
        assert!(trust(&db, alice.id, "h1", "Firefox on Linux", MAX_DAYS + 1).await.is_err());
        trust(&db, alice.id, "h1", "Firefox on Linux", 30).await.unwrap();
        trust(&db, alice.id, "h2", "Chrome on Android", 1).await.unwrap();
        assert!(check(&db, alice.id, "h1").await.unwrap());
        assert!(!check(&db, bob.id, "h1").await.unwrap(), "a token is bound to its user");
        assert!(!check(&db, alice.id, "nope").await.unwrap());
        let listed = of_user(&db, alice.id).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().any(|d| d.token_hash == "h1" && d.last_used_at.is_some()));
        // An expired row neither checks nor lists.
        sqlx::query("UPDATE trusted_devices SET expires_at = 1 WHERE token_hash = 'h2'")
            .execute(db.pool())
            .await
            .unwrap();
        assert!(!check(&db, alice.id, "h2").await.unwrap());
        assert_eq!(of_user(&db, alice.id).await.unwrap().len(), 1);
        let id = listed.iter().find(|d| d.token_hash == "h1").unwrap().id;
        assert!(!revoke(&db, bob.id, id).await.unwrap(), "bob cannot revoke alice's browser");
        trust(&db, alice.id, "h3", "Safari on Mac OS", 7).await.unwrap();
        assert_eq!(revoke_others(&db, alice.id, "h3").await.unwrap(), 2);
        assert!(check(&db, alice.id, "h3").await.unwrap());
        assert!(revoke(&db, alice.id, of_user(&db, alice.id).await.unwrap()[0].id).await.unwrap());
        assert!(of_user(&db, alice.id).await.unwrap().is_empty());
    }
}
