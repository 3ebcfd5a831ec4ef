//! RADIUS: the answer is sent as the User-Password of an Access-Request (PAP) to the
//! configured servers; Access-Accept passes, Access-Reject fails, Access-Challenge asks
//! another round (its Reply-Message becomes the prompt, its State goes back with the next
//! answer). No server answering is [`Verdict::Unavailable`]: the login is refused.
//!
//! The enrolled factor row holds the user name the RADIUS server knows (it may differ
//! from the Gatehouse name) in its `secret` column; it is not a secret, but it is the
//! factor's data.

pub mod client;
pub mod packet;

use async_trait::async_trait;

use super::{Challenge, Method, SecondFactor, Verdict, upsert};
use crate::users::User;
use crate::{Error, Gateway, Result, time};
use client::Answer;

/// The RADIUS method.
pub struct Radius;

/// Enrolls RADIUS for `user`, checked on the servers as `radius_user` (the Gatehouse
/// name when `None`).
pub async fn enroll(gw: &Gateway, user: &User, radius_user: Option<&str>) -> Result<String> {
    let name = radius_user.map(str::trim).unwrap_or(&user.name).to_string();
    if name.is_empty() || name.len() > 253 || name.chars().any(char::is_control) {
        return Err(Error::invalid("radius user", "must be 1-253 bytes without control characters"));
    }
    let mut tx = gw.db.begin().await?;
    upsert(&mut tx, user.id, Method::Radius, &name, &format!("RADIUS user {name}")).await?;
    tx.commit().await?;
    Ok(name)
}

/// The RADIUS user name of `user_id`, if enrolled.
pub async fn radius_user(gw: &Gateway, user_id: i64) -> Result<Option<String>> {
    let row: Option<Option<String>> =
        sqlx::query_scalar("SELECT secret FROM factors WHERE user_id = $1 AND method = 'radius'")
            .bind(user_id)
            .fetch_optional(gw.db.pool())
            .await?;
    Ok(row.flatten().filter(|n| !n.is_empty()))
}

/// Longest Reply-Message shown as a prompt, in characters (a packet may carry 4 KiB).
const MAX_PROMPT: usize = 200;

/// The prompt for a challenge round: the server's Reply-Message, ending in `: `.
pub(crate) fn challenge_prompt(message: &str) -> String {
    let text: String = message.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_PROMPT).collect();
    let text = text.trim();
    if text.is_empty() {
        "RADIUS challenge: ".to_string()
    } else if text.ends_with(':') || text.ends_with('?') {
        format!("{text} ")
    } else {
        format!("{text}: ")
    }
}

#[async_trait]
impl SecondFactor for Radius {
    fn method(&self) -> Method {
        Method::Radius
    }

    fn available(&self, gw: &Gateway) -> bool {
        gw.config.radius.enabled()
    }

    async fn verify(&self, gw: &Gateway, user: &User, challenge: &mut Challenge, answer: &str) -> Result<Verdict> {
        let state = challenge.state.take();
        // Whatever happens, the next answer starts a fresh exchange unless a new
        // Access-Challenge says otherwise.
        challenge.prompt = format!("{}: ", Method::Radius.label());
        let Some(name) = radius_user(gw, user.id).await? else {
            return Ok(Verdict::Rejected);
        };
        let mut config = gw.config.radius.clone();
        if config.nas_identifier.is_empty() {
            config.nas_identifier = gw.config.node_name();
        }
        let outcome = client::authenticate(&config, &name, answer.as_bytes(), state.as_deref()).await;
        match &outcome {
            Ok(_) => crate::health::record_ok(gw, Method::Radius).await,
            Err(client::ClientError::Request(_)) => {}
            Err(e) => crate::health::record_error(gw, Method::Radius, &e.to_string()).await,
        }
        match outcome {
            Ok(Answer::Accept) => {
                sqlx::query("UPDATE factors SET last_used_at = $1 WHERE user_id = $2 AND method = 'radius'")
                    .bind(time::now())
                    .bind(user.id)
                    .execute(gw.db.pool())
                    .await?;
                Ok(Verdict::Accepted)
            }
            Ok(Answer::Reject) => Ok(Verdict::Rejected),
            Ok(Answer::Challenge { message, state }) => {
                challenge.prompt = challenge_prompt(&message);
                challenge.state = Some(state);
                Ok(Verdict::Continue)
            }
            Err(client::ClientError::Request(packet::PacketError::PasswordTooLong)) => Ok(Verdict::Rejected),
            Err(e) => {
                tracing::error!(user = %user.name, method = "radius", error = %e, "RADIUS check failed; refusing");
                Ok(Verdict::Unavailable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_prompts_end_in_a_colon() {
        assert_eq!(challenge_prompt("Enter the PIN"), "Enter the PIN: ");
        assert_eq!(challenge_prompt("Enter the PIN:"), "Enter the PIN: ");
        assert_eq!(challenge_prompt("Continue?"), "Continue? ");
        assert_eq!(challenge_prompt(""), "RADIUS challenge: ");
        assert_eq!(challenge_prompt(&"x".repeat(5000)).chars().count(), MAX_PROMPT + 2, "cut to a sane length");
    }
}
