//! Where a Duo challenge stands between rounds ([`Step`], kept in
//! [`Challenge::pending`] and never shown), and what the user reads at each: the
//! challenge made from Duo's preauth answer.

use serde::{Deserialize, Serialize};

use super::client::Preauth;
use crate::factors::{Challenge, Method};

/// Longest text from Duo (a status message, a device name) shown to the user.
const MAX_SHOWN: usize = 200;

/// The login a challenge belongs to, as Duo is told about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Login {
    pub duo_user: String,
    /// The client's address, when it is one (Duo's policies may use it).
    pub ipaddr: Option<String>,
    pub source: String,
    pub frontend: String,
}

/// Where a challenge stands, kept in [`Challenge::pending`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "duo", rename_all = "kebab-case")]
pub(super) enum Step {
    /// Duo asks for a second factor; `push` when a device takes a push.
    Ready { login: Login, push: bool },
    /// A push was sent at `sent_at_ms` (epoch milliseconds) and is waited on.
    Pushed { login: Login, txid: String, sent_at_ms: i64 },
    /// Duo lets the user through without a second factor.
    Bypass { login: Login, status_msg: String },
    /// Duo refused the user, or they have no device at Duo: nothing passes.
    Refused,
    /// Duo gave no usable answer to preauth; the next answer asks again.
    Failed { login: Login },
}

/// The step kept in `challenge`; `None` when there is none or it cannot be read.
pub(super) fn read(challenge: &Challenge) -> Option<Step> {
    serde_json::from_str(challenge.pending.as_deref()?).ok()
}

/// Keeps `step` in `challenge` for the next round.
pub(super) fn keep(challenge: &mut Challenge, step: &Step) {
    // Serialising plain strings, numbers and booleans cannot fail; a failure would leave
    // no step, which refuses every answer.
    challenge.pending = serde_json::to_string(step).ok();
}

/// Text from Duo as it may be shown: no control characters, a sane length.
pub(super) fn shown(text: &str) -> String {
    let text: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_SHOWN).collect();
    text.trim().to_string()
}

/// A challenge for where preauth left the user. Only a challenge with something to wait
/// for (a push to send, Duo's bypass, another try at an unanswered preauth) can wait; a
/// refused user has nothing to wait for, and every answer fails.
pub(super) fn challenge_for(step: Step, detail: String) -> Challenge {
    let (prompt, can_wait) = match &step {
        Step::Ready { push: true, .. } => ("Duo passcode, or Enter for a push: ", true),
        Step::Ready { push: false, .. } => ("Duo passcode: ", false),
        Step::Refused => ("Duo: ", false),
        Step::Pushed { .. } | Step::Bypass { .. } | Step::Failed { .. } => ("Duo, press Enter: ", true),
    };
    let prompt = prompt.to_string();
    let mut c = Challenge {
        method: Method::Duo,
        prompt,
        echo: false,
        instructions: detail,
        pending: None,
        can_wait,
        state: None,
        webauthn: None,
    };
    keep(&mut c, &step);
    c
}

/// The step and the instructions for Duo's preauth answer.
pub(super) fn after_preauth(login: Login, preauth: Preauth) -> (Step, String) {
    match preauth {
        Preauth::Auth { devices } => {
            let push = devices.iter().find(|d| d.can_push());
            let text = match push {
                Some(d) => format!(
                    "Duo: press Enter to send a push to {} and approve it there, or type a passcode (Duo Mobile, a token, an SMS).",
                    shown(d.label())
                ),
                None => "Duo: type a passcode from Duo Mobile, a hardware token or an SMS.".to_string(),
            };
            (Step::Ready { login, push: push.is_some() }, text)
        }
        Preauth::Allow { status_msg } => {
            let text = "Duo lets you through without a second step (a bypass set at Duo). Press Enter to continue."
                .to_string();
            (Step::Bypass { login, status_msg: shown(&status_msg) }, text)
        }
        Preauth::Deny { status_msg } => {
            let msg = shown(&status_msg);
            let msg = if msg.is_empty() { "no reason given".to_string() } else { msg };
            (Step::Refused, format!("Duo refused this login: {msg}. Use another method or ask your Duo administrator."))
        }
        Preauth::Enroll { status_msg, enroll_portal_url } => {
            let url = shown(&enroll_portal_url);
            let url_ok = url.starts_with("https://") && !url.contains(char::is_whitespace);
            let text = if url_ok {
                format!("You have no device enrolled with Duo yet. Enroll one at {url} and log in again.")
            } else {
                format!(
                    "You have no device enrolled with Duo yet ({}). Ask your Duo administrator to enroll one.",
                    shown(&status_msg)
                )
            };
            (Step::Refused, text)
        }
    }
}

