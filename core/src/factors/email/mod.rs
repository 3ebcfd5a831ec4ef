//! Email: one mail per login attempt, with a short-lived one-time code and an "Authorize"
//! link to the web UI. Typing the code or clicking Authorize on the linked page (a POST,
//! so a mail scanner that fetches links approves nothing) passes the factor; the login that
//! waits learns of the click from the database, so the click may reach any node.
//!
//! Each mailed code is a row of `email_approvals`, bound to the login attempt that asked
//! for it ([`LoginContext::attempt`]): a code or a click releases that login and no other,
//! and a page reload or a second question in the same login reuses the mail already sent.
//! Codes are argon2id hashes; link tokens are 256-bit random and stored as SHA-256. A row is
//! used once (`used_at`), a code takes at most [`MAX_WRONG`] wrong tries, and a user gets
//! at most [`MAX_MAILS`] mails in [`MAIL_WINDOW`] seconds, so a stolen password cannot
//! flood a mailbox.
//!
//! Layout: `approvals` makes, mails and spends the rows; `enrollment` confirms a new
//! address the same way (a code mailed to it must come back); `link` is what the
//! Authorize page reads and decides.

mod approvals;
mod enrollment;
mod link;

use async_trait::async_trait;

use super::{Challenge, Frontend, LoginContext, Method, SecondFactor, Verdict};
use crate::users::User;
use crate::{Error, Gateway, Result, mail, time, vault};
use approvals::{CODE_DIGITS, LOGIN, NewApproval, consume, create_and_send, minutes, typed_code};

pub use enrollment::{confirm_enrollment, start_enrollment};
pub use link::{Link, LinkState, decide, find_link};

/// The email method.
pub struct Email;

/// Wrong codes one mailed code takes before it is void.
pub const MAX_WRONG: i64 = 5;
/// Mails one user may be sent within [`MAIL_WINDOW`] seconds.
pub const MAX_MAILS: i64 = 5;
pub const MAIL_WINDOW: i64 = 900;

/// The enrolled address of `user_id`.
pub async fn address(gw: &Gateway, user_id: i64) -> Result<Option<String>> {
    let row: Option<Option<String>> =
        sqlx::query_scalar("SELECT secret FROM factors WHERE user_id = $1 AND method = 'email'")
            .bind(user_id)
            .fetch_optional(gw.db.pool())
            .await?;
    Ok(row.flatten().filter(|a| !a.is_empty()))
}

fn approval_id(challenge: &Challenge) -> Option<i64> {
    challenge.pending.as_deref().and_then(|p| p.parse().ok())
}

/// The prompt line of a mailed challenge.
const PROMPT: &str = "Code from the mail (or Enter to wait for the link): ";

fn instructions(masked: &str, expires_at: i64, frontend: Frontend) -> String {
    let left = (expires_at - time::now()).max(0);
    let minutes = (left + 59) / 60;
    let what = match frontend {
        Frontend::Web => "Type the code, or click Authorize on the linked page and then Wait for approval here.",
        Frontend::Ssh => {
            "Type the code, or press Enter and click Authorize on the linked page: the login goes on as soon as you do."
        }
    };
    format!(
        "A mail with a code and an Authorize link went to {masked} (valid {minutes} more minute{}).\n{what}",
        if minutes == 1 { "" } else { "s" }
    )
}

/// Mails a new code and Authorize link for `login` to `to`; returns the approval's row id.
async fn mail_login_code(gw: &Gateway, user: &User, login: &LoginContext, to: &str) -> Result<i64> {
    let ttl = minutes(gw);
    let (name, source, node, frontend) =
        (user.name.clone(), login.source.clone(), gw.config.node_name(), login.frontend);
    let at = time::format_utc(time::now());
    create_and_send(
        gw,
        NewApproval { user, purpose: LOGIN, attempt: &login.attempt, address: to, login: Some(login) },
        "Gatehouse login: your code",
        |code, link| {
            format!(
                "Hello {name},\n\na login to the Gatehouse gateway {node} waits for your second factor:\n\n  \
                 user:  {name}\n  from:  {source} ({frontend})\n  time:  {at}\n\n\
                 Your code is: {code}\n\nOr open this link and click Authorize:\n{}\n\n\
                 Both are valid for {ttl} minutes and for this login only. If this was not you, \
                 do not click: open the link and choose Deny, and change your password.\n",
                link.unwrap_or("")
            )
        },
    )
    .await
}

#[async_trait]
impl SecondFactor for Email {
    fn method(&self) -> Method {
        Method::Email
    }

