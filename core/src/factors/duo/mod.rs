//! Duo (Auth API v2): Duo decides, through its own [`client`].
//!
//! A challenge starts with `preauth` for the user's Duo user name:
//! - `auth`: Duo wants a second factor. A typed answer is checked as a passcode (`auth`
//!   with `factor=passcode`); an empty answer sends a push (`auth` with `factor=push`,
//!   `async=1`) and waits for it through `auth_status`, at most `push_timeout_secs`.
//! - `allow`: Duo's policy lets the user through without a second factor (a bypass set at
//!   Duo). The next answer passes, and the bypass is audited as such.
//! - `deny`, `enroll`: Duo refuses the user, or they have no device at Duo yet; the
//!   challenge says so (with Duo's enrollment address) and nothing passes.
//!
//! Where the challenge stands (the preauth outcome, then the push's transaction id and
//! when it was sent) is kept in [`Challenge::pending`], which never leaves the gateway
//! (`step`).
//!
//! When Duo gives no usable answer the login fails closed ([`Verdict::Unavailable`]).
//! Only an outage (no answer, a server error) and only with `fail_open` set lets the user
//! through instead: audited as `login.duo.fail_open` and logged as a warning each time. A
//! refusal by Duo (a bad signature, a bad key) never does.
//!
//! The enrolled factor row holds the user name Duo knows (it may differ from the Gatehouse
//! name) in its `secret` column; it is not a secret, but it is the factor's data.

pub mod client;
mod step;

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;

use super::{Challenge, LoginContext, Method, SecondFactor, Verdict, upsert};
use crate::audit::{AuditEvent, AuditKind, Outcome as AuditOutcome};
use crate::config::DuoConfig;
use crate::users::User;
use crate::{Error, Gateway, Result, time};
use client::{Client, DuoError, Outcome};
use step::{Login, Step, after_preauth, challenge_for, failed_challenge, keep, read, shown};

/// The Duo method.
pub struct Duo;

/// Longest Duo user name accepted, in bytes.
const MAX_DUO_USER: usize = 128;

/// Enrolls Duo for `user`, known at Duo as `duo_user` (the Gatehouse name when `None`).
/// Nothing is asked of Duo: the user enrolls their devices with Duo itself.
pub async fn enroll(gw: &Gateway, user: &User, duo_user: Option<&str>) -> Result<String> {
    let name = duo_user.map(str::trim).unwrap_or(&user.name).to_string();
    if name.is_empty() || name.len() > MAX_DUO_USER || name.chars().any(char::is_control) {
        return Err(Error::invalid("duo user", format!("must be 1-{MAX_DUO_USER} bytes without control characters")));
    }
    let mut tx = gw.db.begin().await?;
    upsert(&mut tx, user.id, Method::Duo, &name, &format!("Duo user {name}")).await?;
    tx.commit().await?;
    Ok(name)
}

/// The Duo user name of `user_id`, if enrolled.
pub async fn duo_user(gw: &Gateway, user_id: i64) -> Result<Option<String>> {
    let row: Option<Option<String>> =
        sqlx::query_scalar("SELECT secret FROM factors WHERE user_id = $1 AND method = 'duo'")
            .bind(user_id)
            .fetch_optional(gw.db.pool())
            .await?;
    Ok(row.flatten().filter(|n| !n.is_empty()))
}

/// Logs at start-up what an administrator must know about the Duo configuration: a
/// warning when a Duo outage lets logins through.
pub fn log_start(config: &DuoConfig) {
    if !config.enabled() {
        return;
    }
    let host = config.endpoint().map(|e| e.host).unwrap_or_default();
    if config.fail_open {
        tracing::warn!(
            api_host = %host,
            "duo.fail_open is set: while Duo cannot be reached, logins with the Duo factor pass WITHOUT a second factor"
        );
    } else {
        tracing::info!(api_host = %host, "Duo is configured; a Duo outage refuses Duo logins (fail closed)");
    }
}

/// One request to Duo through a client built from the config; an answer is recorded as
/// Duo's last one for the health page (failures are recorded where they are handled).
async fn ask<T>(
    gw: &Gateway,
    call: impl AsyncFnOnce(&Client) -> std::result::Result<T, DuoError>,
) -> std::result::Result<T, DuoError> {
    let answer = match client(gw) {
        Ok(c) => call(&c).await,
        Err(e) => Err(e),
    };
    if answer.is_ok() {
        crate::health::record_ok(gw, Method::Duo).await;
    }
    answer
}

