//! Web UI sessions, in the database so that any node can serve any request.
//!
//! The browser holds a 256-bit random token; this table holds only its SHA-256 (computed
//! by the web front end), so a copy of the database does not let anyone take over a
//! session. A session moves through stages: `anonymous` (a CSRF token for the login form),
//! `factor` (password accepted, second factor pending), `full`. Every change of stage gets
//! a new token (the caller creates a new row and deletes the old one), so an id seen before
//! login is worthless after it.
//!
//! A session also remembers when it last saw each kind of proof ([`Proofs`]), so that a
//! change of credentials can ask for a fresh one (see [`crate::sudo`]).

use std::sync::LazyLock;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::factors::{self, Method};
use crate::users::{self, User};
use crate::{Db, Result, time};

/// How far a session has come through the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Anonymous,
    /// The password was a first answer; the RADIUS server's further question is pending.
    Password,
    /// Password accepted; a second factor is pending.
    Factor,
    /// Fully logged in.
    Full,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Anonymous => "anonymous",
            Stage::Password => "password",
            Stage::Factor => "factor",
            Stage::Full => "full",
        }
    }

    fn parse(s: &str) -> Stage {
        match s {
            "password" => Stage::Password,
            "factor" => Stage::Factor,
            "full" => Stage::Full,
            _ => Stage::Anonymous,
        }
    }
}

/// When this session last saw the user prove who they are (epoch seconds). Carried over
/// when the login moves the browser to a new session id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Proofs {
    /// The account password was checked.
    pub password_at: Option<i64>,
    /// A second factor was passed (never set by a trusted-browser cookie).
    pub factor_at: Option<i64>,
}

/// A stored session.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub id_hash: String,
    pub user_id: Option<i64>,
    pub stage: Stage,
    /// The token every state-changing form must carry.
    pub csrf_token: String,
    pub source: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub proofs: Proofs,
}

/// What [`create`] stores.
pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub user_id: Option<i64>,
    pub stage: Stage,
    pub csrf_token: &'a str,
    pub source: &'a str,
    /// Lifetime in seconds from now.
    pub ttl_secs: i64,
    pub proofs: Proofs,
}

const COLUMNS: &str = "id_hash, user_id, stage, csrf_token, source, created_at, expires_at, password_at, factor_at";

fn from_row(row: &AnyRow) -> Result<WebSession> {
    Ok(WebSession {
        id_hash: row.try_get("id_hash")?,
        user_id: row.try_get("user_id")?,
        stage: Stage::parse(&row.try_get::<String, _>("stage")?),
        csrf_token: row.try_get("csrf_token")?,
        source: row.try_get("source")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        proofs: Proofs { password_at: row.try_get("password_at")?, factor_at: row.try_get("factor_at")? },
    })
}

/// Stores a new session, and drops expired ones on the way (cheap, indexed), so the table
/// does not grow with abandoned login pages.
pub async fn create(db: &Db, new: NewSession<'_>) -> Result<()> {
    let now = time::now();
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM web_sessions WHERE expires_at < $1").bind(now).execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO web_sessions (id_hash, user_id, stage, csrf_token, source, created_at, last_seen_at, expires_at, password_at, factor_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9)",
    )
    .bind(new.id_hash)
    .bind(new.user_id)
    .bind(new.stage.as_str())
    .bind(new.csrf_token)
    .bind(new.source)
    .bind(now)
    .bind(now + new.ttl_secs)
    .bind(new.proofs.password_at)
    .bind(new.proofs.factor_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The unexpired session with this id hash.
pub async fn find(db: &Db, id_hash: &str) -> Result<Option<WebSession>> {
    let row = sqlx::query(crate::db::sql!("SELECT {COLUMNS} FROM web_sessions WHERE id_hash = $1 AND expires_at > $2"))
        .bind(id_hash)
        .bind(time::now())
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A logged-in request's view of its session, read in one query: the session, its user,
/// what the user has enrolled, and the access revision that the rest of the request's
/// decisions are keyed by (`policy::resolve_at`).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: WebSession,
    pub user: User,
    pub must_change_password: bool,
    pub enrolled: Vec<Method>,
    pub backup_codes_left: i64,
    pub revision: i64,
}

/// Every column of the session, the user (as `users::from_row` reads them) and the rest
/// of [`SignedIn`], for the one query of [`signed_in`].
static SIGNED_IN_SQL: LazyLock<String> = LazyLock::new(|| {
    let user_columns: Vec<String> = users::COLUMNS.split(',').map(|c| format!("u.{}", c.trim())).collect();
    format!(
        "SELECT s.id_hash, s.user_id, s.stage, s.csrf_token, s.source, s.created_at AS session_created_at,
                s.expires_at, s.password_at, s.factor_at, {}, u.must_change_password,
                (SELECT string_agg(f.method, ',') FROM factors f WHERE f.user_id = u.id) AS factor_methods,
                (SELECT COUNT(*) FROM backup_codes b WHERE b.user_id = u.id AND b.used_at IS NULL) AS backup_left,
                (SELECT COUNT(*) FROM ssh_sk_keys k WHERE k.user_id = u.id) AS ssh_sk_keys,
                r.revision
         FROM web_sessions s
         JOIN users u ON u.id = s.user_id
         JOIN access_revision r ON r.id = 1
         WHERE s.id_hash = $1 AND s.expires_at > $2",
        user_columns.join(", ")
    )
});

/// The unexpired session with this id hash, if it belongs to a user (at any stage), with
/// that user as the database holds them now.
pub async fn signed_in(db: &Db, id_hash: &str) -> Result<Option<SignedIn>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(SIGNED_IN_SQL.as_str()))
        .bind(id_hash)
        .bind(time::now())
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let session = WebSession {
        id_hash: row.try_get("id_hash")?,
        user_id: row.try_get("user_id")?,
        stage: Stage::parse(&row.try_get::<String, _>("stage")?),
        csrf_token: row.try_get("csrf_token")?,
        source: row.try_get("source")?,
        created_at: row.try_get("session_created_at")?,
        expires_at: row.try_get("expires_at")?,
        proofs: Proofs { password_at: row.try_get("password_at")?, factor_at: row.try_get("factor_at")? },
    };
    let methods: Option<String> = row.try_get("factor_methods")?;
    let backup_codes_left: i64 = row.try_get("backup_left")?;
    Ok(Some(SignedIn {
        session,
        user: users::from_row(&row)?,
        must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
        enrolled: factors::enrolled_from(
            methods.as_deref().unwrap_or("").split(','),
            backup_codes_left,
            row.try_get("ssh_sk_keys")?,
        ),
        backup_codes_left,
        revision: row.try_get("revision")?,
    }))
}

