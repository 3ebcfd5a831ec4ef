//! The SSH second-factor gate (`gatehouse_server::gate::Gate`) driven the way the SSH
//! handler drives it, by a fuzzed client and fuzzed factor verdicts.
//!
//! Asserts, for every sequence: the gate passes only on an accepted verdict for the
//! method it asked to check (or to wait for); it asks to check exactly the trimmed answer,
//! never an empty one, and only for the current, usable method; it waits only when told
//! the current challenge can wait; the configured number of refused verdicts ends in
//! `Failed`, and so does the answer after the last allowed round; no prompt carries a
//! control or bidi character other than the line breaks of its own lists; no panic.

#![no_main]

use arbitrary::Arbitrary;
use gatehouse_core::factors::Method;
use gatehouse_core::text::is_unsafe;
use gatehouse_server::gate::{Gate, Prompt, Step};
use libfuzzer_sys::fuzz_target;

/// Answers one gate may take before it gives up (`MAX_ROUNDS` in gate.rs).
const MAX_ROUNDS: u32 = 20;

/// The notes the handler passes with a verdict (server/src/auth.rs), plus one empty.
const NOTES: [&str; 5] = ["", "Wrong answer.", "That code has expired.", "Not approved yet.", "Refused."];

#[derive(Arbitrary, Debug)]
enum Action {
    /// The client answers the last prompt.
    Input(String),
    /// The factor's verdict on the pending check or wait.
    Verdict {
        accepted: bool,
        note: u8,
    },
    /// The factor asks a follow-up question (RADIUS Access-Challenge) on a pending check.
    FollowUp,
    /// A pending wait ended without a decision.
    NotYet {
        note: u8,
    },
    /// The handler (re)starts the challenge of the current method and says whether it can
    /// be approved elsewhere.
    SetCanWait(bool),
    Start,
}

#[derive(Arbitrary, Debug)]
struct Script {
    methods: Vec<u8>,
    max_failures: u32,
    actions: Vec<Action>,
}

fn method(b: u8) -> Method {
    Method::ALL[b as usize % Method::ALL.len()]
}

fn check_prompt(p: &Prompt) {
    assert!(!p.text.chars().any(is_unsafe), "unsafe character in prompt text {:?}", p.text);
    assert!(!p.instructions.chars().any(|c| c != '\n' && is_unsafe(c)), "unsafe character in {:?}", p.instructions);
}

fuzz_target!(|script: Script| {
    let methods: Vec<Method> = script.methods.iter().copied().map(method).collect();
    let Some(mut gate) = Gate::new(methods.clone(), script.max_failures) else {
        assert!(methods.is_empty(), "a gate with methods must be built");
        return;
    };
    let max_failures = script.max_failures.max(1);
    check_prompt(&gate.start());

    let mut rounds = 0u32;
    let mut refused = 0u32;
    // What the gate asked the handler to do and has not had an answer for yet.
    let mut pending: Option<Step> = None;
    let mut can_wait = false;
    for action in script.actions {
        assert!(methods.contains(&gate.current()), "current method is not usable");
        let before = gate.current();
        let is_answer = matches!(action, Action::Input(_));
        let step = match action {
            Action::Input(answer) => {
                if pending.is_some() {
                    continue; // the handler never reads an answer while a check is open
                }
                rounds += 1;
                let step = gate.input(&answer);
                if rounds > MAX_ROUNDS {
                    assert_eq!(step, Step::Failed, "answer {rounds} must end the gate");
                }
                match &step {
                    Step::Check { method, answer: checked } => {
                        assert_eq!(*method, before);
                        assert_eq!(checked, answer.trim());
                        assert!(!checked.is_empty(), "an empty answer was sent to be checked");
                        pending = Some(step.clone());
                    }
                    Step::Wait(m) => {
                        assert_eq!(*m, before);
                        assert!(can_wait, "waited for a challenge that cannot wait");
                        assert!(answer.trim().is_empty(), "waited on a non-empty answer");
                        pending = Some(step.clone());
                    }
                    Step::Passed(_) => panic!("an answer alone passed the gate"),
                    Step::Ask(_) | Step::Failed => {}
                }
                if gate.current() != before {
                    can_wait = false; // a switch starts a new challenge
                }
                step
            }
            Action::Verdict { accepted, note } => {
                let Some(open) = pending.take() else { continue };
                let step = gate.verdict(accepted, NOTES[note as usize % NOTES.len()]);
                if accepted {
                    let asked = match open {
                        Step::Check { method, .. } | Step::Wait(method) => method,
                        _ => unreachable!("only checks and waits are pending"),
                    };
                    assert_eq!(step, Step::Passed(asked), "an accepted verdict must pass with its method");
                } else {
                    refused += 1;
                    if refused >= max_failures {
                        assert_eq!(step, Step::Failed, "{refused} refusals of {max_failures} must fail");
                    } else {
                        assert!(matches!(step, Step::Ask(_)), "a refusal below the limit asks again");
                    }
                }
                step
            }
            Action::FollowUp => {
                if !matches!(pending, Some(Step::Check { .. })) {
                    continue;
                }
                pending = None;
                gate.follow_up()
            }
            Action::NotYet { note } => {
                if !matches!(pending, Some(Step::Wait(_))) {
                    continue;
                }
                pending = None;
                gate.not_yet(NOTES[note as usize % NOTES.len()])
            }
            Action::SetCanWait(w) => {
                if pending.is_none() {
                    gate.set_can_wait(w);
                    can_wait = w;
                }
                continue;
            }
            Action::Start => {
                if pending.is_none() {
                    check_prompt(&gate.start());
                }
                continue;
            }
        };
        if !is_answer {
            assert_eq!(gate.current(), before, "only an answer may switch the method");
        }
        match step {
            Step::Ask(p) => check_prompt(&p),
            Step::Passed(_) | Step::Failed => return, // the handler ends the gate here
            Step::Check { .. } | Step::Wait(_) => {}
        }
    }
});
