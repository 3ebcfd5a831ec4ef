//! The primary credential: a password (or, over SSH, an application passcode typed at the
//! password prompt) or a public key. Each check is counted before it is made, audited, and
//! counted in the metrics.

use ssh_key::PublicKey;

use super::{Primary, event, failed, lock_in_force};
use crate::audit::{AuditKind, Outcome};
use crate::factors::LoginContext;
use crate::lockout::{self, Admission, Attempt};
use crate::metrics::{Step, StepOutcome};
use crate::users::{self, User};
use crate::{Gateway, Result, app_passcodes, policy, ssh_keys};

/// Checks a password.
pub async fn password(gw: &Gateway, login: &LoginContext, password: &str) -> Result<Primary> {
    Ok(password_or_passcode(gw, login, password, false).await?.0)
}

/// Counts a decided primary step (`method`: password, passcode, publickey).
fn count_primary(gw: &Gateway, login: &LoginContext, method: &str, r: &Result<Primary>, started: std::time::Instant) {
    let outcome = match r {
        Ok(Primary::Accepted(_)) => StepOutcome::Success,
        Ok(Primary::Rejected) => StepOutcome::Failure,
        Ok(Primary::Locked(_)) => StepOutcome::Locked,
        Err(_) => StepOutcome::Error,
    };
    gw.metrics.step(login.frontend, Step::Primary, method, outcome, started.elapsed());
}

/// How a secret typed at a password prompt was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    Password,
    /// The application passcode with this label: it stands in for password and second
    /// factor, and the caller must limit the session to non-interactive channels.
    Passcode(String),
}

/// The password check of the SSH frontend: the secret is the account password or, failing
/// that, one of the user's application passcodes. A miss on both counts as one failure.
pub async fn password_or_app_passcode(gw: &Gateway, login: &LoginContext, secret: &str) -> Result<(Primary, Typed)> {
    password_or_passcode(gw, login, secret, true).await
}

async fn password_or_passcode(
    gw: &Gateway,
    login: &LoginContext,
    password: &str,
    passcodes: bool,
) -> Result<(Primary, Typed)> {
    let started = std::time::Instant::now();
    let r = check_password_or_passcode(gw, login, password, passcodes).await;
    let method = match &r {
        Ok((_, Typed::Passcode(_))) => "passcode",
        _ => "password",
    };
    let (primary, typed) = match r {
        Ok((p, t)) => (Ok(p), Some(t)),
        Err(e) => (Err(e), None),
    };
    count_primary(gw, login, method, &primary, started);
    Ok((primary?, typed.unwrap_or(Typed::Password)))
}

async fn check_password_or_passcode(
    gw: &Gateway,
    login: &LoginContext,
    password: &str,
    passcodes: bool,
) -> Result<(Primary, Typed)> {
    // Counted before it is checked: a burst of guesses cannot overrun the threshold.
    let attempt = match lockout::admit(&gw.db, &gw.config.lockout, &login.user_name, &login.source).await? {
        Admission::Admitted(a) => a,
        Admission::Locked(lock) => {
            gw.audit(
                event(login, AuditKind::LoginPassword, Outcome::Failure)
                    .detail(format!("refused while locked via {}", login.frontend)),
            )
            .await?;
            return Ok((Primary::Locked(lock), Typed::Password));
        }
        Admission::Busy => {
            gw.audit(
                event(login, AuditKind::LoginPassword, Outcome::Failure)
                    .detail(format!("refused unchecked: too many guesses in flight, via {}", login.frontend)),
            )
            .await?;
            return Ok((Primary::Rejected, Typed::Password));
        }
    };
    let user = users::find(&gw.db, &login.user_name).await?;
    let matches = match &user {
        Some(u) => u.check_password(password).await,
        None => {
            // Same cost as a real check, so an unknown name is not faster.
            crate::vault::verify_blocking(password.to_string(), crate::vault::dummy_hash().to_string()).await;
            false
        }
    };
    match user {
        Some(u) if matches && !u.locked => {
            attempt.passed(&gw.db).await?;
            gw.audit(
                event(login, AuditKind::LoginPassword, Outcome::Success).detail(format!("via {}", login.frontend)),
            )
            .await?;
            Ok((Primary::Accepted(u), Typed::Password))
        }
        Some(u) if passcodes && !u.locked => passcode_instead(gw, login, attempt, u, password).await,
        other => {
            let why = match other {
                None => "unknown user",
                Some(u) if u.locked => "account disabled by an administrator",
                Some(_) => "wrong password",
            };
            failed(gw, login, attempt, AuditKind::LoginPassword, why.to_string()).await?;
            Ok((Primary::Rejected, Typed::Password))
        }
    }
}

