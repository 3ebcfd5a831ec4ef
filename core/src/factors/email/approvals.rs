//! The rows of `email_approvals`: one per mailed code, made and mailed together (or not
//! at all), rate-limited per user, and used once.

use super::{MAIL_WINDOW, MAX_MAILS};
use crate::factors::{LoginContext, Method};
use crate::users::User;
use crate::{Error, Gateway, Result, health, mail, time, vault};

/// Digits of a mailed code.
pub(super) const CODE_DIGITS: usize = 6;

pub(super) const LOGIN: &str = "login";
pub(super) const ENROLL: &str = "enroll";

pub(super) fn new_code() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..CODE_DIGITS).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect()
}

/// The normalised form of a typed code: digits only.
pub(super) fn typed_code(answer: &str) -> String {
    answer.chars().filter(char::is_ascii_digit).collect()
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

/// What a new approval row is for: whose, why (login or enrollment), which attempt, the
/// address it is mailed to, and for a login the login it names.
pub(super) struct NewApproval<'a> {
    pub user: &'a User,
    pub purpose: &'a str,
    pub attempt: &'a str,
    pub address: &'a str,
    pub login: Option<&'a LoginContext>,
}

/// Stores a new approval and mails it; the row is removed again when the mail does not go
/// out, so nothing waits on a mail nobody got. Returns the row id.
pub(super) async fn create_and_send(
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

/// How long a mailed code is valid, in whole minutes (as the mails say it).
pub(super) fn minutes(gw: &Gateway) -> u64 {
    gw.config.email.code_ttl_secs.div_ceil(60)
}

/// Marks an approval used, once: the first caller wins, any other sees a replay.
pub(super) async fn consume(gw: &Gateway, user: &User, id: i64) -> Result<bool> {
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
