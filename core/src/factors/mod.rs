//! Second factors: one module per method behind the [`SecondFactor`] trait. The SSH gate
//! and the web login both drive a factor the same way:
//!
//! 1. [`SecondFactor::challenge`] starts an attempt. Code methods only describe what to
//!    type; push methods (an email link, a Duo push) send something here and
//!    return a challenge that can be waited on.
//! 2. [`SecondFactor::verify`] checks the user's answer; [`SecondFactor::poll`] asks a
//!    challenge that can wait whether it was approved elsewhere (on any node: the state
//!    is in the database, or at the push service). The front ends wait through
//!    [`crate::login::wait`] when the user answers nothing to such a challenge.
//!
//! Replay protection and single use live next to each factor's data, in the database.
//!
//! Besides one module per method: `method` names the methods ([`Method`], [`MethodSet`]),
//! and `enrollment` keeps the `factors` table of what each user has enrolled.

pub mod backup_codes;
pub mod duo;
pub mod email;
mod enrollment;
pub mod keyword;
mod method;
pub mod radius;
pub mod ssh_sk;
pub mod totp;
pub mod webauthn;
pub mod yubikey;

use std::fmt;

use async_trait::async_trait;

use crate::users::User;
use crate::{Gateway, Result};

pub use enrollment::{EnrolledFactor, describe, enrolled, remove, reset};
pub(crate) use enrollment::{close_enrollment_window, enrolled_from, upsert};
pub use method::{Method, MethodSet};

/// One attempt at a second factor, as shown to the user.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub method: Method,
    /// The prompt line, e.g. `Authenticator code: `.
    pub prompt: String,
    /// Whether the answer may be echoed (codes shown on a device: no secrets typed).
    pub echo: bool,
    /// Text shown above the prompt (what was sent where, how long it is valid).
    pub instructions: String,
    /// For methods approved elsewhere (email link, Duo push): the method's reference to
    /// the approval being waited on (an approval row, a Duo transaction), opaque to the
    /// front ends.
    pub pending: Option<String>,
    /// Whether an empty answer means "wait for the approval given elsewhere" (the click on
    /// the mailed link, the push answered on the phone). The front ends then call
    /// [`crate::login::wait`] instead of checking an answer; `prompt` says so.
    pub can_wait: bool,
    /// For methods with several rounds (RADIUS Access-Challenge): what the next answer
    /// must carry back. Set by [`SecondFactor::verify`] together with a new `prompt`.
    pub state: Option<Vec<u8>>,
    /// For a security key (WebAuthn) at the web login: what the browser must be asked,
    /// and the ceremony its answer belongs to.
    pub webauthn: Option<webauthn::AssertionRequest>,
}

/// The result of checking an answer or polling a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Wrong answer.
    Rejected,
    /// A correct code that was already used (TOTP step, backup code).
    Replayed,
    /// A push not yet answered.
    Pending,
    /// The push or code has expired.
    Expired,
    /// Not decided yet: the method asks another question, now in the challenge's `prompt`
    /// (RADIUS Access-Challenge). Not a failure.
    Continue,
    /// The service that checks the answer could not be asked (RADIUS servers down). The
    /// answer is not accepted: the login fails closed.
    Unavailable,
}

/// Which front end carries a login: what core tells the user depends on it (press Enter
/// over SSH, a button on the web), never what it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    Ssh,
    Web,
}

impl Frontend {
    pub fn as_str(self) -> &'static str {
        match self {
            Frontend::Ssh => "ssh",
            Frontend::Web => "web",
        }
    }
}

impl fmt::Display for Frontend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The context of a login, passed to push methods so they can name it ("alice from
/// 192.0.2.7 at 12:00 on node gw1").
#[derive(Debug, Clone)]
pub struct LoginContext {
    pub user_name: String,
    pub source: String,
    pub frontend: Frontend,
    /// Names this login attempt (an SSH connection, a web login session) so that a method
    /// that keeps state between rounds (a mailed code) finds its own and no other.
    /// Random and unguessable; never shown.
    pub attempt: String,
}

/// One second-factor method.
#[async_trait]
pub trait SecondFactor: Send + Sync {
    fn method(&self) -> Method;

    /// Whether this gateway is set up to check the method (e.g. a RADIUS server is
    /// configured).
    fn available(&self, gw: &Gateway) -> bool {
        let _ = gw;
        true
    }

    /// Starts an attempt for `user`.
    async fn challenge(&self, gw: &Gateway, user: &User, login: &LoginContext) -> Result<Challenge> {
        let _ = (gw, user, login);
        let m = self.method();
        Ok(Challenge {
            webauthn: None,
            method: m,
            prompt: format!("{}: ", m.label()),
            echo: false,
            instructions: String::new(),
            pending: None,
            can_wait: false,
            state: None,
        })
    }

    /// Checks the user's answer to `challenge`. A method with several rounds updates the
    /// challenge and answers [`Verdict::Continue`].
    async fn verify(&self, gw: &Gateway, user: &User, challenge: &mut Challenge, answer: &str) -> Result<Verdict>;

    /// Asks once whether a challenge that can wait was approved elsewhere; it may start
    /// the approval on its first call (send the push) and record that in the challenge.
    /// Code methods are never approved elsewhere.
    async fn poll(&self, gw: &Gateway, user: &User, challenge: &mut Challenge) -> Result<Verdict> {
        let _ = (gw, user, challenge);
        Ok(Verdict::Pending)
    }
}

/// The implementation of `method`, if this build has one (every method has one now; the
/// health page still tells a method without one apart).
pub fn factor(method: Method) -> Option<&'static dyn SecondFactor> {
    match method {
        Method::Totp => Some(&totp::Totp),
        Method::BackupCode => Some(&backup_codes::BackupCodes),
        Method::Keyword => Some(&keyword::Keyword),
        Method::Radius => Some(&radius::Radius),
        Method::Duo => Some(&duo::Duo),
        Method::Email => Some(&email::Email),
        Method::Yubikey => Some(&yubikey::Yubikey),
        Method::Webauthn => Some(&webauthn::Webauthn),
        Method::SshSk => Some(&ssh_sk::SshSk),
    }
}

/// Normalises a typed code: drops spaces and dashes, lower-cases.
pub(crate) fn normalize_code(answer: &str) -> String {
    answer.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect()
}
