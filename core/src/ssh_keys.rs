//! Users' SSH public keys, the primary credential for public-key logins.

use sqlx::Row;
use sqlx::any::AnyRow;
use ssh_key::{HashAlg, PublicKey};

use crate::db::sql;
use crate::{Db, Error, Result, time, users};

/// An enrolled public key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SshKey {
    pub id: i64,
    pub user_id: i64,
    pub algorithm: String,
    /// OpenSSH one-line form without the comment.
    pub public_key: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub comment: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

fn from_row(row: &AnyRow) -> Result<SshKey> {
    Ok(SshKey {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        algorithm: row.try_get("algorithm")?,
        public_key: row.try_get("public_key")?,
        fingerprint: row.try_get("fingerprint")?,
        comment: row.try_get("comment")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

const COLUMNS: &str = "id, user_id, algorithm, public_key, fingerprint, comment, created_at, last_used_at";

/// Parses one `authorized_keys`-style line (`type base64 [comment]`).
pub fn parse(line: &str) -> Result<PublicKey> {
    let line = line.trim();
    if line.is_empty() {
        return Err(Error::invalid("key", "empty"));
    }
    PublicKey::from_openssh(line).map_err(|e| {
        Error::invalid("key", format!("not an OpenSSH public key ({e}); expected e.g. 'ssh-ed25519 AAAA… comment'"))
    })
}

/// SHA-256 fingerprint in the `SHA256:…` form.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Adds `key_line` to `user`'s keys.
pub async fn add(db: &Db, user: &str, key_line: &str) -> Result<SshKey> {
    let key = parse(key_line)?;
    let u = users::get(db, user).await?;
    let fp = fingerprint(&key);
    let mut bare = key.clone();
    bare.set_comment("");
    let openssh = bare.to_openssh().map_err(|e| Error::invalid("key", format!("cannot encode: {e}")))?;
    let row = sqlx::query(sql!(
        "INSERT INTO ssh_keys (user_id, algorithm, public_key, fingerprint, comment, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ))
    .bind(u.id)
    .bind(key.algorithm().as_str())
    .bind(openssh.trim())
    .bind(&fp)
    .bind(key.comment().as_str_lossy().to_string())
    .bind(time::now())
    .fetch_one(db.pool())
    .await
    .map_err(|e| Error::from_insert(e, "key", &fp))?;
    from_row(&row)
}

/// The keys of `user_id`.
pub async fn of_user(db: &Db, user_id: i64) -> Result<Vec<SshKey>> {
    let rows = sqlx::query(sql!("SELECT {COLUMNS} FROM ssh_keys WHERE user_id = $1 ORDER BY id"))
        .bind(user_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// The enrolled key of `user_id` equal to `key`, if any (matched on the key material, not
/// only the fingerprint).
pub async fn matching(db: &Db, user_id: i64, key: &PublicKey) -> Result<Option<SshKey>> {
    let row = sqlx::query(sql!("SELECT {COLUMNS} FROM ssh_keys WHERE user_id = $1 AND fingerprint = $2"))
        .bind(user_id)
        .bind(fingerprint(key))
        .fetch_optional(db.pool())
        .await?;
    let Some(found) = row.as_ref().map(from_row).transpose()? else {
        return Ok(None);
    };
    let stored = PublicKey::from_openssh(&found.public_key).ok();
    Ok(stored.filter(|s| s.key_data() == key.key_data()).map(|_| found))
}

/// Sets the keys read from the directory for `user_id` to `keys`: keys gone from the
/// directory are removed, new ones added (a key the user also added by hand stays as it
/// is). Returns whether a key was removed, which can withdraw a live login.
pub async fn replace_from_directory(db: &Db, user_id: i64, keys: &[PublicKey]) -> Result<bool> {
    let wanted: Vec<(String, String, String)> = keys
        .iter()
        .filter_map(|k| {
            let mut bare = k.clone();
            bare.set_comment("");
            let line = bare.to_openssh().ok()?;
            Some((fingerprint(k), k.algorithm().as_str().to_string(), line.trim().to_string()))
        })
        .collect();
    let mut tx = db.begin().await?;
    let held: Vec<String> =
        sqlx::query_scalar("SELECT fingerprint FROM ssh_keys WHERE user_id = $1 AND from_directory = 1")
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
    let mut removed = false;
    for fp in &held {
        if !wanted.iter().any(|(w, _, _)| w == fp) {
            sqlx::query("DELETE FROM ssh_keys WHERE user_id = $1 AND fingerprint = $2 AND from_directory = 1")
                .bind(user_id)
                .bind(fp)
                .execute(&mut *tx)
                .await?;
            removed = true;
        }
    }
    for (fp, algorithm, line) in &wanted {
        sqlx::query(
            "INSERT INTO ssh_keys (user_id, algorithm, public_key, fingerprint, comment, created_at, from_directory)
             VALUES ($1, $2, $3, $4, 'from the directory', $5, 1) ON CONFLICT (user_id, fingerprint) DO NOTHING",
        )
        .bind(user_id)
        .bind(algorithm)
        .bind(line)
        .bind(fp)
        .bind(time::now())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(removed)
}

/// Records that the key was used to log in.
pub async fn touch(db: &Db, id: i64) -> Result<()> {
    sqlx::query("UPDATE ssh_keys SET last_used_at = $1 WHERE id = $2")
        .bind(time::now())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Removes the key with `fingerprint` from `user_id`'s keys.
pub async fn remove(db: &Db, user_id: i64, fingerprint: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM ssh_keys WHERE user_id = $1 AND fingerprint = $2")
        .bind(user_id)
        .bind(fingerprint)
        .execute(db.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("key", fingerprint));
    }
    crate::access::changed(db).await
}