/// Duo gave no usable answer: recorded for the health page, then refused, unless this
/// was an outage and the administrator chose `fail_open`.
async fn service_failed(gw: &Gateway, user: &User, login: &Login, error: DuoError) -> Result<Verdict> {
    crate::health::record_error(gw, Method::Duo, &error.to_string()).await;
    if error.is_outage() && gw.config.duo.fail_open {
        tracing::warn!(user = %user.name, peer = %login.source, method = "duo", error = %error, "Duo unreachable; letting the login through because duo.fail_open is set");
        gw.audit(
            AuditEvent::new(AuditKind::LoginDuoFailOpen, AuditOutcome::Info)
                .user(user.name.clone())
                .source(login.source.clone())
                .detail(format!(
                    "Duo unreachable ({error}), let through because fail_open is set, via {}",
                    login.frontend
                )),
        )
        .await?;
        return Ok(Verdict::Accepted);
    }
    tracing::error!(user = %user.name, method = "duo", error = %error, "Duo check failed; refusing");
    Ok(Verdict::Unavailable)
}

async fn bypass(gw: &Gateway, user: &User, login: &Login, status_msg: &str) -> Result<Verdict> {
    tracing::warn!(user = %user.name, peer = %login.source, method = "duo", "Duo bypass: Duo's policy lets the user through without a second factor");
    let why = if status_msg.is_empty() { String::new() } else { format!(" (\"{status_msg}\")") };
    gw.audit(
        AuditEvent::new(AuditKind::LoginDuoBypass, AuditOutcome::Info)
            .user(user.name.clone())
            .source(login.source.clone())
            .detail(format!(
                "Duo bypass: Duo's preauth answered allow{why}, no second factor was asked, via {}",
                login.frontend
            )),
    )
    .await?;
    touch(gw, user.id).await?;
    Ok(Verdict::Accepted)
}

async fn touch(gw: &Gateway, user_id: i64) -> Result<()> {
    sqlx::query("UPDATE factors SET last_used_at = $1 WHERE user_id = $2 AND method = 'duo'")
        .bind(time::now())
        .bind(user_id)
        .execute(gw.db.pool())
        .await?;
    Ok(())
}

