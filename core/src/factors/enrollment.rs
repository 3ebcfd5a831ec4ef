//! The `factors` table: which methods a user has enrolled, as listed to administrators,
//! removed and reset, and the row each method stores when it is enrolled. Backup codes
//! and security keys used as SSH keys keep their own tables and count as enrolled while
//! any is there.

use super::{Method, backup_codes, ssh_sk};
use crate::{Db, Result};

/// The methods `user_id` has enrolled (backup codes count while any is unused, security
/// keys while any is registered), in a stable order.
pub async fn enrolled(db: &Db, user_id: i64) -> Result<Vec<Method>> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT method FROM factors WHERE user_id = $1").bind(user_id).fetch_all(db.pool()).await?;
    let left = backup_codes::remaining(db, user_id).await?;
    let sk_keys = ssh_sk::count(db, user_id).await?;
    Ok(enrolled_from(names.iter().map(String::as_str), left, sk_keys))
}

/// The methods enrolled, from the `factors` rows' method names, the number of unused
/// backup codes and the number of security keys registered for SSH: the one rule for
/// [`enrolled`] and for queries that read them all at once.
pub(crate) fn enrolled_from<'a>(
    names: impl Iterator<Item = &'a str>,
    backup_codes_left: i64,
    ssh_sk_keys: i64,
) -> Vec<Method> {
    let mut out: Vec<Method> = names.filter_map(|n| n.parse().ok()).collect();
    if backup_codes_left > 0 {
        out.push(Method::BackupCode);
    }
    if ssh_sk_keys > 0 {
        out.push(Method::SshSk);
    }
    out.sort();
    out.dedup();
    out
}

/// An enrolled factor as listed to administrators (no secret).
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnrolledFactor {
    pub method: Method,
    pub label: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// The user's factors with their dates; backup codes as one entry with the count left,
/// security keys one entry each.
pub async fn describe(db: &Db, user_id: i64) -> Result<Vec<EnrolledFactor>> {
    // One query: the factor rows, then the backup codes summed up in a row of the same
    // shape (only when the user has any).
    let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT method, label, created_at, last_used_at FROM factors WHERE user_id = $1
         UNION ALL
         SELECT 'backup-code', CAST(COUNT(*) - COUNT(used_at) AS TEXT), MIN(created_at), MAX(used_at)
         FROM backup_codes WHERE user_id = $1 HAVING COUNT(*) > 0",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    let mut out: Vec<EnrolledFactor> = rows
        .into_iter()
        .filter_map(|(m, label, created_at, last_used_at)| {
            let method: Method = m.parse().ok()?;
            let label = if method == Method::BackupCode { format!("{label} unused") } else { label };
            Some(EnrolledFactor { method, label, created_at, last_used_at })
        })
        .collect();
    // By method name, backup codes last.
    out.sort_by(|a, b| {
        (a.method == Method::BackupCode, a.method.as_str()).cmp(&(b.method == Method::BackupCode, b.method.as_str()))
    });
    for k in ssh_sk::of_user(db, user_id).await? {
        let uv = if k.verify_required { ", verify-required" } else { "" };
        out.push(EnrolledFactor {
            method: Method::SshSk,
            label: format!("#{} {} ({}{uv})", k.id, k.name, k.fingerprint),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        });
    }
    Ok(out)
}

/// Removes one method's enrollment (for backup codes: the whole set; for security keys:
/// every key).
pub async fn remove(db: &Db, user_id: i64, method: Method) -> Result<bool> {
    let done = if method == Method::BackupCode {
        sqlx::query("DELETE FROM backup_codes WHERE user_id = $1").bind(user_id).execute(db.pool()).await?
    } else if method == Method::Webauthn {
        // Every key goes with the method.
        let mut tx = db.begin().await?;
        super::webauthn::remove_all(&mut tx, user_id).await?;
        let done = sqlx::query("DELETE FROM factors WHERE user_id = $1 AND method = $2")
            .bind(user_id)
            .bind(method.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        done
    } else if method == Method::SshSk {
        sqlx::query("DELETE FROM ssh_sk_keys WHERE user_id = $1").bind(user_id).execute(db.pool()).await?
    } else {
        sqlx::query("DELETE FROM factors WHERE user_id = $1 AND method = $2")
            .bind(user_id)
            .bind(method.as_str())
            .execute(db.pool())
            .await?
    };
    crate::access::changed(db).await?;
    Ok(done.rows_affected() > 0)
}

/// An administrator's reset: every factor and backup code goes, and the user gets a new
/// first-login enrollment window. Returns the methods that were enrolled.
pub async fn reset(db: &Db, user_id: i64) -> Result<Vec<Method>> {
    let methods = enrolled(db, user_id).await?;
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM factors WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM backup_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
    super::webauthn::remove_all(&mut tx, user_id).await?;
    sqlx::query("DELETE FROM ssh_sk_keys WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
    sqlx::query("UPDATE users SET enroll_from = $1 WHERE id = $2")
        .bind(crate::time::now())
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    crate::access::changed(db).await?;
    Ok(methods)
}

/// A factor was enrolled: the first-login enrollment window is used up.
pub(crate) async fn close_enrollment_window(conn: &mut sqlx::AnyConnection, user_id: i64) -> Result<()> {
    sqlx::query("UPDATE users SET enroll_from = NULL WHERE id = $1").bind(user_id).execute(conn).await?;
    Ok(())
}

/// Stores or replaces the factor row for `method` (one per method and user), and closes
/// the user's first-login enrollment window.
pub(crate) async fn upsert(
    conn: &mut sqlx::AnyConnection,
    user_id: i64,
    method: Method,
    secret: &str,
    label: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO factors (user_id, method, secret, label, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, method) DO UPDATE SET secret = excluded.secret, label = excluded.label,
             created_at = excluded.created_at, last_step = NULL, last_used_at = NULL",
    )
    .bind(user_id)
    .bind(method.as_str())
    .bind(secret)
    .bind(label)
    .bind(crate::time::now())
    .execute(&mut *conn)
    .await?;
    close_enrollment_window(conn, user_id).await
}