/// Extends a full session's idle deadline (sliding expiry), at most once a minute.
pub async fn touch(db: &Db, id_hash: &str, ttl_secs: i64) -> Result<()> {
    let now = time::now();
    sqlx::query("UPDATE web_sessions SET last_seen_at = $1, expires_at = $2 WHERE id_hash = $3 AND last_seen_at < $4")
        .bind(now)
        .bind(now + ttl_secs)
        .bind(id_hash)
        .bind(now - 60)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The kind of proof a session just saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofKind {
    Password,
    Factor,
}

/// Records that the session `id_hash` saw a proof of `kind` at `at` (epoch seconds).
pub async fn stamp(db: &Db, id_hash: &str, kind: ProofKind, at: i64) -> Result<()> {
    let sql = match kind {
        ProofKind::Password => "UPDATE web_sessions SET password_at = $1 WHERE id_hash = $2",
        ProofKind::Factor => "UPDATE web_sessions SET factor_at = $1 WHERE id_hash = $2",
    };
    sqlx::query(sql).bind(at).bind(id_hash).execute(db.pool()).await?;
    Ok(())
}

/// Ends one session (logout, or the old id at a stage change).
pub async fn delete(db: &Db, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1").bind(id_hash).execute(db.pool()).await?;
    Ok(())
}

/// Ends every session of `user_id` except `keep` (after a password change).
pub async fn delete_others(db: &Db, user_id: i64, keep: &str) -> Result<u64> {
    let done = sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND id_hash <> $2")
        .bind(user_id)
        .bind(keep)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::{self, NewUser};

    #[tokio::test]
    async fn sessions_are_found_until_they_expire_or_are_deleted() {
        let (_dir, db) = crate::db::test_db().await;
        let alice = users::create(&db, NewUser { name: "alice", ..Default::default() }).await.unwrap();
        let new = |id: &'static str, user: Option<i64>, stage, ttl| NewSession {
            id_hash: id,
            user_id: user,
            stage,
            csrf_token: "t",
            source: "127.0.0.1",
            ttl_secs: ttl,
            proofs: Proofs::default(),
        };
        create(&db, new("anon", None, Stage::Anonymous, 60)).await.unwrap();
        create(&db, new("full1", Some(alice.id), Stage::Full, 60)).await.unwrap();
        create(&db, new("full2", Some(alice.id), Stage::Full, 60)).await.unwrap();
        create(&db, new("old", Some(alice.id), Stage::Factor, -5)).await.unwrap();
        let s = find(&db, "full1").await.unwrap().unwrap();
        assert_eq!((s.user_id, s.stage, s.csrf_token.as_str()), (Some(alice.id), Stage::Full, "t"));
        assert_eq!(find(&db, "anon").await.unwrap().unwrap().stage, Stage::Anonymous);
        assert_eq!(s.proofs, Proofs::default());
        stamp(&db, "full1", ProofKind::Factor, 1234).await.unwrap();
        stamp(&db, "full1", ProofKind::Password, 1200).await.unwrap();
        assert_eq!(
            find(&db, "full1").await.unwrap().unwrap().proofs,
            Proofs { password_at: Some(1200), factor_at: Some(1234) }
        );
        assert!(find(&db, "old").await.unwrap().is_none(), "expired");
        // Creating a session sweeps expired ones.
        create(&db, new("anon2", None, Stage::Anonymous, 60)).await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions WHERE id_hash = 'old'")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(left, 0);
        assert_eq!(delete_others(&db, alice.id, "full2").await.unwrap(), 1);
        assert!(find(&db, "full1").await.unwrap().is_none());
        delete(&db, "full2").await.unwrap();
        assert!(find(&db, "full2").await.unwrap().is_none());
        // Deleting the user ends their sessions.
        create(&db, new("full3", Some(alice.id), Stage::Full, 60)).await.unwrap();
        users::delete(&db, "alice").await.unwrap();
        assert!(find(&db, "full3").await.unwrap().is_none());
    }
}
