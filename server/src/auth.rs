//! The SSH login: the primary credential (public key, password, or a password asked over
//! keyboard-interactive), then the two-factor gate over keyboard-interactive.
//!
//! Every decision fails closed: a database error refuses the login. Real failures (wrong
//! password, wrong code) take at least [`FAILURE_FLOOR`], so their timing tells nothing.

use std::borrow::Cow;
use std::time::Duration;

use gatehouse_core::access::{Admitted, Passage};
use gatehouse_core::factors::{LoginContext, Verdict};
use gatehouse_core::lockout::Lock;
use gatehouse_core::login::{self, Next, Primary, PrimaryStep, Typed, slow_down};
use gatehouse_core::time::format_utc;
use gatehouse_core::users::User;
use gatehouse_shell::Visitor;
use russh::keys::PublicKey;
use russh::server::{Auth, Response};
use russh::{MethodKind, MethodSet};
use tokio::time::Instant;

use crate::connection::{AuthState, Connection, GateState};
use crate::gate::{Gate, Prompt, Step};

fn reject() -> Auth {
    Auth::Reject { proceed_with_methods: None, partial_success: false }
}

/// Refuse and offer nothing more: the client stops trying.
fn refuse_for_good() -> Auth {
    Auth::Reject { proceed_with_methods: Some(MethodSet::empty()), partial_success: false }
}

fn continue_with_gate() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(MethodSet::from(&[MethodKind::KeyboardInteractive][..])),
        partial_success: true,
    }
}

fn ask(prompt: Prompt) -> Auth {
    Auth::Partial {
        name: Cow::Borrowed(""),
        instructions: Cow::Owned(prompt.instructions),
        prompts: Cow::Owned(vec![(Cow::Owned(prompt.text), prompt.echo)]),
    }
}

fn notice(text: String) -> Auth {
    Auth::Partial { name: Cow::Borrowed(""), instructions: Cow::Owned(text), prompts: Cow::Owned(vec![]) }
}

/// What a user is told when the gateway itself failed while checking their login: not
/// their fault, so it says so and when to try again, without the error's detail (that is
/// in the log).
fn failure_notice(e: &gatehouse_core::Error) -> String {
    let why = match e {
        gatehouse_core::Error::Database(_) => "its database is not available",
        _ => "an internal error occurred",
    };
    format!("The gateway could not check your login: {why}.\nThe login is refused; try again in a moment.")
}

