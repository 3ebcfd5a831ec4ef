//! The audit log: one row per security-relevant event, written by every front end to the
//! same table so that an administrator reads one history for the whole cluster.
//!
//! Events never carry a secret: no password, code, keyword or key material.

use sqlx::Row;

use crate::{Db, Result, time};

/// How an event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Info,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Info => "info",
        }
    }
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Who did it (an admin's name, `cli`, or the user themself); `None` for anonymous.
    pub actor: Option<String>,
    /// Whom it concerns.
    pub user: Option<String>,
    /// Dotted event name, e.g. `login.password`, `login.factor`, `user.create`.
    pub event: String,
    pub outcome: Outcome,
    /// Source address of the client, when there is one.
    pub source: Option<String>,
    /// Free text with details (method, reason, target), never a secret.
    pub detail: String,
}

impl AuditEvent {
    pub fn new(event: impl Into<String>, outcome: Outcome) -> Self {
        AuditEvent { actor: None, user: None, event: event.into(), outcome, source: None, detail: String::new() }
    }
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// A recorded event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub node: String,
    pub actor: Option<String>,
    pub user: Option<String>,
    pub event: String,
    pub outcome: String,
    pub source: Option<String>,
    pub detail: String,
}

/// Writes one event. Every text field is made printable here, the one way into the
/// table: a user name typed at a login prompt (`\e]0;…\a`) is stored harmless whichever
/// front end built the event.
pub async fn record(db: &Db, node: &str, ev: AuditEvent) -> Result<()> {
    let clean = |v: Option<String>| v.map(|t| printable(&t));
    sqlx::query(
        "INSERT INTO audit_events (at, node, actor, user_name, event, outcome, source, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(time::now())
    .bind(printable(node))
    .bind(clean(ev.actor))
    .bind(clean(ev.user))
    .bind(printable(&ev.event))
    .bind(ev.outcome.as_str())
    .bind(clean(ev.source))
    .bind(printable(&ev.detail))
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Which events to read.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub user: Option<String>,
    /// Prefix of the event name (`login` matches `login.password`).
    pub event: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only events with an id below this one (for paging backwards).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Newest first.
pub async fn list(db: &Db, f: &Filter) -> Result<Vec<AuditRecord>> {
    let rows = sqlx::query(
        "SELECT id, at, node, actor, user_name, event, outcome, source, detail FROM audit_events
         WHERE ($1 = '' OR user_name = $1)
           AND ($2 = '' OR event = $2 OR event LIKE $3)
           AND at >= $4 AND at <= $5 AND id < $6
         ORDER BY id DESC LIMIT $7",
    )
    .bind(f.user.clone().unwrap_or_default())
    .bind(f.event.clone().unwrap_or_default())
    .bind(format!("{}.%", f.event.clone().unwrap_or_default()))
    .bind(f.since.unwrap_or(0))
    .bind(f.until.unwrap_or(i64::MAX))
    .bind(f.before_id.unwrap_or(i64::MAX))
    .bind(if f.limit > 0 { f.limit } else { 100 })
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditRecord {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                node: r.try_get("node")?,
                actor: r.try_get("actor")?,
                user: r.try_get("user_name")?,
                event: r.try_get("event")?,
                outcome: r.try_get("outcome")?,
                source: r.try_get("source")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}

/// `text` made safe to store and to echo into a terminal or a log line (see
/// [`crate::text::printable`]).
pub fn printable(text: &str) -> String {
    crate::text::printable(text)
}
