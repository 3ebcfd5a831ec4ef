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
//! Enrollment confirms the address the same way: a code mailed to it must come back.
//! The enrolled address is the factor row's `secret` column (not a secret, but the
//! factor's data) and its label.

use async_trait::async_trait;

use super::{Challenge, Frontend, LoginContext, Method, SecondFactor, Verdict, upsert};
use crate::users::User;
use crate::{Error, Gateway, Result, health, mail, time, vault};

/// The email method.
pub struct Email;

/// Digits of a mailed code.
const CODE_DIGITS: usize = 6;
/// Wrong codes one mailed code takes before it is void.
pub const MAX_WRONG: i64 = 5;
/// Mails one user may be sent within [`MAIL_WINDOW`] seconds.
pub const MAX_MAILS: i64 = 5;
pub const MAIL_WINDOW: i64 = 900;

const LOGIN: &str = "login";
const ENROLL: &str = "enroll";

fn new_code() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..CODE_DIGITS).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect()
}

/// The normalised form of a typed code: digits only.
fn typed_code(answer: &str) -> String {
    answer.chars().filter(char::is_ascii_digit).collect()
}

/// The enrolled address of `user_id`.
pub async fn address(gw: &Gateway, user_id: i64) -> Result<Option<String>> {
    let row: Option<Option<String>> =
        sqlx::query_scalar("SELECT secret FROM factors WHERE user_id = $1 AND method = 'email'")
            .bind(user_id)
            .fetch_optional(gw.db.pool())
            .await?;
    Ok(row.flatten().filter(|a| !a.is_empty()))
}

/// Refuses another mail to `user_id` when [`MAX_MAILS`] went out in the window.
async fn check_rate(gw: &Gateway, user_id: i64) -> Result<()> {
    let sent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM email_approvals WHERE user_id = $1 AND created_at > $2")
        .bind(user_id)
        .bind(time::now() - MAIL_WINDOW)
        .fetch_one(gw.db.pool())
        .await?;
    if sent >= MAX_MAILS {
        return Err(Error::TooMany(format!(
            "{sent} mails were sent to this account in the last {} minutes, the most allowed; wait a while.",
            MAIL_WINDOW / 60
        )));
    }
    Ok(())
}

struct NewApproval<'a> {
    user: &'a User,
    purpose: &'a str,
    attempt: &'a str,
    address: &'a str,
    login: Option<&'a LoginContext>,
}

