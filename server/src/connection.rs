//! The state of one SSH connection: who is logging in, how far the login got, and the
//! channels opened after the gate.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use gatehouse_core::Gateway;
use gatehouse_core::access::Admitted;
use gatehouse_core::factors::{Challenge, Frontend, LoginContext};
use gatehouse_core::login::PasswordChallenge;
use gatehouse_core::users::User;
use gatehouse_shell::Visitor;
use russh::ChannelId;

use crate::gate::Gate;
use crate::input::InputFeed;
use crate::pending::PendingSlot;

/// Where the login stands.
pub(crate) enum AuthState {
    /// Nothing passed yet.
    Start,
    /// Keyboard-interactive asked for the password.
    AwaitingPassword,
    /// The password was a first answer: the RADIUS server asked another question, asked
    /// at the next keyboard-interactive round (or at once, inside one).
    PasswordChallenge(Box<PasswordChallenge>),
    /// The primary credential passed; the gate is asking for a second factor.
    Gate(Box<GateState>),
    /// The account or address is locked; the notice was shown.
    Locked,
    /// The login is refused with this explanation, shown at the next keyboard-interactive
    /// round (e.g. the first-login enrollment window is over).
    Notice(String),
    /// The login failed for good in this connection (gate failures exhausted, or the
    /// client changed user name mid-login).
    Refused,
    /// Every step passed.
    Done,
}

pub(crate) struct GateState {
    pub user: User,
    pub gate: Gate,
    pub challenge: Option<Challenge>,
    /// How the primary step passed ("password", "publickey").
    pub primary: &'static str,
}

/// A session channel after the gate.
#[derive(Default)]
pub(crate) struct SessionChannel {
    pub pty: Option<PtyRequest>,
    /// Set once a shell, exec or subsystem started on the channel.
    pub input: Option<InputFeed>,
    /// The user forwards their agent on this channel (and the gateway allows it).
    pub agent: bool,
}

#[derive(Clone)]
pub(crate) struct PtyRequest {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
}

/// One SSH connection.
pub(crate) struct Connection {
    pub gw: Gateway,
    pub peer: SocketAddr,
    /// Set once every login step has passed: what the login proved, which the accept
    /// loop re-checks whenever access may have been withdrawn.
    admitted: Arc<OnceLock<Admitted>>,
    /// The fingerprint of the public key that passed the primary step, if one did.
    pub primary_key: Option<String>,
    pub state: AuthState,
    /// The SSH user name of the first request (`alice` or `alice:target`); a later request
    /// with another name is refused.
    pub requested_name: Option<String>,
    /// The gateway user name, without a target.
    pub user_name: String,
    /// A target named in the user name (`alice:web1`).
    pub target_in_name: Option<String>,
    /// Set when the gate is passed.
    pub visitor: Option<Visitor>,
    pub channels: HashMap<ChannelId, SessionChannel>,
    /// Names this login attempt for methods that keep state between rounds.
    attempt: String,
    /// When the connection was accepted: waits at the gate end before the login deadline.
    pub accepted_at: tokio::time::Instant,
    /// This connection's place under the cap on unauthenticated connections; given up
    /// when the login completes, or with the connection.
    pending: Option<PendingSlot>,
}

impl Connection {
    pub fn new(gw: Gateway, peer: SocketAddr, pending: PendingSlot) -> Connection {
        Connection {
            gw,
            peer,
            admitted: Arc::new(OnceLock::new()),
            primary_key: None,
            state: AuthState::Start,
            requested_name: None,
            user_name: String::new(),
            target_in_name: None,
            visitor: None,
            channels: HashMap::new(),
            attempt: hex::encode(gatehouse_core::vault::random_bytes(16)),
            accepted_at: tokio::time::Instant::now(),
            pending: Some(pending),
        }
    }

    /// Set once every login step has passed; the accept loop's login deadline and its
    /// re-checks read it.
    pub fn admitted(&self) -> Arc<OnceLock<Admitted>> {
        self.admitted.clone()
    }

    pub fn mark_authenticated(&mut self, visitor: Visitor) {
        let _already_set = self.admitted.set(visitor.login.clone());
        self.visitor = Some(visitor);
        self.state = AuthState::Done;
        // A logged-in connection no longer counts against the cap on pending ones.
        self.pending = None;
    }

    pub fn login_context(&self) -> LoginContext {
        LoginContext {
            user_name: self.user_name.clone(),
            source: self.peer.ip().to_string(),
            frontend: Frontend::Ssh,
            attempt: self.attempt.clone(),
        }
    }

    /// Records the SSH user name of a request. Returns false when it differs from the
    /// first one: a login must stay with one user.
    pub fn accept_name(&mut self, requested: &str) -> bool {
        match &self.requested_name {
            Some(first) => first == requested,
            None => {
                let (user, target) = split_user(requested);
                self.user_name = user.to_string();
                self.target_in_name = target.map(str::to_string);
                self.requested_name = Some(requested.to_string());
                true
            }
        }
    }
}

/// `alice:web1` → (`alice`, Some(`web1`)); `alice` → (`alice`, None).
///
/// Public only so that the fuzz targets (`fuzz/`) can reach it: the SSH user name is the
/// first text an unauthenticated client chooses.
pub fn split_user(requested: &str) -> (&str, Option<&str>) {
    match requested.split_once(':') {
        Some((u, t)) if !t.is_empty() => (u, Some(t)),
        Some((u, _)) => (u, None),
        None => (requested, None),
    }
}

#[cfg(test)]
mod tests {
    use super::split_user;

    #[test]
    fn user_names_carry_an_optional_target() {
        assert_eq!(split_user("alice"), ("alice", None));
        assert_eq!(split_user("alice:web1"), ("alice", Some("web1")));
        assert_eq!(split_user("alice:"), ("alice", None));
        assert_eq!(split_user("alice:web:2"), ("alice", Some("web:2")));
    }
}
