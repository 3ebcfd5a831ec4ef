//! Failed-attempt lockout, in the database so that every node counts the same failures.
//!
//! Failures are counted per user name (whether or not the user exists, so a lock does not
//! reveal which names are real) and per source address. When either count within the
//! window reaches its threshold, that subject is locked for the configured duration.
//! A second factor does not exempt anyone: a locked account is refused before any
//! credential is checked.
//!
//! A guess is counted before it is checked ([`admit`]), atomically, so parallel guesses
//! can never exceed the threshold: of 40 wrong answers sent at once with a threshold of
//! 5, five are checked and 35 are refused unchecked.
//!
//! A user name is counted as typed, cut to [`crate::text::MAX_STORED_NAME`] characters:
//! a name longer than any real one is still counted, under its first characters.

use crate::config::LockoutConfig;
use crate::db::Backend;
use crate::text::stored_name;
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
    let user = stored_name(user);
    let user = user.as_ref();
    let now = time::now();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT subject, locked_until FROM lockouts WHERE subject IN ($1, $2) AND locked_until > $3")
            .bind(user_subject(user))
            .bind(source_subject(source))
            .bind(now)
            .fetch_all(db.pool())
            .await?;
    Ok(rows.into_iter().map(|(subject, until)| as_lock(&subject, until)).max_by_key(|l| l.until()))
}

/// A guess counted before it is checked: its row (pending) exists from the moment the
/// guess is admitted, so answers racing each other see each other's rows and no more than
/// the threshold are ever checked. [`Attempt::passed`] takes the row back; a wrong guess
/// settles it as a failure ([`Attempt::failed`]).
#[derive(Debug)]
#[must_use = "an admitted attempt is settled with passed() or failed()"]
pub struct Attempt {
    id: i64,
    user: String,
    source: String,
}

/// Whether a guess may be checked at all.
#[derive(Debug)]
pub enum Admission {
    Admitted(Attempt),
    /// A lock is in force, or the failures in the window reach the threshold.
    Locked(Lock),
    /// So many guesses are being checked right now that one more could pass the threshold,
    /// and they did not settle in time: refused unchecked, not counted.
    Busy,
}

/// How long a guess waits for the guesses in flight before it is refused as [`Admission::Busy`].
const ADMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// A pending guess older than this never settled (its node died): it counts as a failure.
const PENDING_FOR_SECS: i64 = 120;