/// Stores a new approval and mails it; the row is removed again when the mail does not go
/// out, so nothing waits on a mail nobody got. Returns the row id.
async fn create_and_send(
    gw: &Gateway,
    new: NewApproval<'_>,
    subject: &str,
    body: impl FnOnce(&str, Option<&str>) -> String,
) -> Result<i64> {
    check_rate(gw, new.user.id).await?;
    // Spent and expired mails are kept a day (the pages of their links still say what
    // happened), then forgotten.
    sqlx::query("DELETE FROM email_approvals WHERE expires_at < $1")
        .bind(time::now() - 86_400)
        .execute(gw.db.pool())
        .await?;
    let code = new_code();
    let code_hash = vault::hash_blocking(code.clone()).await?;
    let token = new.login.map(|_| hex::encode(vault::random_bytes(32)));
    let now = time::now();
    let (source, frontend) = match new.login {
        Some(l) => (l.source.clone(), l.frontend.to_string()),
        None => (String::new(), String::new()),
    };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO email_approvals (user_id, purpose, attempt, address, code_hash, token_hash, source, frontend, node, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(new.user.id)
    .bind(new.purpose)
    .bind(new.attempt)
    .bind(new.address)
    .bind(&code_hash)
    .bind(token.as_deref().map(vault::token_hash))
    .bind(&source)
    .bind(&frontend)
    .bind(gw.config.node_name())
    .bind(now)
    .bind(now + gw.config.email.code_ttl_secs as i64)
    .fetch_one(gw.db.pool())
    .await?;
    let link = token.map(|t| format!("{}/authorize/{t}", gw.config.public_url()));
    match mail::send(&gw.config.email, new.address, subject, body(&code, link.as_deref())).await {
        Ok(()) => {
            health::record_ok(gw, Method::Email).await;
            Ok(id)
        }
        Err(e) => {
            health::record_error(gw, Method::Email, &e.to_string()).await;
            tracing::error!(user = %new.user.name, error = %e, "mail not sent");
            sqlx::query("DELETE FROM email_approvals WHERE id = $1").bind(id).execute(gw.db.pool()).await?;
            Err(Error::Unavailable(format!("No mail could be sent ({e}).")))
        }
    }
}

fn minutes(gw: &Gateway) -> u64 {
    gw.config.email.code_ttl_secs.div_ceil(60)
}

/// Mails a code to `address` to confirm it before it becomes `user`'s email factor.
/// `attempt` binds the confirmation to who asked (a web session, the CLI).
pub async fn start_enrollment(gw: &Gateway, user: &User, address: &str, attempt: &str) -> Result<String> {
    if !gw.config.email.enabled() {
        return Err(Error::Unavailable("Email is not configured on this gateway (no SMTP relay).".into()));
    }
    let address = mail::parse_address(address).map_err(|why| Error::invalid("address", why))?;
    let ttl = minutes(gw);
    let node = gw.config.node_name();
    let name = user.name.clone();
    create_and_send(
        gw,
        NewApproval { user, purpose: ENROLL, attempt, address: &address, login: None },
        "Confirm your address for Gatehouse",
        |code, _| {
            format!(
                "Hello {name},\n\nsomeone (probably you) asked to use this address as a second factor for \
                 the Gatehouse gateway {node}.\n\nThe confirmation code is: {code}\n\nIt is valid for {ttl} \
                 minutes. If you did not ask for this, ignore this mail: nothing changes.\n"
            )
        },
    )
    .await?;
    Ok(address)
}

/// Confirms a pending address with the mailed code; on success the address is the user's
/// email factor (replacing an earlier one) and is returned. `None`: wrong or expired code.
pub async fn confirm_enrollment(gw: &Gateway, user: &User, attempt: &str, code: &str) -> Result<Option<String>> {
    let row: Option<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT id, address, code_hash, wrong_codes FROM email_approvals
         WHERE user_id = $1 AND purpose = 'enroll' AND attempt = $2 AND used_at IS NULL AND expires_at > $3
         ORDER BY id DESC LIMIT 1",
    )
    .bind(user.id)
    .bind(attempt)
    .bind(time::now())
    .fetch_optional(gw.db.pool())
    .await?;
    let Some((id, address, hash, wrong)) = row else { return Ok(None) };
    if wrong >= MAX_WRONG {
        return Ok(None);
    }
    let typed = typed_code(code);
    if typed.len() != CODE_DIGITS || !vault::verify_blocking(typed, hash).await {
        sqlx::query("UPDATE email_approvals SET wrong_codes = wrong_codes + 1 WHERE id = $1")
            .bind(id)
            .execute(gw.db.pool())
            .await?;
        return Ok(None);
    }
    let mut tx = gw.db.pool().begin().await?;
    let used = sqlx::query("UPDATE email_approvals SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
        .bind(time::now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if used.rows_affected() != 1 {
        return Ok(None);
    }
    upsert(&mut tx, user.id, Method::Email, &address, &address).await?;
    tx.commit().await?;
    Ok(Some(address))
}

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

fn approval_id(challenge: &Challenge) -> Option<i64> {
    challenge.pending.as_deref().and_then(|p| p.parse().ok())
}

/// Marks an approval used, once: the first caller wins, any other sees a replay.
async fn consume(gw: &Gateway, user: &User, id: i64) -> Result<bool> {
    let now = time::now();
    let done = sqlx::query("UPDATE email_approvals SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(gw.db.pool())
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("UPDATE factors SET last_used_at = $1 WHERE user_id = $2 AND method = 'email'")
        .bind(now)
        .bind(user.id)
        .execute(gw.db.pool())
        .await?;
    Ok(true)
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
            None => {
                let ttl = minutes(gw);
                let (name, source, node, frontend) =
                    (user.name.clone(), login.source.clone(), gw.config.node_name(), login.frontend);
                let at = time::format_utc(time::now());
                let sent = create_and_send(
                    gw,
                    NewApproval { user, purpose: LOGIN, attempt: &login.attempt, address: &to, login: Some(login) },
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
                .await;
                match sent {
                    Ok(id) => (id, time::now() + gw.config.email.code_ttl_secs as i64),
                    Err(Error::Unavailable(why) | Error::TooMany(why)) => {
                        challenge.instructions = format!("{why} Use another method or try again later.");
                        return Ok(challenge);
                    }
                    Err(e) => return Err(e),
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_typing_is_forgiving() {
        for _ in 0..100 {
            let c = new_code();
            assert_eq!(c.len(), CODE_DIGITS);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(typed_code(" 123 456 "), "123456");
        assert_eq!(typed_code("123-456"), "123456");
        assert_eq!(vault::token_hash("ab").len(), 64);
    }
}
