//! The SSH login: the primary credential (public key, password, or a password asked over
//! keyboard-interactive), then the two-factor gate over keyboard-interactive
//! ([`second_factor`]), where a security key used as an SSH key signs in a second
//! public-key round ([`security_key`]). [`replies`] holds what each turn answers.
//!
//! Every decision fails closed: a database error refuses the login. Real failures (wrong
//! password, wrong code) take at least [`FAILURE_FLOOR`], so their timing tells nothing.

mod replies;
mod second_factor;
mod security_key;

use gatehouse_core::access::{Admitted, Passage};
use gatehouse_core::login::{self, Next, Primary, PrimaryStep, Typed, slow_down};
use gatehouse_core::users::User;
use gatehouse_shell::Visitor;
use russh::keys::PublicKey;
use russh::keys::ssh_key::Signature;
use russh::server::{Auth, Response};
use tokio::time::Instant;

use crate::connection::{AuthState, Connection, GateState};
use crate::gate::{Gate, Prompt, Step};
use replies::{ask, continue_with_gate, notice, refuse_for_good, reject};

impl Connection {
    /// Any auth request: the user name must stay the same, and a finished or refused
    /// login accepts nothing more.
    fn admissible(&mut self, requested: &str) -> bool {
        if !self.accept_name(requested) {
            tracing::warn!(peer = %self.peer, "client changed user name during login; refusing");
            self.state = AuthState::Refused;
            return false;
        }
        !matches!(self.state, AuthState::Refused | AuthState::Done)
    }

    pub async fn auth_none(&mut self, requested: &str) -> Auth {
        self.admissible(requested);
        reject()
    }

    /// Only keys enrolled for the user may proceed to the signature check: login keys
    /// first, registered security keys in the gate's public-key round.
    pub async fn auth_publickey_offered(&mut self, requested: &str, key: &PublicKey) -> Auth {
        if !self.admissible(requested) {
            return reject();
        }
        if let AuthState::Gate(g) = &self.state
            && g.gate.awaits_signature()
        {
            return self.security_key_offered(key).await;
        }
        if !matches!(self.state, AuthState::Start) {
            return reject();
        }
        match login::key_is_enrolled(&self.gw, &self.user_name, key).await {
            Ok(true) => Auth::Accept,
            Ok(false) => reject(),
            Err(e) => {
                tracing::error!(error = %e, "key lookup failed; refusing");
                reject()
            }
        }
    }

    pub async fn auth_publickey(&mut self, requested: &str, key: &PublicKey, signature: &Signature) -> Auth {
        let started = Instant::now();
        if !self.admissible(requested) {
            return self.out_of_turn();
        }
        if let AuthState::Gate(g) = &self.state
            && g.gate.awaits_signature()
        {
            return self.security_key_signed(key, signature, started).await;
        }
        if !matches!(self.state, AuthState::Start) {
            return self.out_of_turn();
        }
        let ctx = self.login_context();
        let outcome = login::public_key(&self.gw, &ctx, key).await;
        if matches!(outcome, Ok(Primary::Accepted(_))) {
            self.primary_key = Some(gatehouse_core::ssh_keys::fingerprint(key));
        }
        self.after_primary(outcome, "publickey", started).await
    }

    pub async fn auth_password(&mut self, requested: &str, password: &str) -> Auth {
        let started = Instant::now();
        if !self.admissible(requested) || !matches!(self.state, AuthState::Start) {
            return self.out_of_turn();
        }
        let ctx = self.login_context();
        let outcome = login::password_or_app_passcode(&self.gw, &ctx, password).await;
        self.after_password(outcome, started).await
    }

    /// A request for another method while the gate waits for keyboard-interactive:
    /// nothing but the gate may finish the login.
    fn out_of_turn(&self) -> Auth {
        match self.state {
            AuthState::Gate(_) | AuthState::PasswordChallenge(_) => continue_with_gate(),
            AuthState::Refused | AuthState::Locked | AuthState::Notice(_) => refuse_for_good(),
            _ => reject(),
        }
    }

