//! The login decisions shared by every front end: primary credential, second-factor
//! answers, lockout and audit. The SSH gate and the web login call these and nothing
//! else, so both count failures against the same lock and write the same audit events.

mod flow;
mod primary;
mod security_key;

pub use flow::{FAILURE_FLOOR, Next, PrimaryStep, after_primary, failure_text, lock_text, slow_down, verdict_text};
pub use primary::{
    RADIUS_UNAVAILABLE_TEXT, Typed, key_is_enrolled, password, password_challenge, password_or_app_passcode, public_key,
};
pub use security_key::{KeySignature, security_key};

use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::factors::{self, Challenge, LoginContext, Method, Verdict};
use crate::lockout::{self, Admission, Attempt, Lock};
use crate::metrics::{LockSubject, Step, StepOutcome};
use crate::users::{self, User};
use crate::{Error, Gateway, Result, audit};

/// The outcome of a primary-credential check.
#[derive(Debug)]
pub enum Primary {
    Accepted(User),
    /// Wrong credential, unknown user, or an account an administrator locked: one answer
    /// for all, so nothing tells them apart.
    Rejected,
    /// Too many failures: refused before any credential is checked.
    Locked(Lock),
    /// The service that checks this user's password (the directory, a RADIUS server)
    /// could not be asked: refused, not counted as a wrong password. The text is for the
    /// user.
    Unavailable(&'static str),
    /// The password was a first answer: the RADIUS server asks another question
    /// (Access-Challenge). The front end shows `prompt` and hands the answer to
    /// [`password_challenge`].
    Challenge(PasswordChallenge),
}

/// A further question the RADIUS server asked after the password, bound to one user.
#[derive(Debug, Clone)]
pub struct PasswordChallenge {
    /// What to show the user (the server's Reply-Message, made printable).
    pub prompt: String,
    pub(crate) user_id: i64,
    /// The server's State attribute, sent back with the answer.
    pub(crate) state: Vec<u8>,
}

impl PasswordChallenge {
    /// The account the question is for.
    pub fn user_id(&self) -> i64 {
        self.user_id
    }

    /// The State as hex, for a front end that carries it between requests (the web
    /// form's hidden field); the RADIUS server checks it with the answer.
    pub fn state_hex(&self) -> String {
        hex::encode(&self.state)
    }

