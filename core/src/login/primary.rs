//! The primary credential: a password (or, over SSH, an application passcode typed at the
//! password prompt) or a public key. Each check is counted before it is made, audited, and
//! counted in the metrics.

use ssh_key::PublicKey;

use super::{Primary, event, failed, lock_in_force};
use crate::audit::{AuditKind, Outcome};
use crate::directory::{self, Bound, Unavailable};
use crate::factors::LoginContext;
use crate::lockout::{self, Admission, Attempt};
use crate::metrics::{Step, StepOutcome};
use crate::users::{self, Store, User};
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
        Ok(Primary::Challenge(_)) => StepOutcome::Pending,
        Ok(Primary::Unavailable(_)) => StepOutcome::Unavailable,
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
    if directory::decides(gw, user.as_ref()) {
        return by_directory(gw, login, attempt, user, password, passcodes).await;
    }
    if let Some(u) = user.as_ref().filter(|u| u.store == Store::Radius) {
        return by_radius(gw, login, attempt, u.clone(), password, passcodes).await;
    }
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

/// The password of a directory user (or of a name this gateway does not know, while a
/// directory is configured) is checked by a bind to the directory as that user.
async fn by_directory(
    gw: &Gateway,
    login: &LoginContext,
    attempt: Attempt,
    user: Option<User>,
    password: &str,
    passcodes: bool,
) -> Result<(Primary, Typed)> {
    if let Some(u) = &user
        && u.locked
    {
        failed(gw, login, attempt, AuditKind::LoginPassword, "account disabled by an administrator".into()).await?;
        return Ok((Primary::Rejected, Typed::Password));
    }
    match directory::authenticate(gw, &login.user_name, password).await {
        Ok(Bound::Accepted(entry)) => match directory::admit(gw, user, &login.user_name, &entry).await? {
            Some(u) => {
                attempt.passed(&gw.db).await?;
                gw.audit(
                    event(login, AuditKind::LoginPassword, Outcome::Success)
                        .detail(format!("directory password via {}", login.frontend)),
                )
                .await?;
                Ok((Primary::Accepted(u), Typed::Password))
            }
            None => {
                failed(gw, login, attempt, AuditKind::LoginPassword, "directory account not usable here".into())
                    .await?;
                Ok((Primary::Rejected, Typed::Password))
            }
        },
        Ok(Bound::Refused(why)) => {
            if let Some(u) = user {
                // The directory does not know the user any more: disabled here too.
                if why == "unknown user" && gw.config.ldap.searches() {
                    directory::disable(gw, &u, "not found in the directory at login").await?;
                } else if passcodes && !u.directory_disabled {
                    // An application passcode, for a user the directory still admits.
                    match directory::lookup(gw, &u.name).await {
                        Ok(Some(entry)) if entry.name == u.name => {
                            return passcode_instead(gw, login, attempt, u, password).await;
                        }
                        Ok(_) => directory::disable(gw, &u, "not found in the directory at login").await?,
                        Err(_) => {}
                    }
                }
            }
            failed(gw, login, attempt, AuditKind::LoginPassword, format!("{why} (directory)")).await?;
            Ok((Primary::Rejected, Typed::Password))
        }
        Err(Unavailable(why)) => {
            // Not the user's fault: not counted, and the login fails closed.
            attempt.passed(&gw.db).await?;
            directory_unavailable(gw, login, &why).await?;
            Ok((Primary::Unavailable(directory::UNAVAILABLE_TEXT), Typed::Password))
        }
    }
}

async fn directory_unavailable(gw: &Gateway, login: &LoginContext, why: &str) -> Result<()> {
    tracing::warn!(user = %crate::audit::printable(&login.user_name), error = %why, "directory unavailable; login refused");
    gw.audit(
        event(login, AuditKind::DirectoryUnavailable, Outcome::Failure)
            .detail(format!("login refused: {why}, via {}", login.frontend)),
    )
    .await
}

/// What a RADIUS user reads when no RADIUS server answers.
pub const RADIUS_UNAVAILABLE_TEXT: &str = "Your password is checked by the RADIUS service, which cannot be reached right now.\n\
     Try again in a few minutes; if it goes on, tell an administrator.";