    fn available(&self, gw: &Gateway) -> bool {
        gw.config.email.enabled()
    }

    /// Reuses the open mail of this login attempt, or sends a new one. A mail that cannot
    /// be sent gives a challenge that says so and can never pass.
    async fn challenge(&self, gw: &Gateway, user: &User, login: &LoginContext) -> Result<Challenge> {
        let mut challenge = Challenge {
            method: Method::Email,
            prompt: PROMPT.into(),
            echo: false,
            instructions: String::new(),
            pending: None,
            can_wait: false,
            state: None,
            webauthn: None,
        };
        let Some(to) = address(gw, user.id).await? else {
            challenge.instructions = "No mail address is enrolled for this account.".into();
            return Ok(challenge);
        };
        let open: Option<(i64, i64)> = sqlx::query_as(
            "SELECT id, expires_at FROM email_approvals
             WHERE user_id = $1 AND purpose = 'login' AND attempt = $2 AND used_at IS NULL AND decision IS NULL
               AND expires_at > $3 AND wrong_codes < $4
             ORDER BY id DESC LIMIT 1",
        )
        .bind(user.id)
        .bind(&login.attempt)
        .bind(time::now() + 30)
        .bind(MAX_WRONG)
        .fetch_optional(gw.db.pool())
        .await?;
        let (id, expires_at) = match open {
            Some(row) => row,
            None => match mail_login_code(gw, user, login, &to).await {
                Ok(id) => (id, time::now() + gw.config.email.code_ttl_secs as i64),
                Err(Error::Unavailable(why) | Error::TooMany(why)) => {
                    challenge.instructions = format!("{why} Use another method or try again later.");
                    return Ok(challenge);
                }
                Err(e) => return Err(e),
            },
        };
        challenge.pending = Some(id.to_string());
        challenge.can_wait = true;
        challenge.instructions = instructions(&mail::mask(&to), expires_at, login.frontend);
        Ok(challenge)
    }

    async fn verify(&self, gw: &Gateway, user: &User, challenge: &mut Challenge, answer: &str) -> Result<Verdict> {
        let Some(id) = approval_id(challenge) else { return Ok(Verdict::Unavailable) };
        let row: Option<(String, i64, i64, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT code_hash, wrong_codes, expires_at, used_at, decision FROM email_approvals
             WHERE id = $1 AND user_id = $2 AND purpose = 'login'",
        )
        .bind(id)
        .bind(user.id)
        .fetch_optional(gw.db.pool())
        .await?;
        let Some((hash, wrong, expires_at, used_at, decision)) = row else { return Ok(Verdict::Rejected) };
        let typed = typed_code(answer);
        let matches = typed.len() == CODE_DIGITS && vault::verify_blocking(typed, hash).await;
        if used_at.is_some() {
            return Ok(if matches { Verdict::Replayed } else { Verdict::Rejected });
        }
        if decision.as_deref() == Some("denied") || wrong >= MAX_WRONG {
            return Ok(Verdict::Rejected);
        }
        if expires_at <= time::now() {
            return Ok(Verdict::Expired);
        }
        if !matches {
            sqlx::query("UPDATE email_approvals SET wrong_codes = wrong_codes + 1 WHERE id = $1")
                .bind(id)
                .execute(gw.db.pool())
                .await?;
            return Ok(Verdict::Rejected);
        }
        Ok(if consume(gw, user, id).await? { Verdict::Accepted } else { Verdict::Replayed })
    }

    async fn poll(&self, gw: &Gateway, user: &User, challenge: &mut Challenge) -> Result<Verdict> {
        let Some(id) = approval_id(challenge) else { return Ok(Verdict::Unavailable) };
        let row: Option<(i64, Option<i64>, Option<String>)> =
            sqlx::query_as("SELECT expires_at, used_at, decision FROM email_approvals WHERE id = $1 AND user_id = $2 AND purpose = 'login'")
                .bind(id)
                .bind(user.id)
                .fetch_optional(gw.db.pool())
                .await?;
        let Some((expires_at, used_at, decision)) = row else { return Ok(Verdict::Rejected) };
        Ok(match (decision.as_deref(), used_at) {
            (_, Some(_)) => Verdict::Replayed,
            (Some("approved"), None) => {
                if consume(gw, user, id).await? {
                    Verdict::Accepted
                } else {
                    Verdict::Replayed
                }
            }
            (Some(_), None) => Verdict::Rejected,
            (None, None) if expires_at <= time::now() => Verdict::Expired,
            (None, None) => Verdict::Pending,
        })
    }
}