    /// Rebuilds a challenge a front end carried: `None` when the state is not a RADIUS
    /// State (1-253 bytes of hex).
    pub fn resume(user_id: i64, prompt: String, state_hex: &str) -> Option<PasswordChallenge> {
        let state = hex::decode(state_hex.trim()).ok().filter(|s| !s.is_empty() && s.len() <= 253)?;
        Some(PasswordChallenge { prompt, user_id, state })
    }
}

impl Gateway {
    /// Writes an audit event stamped with this node's name, then its copies (`[audit]`).
    pub async fn audit(&self, event: AuditEvent) -> Result<()> {
        let rec = audit::record(&self.db, &self.config.node_name(), event).await?;
        if self.audit_copies.any() {
            let failed = self.audit_copies.emit(&rec);
            self.metrics.audit_copy_errors.inc_by(failed as u64);
        }
        Ok(())
    }
}

fn event(login: &LoginContext, kind: AuditKind, outcome: Outcome) -> AuditEvent {
    AuditEvent::new(kind, outcome).user(audit::printable(&login.user_name)).source(login.source.clone())
}

/// Audits a failure and the lock it caused. `attempt` is the admitted guess that failed
/// (`None`: a failure that was not a guess admitted first, e.g. a key not enrolled).
async fn failed(
    gw: &Gateway,
    login: &LoginContext,
    attempt: impl Into<Option<Attempt>>,
    kind: AuditKind,
    detail: String,
) -> Result<()> {
    let caused = match attempt.into() {
        Some(a) => a.failed(&gw.db, &gw.config.lockout).await?,
        None => lockout::record_failure(&gw.db, &gw.config.lockout, &login.user_name, &login.source).await?,
    };
    gw.audit(event(login, kind, Outcome::Failure).detail(format!("{detail} via {}", login.frontend))).await?;
    if let Some(lock) = caused {
        let (what, subject) = match lock {
            Lock::User { .. } => ("account locked", LockSubject::User),
            Lock::Source { .. } => ("source address blocked", LockSubject::Source),
        };
        gw.metrics.lockout(subject);
        gw.audit(
            event(login, AuditKind::LoginLockout, Outcome::Info)
                .detail(format!("{what} until {}", crate::time::format_utc(lock.until()))),
        )
        .await?;
    }
    Ok(())
}

/// The lock in force for this login, if any (nothing is audited).
pub async fn lock_in_force(gw: &Gateway, login: &LoginContext) -> Result<Option<Lock>> {
    lockout::current(&gw.db, &login.user_name, &login.source).await
}

/// The lock in force for this login, audited as a refused password step when there is
/// one: a front end that asks for nothing while a lock holds calls this first.
pub async fn refuse_if_locked(gw: &Gateway, login: &LoginContext) -> Result<Option<Lock>> {
    let lock = lock_in_force(gw, login).await?;
    if lock.is_some() {
        gw.audit(
            event(login, AuditKind::LoginPassword, Outcome::Failure)
                .detail(format!("refused while locked via {}", login.frontend)),
        )
        .await?;
    }
    Ok(lock)
}

/// What a forced user without a usable factor reads once their first-login enrollment
/// window is over.
pub const ENROLLMENT_CLOSED: &str = "A second factor is required, and the time to set one up with your password alone is over.\n\
Ask an administrator to reset your second factors.";

/// Audits a login refused because the first-login enrollment window is over.
pub async fn enrollment_closed(gw: &Gateway, login: &LoginContext) -> Result<()> {
    gw.audit(event(login, AuditKind::LoginEnrollmentClosed, Outcome::Failure).detail(format!(
        "no usable second factor and the first-login enrollment window is over, via {}",
        login.frontend
    )))
    .await
}

/// Starts a second-factor attempt with `method`.
pub async fn challenge(gw: &Gateway, login: &LoginContext, user: &User, method: Method) -> Result<Option<Challenge>> {
    match factors::factor(method) {
        Some(f) if f.available(gw) => {
            let started = std::time::Instant::now();
            let r = f.challenge(gw, user, login).await;
            let outcome = if r.is_ok() { StepOutcome::Success } else { StepOutcome::Error };
            gw.metrics.factor(login.frontend, Step::Challenge, method, outcome, started.elapsed());
            Ok(Some(r?))
        }
        _ => Ok(None),
    }
}

/// Checks an answer to a second-factor challenge. The guess is counted before it is
/// checked ([`lockout::admit`]), so answers racing each other never exceed the threshold;
/// every attempt is audited; a passed method (other than a backup code) becomes the
/// user's default. On [`Verdict::Continue`] the challenge holds the next question.
pub async fn answer(
    gw: &Gateway,
    login: &LoginContext,
    user: &User,
    challenge: &mut Challenge,
    answer: &str,
) -> Result<Verdict> {
    let method = challenge.method;
    let attempt = match lockout::admit(&gw.db, &gw.config.lockout, &login.user_name, &login.source).await? {
        Admission::Admitted(a) => a,
        Admission::Locked(_) => {
            gw.audit(
                event(login, AuditKind::LoginFactor, Outcome::Failure).detail(format!("{method} refused while locked")),
            )
            .await?;
            return Ok(Verdict::Rejected);
        }
        // Not the user's answer that is wrong: it could not be checked now. Not counted,
        // and the user is told to try again rather than that the code is wrong.
        Admission::Busy => {
            gw.audit(
                event(login, AuditKind::LoginFactor, Outcome::Failure)
                    .detail(format!("{method} refused unchecked: too many guesses in flight")),
            )
            .await?;
            return Ok(Verdict::Unavailable);
        }
    };
    let Some(factor) = factors::factor(method) else {
        failed(gw, login, attempt, AuditKind::LoginFactor, format!("{method}: not available")).await?;
        return Ok(Verdict::Rejected);
    };
    let started = std::time::Instant::now();
    let checked = factor.verify(gw, user, challenge, answer).await;
    let outcome = checked.as_ref().map(|v| StepOutcome::from(*v)).unwrap_or(StepOutcome::Error);
    gw.metrics.factor(login.frontend, Step::Factor, method, outcome, started.elapsed());
    let verdict = match checked {
        Ok(v) => v,
        Err(e) => {
            // Not the user's fault: the guess is not counted, and the login fails closed.
            attempt.passed(&gw.db).await?;
            return Err(e);
        }
    };
    settle(gw, login, user, method, verdict, Some(attempt)).await?;
    Ok(verdict)
}

/// Asks a challenge that can wait for its state once, with the same bookkeeping as
/// [`answer`].
pub async fn poll(gw: &Gateway, login: &LoginContext, user: &User, challenge: &mut Challenge) -> Result<Verdict> {
    let Some(factor) = factors::factor(challenge.method) else {
        return Ok(Verdict::Rejected);
    };
    if !challenge.can_wait {
        return Ok(Verdict::Rejected);
    }
    let started = std::time::Instant::now();
    let verdict = factor.poll(gw, user, challenge).await?;
    if verdict != Verdict::Pending {
        gw.metrics.factor(login.frontend, Step::Factor, challenge.method, verdict.into(), started.elapsed());
        settle(gw, login, user, challenge.method, verdict, None).await?;
    }
    Ok(verdict)
}

/// How often a waiting login asks again.
const POLL_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Waits up to `limit` for a challenge to be approved or refused elsewhere (the link in the
/// mail clicked on any node, the push answered). [`Verdict::Pending`] when the time ran
/// out first: not a failure, the user may wait again or type the code.
pub async fn wait(
    gw: &Gateway,
    login: &LoginContext,
    user: &User,
    challenge: &mut Challenge,
    limit: std::time::Duration,
) -> Result<Verdict> {
    let until = tokio::time::Instant::now() + limit;
    loop {
        if lock_in_force(gw, login).await?.is_some() {
            return Ok(Verdict::Rejected);
        }
        let verdict = poll(gw, login, user, challenge).await?;
        if verdict != Verdict::Pending {
            return Ok(verdict);
        }
        let next = tokio::time::Instant::now() + POLL_EVERY;
        if next >= until {
            return Ok(Verdict::Pending);
        }
        tokio::time::sleep_until(next).await;
    }
}

/// Records a verdict: audit, the user's default method, and the lockout count (the
/// admitted `attempt` of an answer is kept as a failure or taken back).
async fn settle(
    gw: &Gateway,
    login: &LoginContext,
    user: &User,
    method: Method,
    verdict: Verdict,
    attempt: Option<Attempt>,
) -> Result<()> {
    let is_failure =
        !matches!(verdict, Verdict::Accepted | Verdict::Pending | Verdict::Continue | Verdict::Unavailable);
    let attempt = match attempt {
        Some(a) if !is_failure => {
            a.passed(&gw.db).await?;
            None
        }
        other => other,
    };
    match verdict {
        Verdict::Accepted => {
            if method.becomes_default() {
                users::set_last_method(&gw.db, user.id, method).await?;
            }
            gw.audit(
                event(login, AuditKind::LoginFactor, Outcome::Success)
                    .detail(format!("{method} via {}", login.frontend)),
            )
            .await
        }
        Verdict::Pending | Verdict::Continue => Ok(()),
        // Not the user's fault: audited, but not counted towards the lock.
        Verdict::Unavailable => {
            gw.audit(
                event(login, AuditKind::LoginFactor, Outcome::Failure)
                    .detail(format!("{method}: server unavailable via {}", login.frontend)),
            )
            .await
        }
        other => {
            let why = match other {
                Verdict::Replayed => "code already used",
                Verdict::Expired => "expired",
                _ => "wrong answer",
            };
            failed(gw, login, attempt, AuditKind::LoginFactor, format!("{method}: {why}")).await
        }
    }
}

/// Records a completed login (every required step passed) and forgets earlier failures.
///
/// The account is read again first: one locked, removed or replaced while the login
/// waited (for a mailed link, a push, a browser approval) is refused here, for every front
/// end, with [`Error::Refused`].
pub async fn completed(gw: &Gateway, login: &LoginContext, user: &User, how: &str) -> Result<()> {
    let why = match users::find(&gw.db, &login.user_name).await? {
        Some(now) if now.id == user.id && !now.locked => None,
        Some(now) if now.id == user.id => Some("the account was locked while the login was in progress"),
        _ => Some("the account was removed while the login was in progress"),
    };
    if let Some(why) = why {
        gw.audit(
            event(login, AuditKind::LoginFactor, Outcome::Failure)
                .detail(format!("refused at the end: {why} via {}", login.frontend)),
        )
        .await?;
        return Err(Error::Refused(why.into()));
    }
    gw.metrics.completed(login.frontend);
    lockout::clear_user(&gw.db, &login.user_name).await?;
    gw.audit(event(login, AuditKind::LoginSuccess, Outcome::Success).detail(format!("{how} via {}", login.frontend)))
        .await
}