/// Passcodes are digits (Duo Mobile, tokens, SMS, bypass codes) or a YubiKey OTP's
/// letters; anything else is refused without asking Duo.
fn plausible_passcode(answer: &str) -> bool {
    (1..=64).contains(&answer.len()) && answer.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Milliseconds since the Unix epoch: a push's wait is measured finer than in seconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn client(gw: &Gateway) -> std::result::Result<Client<'_>, DuoError> {
    Client::new(&gw.config.duo)
}

impl Duo {
    /// Sends the push and keeps its transaction id in the challenge.
    async fn push(&self, gw: &Gateway, user: &User, challenge: &mut Challenge, login: Login) -> Result<Verdict> {
        let gateway = gw.config.node_name();
        let info = [("Gateway", gateway.as_str()), ("From", login.source.as_str()), ("Via", login.frontend.as_str())];
        let sent = ask(gw, async |c| c.auth_push(&login.duo_user, login.ipaddr.as_deref(), &info).await).await;
        match sent {
            Ok(txid) => {
                tracing::info!(user = %user.name, method = "duo", "push sent");
                challenge.instructions =
                    "Duo: a push was sent to your device. Approve it there, then press Enter to go on waiting, or type a passcode.".into();
                keep(challenge, &Step::Pushed { login, txid, sent_at_ms: now_ms() });
                Ok(Verdict::Pending)
            }
            Err(e) => service_failed(gw, user, &login, e).await,
        }
    }

    /// Asks Duo about the push sent earlier; past its own time it has expired.
    async fn status(
        &self,
        gw: &Gateway,
        user: &User,
        challenge: &mut Challenge,
        login: Login,
        txid: String,
        sent_at_ms: i64,
    ) -> Result<Verdict> {
        let limit = Duration::from_secs(gw.config.duo.push_timeout_secs);
        let waited = Duration::from_millis(u64::try_from(now_ms() - sent_at_ms).unwrap_or(0));
        if waited >= limit {
            tracing::info!(user = %user.name, method = "duo", "push not answered in time");
            keep(challenge, &Step::Ready { login, push: true });
            return Ok(Verdict::Expired);
        }
        let left = limit - waited;
        let answer = ask(gw, async |c| c.auth_status(&txid, left).await).await;
        match answer {
            Ok(decision) => match decision.outcome {
                Outcome::Waiting => Ok(Verdict::Pending),
                Outcome::Allow => {
                    touch(gw, user.id).await?;
                    Ok(Verdict::Accepted)
                }
                Outcome::Deny => {
                    tracing::info!(user = %user.name, method = "duo", status = %decision.status, status_msg = %shown(&decision.status_msg), "push refused");
                    keep(challenge, &Step::Ready { login, push: true });
                    Ok(if decision.status == "timeout" { Verdict::Expired } else { Verdict::Rejected })
                }
            },
            // Duo held the request open without news; the push's own time bounds the wait.
            Err(DuoError::TimedOut) => Ok(Verdict::Pending),
            Err(e) => service_failed(gw, user, &login, e).await,
        }
    }
}

#[async_trait]
impl SecondFactor for Duo {
    fn method(&self) -> Method {
        Method::Duo
    }

    fn available(&self, gw: &Gateway) -> bool {
        gw.config.duo.enabled()
    }

    async fn challenge(&self, gw: &Gateway, user: &User, ctx: &LoginContext) -> Result<Challenge> {
        let Some(duo_user) = duo_user(gw, user.id).await? else {
            return Ok(challenge_for(Step::Refused, "Duo is not enrolled for this account.".into()));
        };
        let ipaddr = ctx.source.parse::<IpAddr>().ok().map(|ip| ip.to_string());
        let login = Login { duo_user, ipaddr, source: ctx.source.clone(), frontend: ctx.frontend.to_string() };
        let answer = ask(gw, async |c| c.preauth(&login.duo_user, login.ipaddr.as_deref()).await).await;
        match answer {
            Ok(preauth) => {
                let (step, text) = after_preauth(login, preauth);
                Ok(challenge_for(step, text))
            }
            Err(e) => {
                crate::health::record_error(gw, Method::Duo, &e.to_string()).await;
                tracing::error!(user = %user.name, method = "duo", error = %e, "Duo preauth failed");
                Ok(failed_challenge(login))
            }
        }
    }

    async fn verify(&self, gw: &Gateway, user: &User, challenge: &mut Challenge, answer: &str) -> Result<Verdict> {
        let login = match read(challenge) {
            None | Some(Step::Refused) => return Ok(Verdict::Rejected),
            Some(Step::Bypass { login, status_msg }) => {
                return bypass(gw, user, &login, &status_msg).await;
            }
            Some(Step::Ready { login, .. } | Step::Pushed { login, .. } | Step::Failed { login }) => login,
        };
        let passcode = answer.trim();
        if !plausible_passcode(passcode) {
            return Ok(Verdict::Rejected);
        }
        let answer = ask(gw, async |c| c.auth_passcode(&login.duo_user, passcode, login.ipaddr.as_deref()).await).await;
        match answer {
            Ok(decision) => {
                if decision.outcome == Outcome::Allow {
                    touch(gw, user.id).await?;
                    Ok(Verdict::Accepted)
                } else {
                    tracing::info!(user = %user.name, method = "duo", status = %decision.status, status_msg = %shown(&decision.status_msg), "passcode refused");
                    Ok(Verdict::Rejected)
                }
            }
            Err(e) => service_failed(gw, user, &login, e).await,
        }
    }

    async fn poll(&self, gw: &Gateway, user: &User, challenge: &mut Challenge) -> Result<Verdict> {
        match read(challenge) {
            None | Some(Step::Refused) | Some(Step::Ready { push: false, .. }) => Ok(Verdict::Rejected),
            Some(Step::Bypass { login, status_msg }) => bypass(gw, user, &login, &status_msg).await,
            Some(Step::Ready { login, push: true }) => self.push(gw, user, challenge, login).await,
            Some(Step::Pushed { login, txid, sent_at_ms }) => {
                self.status(gw, user, challenge, login, txid, sent_at_ms).await
            }
            Some(Step::Failed { login }) => {
                // Duo did not answer preauth: ask again, and go on from its answer.
                let answer = ask(gw, async |c| c.preauth(&login.duo_user, login.ipaddr.as_deref()).await).await;
                match answer {
                    Ok(preauth) => {
                        let (step, text) = after_preauth(login, preauth);
                        *challenge = challenge_for(step.clone(), text);
                        match step {
                            Step::Bypass { login, status_msg } => bypass(gw, user, &login, &status_msg).await,
                            Step::Ready { login, push: true } => self.push(gw, user, challenge, login).await,
                            _ => Ok(Verdict::Rejected),
                        }
                    }
                    Err(e) => service_failed(gw, user, &login, e).await,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passcodes_are_checked_for_shape_before_duo_is_asked() {
        assert!(plausible_passcode("123456"));
        assert!(plausible_passcode("cccccbcgujhingjrdejhvfetfkhbvtkfgkkeikgnifvl"));
        assert!(!plausible_passcode(""));
        assert!(!plausible_passcode("12 34"));
        assert!(!plausible_passcode("1234&factor=push"));
        assert!(!plausible_passcode(&"1".repeat(65)));
    }
}