/// Takes the subjects' guard rows (in a fixed order: user, then source) for the rest of
/// the transaction. On PostgreSQL the row lock makes concurrent admissions for the same
/// user or source wait for each other; on SQLite the first write takes the database's
/// write lock. Either way the counts read after it include every admitted guess.
async fn serialize(tx: &mut sqlx::Transaction<'static, sqlx::Any>, user: &str, source: &str) -> Result<()> {
    for subject in [user_subject(user), source_subject(source)] {
        sqlx::query(
            "INSERT INTO lockouts (subject, locked_until) VALUES ($1, 0)
             ON CONFLICT (subject) DO UPDATE SET locked_until = lockouts.locked_until",
        )
        .bind(subject)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Rows of one subject in the window: settled failures, and guesses still being checked.
#[derive(Debug, Default, Clone, Copy)]
struct Count {
    failed: i64,
    pending: i64,
}

async fn count(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    column: &'static str,
    value: &str,
    since: i64,
) -> Result<Count> {
    // A pending row left by a node that died counts as a failure.
    let stale = time::now() - PENDING_FOR_SECS;
    let sql = match column {
        "user_name" => {
            "SELECT COALESCE(SUM(CASE WHEN pending = 0 OR at < $3 THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN pending = 1 AND at >= $3 THEN 1 ELSE 0 END), 0)
             FROM login_failures WHERE user_name = $1 AND at > $2"
        }
        _ => {
            "SELECT COALESCE(SUM(CASE WHEN pending = 0 OR at < $3 THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN pending = 1 AND at >= $3 THEN 1 ELSE 0 END), 0)
             FROM login_failures WHERE source = $1 AND at > $2"
        }
    };
    let (failed, pending): (i64, i64) =
        sqlx::query_as(sql).bind(value).bind(since).bind(stale).fetch_one(&mut **tx).await?;
    Ok(Count { failed, pending })
}

/// One try at admitting a guess: `Ok(None)` when guesses in flight must settle first.
async fn try_admit(db: &Db, cfg: &LockoutConfig, user: &str, source: &str) -> Result<Option<Admission>> {
    let now = time::now();
    let mut tx = db.begin().await?;
    serialize(&mut tx, user, source).await?;
    let locked: Vec<(String, i64)> =
        sqlx::query_as("SELECT subject, locked_until FROM lockouts WHERE subject IN ($1, $2) AND locked_until > $3")
            .bind(user_subject(user))
            .bind(source_subject(source))
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
    let since = now - cfg.window_secs as i64;
    let by_user = count(&mut tx, "user_name", user, since).await?;
    let by_source = count(&mut tx, "source", source, since).await?;
    let until = now + cfg.duration_secs as i64;
    let lock = locked.into_iter().map(|(s, until)| as_lock(&s, until)).max_by_key(|l| l.until()).or(
        if by_user.failed >= i64::from(cfg.user_threshold) {
            Some(Lock::User { until })
        } else if by_source.failed >= i64::from(cfg.source_threshold) {
            Some(Lock::Source { until })
        } else {
            None
        },
    );
    if let Some(lock) = lock {
        tx.commit().await?;
        return Ok(Some(Admission::Locked(lock)));
    }
    // Guesses in flight count: if every one of them failed, one more must not pass the
    // threshold. Wait for them to settle instead.
    if by_user.failed + by_user.pending >= i64::from(cfg.user_threshold)
        || by_source.failed + by_source.pending >= i64::from(cfg.source_threshold)
    {
        tx.commit().await?;
        return Ok(None);
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO login_failures (user_name, source, at, pending) VALUES ($1, $2, $3, 1) RETURNING id",
    )
    .bind(user)
    .bind(source)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(Admission::Admitted(Attempt { id, user: user.to_string(), source: source.to_string() })))
}

/// Admits one guess for `user` from `source`, or says why not. Atomic on both engines
/// (see [`serialize`]): of any number of guesses racing, at most the threshold are
/// checked. A guess that would pass the threshold if the ones in flight all failed waits
/// for them (up to [`ADMIT_WAIT`]), so correct logins in parallel still get through.
pub async fn admit(db: &Db, cfg: &LockoutConfig, user: &str, source: &str) -> Result<Admission> {
    let user = stored_name(user);
    let user = user.as_ref();
    let give_up = tokio::time::Instant::now() + ADMIT_WAIT;
    let mut pause = std::time::Duration::from_millis(20);
    loop {
        if let Some(admission) = try_admit(db, cfg, user, source).await? {
            return Ok(admission);
        }
        if tokio::time::Instant::now() + pause > give_up {
            return Ok(Admission::Busy);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(250));
    }
}

impl Attempt {
    /// The guess was right (or not a guess after all: a server that did not answer, a
    /// further question): its row goes.
    pub async fn passed(self, db: &Db) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE id = $1").bind(self.id).execute(db.pool()).await?;
        Ok(())
    }

    /// The guess was wrong: its row stays as a failure, and a threshold reached locks.
    /// Returns the lock this failure caused, if any.
    pub async fn failed(self, db: &Db, cfg: &LockoutConfig) -> Result<Option<Lock>> {
        let mut tx = db.begin().await?;
        serialize(&mut tx, &self.user, &self.source).await?;
        sqlx::query("UPDATE login_failures SET pending = 0 WHERE id = $1").bind(self.id).execute(&mut *tx).await?;
        let caused = lock_if_reached(&mut tx, cfg, &self.user, &self.source).await?;
        tx.commit().await?;
        Ok(caused)
    }
}

