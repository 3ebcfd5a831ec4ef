//! Approve in the browser: an SSH login waits while its user touches a security key on a
//! web page.
//!
//! The login (on any node) opens a row: a short link token, a six-digit code and the
//! login's source address, valid as long as the login may wait ([`TTL_SECS`]). The SSH
//! prompt shows the link and the code. The page at the link (on any node) shows the same
//! code and address to the user logged in there, and only to them; its POST carries a
//! WebAuthn assertion made for this row and no other (the ceremony's binding is the row's
//! id), and only that sets the row approved. The waiting login polls the row and passes
//! once, consuming it.

use super::{Assertion, Ceremony, Refusal, begin_assertion, finish_assertion};
use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::factors::LoginContext;
use crate::users::User;
use crate::{Gateway, Result, time, vault};

/// How long an approval may be given: the time an SSH login may wait at the gate.
pub const TTL_SECS: i64 = 5 * 60;
/// Characters of the link token: 16 of 31 (79 bits); the page also needs the user's
/// own web session and key.
const TOKEN_LEN: usize = 16;
/// The path of the approval page, before the token.
pub const PATH: &str = "/approve/";

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the key.
    Open,
    /// Approved; the login has not yet taken it.
    Approved,
    /// The login went through with it.
    Used,
    Expired,
}

/// What the approval page shows: whose login, from where, through which node, the code.
#[derive(Debug, Clone)]
pub struct Approval {
    pub id: i64,
    pub user_id: i64,
    pub code: String,
    pub source: String,
    pub node: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub state: State,
}

/// The link and code an SSH prompt shows for one approval.
#[derive(Debug, Clone)]
pub struct Opened {
    pub id: i64,
    pub link: String,
    pub code: String,
}

/// The binding of the assertions made for approval `id`: that approval and no other.
fn binding(id: i64) -> String {
    format!("ssh-approval:{id}")
}

/// Opens an approval for `login` of `user`.
pub async fn open(gw: &Gateway, user: &User, login: &LoginContext) -> Result<Opened> {
    let token = vault::random_code(TOKEN_LEN);
    let digits = u32::from_be_bytes(vault::random_bytes(4).try_into().unwrap_or_default()) % 1_000_000;
    let code = format!("{:03} {:03}", digits / 1000, digits % 1000);
    let now = time::now();
    // Old approvals go on the way (cheap, indexed): the table holds only recent logins.
    sqlx::query("DELETE FROM webauthn_approvals WHERE expires_at < $1").bind(now - 3600).execute(gw.db.pool()).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO webauthn_approvals (user_id, attempt, token_hash, code, source, node, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(user.id)
    .bind(&login.attempt)
    .bind(vault::token_hash(&token))
    .bind(&code)
    .bind(&login.source)
    .bind(gw.config.node_name())
    .bind(now)
    .bind(now + TTL_SECS)
    .fetch_one(gw.db.pool())
    .await?;
    let base = gw.config.public_url().trim_end_matches('/').to_string();
    Ok(Opened { id, link: format!("{base}{PATH}{token}"), code })
}

/// The approval a link token names, if any.
pub async fn find(gw: &Gateway, token: &str) -> Result<Option<Approval>> {
    if token.is_empty() || token.len() > 64 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    type Row = (i64, i64, String, String, String, i64, i64, Option<i64>, Option<i64>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, user_id, code, source, node, created_at, expires_at, approved_at, used_at
         FROM webauthn_approvals WHERE token_hash = $1",
    )
    .bind(vault::token_hash(token))
    .fetch_optional(gw.db.pool())
    .await?;
    Ok(row.map(|(id, user_id, code, source, node, created_at, expires_at, approved_at, used_at)| Approval {
        id,
        user_id,
        code,
        source,
        node,
        created_at,
        expires_at,
        state: state(expires_at, approved_at, used_at),
    }))
}

fn state(expires_at: i64, approved_at: Option<i64>, used_at: Option<i64>) -> State {
    match (approved_at, used_at) {
        (_, Some(_)) => State::Used,
        (Some(_), None) => State::Approved,
        (None, None) if expires_at <= time::now() => State::Expired,
        (None, None) => State::Open,
    }
}

/// Begins the assertion the approval page asks the browser for: bound to `approval`.
pub async fn begin(gw: &Gateway, user: &User, approval: &Approval) -> Result<Ceremony> {
    begin_assertion(gw, user, &binding(approval.id)).await
}

/// Why an approval was not given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotApproved {
    /// The link is another user's (or no approval at all).
    NotYours,
    /// Expired, already approved or already used.
    NotOpen,
    /// The assertion was refused (audited by `finish_assertion`).
    Refused(Refusal),
}

/// Approves `approval` with the browser's assertion `response` for `ceremony`, made by
/// `user` from `from`: only the user whose login it is, only while it is open, only with an
/// assertion begun for this approval. Audited either way.
pub async fn approve(
    gw: &Gateway,
    user: &User,
    approval: &Approval,
    ceremony: &str,
    response: &str,
    from: &str,
) -> Result<std::result::Result<(), NotApproved>> {
    let event = |outcome| {
        AuditEvent::new(AuditKind::WebauthnApproval, outcome).user(user.name.clone()).source(from.to_string())
    };
    if approval.user_id != user.id {
        gw.audit(event(Outcome::Failure).detail(format!("a login of another user (approval {})", approval.id))).await?;
        return Ok(Err(NotApproved::NotYours));
    }
    if approval.state != State::Open {
        return Ok(Err(NotApproved::NotOpen));
    }
    let key = match finish_assertion(gw, user, ceremony, &binding(approval.id), response).await? {
        Assertion::Accepted(key) => key,
        Assertion::Refused(r) => return Ok(Err(NotApproved::Refused(r))),
    };
    let now = time::now();
    let done = sqlx::query(
        "UPDATE webauthn_approvals SET approved_at = $1, approved_from = $2
         WHERE id = $3 AND user_id = $4 AND approved_at IS NULL AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(from)
    .bind(approval.id)
    .bind(user.id)
    .execute(gw.db.pool())
    .await?;
    if done.rows_affected() != 1 {
        return Ok(Err(NotApproved::NotOpen));
    }
    gw.audit(
        event(Outcome::Success)
            .detail(format!("SSH login from {} approved with key \"{}\"", approval.source, key.name)),
    )
    .await?;
    Ok(Ok(()))
}

/// Whether approval `id` of `user` was given: takes it (once) when it was.
pub(crate) async fn poll(gw: &Gateway, user: &User, id: i64) -> Result<super::Verdict> {
    use super::Verdict;
    let row: Option<(i64, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT expires_at, approved_at, used_at FROM webauthn_approvals WHERE id = $1 AND user_id = $2",
    )
    .bind(id)
    .bind(user.id)
    .fetch_optional(gw.db.pool())
    .await?;
    let Some((expires_at, approved_at, used_at)) = row else { return Ok(Verdict::Rejected) };
    Ok(match state(expires_at, approved_at, used_at) {
        State::Used => Verdict::Replayed,
        State::Expired => Verdict::Expired,
        State::Open => Verdict::Pending,
        State::Approved => {
            let taken = sqlx::query(
                "UPDATE webauthn_approvals SET used_at = $1 WHERE id = $2 AND user_id = $3 AND used_at IS NULL",
            )
            .bind(time::now())
            .bind(id)
            .bind(user.id)
            .execute(gw.db.pool())
            .await?;
            if taken.rows_affected() == 1 { Verdict::Accepted } else { Verdict::Replayed }
        }
    })
}
