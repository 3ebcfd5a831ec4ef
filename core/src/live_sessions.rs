//! Sessions to targets that are running right now, on any node.
//!
//! The shell that proxies a session registers it, refreshes `last_seen` while it runs and
//! removes it at the end. An administrator on any node ends a session by setting
//! `terminate_requested`; the owning shell polls that flag every few seconds and closes
//! the session. Nothing here lives only in one process's memory, so several nodes behind
//! one PostgreSQL database see and control each other's sessions.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::db::{flag, sql};
use crate::{Db, Gateway, Result, time};

/// A row whose `last_seen` is older than this (seconds) belongs to a node that stopped
/// without cleaning up; lists show it as stale.
pub const STALE_AFTER_SECS: i64 = 60;

/// One live session.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveSession {
    pub id: i64,
    pub node: String,
    pub user_name: String,
    pub target_name: String,
    /// The user's client address.
    pub source: String,
    /// `shell`, `exec` or `subsystem:NAME`.
    pub kind: String,
    /// The recording of this session, when it is a recorded terminal session.
    pub recording_id: Option<i64>,
    pub started_at: i64,
    pub last_seen: i64,
    pub terminate_requested: bool,
}

impl LiveSession {
    /// True when the owning node has not refreshed the row for [`STALE_AFTER_SECS`].
    pub fn is_stale(&self, now: i64) -> bool {
        now - self.last_seen > STALE_AFTER_SECS
    }
}

/// What [`register`] needs.
#[derive(Debug, Clone)]
pub struct NewLiveSession<'a> {
    pub node: &'a str,
    pub user_name: &'a str,
    pub target_name: &'a str,
    pub source: &'a str,
    pub kind: &'a str,
    pub recording_id: Option<i64>,
}

const COLUMNS: &str =
    "id, node, user_name, target_name, source, kind, recording_id, started_at, last_seen, terminate_requested";

fn from_row(row: &AnyRow) -> Result<LiveSession> {
    Ok(LiveSession {
        id: row.try_get("id")?,
        node: row.try_get("node")?,
        user_name: row.try_get("user_name")?,
        target_name: row.try_get("target_name")?,
        source: row.try_get("source")?,
        kind: row.try_get("kind")?,
        recording_id: row.try_get("recording_id")?,
        started_at: row.try_get("started_at")?,
        last_seen: row.try_get("last_seen")?,
        terminate_requested: row.try_get::<i64, _>("terminate_requested")? != 0,
    })
}

/// Registers a session that has just connected; returns its id.
pub async fn register(db: &Db, new: &NewLiveSession<'_>) -> Result<i64> {
    let now = time::now();
    let id = sqlx::query_scalar(
        "INSERT INTO live_sessions (node, user_name, target_name, source, kind, recording_id, started_at, last_seen, terminate_requested)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 0) RETURNING id",
    )
    .bind(new.node)
    .bind(new.user_name)
    .bind(new.target_name)
    .bind(new.source)
    .bind(new.kind)
    .bind(new.recording_id)
    .bind(now)
    .fetch_one(db.pool())
    .await?;
    Ok(id)
}