fn as_lock(subject: &str, until: i64) -> Lock {
    if subject.starts_with("user:") { Lock::User { until } } else { Lock::Source { until } }
}

/// Locks the user or the source whose failures in the window reach the threshold.
async fn lock_if_reached(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    cfg: &LockoutConfig,
    user: &str,
    source: &str,
) -> Result<Option<Lock>> {
    let now = time::now();
    let since = now - cfg.window_secs as i64;
    let until = now + cfg.duration_secs as i64;
    let by_user = count(tx, "user_name", user, since).await?;
    let by_source = count(tx, "source", source, since).await?;
    let mut caused = None;
    for (subject, n, threshold, lock) in [
        (user_subject(user), by_user.failed, cfg.user_threshold, Lock::User { until }),
        (source_subject(source), by_source.failed, cfg.source_threshold, Lock::Source { until }),
    ] {
        if n >= i64::from(threshold) {
            sqlx::query(
                "INSERT INTO lockouts (subject, locked_until) VALUES ($1, $2)
                 ON CONFLICT (subject) DO UPDATE SET locked_until = excluded.locked_until",
            )
            .bind(subject)
            .bind(until)
            .execute(&mut **tx)
            .await?;
            caused = Some(lock);
        }
    }
    Ok(caused)
}

/// Counts one failure that was not admitted first (a key the user does not have) and
/// locks the user or the source when a threshold is reached. Returns the lock this
/// failure caused, if any.
pub async fn record_failure(db: &Db, cfg: &LockoutConfig, user: &str, source: &str) -> Result<Option<Lock>> {
    let user = stored_name(user);
    let user = user.as_ref();
    let mut tx = db.begin().await?;
    serialize(&mut tx, user, source).await?;
    sqlx::query("INSERT INTO login_failures (user_name, source, at) VALUES ($1, $2, $3)")
        .bind(user)
        .bind(source)
        .bind(time::now())
        .execute(&mut *tx)
        .await?;
    let caused = lock_if_reached(&mut tx, cfg, user, source).await?;
    tx.commit().await?;
    Ok(caused)
}

/// Forgets the failures of `user` and lifts their lock (after a full successful login, or
/// when an administrator unlocks the account).
///
/// The user's guard row goes first: every transaction here takes the guard rows before
/// it touches `login_failures` (see [`serialize`]), so a completed login clearing the
/// rows while a parallel wrong answer settles its own row waits instead of deadlocking.
pub async fn clear_user(db: &Db, user: &str) -> Result<()> {
    let user = stored_name(user);
    let user = user.as_ref();
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM lockouts WHERE subject = $1").bind(user_subject(user)).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM login_failures WHERE user_name = $1").bind(user).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes rows of no further use: failures older than the window, and the guard rows of
/// subjects that hold no lock (recreated on their next guess). Run by the gateway's
/// housekeeping, never inside a login's transaction: deleting other subjects' rows there
/// would take their row locks out of order and deadlock with their logins. On PostgreSQL
/// rows held by a login in progress are skipped, never waited for. Returns the rows removed.
pub async fn sweep(db: &Db, cfg: &LockoutConfig) -> Result<u64> {
    let since = time::now() - cfg.window_secs as i64;
    let (failures, guards) = match db.backend() {
        Backend::Postgres => (
            "DELETE FROM login_failures WHERE id IN
                (SELECT id FROM login_failures WHERE at < $1 FOR UPDATE SKIP LOCKED)",
            "DELETE FROM lockouts WHERE subject IN
                (SELECT subject FROM lockouts WHERE locked_until < $1 FOR UPDATE SKIP LOCKED)",
        ),
        Backend::Sqlite => ("DELETE FROM login_failures WHERE at < $1", "DELETE FROM lockouts WHERE locked_until < $1"),
    };
    let a = sqlx::query(failures).bind(since).execute(db.pool()).await?.rows_affected();
    let b = sqlx::query(guards).bind(since).execute(db.pool()).await?.rows_affected();
    Ok(a + b)
}