fn lock_notice(lock: Lock) -> String {
    match lock {
        Lock::User { until } => format!(
            "This account is locked after too many failed attempts, until {}.\nTry again later or ask an administrator to unlock it.",
            format_utc(until)
        ),
        Lock::Source { until } => format!(
            "Too many failed attempts from your address: logins from it are blocked until {}.",
            format_utc(until)
        ),
    }
}

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

    /// Only keys enrolled for the user may proceed to the signature check.
    pub async fn auth_publickey_offered(&mut self, requested: &str, key: &PublicKey) -> Auth {
        if !self.admissible(requested) || !matches!(self.state, AuthState::Start) {
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

    pub async fn auth_publickey(&mut self, requested: &str, key: &PublicKey) -> Auth {
        let started = Instant::now();
        if !self.admissible(requested) || !matches!(self.state, AuthState::Start) {
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
            AuthState::Gate(_) => continue_with_gate(),
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
                        notice(lock_notice(lock))
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
            (AuthState::Gate(g), None) => {
                let prompt = g.gate.start();
                g.challenge = None;
                self.prompt_with_challenge(prompt).await
            }
            (AuthState::AwaitingPassword, Some(password)) => {
                self.state = AuthState::Start;
                let ctx = self.login_context();
                let outcome = login::password_or_app_passcode(&self.gw, &ctx, &password).await;
                let auth = self.after_password(outcome, started).await;
                // Go on to the gate in the same exchange, without another round trip.
                match (&auth, &mut self.state) {
                    (Auth::Reject { partial_success: true, .. }, AuthState::Gate(g)) => {
                        let prompt = g.gate.start();
                        self.prompt_with_challenge(prompt).await
                    }
                    _ => auth,
                }
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

    /// Makes sure the challenge matches the gate's current method (starting it with core
    /// when the method changed) and shows its instructions with the prompt.
    async fn prompt_with_challenge(&mut self, mut prompt: Prompt) -> Auth {
        let ctx = self.login_context();
        let AuthState::Gate(g) = &mut self.state else {
            return reject();
        };
        let method = g.gate.current();
        if g.challenge.as_ref().map(|c| c.method) != Some(method) {
            match login::challenge(&self.gw, &ctx, &g.user, method).await {
                Ok(Some(c)) => g.challenge = Some(c),
                Ok(None) => {
                    prompt.instructions = format!("{} is not available on this gateway.", method.label());
                    g.challenge = None;
                    return ask(prompt);
                }
                Err(e) => {
                    tracing::error!(error = %e, %method, "starting the challenge failed; refusing");
                    self.state = AuthState::Refused;
                    return refuse_for_good();
                }
            }
        }
        g.gate.set_can_wait(g.challenge.as_ref().is_some_and(|c| c.can_wait));
        // A follow-up round (RADIUS Access-Challenge) asks the method's own question; a
        // challenge that can wait says what an empty answer does.
        if let Some(c) = &g.challenge {
            if c.state.is_some() {
                prompt.text = c.prompt.clone();
            } else if c.can_wait && !prompt.echo {
                prompt.text = format!("{}{}: ", c.prompt.trim_end().trim_end_matches(':'), g.gate.switch_hint());
            }
        }
        if let Some(c) = &g.challenge
            && !c.instructions.is_empty()
        {
            prompt.instructions = if prompt.instructions.is_empty() {
                c.instructions.clone()
            } else {
                format!("{}\n{}", prompt.instructions, c.instructions)
            };
        }
        ask(prompt)
    }

    async fn gate_answer(&mut self, answer: String, started: Instant) -> Auth {
        let ctx = self.login_context();
        let AuthState::Gate(g) = &mut self.state else {
            return reject();
        };
        match g.gate.input(&answer) {
            Step::Ask(prompt) => self.prompt_with_challenge(prompt).await,
            Step::Wait(method) => {
                // Until shortly before the login deadline, and never longer than a push
                // or link stays valid at the service (the method's own poll says Expired).
                let deadline = self.accepted_at + Duration::from_secs(self.gw.config.ssh.login_timeout_secs);
                let limit = deadline.saturating_duration_since(Instant::now()).saturating_sub(Duration::from_secs(5));
                let verdict = match &mut g.challenge {
                    Some(c) if c.method == method && c.can_wait => login::wait(&self.gw, &ctx, &g.user, c, limit).await,
                    _ => Ok(Verdict::Rejected),
                };
                let note = match verdict {
                    Ok(Verdict::Pending) => {
                        let Step::Ask(prompt) = g.gate.not_yet("Not approved yet.") else {
                            return refuse_for_good();
                        };
                        return self.prompt_with_challenge(prompt).await;
                    }
                    Ok(Verdict::Accepted) => "",
                    Ok(Verdict::Expired) => "The approval request expired.",
                    Ok(Verdict::Unavailable) => {
                        "The service that approves this method did not answer. Try again later or use another method."
                    }
                    // Denied where it is approved ("this was not me"): the login ends here.
                    Ok(Verdict::Rejected) => {
                        self.state = AuthState::Refused;
                        return notice(format!(
                            "The login was denied ({}). If you did not start it, change your password.",
                            method.label()
                        ));
                    }
                    Ok(_) => "The login was not approved.",
                    Err(e) => {
                        tracing::error!(error = %e, %method, "waiting for the second factor failed; refusing");
                        self.state = AuthState::Refused;
                        return notice(failure_notice(&e));
                    }
                };
                let accepted = note.is_empty();
                if !accepted {
                    // The refused approval is spent: the next attempt starts a new one.
                    g.challenge = None;
                }
                let step = g.gate.verdict(accepted, note);
                self.after_verdict(step, &ctx, started).await
            }
            Step::Check { method, answer } => {
                let verdict = match &mut g.challenge {
                    Some(c) if c.method == method => login::answer(&self.gw, &ctx, &g.user, c, &answer).await,
                    _ => Ok(Verdict::Rejected),
                };
                let (accepted, note) = match verdict {
                    Ok(Verdict::Accepted) => (true, ""),
                    Ok(Verdict::Continue) => {
                        let Step::Ask(prompt) = g.gate.follow_up() else {
                            return refuse_for_good();
                        };
                        return self.prompt_with_challenge(prompt).await;
                    }
                    Ok(v) => (false, login::verdict_text(v).unwrap_or("That answer is not right.")),
                    Err(e) => {
                        tracing::error!(error = %e, %method, "second-factor check failed; refusing");
                        self.state = AuthState::Refused;
                        slow_down(started).await;
                        return notice(failure_notice(&e));
                    }
                };
                let step = g.gate.verdict(accepted, note);
                self.after_verdict(step, &ctx, started).await
            }
            Step::Passed(_) | Step::Failed => {
                self.state = AuthState::Refused;
                refuse_for_good()
            }
        }
    }

    /// Carries out the gate's step after a verdict: the login passes, asks again, or ends.
    async fn after_verdict(&mut self, step: Step, ctx: &LoginContext, started: Instant) -> Auth {
        match step {
            Step::Passed(method) => {
                let AuthState::Gate(g) = std::mem::replace(&mut self.state, AuthState::Start) else {
                    return reject();
                };
                let how = format!("{} + {}", g.primary, method);
                self.finish(g.user, g.primary, &how, Passage::SecondFactor).await
            }
            Step::Ask(prompt) => {
                slow_down(started).await;
                // A lock caused by this failure ends the login now.
                if let Ok(Some(lock)) = login::lock_in_force(&self.gw, ctx).await {
                    self.state = AuthState::Locked;
                    return notice(lock_notice(lock));
                }
                self.prompt_with_challenge(prompt).await
            }
            Step::Failed | Step::Check { .. } | Step::Wait(_) => {
                slow_down(started).await;
                self.state = AuthState::Refused;
                refuse_for_good()
            }
        }
    }

    /// Every step passed: record it and let the client in. `passage` says what the login
    /// proved, which every later channel re-checks.
    async fn finish(&mut self, user: User, primary: &'static str, how: &str, passage: Passage) -> Auth {
        let ctx = self.login_context();
        if let Err(e) = login::completed(&self.gw, &ctx, how).await {
            tracing::error!(error = %e, "recording the login failed; refusing");
            return reject();
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
