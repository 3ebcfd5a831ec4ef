//! Backup one-time codes: a set of N codes (admin setting), each stored as an argon2id
//! hash, each accepted once. Regenerating replaces the whole set in one transaction.

use async_trait::async_trait;
use sqlx::Row;

use super::{Challenge, Method, SecondFactor, Verdict, normalize_code};
use crate::users::User;
use crate::{Db, Gateway, Result, time, vault};

/// Characters in one code (shown as two groups of four).
const CODE_LEN: usize = 8;

/// The backup-code method.
pub struct BackupCodes;

/// Unused codes left for `user_id`.
pub async fn remaining(db: &Db, user_id: i64) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM backup_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .fetch_one(db.pool())
        .await?)
}

/// Makes `count` new codes for `user_id`, voiding every earlier one, and returns them in
/// the form to show once (`abcd-efgh`).
pub async fn regenerate(db: &Db, user_id: i64, count: u32) -> Result<Vec<String>> {
    let codes: Vec<String> = (0..count).map(|_| vault::random_code(CODE_LEN)).collect();
    let mut hashes = Vec::with_capacity(codes.len());
    for code in &codes {
        hashes.push(vault::hash_blocking(code.clone()).await?);
    }
    let now = time::now();
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM backup_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
    for hash in hashes {
        sqlx::query("INSERT INTO backup_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    super::close_enrollment_window(&mut tx, user_id).await?;
    tx.commit().await?;
    Ok(codes.into_iter().map(|c| format!("{}-{}", &c[..4], &c[4..])).collect())
}

#[async_trait]
impl SecondFactor for BackupCodes {
    fn method(&self) -> Method {
        Method::BackupCode
    }

    async fn verify(&self, gw: &Gateway, user: &User, _c: &mut Challenge, answer: &str) -> Result<Verdict> {
        let code = normalize_code(answer);
        if code.len() != CODE_LEN {
            return Ok(Verdict::Rejected);
        }
        let rows = sqlx::query("SELECT id, code_hash FROM backup_codes WHERE user_id = $1 AND used_at IS NULL")
            .bind(user.id)
            .fetch_all(gw.db.pool())
            .await?;
        let candidates: Vec<(i64, String)> =
            rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("code_hash")?))).collect::<Result<_>>()?;
        // Check every unused code (no early exit), so timing says nothing about which.
        let matched = tokio::task::spawn_blocking(move || {
            let mut matched = None;
            for (id, hash) in &candidates {
                if vault::verify_secret(&code, hash) && matched.is_none() {
                    matched = Some(*id);
                }
            }
            matched
        })
        .await
        .unwrap_or(None);
        let Some(id) = matched else {
            return Ok(Verdict::Rejected);
        };
        let done = sqlx::query("UPDATE backup_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(time::now())
            .bind(id)
            .execute(gw.db.pool())
            .await?;
        Ok(if done.rows_affected() == 1 { Verdict::Accepted } else { Verdict::Replayed })
    }
}
