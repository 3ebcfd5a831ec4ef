//! The two-factor gate as a state machine, without sockets or a database.
//!
//! The SSH handler feeds it the user's keyboard-interactive answers; it answers with the
//! next prompt to show, or asks the handler to check an answer with `core`, then takes the
//! verdict. It knows the user's usable methods (enrolled and allowed, the last-used one
//! first), lets the user switch method within the same login (an empty answer or `?`
//! lists them), and bounds wrong answers per connection.
//!
//! A method answered by a signature (a security key used as an SSH key) is not asked at
//! the prompt: the handler hands the turn to a public-key round ([`Gate::await_signature`])
//! and feeds the signature's verdict to [`Gate::verdict`]; a client that comes back to
//! keyboard-interactive without a signature that passed gets the method list
//! ([`Gate::key_round_over`]).

use gatehouse_core::factors::Method;

/// A prompt to send as one keyboard-interactive round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Text shown above the prompt (may be empty).
    pub instructions: String,
    /// The prompt line itself.
    pub text: String,
    /// Whether the client may echo what is typed.
    pub echo: bool,
}

/// What the handler must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Show this prompt and feed the answer to [`Gate::input`].
    Ask(Prompt),
    /// Check `answer` with `method` and feed the verdict to [`Gate::verdict`].
    Check { method: Method, answer: String },
    /// Wait for the current challenge to be approved elsewhere (link clicked, push
    /// answered) and feed the outcome to [`Gate::verdict`] or [`Gate::not_yet`].
    Wait(Method),
    /// The gate is passed with this method.
    Passed(Method),
    /// Too many wrong answers: refuse the login.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Answering,
    Choosing,
    /// The turn is with a public-key round: a signature by a security key.
    Signing,
}

/// The gate of one connection.
#[derive(Debug, Clone)]
pub struct Gate {
    methods: Vec<Method>,
    current: Method,
    phase: Phase,
    failures: u32,
    max_failures: u32,
    /// Answers of any kind so far; bounded so that a client answering nothing useful
    /// (empty answers, endless method switches) cannot hold the login open.
    rounds: u32,
    /// The current challenge can be approved elsewhere: an empty answer waits for that
    /// (and `?` alone switches method).
    can_wait: bool,
    /// Public-key rounds handed out so far (the handler varies the method list it offers
    /// with it, so that a client starts over with public keys each time).
    key_rounds: u32,
    /// What the last refused signature said, shown when the client comes back.
    signing_note: String,
}

/// Prompts one gate may show before it gives up, whatever the answers.
const MAX_ROUNDS: u32 = 20;

impl Gate {
    /// `methods` must not be empty; the first is asked for first.
    pub fn new(methods: Vec<Method>, max_failures: u32) -> Option<Gate> {
        let current = *methods.first()?;
        Some(Gate {
            methods,
            current,
            phase: Phase::Answering,
            failures: 0,
            max_failures: max_failures.max(1),
            rounds: 0,
            can_wait: false,
            key_rounds: 0,
            signing_note: String::new(),
        })
    }

    /// The method currently asked for.
    pub fn current(&self) -> Method {
        self.current
    }

    /// Says whether the current method's challenge can be approved elsewhere.
    pub fn set_can_wait(&mut self, can_wait: bool) {
        self.can_wait = can_wait;
    }