/// The secret typed at a password prompt was not the password: it may be one of the
/// user's application passcodes, which stands in for password and second factor.
async fn passcode_instead(
    gw: &Gateway,
    login: &LoginContext,
    attempt: Attempt,
    u: User,
    secret: &str,
) -> Result<(Primary, Typed)> {
    match app_passcodes::verify(&gw.db, u.id, secret).await? {
        // A passcode stands in for a second factor the user has; one who must enroll
        // one first (e.g. after an administrator reset their factors) gets nothing.
        Some(label) if policy::requirement(&gw.db, &u).await?.must_enroll() => {
            attempt.passed(&gw.db).await?;
            gw.audit(event(login, AuditKind::LoginPasscode, Outcome::Failure).detail(format!(
                "application passcode \"{label}\" refused: a second factor must be enrolled first, via {}",
                login.frontend
            )))
            .await?;
            Ok((Primary::Rejected, Typed::Password))
        }
        Some(label) => {
            attempt.passed(&gw.db).await?;
            gw.audit(
                event(login, AuditKind::LoginPasscode, Outcome::Success)
                    .detail(format!("application passcode \"{label}\" via {}", login.frontend)),
            )
            .await?;
            Ok((Primary::Accepted(u), Typed::Passcode(label)))
        }
        None => {
            failed(gw, login, attempt, AuditKind::LoginPassword, "wrong password or application passcode".to_string())
                .await?;
            Ok((Primary::Rejected, Typed::Password))
        }
    }
}

/// Is `key` one of the user's enrolled keys? A cheap check for the offer step of a
/// public-key login: it counts nothing and audits nothing (clients offer several keys).
pub async fn key_is_enrolled(gw: &Gateway, user_name: &str, key: &PublicKey) -> Result<bool> {
    let Some(user) = users::find(&gw.db, user_name).await? else {
        return Ok(false);
    };
    Ok(!user.locked && ssh_keys::matching(&gw.db, user.id, key).await?.is_some())
}

/// Checks a public key whose signature the SSH layer has verified.
pub async fn public_key(gw: &Gateway, login: &LoginContext, key: &PublicKey) -> Result<Primary> {
    let started = std::time::Instant::now();
    let r = check_public_key(gw, login, key).await;
    count_primary(gw, login, "publickey", &r, started);
    r
}

async fn check_public_key(gw: &Gateway, login: &LoginContext, key: &PublicKey) -> Result<Primary> {
    if let Some(lock) = lock_in_force(gw, login).await? {
        gw.audit(event(login, AuditKind::LoginPublicKey, Outcome::Failure).detail("refused while locked")).await?;
        return Ok(Primary::Locked(lock));
    }
    let fp = ssh_keys::fingerprint(key);
    let Some(user) = users::find(&gw.db, &login.user_name).await? else {
        failed(gw, login, None, AuditKind::LoginPublicKey, format!("unknown user, key {fp}")).await?;
        return Ok(Primary::Rejected);
    };
    if user.locked {
        failed(gw, login, None, AuditKind::LoginPublicKey, "account disabled by an administrator".into()).await?;
        return Ok(Primary::Rejected);
    }
    match ssh_keys::matching(&gw.db, user.id, key).await? {
        Some(k) => {
            ssh_keys::touch(&gw.db, k.id).await?;
            gw.audit(event(login, AuditKind::LoginPublicKey, Outcome::Success).detail(format!("key {fp}"))).await?;
            Ok(Primary::Accepted(user))
        }
        None => {
            failed(gw, login, None, AuditKind::LoginPublicKey, format!("key {fp} not enrolled")).await?;
            Ok(Primary::Rejected)
        }
    }
}