/// The challenge after a preauth Duo did not answer: Enter asks again, a passcode is
/// checked as usual.
pub(super) fn failed_challenge(login: Login) -> Challenge {
    let text = "Duo did not answer. Press Enter to try again, or type a passcode.".to_string();
    let mut c = challenge_for(Step::Failed { login }, text);
    c.prompt = "Duo passcode, or Enter to try again: ".into();
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factors::duo::client::Device;

    fn login() -> Login {
        Login {
            duo_user: "alice".into(),
            ipaddr: Some("192.0.2.7".into()),
            source: "192.0.2.7".into(),
            frontend: "ssh".into(),
        }
    }

    #[test]
    fn preauth_answers_become_challenges() {
        let phone = Device {
            device: "DP1".into(),
            kind: "phone".into(),
            display_name: "iOS (XXX-XXX-0100)".into(),
            capabilities: vec!["push".into()],
            ..Default::default()
        };
        let token = Device { device: "DP2".into(), kind: "token".into(), ..Default::default() };

        let (step, text) = after_preauth(login(), Preauth::Auth { devices: vec![token.clone(), phone] });
        let c = challenge_for(step, text);
        assert!(c.can_wait && c.prompt.contains("Enter for a push"), "{c:?}");
        assert!(c.instructions.contains("iOS (XXX-XXX-0100)"), "{c:?}");
        assert!(matches!(read(&c), Some(Step::Ready { push: true, .. })));

        let (step, text) = after_preauth(login(), Preauth::Auth { devices: vec![token] });
        let c = challenge_for(step, text);
        assert!(!c.can_wait && c.prompt == "Duo passcode: ", "no push without a push device: {c:?}");

        let (step, text) =
            after_preauth(login(), Preauth::Deny { status_msg: "Your account is disabled.\x1b[2J".into() });
        let c = challenge_for(step, text);
        assert!(c.instructions.contains("Duo refused this login: Your account is disabled."), "{c:?}");
        assert!(!c.instructions.contains('\x1b'), "Duo's text is cleaned");
        assert!(matches!(read(&c), Some(Step::Refused)));
        assert!(!c.can_wait, "nothing to wait for once Duo refused");

        let url = "https://api-xxxxxxxx.duosecurity.com/portal?code=48bac5d9393fb2c2&akey=DAKXXXXXXXXXXXXXXXXX";
        let (step, text) = after_preauth(
            login(),
            Preauth::Enroll {
                status_msg: "Enroll an authentication device to proceed".into(),
                enroll_portal_url: url.into(),
            },
        );
        assert!(matches!(step, Step::Refused));
        assert!(text.contains(url), "{text}");
        let (_, text) = after_preauth(
            login(),
            Preauth::Enroll { status_msg: "Enroll".into(), enroll_portal_url: "javascript:alert(1)".into() },
        );
        assert!(!text.contains("javascript"), "{text}");

        let (step, text) = after_preauth(login(), Preauth::Allow { status_msg: "Allowing unknown user".into() });
        assert!(matches!(step, Step::Bypass { .. }) && text.contains("bypass"));
        assert!(challenge_for(step, text).can_wait, "Enter goes through");
    }

    #[test]
    fn a_challenge_without_a_readable_step_passes_nothing() {
        let mut c = challenge_for(Step::Refused, String::new());
        c.pending = Some("{\"duo\":\"bypass\"}".into());
        assert!(read(&c).is_none(), "a bypass needs its login");
        c.pending = None;
        assert!(read(&c).is_none());
    }
}