    pub async fn auth_keyboard_interactive(&mut self, requested: &str, response: Option<Response<'_>>) -> Auth {
        let started = Instant::now();
        if !self.admissible(requested) {
            return refuse_for_good();
        }
        let answer: Option<String> =
            response.map(|mut r| r.next().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default());
        match (&mut self.state, answer) {
            // A new keyboard-interactive exchange.
            (AuthState::Start | AuthState::AwaitingPassword, None) => {
                let ctx = self.login_context();
                match login::refuse_if_locked(&self.gw, &ctx).await {
                    Ok(Some(lock)) => {
                        self.state = AuthState::Locked;
                        notice(gatehouse_core::login::lock_text(lock))
                    }
                    Ok(None) => {
                        self.state = AuthState::AwaitingPassword;
                        ask(Prompt { instructions: String::new(), text: "Password: ".into(), echo: false })
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "lockout check failed; refusing");
                        reject()
                    }
                }
            }
            // Back from the public-key round without a signature that passed.
            (AuthState::Gate(g), None) if g.gate.awaits_signature() => match g.gate.key_round_over() {
                Step::Ask(prompt) => self.prompt_with_challenge(prompt).await,
                _ => {
                    self.state = AuthState::Refused;
                    refuse_for_good()
                }
            },
            (AuthState::Gate(g), None) => {
                let prompt = g.gate.start();
                g.challenge = None;
                self.prompt_with_challenge(prompt).await
            }
            // The RADIUS server's further question, after a password given by the
            // `password` method or in an earlier exchange.
            (AuthState::PasswordChallenge(ch), None) => {
                ask(Prompt { instructions: String::new(), text: ch.prompt.clone(), echo: false })
            }
            (AuthState::PasswordChallenge(_), Some(answer)) => {
                let AuthState::PasswordChallenge(ch) = std::mem::replace(&mut self.state, AuthState::Start) else {
                    return reject();
                };
                let ctx = self.login_context();
                let outcome = login::password_challenge(&self.gw, &ctx, &ch, &answer).await;
                let auth = self.after_primary(outcome, "password", started).await;
                self.go_on_in_this_exchange(auth).await
            }
            (AuthState::AwaitingPassword, Some(password)) => {
                self.state = AuthState::Start;
                let ctx = self.login_context();
                let outcome = login::password_or_app_passcode(&self.gw, &ctx, &password).await;
                let auth = self.after_password(outcome, started).await;
                self.go_on_in_this_exchange(auth).await
            }
            (AuthState::Gate(_), Some(answer)) => self.gate_answer(answer, started).await,
            (AuthState::Locked, _) => refuse_for_good(),
            (AuthState::Notice(_), _) => {
                let AuthState::Notice(text) = std::mem::replace(&mut self.state, AuthState::Refused) else {
                    return reject();
                };
                notice(text)
            }
            _ => reject(),
        }
    }

    /// After an answer inside a keyboard-interactive exchange: what comes next (the gate,
    /// a further RADIUS question) is asked in the same exchange, without another round trip.
    async fn go_on_in_this_exchange(&mut self, auth: Auth) -> Auth {
        match (&auth, &mut self.state) {
            (Auth::Reject { partial_success: true, .. }, AuthState::Gate(g)) => {
                let prompt = g.gate.start();
                self.prompt_with_challenge(prompt).await
            }
            (Auth::Reject { partial_success: true, .. }, AuthState::PasswordChallenge(ch)) => {
                ask(Prompt { instructions: String::new(), text: ch.prompt.clone(), echo: false })
            }
            _ => auth,
        }
    }

    /// After a password prompt, which also takes an application passcode: a passcode
    /// stands in for the second factor, for a session limited to non-interactive work.
    async fn after_password(&mut self, outcome: gatehouse_core::Result<(Primary, Typed)>, started: Instant) -> Auth {
        match outcome {
            Ok((Primary::Accepted(user), Typed::Passcode(label))) => {
                let how = format!("application passcode \"{label}\"");
                self.finish(user, "passcode", &how, Passage::Passcode(label)).await
            }
            Ok((primary, _)) => self.after_primary(Ok(primary), "password", started).await,
            Err(e) => self.after_primary(Err(e), "password", started).await,
        }
    }

    /// After the primary credential: decide what the user must still pass.
    async fn after_primary(
        &mut self,
        outcome: gatehouse_core::Result<Primary>,
        primary: &'static str,
        started: Instant,
    ) -> Auth {
        let user = match outcome {
            Ok(Primary::Accepted(user)) => user,
            Ok(Primary::Rejected) => {
                slow_down(started).await;
                return reject();
            }
            Ok(Primary::Locked(_)) => {
                slow_down(started).await;
                return reject();
            }
            Ok(Primary::Challenge(ch)) => {
                self.state = AuthState::PasswordChallenge(Box::new(ch));
                return continue_with_gate();
            }
            Ok(Primary::Unavailable(text)) => {
                slow_down(started).await;
                // Shown at the next keyboard-interactive round, then the login ends.
                self.state = AuthState::Notice(text.to_string());
                return continue_with_gate();
            }
            Err(e) => {
                tracing::error!(error = %e, "primary authentication failed; refusing");
                slow_down(started).await;
                return reject();
            }
        };
        let step = if primary == "publickey" { PrimaryStep::PublicKey } else { PrimaryStep::Password };
        let ctx = self.login_context();
        match login::after_primary(&self.gw, &ctx, &user, step, false).await {
            Ok(Next::Passed(passage)) => {
                let how = match passage {
                    Passage::Exempt => "exempt from the second factor",
                    Passage::Enrollment => "enrollment required",
                    _ => "no second factor required",
                };
                self.admit(user, primary, passage, how.to_string())
            }
            Ok(Next::SecondFactor(methods)) => {
                let Some(gate) = Gate::new(methods, self.gw.config.ssh.gate_attempts) else {
                    return reject();
                };
                self.state = AuthState::Gate(Box::new(GateState { user, gate, challenge: None, primary }));
                continue_with_gate()
            }
            Ok(Next::Refused(text)) => {
                slow_down(started).await;
                // Shown at the next keyboard-interactive round, then the login ends.
                self.state = AuthState::Notice(text.to_string());
                continue_with_gate()
            }
            Err(e) => {
                tracing::error!(error = %e, "deciding the second factor failed; refusing");
                reject()
            }
        }
    }

    /// Every step passed: record it and let the client in. `passage` says what the login
    /// proved, which every later channel re-checks.
    async fn finish(&mut self, user: User, primary: &'static str, how: &str, passage: Passage) -> Auth {
        let ctx = self.login_context();
        match login::completed(&self.gw, &ctx, &user, how).await {
            Ok(()) => {}
            Err(gatehouse_core::Error::Refused(why)) => {
                tracing::info!(user = %user.name, peer = %self.peer, why = %why, "login refused at the end");
                self.state = AuthState::Refused;
                return reject();
            }
            Err(e) => {
                tracing::error!(error = %e, "recording the login failed; refusing");
                return reject();
            }
        }
        self.admit(user, primary, passage, how.to_string())
    }

    /// Lets the client in after core recorded the completed login; `how` greets the user.
    fn admit(&mut self, user: User, primary: &'static str, passage: Passage, how: String) -> Auth {
        tracing::info!(user = %user.name, peer = %self.peer, primary, how = %how, "login");
        let login = Admitted { user_id: user.id, user_name: user.name.clone(), passage, key: self.primary_key.clone() };
        let source = self.peer.ip().to_string();
        self.mark_authenticated(Visitor { user, source, passed_with: how, login });
        Auth::Accept
    }
}
