//! Enrollment confirms the address the same way a login is approved: a code mailed to it
//! must come back. The enrolled address is the factor row's `secret` column (not a secret,
//! but the factor's data) and its label.

use super::MAX_WRONG;
use super::approvals::{CODE_DIGITS, ENROLL, NewApproval, create_and_send, minutes, typed_code};
use crate::factors::{Method, upsert};
use crate::users::User;
use crate::{Error, Gateway, Result, mail, time, vault};

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
