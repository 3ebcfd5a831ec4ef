//! Failed-attempt lockout, in the database so that every node counts the same failures.
//!
//! Failures are counted per user name (whether or not the user exists, so a lock does not
//! reveal which names are real) and per source address. When either count within the
//! window reaches its threshold, that subject is locked for the configured duration.
//! A second factor does not exempt anyone: a locked account is refused before any
//! credential is checked.

use crate::config::LockoutConfig;
use crate::{Db, Result, time};

fn user_subject(user: &str) -> String {
    format!("user:{user}")
}

fn source_subject(source: &str) -> String {
    format!("source:{source}")
}

/// Why a login is refused before any credential is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// The account is locked until this time (epoch seconds).
    User { until: i64 },
    /// The source address is blocked until this time.
    Source { until: i64 },
}

impl Lock {
    pub fn until(self) -> i64 {
        match self {
            Lock::User { until } | Lock::Source { until } => until,
        }
    }
}

/// The lock in force for `user` or `source`, if any.
pub async fn current(db: &Db, user: &str, source: &str) -> Result<Option<Lock>> {
    let now = time::now();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT subject, locked_until FROM lockouts WHERE subject IN ($1, $2) AND locked_until > $3")
            .bind(user_subject(user))
            .bind(source_subject(source))
            .bind(now)
            .fetch_all(db.pool())
            .await?;
    Ok(rows
        .into_iter()
        .map(
            |(subject, until)| {
                if subject.starts_with("user:") { Lock::User { until } } else { Lock::Source { until } }
            },
        )
        .max_by_key(|l| l.until()))
}

/// Counts one failure and locks the user or the source when a threshold is reached.
/// Returns the lock this failure caused, if any.
pub async fn record_failure(db: &Db, cfg: &LockoutConfig, user: &str, source: &str) -> Result<Option<Lock>> {
    let now = time::now();
    let since = now - cfg.window_secs as i64;
    let until = now + cfg.duration_secs as i64;
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO login_failures (user_name, source, at) VALUES ($1, $2, $3)")
        .bind(user)
        .bind(source)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let by_user: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_failures WHERE user_name = $1 AND at > $2")
        .bind(user)
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;
    let by_source: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_failures WHERE source = $1 AND at > $2")
        .bind(source)
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;
    let mut caused = None;
    for (subject, count, threshold, lock) in [
        (user_subject(user), by_user, cfg.user_threshold, Lock::User { until }),
        (source_subject(source), by_source, cfg.source_threshold, Lock::Source { until }),
    ] {
        if count >= i64::from(threshold) {
            sqlx::query(
                "INSERT INTO lockouts (subject, locked_until) VALUES ($1, $2)
                 ON CONFLICT (subject) DO UPDATE SET locked_until = excluded.locked_until",
            )
            .bind(subject)
            .bind(until)
            .execute(&mut *tx)
            .await?;
            caused = Some(lock);
        }
    }
    // Old rows are of no further use.
    sqlx::query("DELETE FROM login_failures WHERE at < $1").bind(since).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(caused)
}

/// Forgets the failures of `user` and lifts their lock (after a full successful login, or
/// when an administrator unlocks the account).
pub async fn clear_user(db: &Db, user: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM login_failures WHERE user_name = $1").bind(user).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM lockouts WHERE subject = $1").bind(user_subject(user)).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}
