//! The second-factor gate over keyboard-interactive, once the primary credential passed:
//! the challenge behind each prompt, typed answers checked and approvals waited for, and
//! what each verdict leads to (the login passes, the gate asks again, or the login ends).

use std::time::Duration;

use gatehouse_core::access::Passage;
use gatehouse_core::factors::{LoginContext, Method, Verdict};
use gatehouse_core::login::{self, slow_down};
use russh::server::Auth;
use tokio::time::Instant;

use super::replies::{ask, continue_with_key, notice, refuse_for_good, reject};
use crate::connection::{AuthState, Connection};
use crate::gate::{Prompt, Step};

impl Connection {
    /// Makes sure the challenge matches the gate's current method (starting it with core
    /// when the method changed) and shows its instructions with the prompt.
    pub(super) async fn prompt_with_challenge(&mut self, mut prompt: Prompt) -> Auth {
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
        // A security key signs in a public-key round, not at this prompt.
        if g.gate.asks_signature() {
            let round = g.gate.await_signature();
            return continue_with_key(round);
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

    /// An answer typed at the gate's prompt: a method chosen, a code to check, or nothing
    /// for a method approved elsewhere.
    pub(super) async fn gate_answer(&mut self, answer: String, started: Instant) -> Auth {
        let AuthState::Gate(g) = &mut self.state else {
            return reject();
        };
        match g.gate.input(&answer) {
            Step::Ask(prompt) => self.prompt_with_challenge(prompt).await,
            Step::Wait(method) => self.wait_for_approval(method, started).await,
            Step::Check { method, answer } => self.check_answer(method, &answer, started).await,
            Step::Passed(_) | Step::Failed => {
                self.state = AuthState::Refused;
                refuse_for_good()
            }
        }
    }

    /// An empty answer to a method approved elsewhere (email link, push): waits for the
    /// approval and feeds the outcome to the gate.
    async fn wait_for_approval(&mut self, method: Method, started: Instant) -> Auth {
        let ctx = self.login_context();
        let AuthState::Gate(g) = &mut self.state else {
            return reject();
        };
        // Until shortly before the login deadline, and never longer than a push or link
        // stays valid at the service (the method's own poll says Expired).
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
                return notice(gatehouse_core::login::failure_text(&e));
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

    /// A typed answer for `method`: checks it with core and feeds the verdict to the gate.
    async fn check_answer(&mut self, method: Method, answer: &str, started: Instant) -> Auth {
        let ctx = self.login_context();
        let AuthState::Gate(g) = &mut self.state else {
            return reject();
        };
        let verdict = match &mut g.challenge {
            Some(c) if c.method == method => login::answer(&self.gw, &ctx, &g.user, c, answer).await,
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
                return notice(gatehouse_core::login::failure_text(&e));
            }
        };
        let step = g.gate.verdict(accepted, note);
        self.after_verdict(step, &ctx, started).await
    }

    /// Carries out the gate's step after a verdict: the login passes, asks again, or ends.
    pub(super) async fn after_verdict(&mut self, step: Step, ctx: &LoginContext, started: Instant) -> Auth {
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
                    return notice(gatehouse_core::login::lock_text(lock));
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
}