    /// What a prompt adds when the user may switch method.
    pub fn switch_hint(&self) -> &'static str {
        if self.methods.len() > 1 { " (or ? for another method)" } else { "" }
    }

    /// Whether the current method is answered by a signature in a public-key round, and
    /// the gate is not listing methods: the handler then calls [`Gate::await_signature`]
    /// instead of showing a prompt.
    pub fn asks_signature(&self) -> bool {
        self.phase == Phase::Answering && self.current.signs_over_ssh()
    }

    /// The turn goes to a public-key round; returns how many were handed out before.
    pub fn await_signature(&mut self) -> u32 {
        self.phase = Phase::Signing;
        self.signing_note.clear();
        self.key_rounds += 1;
        self.key_rounds - 1
    }

    /// Whether a public-key round is under way for the current method.
    pub fn awaits_signature(&self) -> bool {
        self.phase == Phase::Signing
    }

    /// The client came back to keyboard-interactive during a public-key round: no
    /// signature passed (none of its keys is registered, or one was refused). The method
    /// list is shown, so the user may pick another method or the key again.
    pub fn key_round_over(&mut self) -> Step {
        if self.finished() {
            return Step::Failed;
        }
        self.rounds += 1;
        if self.rounds > MAX_ROUNDS {
            return Step::Failed;
        }
        self.phase = Phase::Choosing;
        let note = match std::mem::take(&mut self.signing_note) {
            n if n.is_empty() => format!("{}: no registered security key signed.", self.current.label()),
            n => n,
        };
        Step::Ask(self.choice_prompt(note))
    }

    /// The first prompt.
    pub fn start(&mut self) -> Prompt {
        self.phase = Phase::Answering;
        self.prompt_for(self.current, String::new())
    }

    /// Whether the gate has failed for good (refusals or rounds used up).
    fn finished(&self) -> bool {
        self.failures >= self.max_failures || self.rounds > MAX_ROUNDS
    }

    /// Feeds one answer.
    pub fn input(&mut self, answer: &str) -> Step {
        if self.finished() {
            return Step::Failed;
        }
        self.rounds += 1;
        if self.rounds > MAX_ROUNDS {
            return Step::Failed;
        }
        let answer = answer.trim();
        match self.phase {
            Phase::Answering => {
                if answer.is_empty() && self.can_wait {
                    return Step::Wait(self.current);
                }
                if (answer.is_empty() || answer == "?") && self.methods.len() > 1 {
                    self.phase = Phase::Choosing;
                    return Step::Ask(self.choice_prompt(String::new()));
                }
                if answer.is_empty() {
                    return Step::Ask(self.prompt_for(self.current, "Nothing was entered.".into()));
                }
                Step::Check { method: self.current, answer: answer.to_string() }
            }
            Phase::Choosing => {
                if answer.is_empty() {
                    self.phase = Phase::Answering;
                    return Step::Ask(self.prompt_for(self.current, String::new()));
                }
                match self.pick(answer) {
                    Some(m) => {
                        if m != self.current {
                            self.can_wait = false;
                        }
                        self.current = m;
                        self.phase = Phase::Answering;
                        Step::Ask(self.prompt_for(m, String::new()))
                    }
                    None => Step::Ask(self.choice_prompt(format!(
                        "'{}' is not one of the choices.",
                        gatehouse_core::audit::printable(answer)
                    ))),
                }
            }
            // No prompt was shown during a public-key round: whatever came, list methods.
            Phase::Signing => {
                self.phase = Phase::Choosing;
                let note = std::mem::take(&mut self.signing_note);
                Step::Ask(self.choice_prompt(note))
            }
        }
    }

    /// Takes the verdict on the answer of the last [`Step::Check`].
    pub fn verdict(&mut self, accepted: bool, note: &str) -> Step {
        // A gate that has failed stays failed, whatever comes after: the end state is the
        // gate's to keep, not only the handler's.
        if self.finished() {
            return Step::Failed;
        }
        if accepted {
            return Step::Passed(self.current);
        }
        self.failures += 1;
        if self.failures >= self.max_failures {
            return Step::Failed;
        }
        let left = self.max_failures - self.failures;
        let note = format!("{note} {} attempt{} left.", left, if left == 1 { "" } else { "s" });
        if self.phase == Phase::Signing {
            self.signing_note = note.trim().to_string();
        }
        Step::Ask(self.prompt_for(self.current, note.trim().to_string()))
    }

    /// A wait ended without a decision (the approval did not come in time): ask again,
    /// without counting a failure.
    pub fn not_yet(&mut self, note: &str) -> Step {
        self.phase = Phase::Answering;
        Step::Ask(self.prompt_for(self.current, note.to_string()))
    }

    /// The method asked a follow-up question (RADIUS Access-Challenge): ask for another
    /// answer without counting a failure. The handler replaces the prompt line with the
    /// method's question; [`MAX_ROUNDS`] still bounds the exchange.
    pub fn follow_up(&mut self) -> Step {
        self.phase = Phase::Answering;
        Step::Ask(self.prompt_for(self.current, String::new()))
    }

    fn prompt_for(&self, method: Method, note: String) -> Prompt {
        Prompt { instructions: note, text: format!("{}{}: ", method.label(), self.switch_hint()), echo: false }
    }

    fn choice_prompt(&self, note: String) -> Prompt {
        let mut text = String::new();
        if !note.is_empty() {
            text.push_str(&note);
            text.push('\n');
        }
        text.push_str("Second factor methods:\n");
        for (i, m) in self.methods.iter().enumerate() {
            text.push_str(&format!("  {}) {}\n", i + 1, m.label()));
        }
        Prompt {
            instructions: text,
            text: format!("Method [1-{}, empty to go back]: ", self.methods.len()),
            echo: true,
        }
    }

    /// A choice by number, stable name (`totp`) or label prefix (`auth`, `backup`).
    fn pick(&self, answer: &str) -> Option<Method> {
        if let Ok(n) = answer.parse::<usize>() {
            return n.checked_sub(1).and_then(|i| self.methods.get(i)).copied();
        }
        let a = answer.to_ascii_lowercase();
        self.methods.iter().copied().find(|m| m.as_str() == a || m.label().to_ascii_lowercase().starts_with(&a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        Gate::new(vec![Method::Keyword, Method::Totp, Method::BackupCode], 3).unwrap()
    }

    #[test]
    fn asks_for_the_first_method_and_checks_answers() {
        let mut g = gate();
        let p = g.start();
        assert_eq!(p.text, "Access keyword (or ? for another method): ");
        assert!(!p.echo);
        assert_eq!(g.input(" opensesame "), Step::Check { method: Method::Keyword, answer: "opensesame".into() });
        assert_eq!(g.verdict(true, ""), Step::Passed(Method::Keyword));
    }

    #[test]
    fn question_mark_lists_methods_and_a_choice_switches() {
        let mut g = gate();
        g.start();
        let Step::Ask(list) = g.input("?") else { panic!("expected the list") };
        assert!(list.instructions.contains("1) Access keyword"));
        assert!(list.instructions.contains("2) Authenticator code"));
        assert!(list.instructions.contains("3) Backup code"));
        let Step::Ask(p) = g.input("2") else { panic!("expected a prompt") };
        assert!(p.text.starts_with("Authenticator code"));
        assert_eq!(g.current(), Method::Totp);
        assert_eq!(g.input("123456"), Step::Check { method: Method::Totp, answer: "123456".into() });
    }

    #[test]
    fn choice_by_name_and_bad_choice() {
        let mut g = gate();
        g.start();
        g.input("");
        let Step::Ask(p) = g.input("nonsense") else { panic!() };
        assert!(p.instructions.contains("not one of the choices"));
        let Step::Ask(p) = g.input("backup") else { panic!() };
        assert!(p.text.starts_with("Backup code"));
        g.input("?");
        let Step::Ask(_) = g.input("totp") else { panic!() };
        assert_eq!(g.current(), Method::Totp);
        // An empty answer while choosing goes back to the current method.
        g.input("?");
        let Step::Ask(p) = g.input("") else { panic!() };
        assert!(p.text.starts_with("Authenticator code"));
    }

    #[test]
    fn wrong_answers_are_bounded() {
        let mut g = gate();
        g.start();
        g.input("x");
        let Step::Ask(p) = g.verdict(false, "Wrong answer.") else { panic!() };
        assert_eq!(p.instructions, "Wrong answer. 2 attempts left.");
        g.input("y");
        let Step::Ask(p) = g.verdict(false, "Wrong answer.") else { panic!() };
        assert_eq!(p.instructions, "Wrong answer. 1 attempt left.");
        g.input("z");
        assert_eq!(g.verdict(false, "Wrong answer."), Step::Failed);
        // Failed is final: a right answer after it passes nothing.
        assert_eq!(g.input("right"), Step::Failed);
        assert_eq!(g.verdict(true, ""), Step::Failed);
    }

    #[test]
    fn single_method_has_no_switch_hint_and_empty_is_not_an_answer() {
        let mut g = Gate::new(vec![Method::Totp], 3).unwrap();
        assert_eq!(g.start().text, "Authenticator code: ");
        let Step::Ask(p) = g.input("") else { panic!() };
        assert!(p.instructions.contains("Nothing was entered"));
        assert!(Gate::new(vec![], 3).is_none());
    }

    #[test]
    fn a_follow_up_question_is_not_a_failure() {
        let mut g = Gate::new(vec![Method::Radius], 1).unwrap();
        g.start();
        assert_eq!(g.input("123"), Step::Check { method: Method::Radius, answer: "123".into() });
        let Step::Ask(p) = g.follow_up() else { panic!("expected a prompt") };
        assert!(p.instructions.is_empty());
        assert_eq!(g.input("456"), Step::Check { method: Method::Radius, answer: "456".into() });
        assert_eq!(g.verdict(true, ""), Step::Passed(Method::Radius));
    }

    #[test]
    fn an_empty_answer_waits_when_the_challenge_can_wait() {
        let mut g = Gate::new(vec![Method::Email, Method::Totp], 2).unwrap();
        g.start();
        g.set_can_wait(true);
        assert_eq!(g.input(""), Step::Wait(Method::Email));
        let Step::Ask(p) = g.not_yet("Not approved yet.") else { panic!("expected a prompt") };
        assert_eq!(p.instructions, "Not approved yet.");
        assert_eq!(g.input("  "), Step::Wait(Method::Email), "waiting again is allowed");
        // `?` still switches, and the new method cannot wait until told so.
        let Step::Ask(_) = g.input("?") else { panic!("expected the list") };
        let Step::Ask(_) = g.input("2") else { panic!("expected a prompt") };
        let Step::Ask(_) = g.input("") else { panic!("an empty answer lists methods again") };
        // A refusal while waiting counts like a wrong answer.
        let mut g = Gate::new(vec![Method::Duo], 1).unwrap();
        g.start();
        g.set_can_wait(true);
        assert_eq!(g.input(""), Step::Wait(Method::Duo));
        assert_eq!(g.verdict(false, "Refused."), Step::Failed);
    }

    #[test]
    fn a_security_key_is_asked_in_a_public_key_round() {
        let mut g = Gate::new(vec![Method::SshSk, Method::Totp], 3).unwrap();
        g.start();
        assert!(g.asks_signature());
        assert_eq!(g.await_signature(), 0);
        assert!(g.awaits_signature() && !g.asks_signature());
        // A refused signature counts, and its note is shown when the client comes back.
        let Step::Ask(_) = g.verdict(false, "The security key was not touched.") else { panic!("expected a prompt") };
        let Step::Ask(list) = g.key_round_over() else { panic!("expected the list") };
        assert!(list.instructions.contains("not touched. 2 attempts left."), "{}", list.instructions);
        assert!(list.instructions.contains("1) Security key (SSH)"));
        assert!(!g.awaits_signature() && !g.asks_signature());
        // Picking the key again hands out another round; a signature that passes passes.
        let Step::Ask(_) = g.input("1") else { panic!("expected a prompt") };
        assert!(g.asks_signature());
        assert_eq!(g.await_signature(), 1);
        assert_eq!(g.verdict(true, ""), Step::Passed(Method::SshSk));
        // Another method can be picked instead.
        let mut g = Gate::new(vec![Method::SshSk, Method::Totp], 3).unwrap();
        g.start();
        g.await_signature();
        let Step::Ask(list) = g.key_round_over() else { panic!("expected the list") };
        assert!(list.instructions.contains("no registered security key signed"));
        let Step::Ask(p) = g.input("2") else { panic!("expected a prompt") };
        assert!(p.text.starts_with("Authenticator code"));
        assert!(!g.asks_signature());
    }

    #[test]
    fn public_key_rounds_are_bounded() {
        let mut g = Gate::new(vec![Method::SshSk], 3).unwrap();
        g.start();
        let mut rounds = 0;
        loop {
            assert!(g.asks_signature());
            g.await_signature();
            match g.key_round_over() {
                Step::Failed => break,
                Step::Ask(_) => {}
                other => panic!("unexpected {other:?}"),
            }
            if g.input("1") == Step::Failed {
                break;
            }
            rounds += 1;
            assert!(rounds <= MAX_ROUNDS, "the gate never gave up");
        }
    }

    #[test]
    fn endless_switching_is_bounded() {
        let mut g = gate();
        g.start();
        let mut steps = 0;
        while g.input("") != Step::Failed {
            steps += 1;
            assert!(steps <= MAX_ROUNDS, "the gate never gave up");
        }
    }
}
