//! The Authorize link of a login mail: what its page shows, and the one decision it may
//! take (approve or deny, once, while the mail is valid).

use crate::{Gateway, Result, time, vault};

/// The state of a mailed approval, as its link page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Waiting for Authorize (or Deny).
    Open,
    Expired,
    Approved,
    Denied,
    /// The login already went through (with the code or the link).
    Used,
}

/// What the Authorize page names: whose login, from where, when, through which node.
#[derive(Debug, Clone)]
pub struct Link {
    pub id: i64,
    pub user_id: i64,
    pub user_name: String,
    pub source: String,
    pub frontend: String,
    pub node: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub state: LinkState,
}

/// The approval a link token names, if any.
pub async fn find_link(gw: &Gateway, token: &str) -> Result<Option<Link>> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    type Row = (i64, i64, String, String, String, String, i64, i64, Option<String>, Option<i64>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT a.id, a.user_id, u.name, a.source, a.frontend, a.node, a.created_at, a.expires_at, a.decision, a.used_at
         FROM email_approvals a JOIN users u ON u.id = a.user_id
         WHERE a.token_hash = $1 AND a.purpose = 'login'",
    )
    .bind(vault::token_hash(token))
    .fetch_optional(gw.db.pool())
    .await?;
    Ok(row.map(|(id, user_id, user_name, source, frontend, node, created_at, expires_at, decision, used_at)| {
        let state = match (decision.as_deref(), used_at) {
            (_, Some(_)) => LinkState::Used,
            (Some("approved"), None) => LinkState::Approved,
            (Some(_), None) => LinkState::Denied,
            (None, None) if expires_at <= time::now() => LinkState::Expired,
            (None, None) => LinkState::Open,
        };
        Link { id, user_id, user_name, source, frontend, node, created_at, expires_at, state }
    }))
}

/// Authorizes (or denies) the login a link names, once, while it is open. `from` is the
/// address of the browser that clicked. Returns whether this call decided it.
pub async fn decide(gw: &Gateway, token: &str, approve: bool, from: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE email_approvals SET decision = $1, decided_at = $2, decided_from = $3
         WHERE token_hash = $4 AND purpose = 'login' AND decision IS NULL AND used_at IS NULL AND expires_at > $2",
    )
    .bind(if approve { "approved" } else { "denied" })
    .bind(time::now())
    .bind(from)
    .bind(vault::token_hash(token))
    .execute(gw.db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}