/// The password of a RADIUS user is an Access-Request to the `[radius]` servers; an
/// Access-Challenge is a further question ([`Primary::Challenge`]).
async fn by_radius(
    gw: &Gateway,
    login: &LoginContext,
    attempt: Attempt,
    user: User,
    password: &str,
    passcodes: bool,
) -> Result<(Primary, Typed)> {
    if user.locked {
        failed(gw, login, attempt, AuditKind::LoginPassword, "account disabled by an administrator".into()).await?;
        return Ok((Primary::Rejected, Typed::Password));
    }
    if password.is_empty() {
        failed(gw, login, attempt, AuditKind::LoginPassword, "empty password (RADIUS)".into()).await?;
        return Ok((Primary::Rejected, Typed::Password));
    }
    match ask_radius(gw, login, attempt, &user, password, None).await? {
        (Primary::Rejected, Some(attempt)) if passcodes => passcode_instead(gw, login, attempt, user, password).await,
        (Primary::Rejected, Some(attempt)) => {
            failed(gw, login, attempt, AuditKind::LoginPassword, "wrong password (RADIUS)".into()).await?;
            Ok((Primary::Rejected, Typed::Password))
        }
        (primary, _) => Ok((primary, Typed::Password)),
    }
}

/// One Access-Request for a RADIUS user's password (or an answer to a challenge, with its
/// `state`). An Access-Reject hands the admitted guess back (the caller counts it, or tries
/// an application passcode first); every other outcome settles it here.
async fn ask_radius(
    gw: &Gateway,
    login: &LoginContext,
    attempt: Attempt,
    user: &User,
    secret: &str,
    state: Option<&[u8]>,
) -> Result<(Primary, Option<Attempt>)> {
    use crate::factors::radius::client::{self as radius, Answer};
    if !gw.config.radius.primary {
        attempt.passed(&gw.db).await?;
        gw.audit(
            event(login, AuditKind::LoginPassword, Outcome::Failure)
                .detail(format!("RADIUS user, but radius.primary is off: refused via {}", login.frontend)),
        )
        .await?;
        return Ok((Primary::Unavailable(RADIUS_UNAVAILABLE_TEXT), None));
    }
    match radius::authenticate(&gw.config.radius, &user.name, secret.as_bytes(), state).await {
        Ok(Answer::Accept) => {
            crate::health::record_ok(gw, crate::factors::Method::Radius).await;
            attempt.passed(&gw.db).await?;
            gw.audit(
                event(login, AuditKind::LoginPassword, Outcome::Success)
                    .detail(format!("RADIUS password via {}", login.frontend)),
            )
            .await?;
            Ok((Primary::Accepted(user.clone()), None))
        }
        Ok(Answer::Reject) => {
            crate::health::record_ok(gw, crate::factors::Method::Radius).await;
            Ok((Primary::Rejected, Some(attempt)))
        }
        Ok(Answer::Challenge { message, state }) => {
            crate::health::record_ok(gw, crate::factors::Method::Radius).await;
            // Not a failure, not yet a success: the answer to the question is the next guess.
            attempt.passed(&gw.db).await?;
            let prompt = crate::factors::radius::challenge_prompt(&message);
            Ok((Primary::Challenge(super::PasswordChallenge { prompt, user_id: user.id, state }), None))
        }
        Err(e) => {
            crate::health::record_error(gw, crate::factors::Method::Radius, &e.to_string()).await;
            attempt.passed(&gw.db).await?;
            gw.audit(
                event(login, AuditKind::LoginPassword, Outcome::Failure)
                    .detail(format!("RADIUS unavailable ({e}): refused via {}", login.frontend)),
            )
            .await?;
            Ok((Primary::Unavailable(RADIUS_UNAVAILABLE_TEXT), None))
        }
    }
}

/// The answer to a RADIUS user's further question ([`Primary::Challenge`]): counted
/// before it is checked, like a password.
pub async fn password_challenge(
    gw: &Gateway,
    login: &LoginContext,
    challenge: &super::PasswordChallenge,
    answer: &str,
) -> Result<Primary> {
    let started = std::time::Instant::now();
    let r = check_password_challenge(gw, login, challenge, answer).await;
    count_primary(gw, login, "password", &r, started);
    r
}