/// Refreshes `last_seen` of a running session.
pub async fn heartbeat(db: &Db, id: i64) -> Result<()> {
    sqlx::query("UPDATE live_sessions SET last_seen = $1 WHERE id = $2")
        .bind(time::now())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Removes a session that has ended.
pub async fn end(db: &Db, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM live_sessions WHERE id = $1").bind(id).execute(db.pool()).await?;
    Ok(())
}

/// Every live session, oldest first (stale ones included: see [`LiveSession::is_stale`]).
pub async fn list(db: &Db) -> Result<Vec<LiveSession>> {
    let rows =
        sqlx::query(sql!("SELECT {COLUMNS} FROM live_sessions ORDER BY started_at, id")).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// Asks the node running session `id` to end it. False when no such session is live.
pub async fn request_terminate(db: &Db, id: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE live_sessions SET terminate_requested = $1 WHERE id = $2")
        .bind(flag(true))
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Asks the nodes running `user_name`'s sessions to end them all (the account was locked
/// or deleted). Returns how many were asked.
pub async fn terminate_user(db: &Db, user_name: &str) -> Result<u64> {
    let done = sqlx::query("UPDATE live_sessions SET terminate_requested = $1 WHERE user_name = $2")
        .bind(flag(true))
        .bind(user_name)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}

/// Whether an administrator asked to end session `id`. A row that is gone (removed by
/// [`prune_stale`] after a long database outage) counts as "no": only an explicit request
/// ends a session.
pub async fn terminate_requested(db: &Db, id: i64) -> Result<bool> {
    let v: Option<i64> = sqlx::query_scalar("SELECT terminate_requested FROM live_sessions WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    Ok(v.unwrap_or(0) != 0)
}

/// Removes rows not refreshed for `older_than_secs` (left by a node that died). Returns
/// how many were removed.
pub async fn prune_stale(db: &Db, older_than_secs: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM live_sessions WHERE last_seen < $1")
        .bind(time::now() - older_than_secs)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}

/// Removes every row of `node` and returns them.
pub async fn clear_node(db: &Db, node: &str) -> Result<Vec<LiveSession>> {
    let rows = sqlx::query(sql!("DELETE FROM live_sessions WHERE node = $1 RETURNING {COLUMNS}"))
        .bind(node)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// Removes the rows this node left when its process stopped without ending its sessions
/// (killed, crashed, power lost), and audits each as a `target.disconnect`. Called when the
/// node starts serving: no session of this node can be running yet, so every row of it is
/// stale, and leaving them would show administrators sessions nobody can end.
pub async fn reclaim_node(gw: &Gateway) -> Result<usize> {
    let node = gw.config.node_name();
    let gone = clear_node(&gw.db, &node).await?;
    for s in &gone {
        let ev = AuditEvent::new(AuditKind::TargetDisconnect, Outcome::Info)
            .actor("gateway")
            .user(s.user_name.clone())
            .source(s.source.clone())
            .detail(format!(
                "{}: {} session {} ended when node {node} stopped without closing it; found at restart",
                s.target_name, s.kind, s.id
            ));
        if let Err(e) = gw.audit(ev).await {
            tracing::error!(session = s.id, error = %e, "could not audit a reclaimed live session");
        }
    }
    Ok(gone.len())
}

/// How many target sessions run on `node` now.
pub async fn count_on(db: &Db, node: &str) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM live_sessions WHERE node = $1").bind(node).fetch_one(db.pool()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn register_terminate_end() {
        let (_dir, db) = crate::db::test_db().await;

        let new = NewLiveSession {
            node: "n1",
            user_name: "alice",
            target_name: "web1",
            source: "127.0.0.1:5000",
            kind: "shell",
            recording_id: None,
        };
        let id = register(&db, &new).await.unwrap();
        heartbeat(&db, id).await.unwrap();
        let all = list(&db).await.unwrap();
        assert_eq!(all.len(), 1);
        assert!(!all[0].is_stale(time::now()));
        assert!(all[0].is_stale(time::now() + STALE_AFTER_SECS + 1));
        assert!(!terminate_requested(&db, id).await.unwrap());
        assert!(request_terminate(&db, id).await.unwrap());
        assert!(terminate_requested(&db, id).await.unwrap());
        assert!(!request_terminate(&db, id + 1).await.unwrap());
        assert_eq!(prune_stale(&db, 3600).await.unwrap(), 0);
        end(&db, id).await.unwrap();
        assert!(list(&db).await.unwrap().is_empty());
        assert!(!terminate_requested(&db, id).await.unwrap());
    }

    #[tokio::test]
    async fn clear_node_removes_only_that_nodes_rows() {
        let (_dir, db) = crate::db::test_db().await;
        let new = |node| NewLiveSession {
            node,
            user_name: "alice",
            target_name: "web1",
            source: "127.0.0.1",
            kind: "shell",
            recording_id: None,
        };
        let mine = register(&db, &new("n1")).await.unwrap();
        let theirs = register(&db, &new("n2")).await.unwrap();
        let cleared = clear_node(&db, "n1").await.unwrap();
        assert_eq!(cleared.iter().map(|s| s.id).collect::<Vec<_>>(), vec![mine]);
        assert_eq!(list(&db).await.unwrap().iter().map(|s| s.id).collect::<Vec<_>>(), vec![theirs]);
        assert!(clear_node(&db, "n1").await.unwrap().is_empty());
    }
}
