//! The steps of a login between the primary credential and the gate, decided once for
//! every front end: what the user must still pass, what each verdict tells them, and how
//! long a failure takes. The SSH handler and the web routes call these and render the
//! result; neither builds an audit event or a message of its own.

use std::time::Duration;

use super::{AuditKind, Outcome, completed, enrollment_closed, event};
use crate::access::Passage;
use crate::factors::{LoginContext, Method, Verdict};
use crate::lockout::Lock;
use crate::policy::{self, Requirement};
use crate::users::User;
use crate::{Gateway, Result};

/// The least time a failed attempt takes, on every front end: a guesser gets no faster
/// answer than a person, and timing does not tell a wrong password from an unknown user.
pub const FAILURE_FLOOR: Duration = Duration::from_millis(800);

/// Waits until a failure that started at `started` took [`FAILURE_FLOOR`].
pub async fn slow_down(started: tokio::time::Instant) {
    tokio::time::sleep_until(started + FAILURE_FLOOR).await;
}

/// What a login needs after its primary credential passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Logged in (recorded and audited); `passage` says what the login proved.
    Passed(Passage),
    /// Ask one of these methods, the default first.
    SecondFactor(Vec<Method>),
    /// Refused for good (recorded and audited), with the text the user reads.
    Refused(&'static str),
}

/// How the primary credential passed, for the audit of the completed login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimaryStep {
    Password,
    PublicKey,
}

impl PrimaryStep {
    pub fn as_str(self) -> &'static str {
        match self {
            PrimaryStep::Password => "password",
            PrimaryStep::PublicKey => "publickey",
        }
    }
}

/// Decides what `user`, whose primary credential passed, must still do. A browser the
/// user trusts (`trusted_browser`, web only) stands in for the second factor on the web;
/// it never counts as a proof elsewhere (see `crate::sudo`).
pub async fn after_primary(
    gw: &Gateway,
    login: &LoginContext,
    user: &User,
    primary: PrimaryStep,
    trusted_browser: bool,
) -> Result<Next> {
    let p = primary.as_str();
    Ok(match policy::requirement(&gw.db, user).await? {
        Requirement::Required { .. } if trusted_browser => {
            completed(gw, login, user, &format!("{p} and trusted browser")).await?;
            Next::Passed(Passage::TrustedBrowser)
        }
        Requirement::Required { methods } => Next::SecondFactor(methods),
        Requirement::Exempt => {
            gw.audit(
                event(login, AuditKind::LoginExempt, Outcome::Info).detail("second factor skipped: user is exempt"),
            )
            .await?;
            completed(gw, login, user, &format!("{p}, exempt from the second factor")).await?;
            Next::Passed(Passage::Exempt)
        }
        Requirement::MustEnroll { .. } => {
            completed(gw, login, user, &format!("{p}, must enroll a second factor")).await?;
            Next::Passed(Passage::Enrollment)
        }
        Requirement::NotRequired => {
            completed(gw, login, user, &format!("{p}, no second factor required")).await?;
            Next::Passed(Passage::NotRequired)
        }
        Requirement::EnrollmentClosed => {
            enrollment_closed(gw, login).await?;
            Next::Refused(super::ENROLLMENT_CLOSED)
        }
    })
}

/// What the user reads after a second-factor answer that did not pass (`None` for a
/// verdict that is not a refusal).
pub fn verdict_text(verdict: Verdict) -> Option<&'static str> {
    match verdict {
        Verdict::Accepted | Verdict::Continue | Verdict::Pending => None,
        Verdict::Rejected => Some("That answer is not right."),
        Verdict::Replayed => Some("That code was already used. Wait for the next one."),
        Verdict::Expired => Some("That code or request has expired."),
        Verdict::Unavailable => Some(
            "The server that checks this method did not answer, so the answer was not accepted. Try again later or use another method.",
        ),
    }
}

/// What the user reads when a lock refuses the login, on every front end.
pub fn lock_text(lock: Lock) -> String {
    match lock {
        Lock::User { until } => format!(
            "Too many failed attempts: this account is locked until {}.\nTry again later or ask an administrator to unlock it.",
            crate::time::format_utc(until)
        ),
        Lock::Source { until } => format!(
            "Too many failed attempts from your address: logins from it are blocked until {}.",
            crate::time::format_utc(until)
        ),
    }
}

/// What the user reads when the gateway itself failed while checking the login: not
/// their fault, so it says so and when to try again, without the error's detail (that is
/// in the log).
pub fn failure_text(e: &crate::Error) -> String {
    let why = match e {
        crate::Error::Database(_) => "its database is not available",
        _ => "an internal error occurred",
    };
    format!("The gateway could not check your login: {why}.\nThe login is refused; try again in a moment.")
}