async fn check_password_challenge(
    gw: &Gateway,
    login: &LoginContext,
    challenge: &super::PasswordChallenge,
    answer: &str,
) -> Result<Primary> {
    let attempt = match lockout::admit(&gw.db, &gw.config.lockout, &login.user_name, &login.source).await? {
        Admission::Admitted(a) => a,
        Admission::Locked(lock) => return Ok(Primary::Locked(lock)),
        Admission::Busy => return Ok(Primary::Rejected),
    };
    // The same account, still a RADIUS user, not locked, under the same name.
    let user = users::by_id(&gw.db, challenge.user_id)
        .await?
        .filter(|u| u.store == Store::Radius && !u.locked && u.name == login.user_name);
    let Some(user) = user else {
        failed(gw, login, attempt, AuditKind::LoginPassword, "RADIUS answer for an account that changed".into())
            .await?;
        return Ok(Primary::Rejected);
    };
    match ask_radius(gw, login, attempt, &user, answer, Some(&challenge.state)).await? {
        (Primary::Rejected, Some(attempt)) => {
            failed(gw, login, attempt, AuditKind::LoginPassword, "wrong answer to the RADIUS question".into()).await?;
            Ok(Primary::Rejected)
        }
        (primary, _) => Ok(primary),
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
    let user = users::find(&gw.db, user_name).await?;
    if directory::decides(gw, user.as_ref()) {
        if user.as_ref().is_some_and(|u| u.locked) {
            return Ok(false);
        }
        // The directory's keys as it holds them now, or a key added here by hand. A user
        // the directory no longer admits is disabled here at once (their live connections
        // end), whichever key they offer.
        let from_directory = match directory::lookup(gw, user_name).await {
            Ok(Some(entry)) if entry.name == user_name => directory_holds(&entry, key),
            Ok(_) => {
                if let Some(u) = &user {
                    directory::disable(gw, u, "not found in the directory at a key login").await?;
                }
                return Ok(false);
            }
            Err(_) => return Ok(false),
        };
        let by_hand = match &user {
            Some(u) => ssh_keys::matching(&gw.db, u.id, key).await?.is_some(),
            None => false,
        };
        return Ok(from_directory || by_hand);
    }
    let Some(user) = user else {
        return Ok(false);
    };
    Ok(!user.locked && ssh_keys::matching(&gw.db, user.id, key).await?.is_some())
}

/// Whether the directory entry lists `key` (matched on the key material).
fn directory_holds(entry: &directory::Entry, key: &PublicKey) -> bool {
    entry.ssh_keys.iter().filter_map(|line| ssh_keys::parse(line).ok()).any(|k| k.key_data() == key.key_data())
}

/// A public key of a directory user: the directory must still admit the user now (it is
/// asked at every key login), and the key must be in its key attribute or added here.
async fn public_key_by_directory(
    gw: &Gateway,
    login: &LoginContext,
    user: Option<User>,
    key: &PublicKey,
) -> Result<Primary> {
    let fp = ssh_keys::fingerprint(key);
    if user.as_ref().is_some_and(|u| u.locked) {
        failed(gw, login, None, AuditKind::LoginPublicKey, "account disabled by an administrator".into()).await?;
        return Ok(Primary::Rejected);
    }
    let entry = match directory::lookup(gw, &login.user_name).await {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            if let Some(u) = &user {
                directory::disable(gw, u, "not found in the directory at a key login").await?;
            }
            failed(gw, login, None, AuditKind::LoginPublicKey, format!("not in the directory, key {fp}")).await?;
            return Ok(Primary::Rejected);
        }
        Err(Unavailable(why)) => {
            directory_unavailable(gw, login, &why).await?;
            return Ok(Primary::Unavailable(directory::UNAVAILABLE_TEXT));
        }
    };
    let Some(user) = directory::admit(gw, user, &login.user_name, &entry).await? else {
        failed(gw, login, None, AuditKind::LoginPublicKey, "directory account not usable here".into()).await?;
        return Ok(Primary::Rejected);
    };
    // `admit` stored the directory's keys; the match is made against the stored set.
    match ssh_keys::matching(&gw.db, user.id, key).await? {
        Some(k) => {
            ssh_keys::touch(&gw.db, k.id).await?;
            gw.audit(
                event(login, AuditKind::LoginPublicKey, Outcome::Success).detail(format!("key {fp} (directory user)")),
            )
            .await?;
            Ok(Primary::Accepted(user))
        }
        None => {
            failed(gw, login, None, AuditKind::LoginPublicKey, format!("key {fp} not enrolled")).await?;
            Ok(Primary::Rejected)
        }
    }
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
    let found = users::find(&gw.db, &login.user_name).await?;
    if directory::decides(gw, found.as_ref()) {
        return public_key_by_directory(gw, login, found, key).await;
    }
    let Some(user) = found else {
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
