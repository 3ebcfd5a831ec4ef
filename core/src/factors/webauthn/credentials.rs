//! The rows of `webauthn_credentials`: each user's registered security keys and passkeys,
//! and the `factors` row that says the user has the method while any key is left.

use webauthn_rs::prelude::SecurityKey;

use crate::factors::{Method, close_enrollment_window};
use crate::{Error, Gateway, Result, time};

/// A registered key as the user and administrators see it (no key material).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Key {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// The highest signature counter seen (0 for keys without one).
    pub sign_count: i64,
}

/// A stored key with the relying party's view of it.
pub(super) struct Stored {
    pub key: Key,
    pub user_id: i64,
    /// The relying party the key was registered with.
    pub rp_id: String,
    pub credential: SecurityKey,
}

type Row = (i64, i64, String, String, String, i64, i64, Option<i64>);

fn stored((id, user_id, name, rp_id, credential, sign_count, created_at, last_used_at): Row) -> Result<Stored> {
    let credential: SecurityKey = serde_json::from_str(&credential)
        .map_err(|e| Error::Secrets(format!("stored security key {id} cannot be read: {e}")))?;
    Ok(Stored { key: Key { id, name, created_at, last_used_at, sign_count }, user_id, rp_id, credential })
}

/// The keys of `user_id`, oldest first.
pub async fn keys(gw: &Gateway, user_id: i64) -> Result<Vec<Key>> {
    Ok(of_user(gw, user_id).await?.into_iter().map(|s| s.key).collect())
}

pub(super) async fn of_user(gw: &Gateway, user_id: i64) -> Result<Vec<Stored>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, user_id, name, rp_id, credential, sign_count, created_at, last_used_at FROM webauthn_credentials
             WHERE user_id = $1 ORDER BY id",
    )
    .bind(user_id)
    .fetch_all(gw.db.pool())
    .await?;
    rows.into_iter().map(stored).collect()
}

/// The key with this credential id (base64url), whoever's it is.
pub(super) async fn by_credential_id(gw: &Gateway, credential_id: &str) -> Result<Option<Stored>> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, user_id, name, rp_id, credential, sign_count, created_at, last_used_at FROM webauthn_credentials
             WHERE credential_id = $1",
    )
    .bind(credential_id)
    .fetch_optional(gw.db.pool())
    .await?;
    row.map(stored).transpose()
}

/// Stores a new key of `user_id` and the user's `webauthn` factor row (one for all their
/// keys), closing the first-login enrollment window. `false` when the credential id is
/// already registered (to anyone).
pub(super) async fn insert(
    gw: &Gateway,
    user_id: i64,
    name: &str,
    rp_id: &str,
    credential_id: &str,
    credential: &SecurityKey,
) -> Result<Option<Key>> {
    let json =
        serde_json::to_string(credential).map_err(|e| Error::Secrets(format!("security key cannot be stored: {e}")))?;
    let now = time::now();
    let mut tx = gw.db.begin().await?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO webauthn_credentials (user_id, credential_id, name, rp_id, credential, sign_count, created_at)
         VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(user_id)
    .bind(credential_id)
    .bind(name)
    .bind(rp_id)
    .bind(&json)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        return Ok(None);
    };
    sqlx::query(
        "INSERT INTO factors (user_id, method, secret, label, created_at) VALUES ($1, $2, '', '', $3)
         ON CONFLICT (user_id, method) DO NOTHING",
    )
    .bind(user_id)
    .bind(Method::Webauthn.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    relabel(&mut tx, user_id).await?;
    close_enrollment_window(&mut tx, user_id).await?;
    tx.commit().await?;
    Ok(Some(Key { id, name: name.to_string(), created_at: now, last_used_at: None, sign_count: 0 }))
}

/// The factor row's label: how many keys, for the factor overview.
async fn relabel(conn: &mut sqlx::AnyConnection, user_id: i64) -> Result<()> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?;
    let label = if count == 1 { "1 key".to_string() } else { format!("{count} keys") };
    sqlx::query("UPDATE factors SET label = $1 WHERE user_id = $2 AND method = $3")
        .bind(label)
        .bind(user_id)
        .bind(Method::Webauthn.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records an accepted assertion: the new counter, the updated credential and the time
/// of use, only while the counter still goes up (or stays 0 on a key that has none).
/// `false` when it does not: another assertion got a counter at least as high first,
/// which a key that is not cloned never does.
pub(super) async fn record_use(gw: &Gateway, stored: &Stored, counter: u32) -> Result<bool> {
    let json = serde_json::to_string(&stored.credential)
        .map_err(|e| Error::Secrets(format!("security key cannot be stored: {e}")))?;
    let now = time::now();
    let counter = i64::from(counter);
    let mut tx = gw.db.begin().await?;
    let done = sqlx::query(
        "UPDATE webauthn_credentials SET sign_count = $1, credential = $2, last_used_at = $3
         WHERE id = $4 AND (sign_count < $1 OR (sign_count = 0 AND $1 = 0))",
    )
    .bind(counter)
    .bind(&json)
    .bind(now)
    .bind(stored.key.id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("UPDATE factors SET last_used_at = $1 WHERE user_id = $2 AND method = $3")
        .bind(now)
        .bind(stored.user_id)
        .bind(Method::Webauthn.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Removes one key of `user_id`; the last one takes the `webauthn` factor with it.
/// Returns the removed key's name, `None` when the user has no such key.
pub async fn remove(gw: &Gateway, user_id: i64, key_id: i64) -> Result<Option<String>> {
    let mut tx = gw.db.begin().await?;
    let name: Option<String> =
        sqlx::query_scalar("DELETE FROM webauthn_credentials WHERE id = $1 AND user_id = $2 RETURNING name")
            .bind(key_id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
    if name.is_none() {
        return Ok(None);
    }
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
    if left == 0 {
        sqlx::query("DELETE FROM factors WHERE user_id = $1 AND method = $2")
            .bind(user_id)
            .bind(Method::Webauthn.as_str())
            .execute(&mut *tx)
            .await?;
    } else {
        relabel(&mut tx, user_id).await?;
    }
    tx.commit().await?;
    crate::access::changed(&gw.db).await?;
    Ok(name)
}

/// Removes every key of `user_id` (the whole method removed, or an administrator's reset),
/// inside the caller's transaction.
pub(crate) async fn remove_all(conn: &mut sqlx::AnyConnection, user_id: i64) -> Result<()> {
    sqlx::query("DELETE FROM webauthn_credentials WHERE user_id = $1").bind(user_id).execute(conn).await?;
    Ok(())
}
