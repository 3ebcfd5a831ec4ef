//! What the SSH login answers: the russh [`Auth`] replies of each turn and the notices a
//! user reads when a login ends without passing.

use std::borrow::Cow;

use gatehouse_core::lockout::Lock;
use gatehouse_core::time::format_utc;
use russh::server::Auth;
use russh::{MethodKind, MethodSet};

use crate::gate::Prompt;

pub(super) fn reject() -> Auth {
    Auth::Reject { proceed_with_methods: None, partial_success: false }
}

/// Refuse and offer nothing more: the client stops trying.
pub(super) fn refuse_for_good() -> Auth {
    Auth::Reject { proceed_with_methods: Some(MethodSet::empty()), partial_success: false }
}

pub(super) fn continue_with_gate() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(MethodSet::from(&[MethodKind::KeyboardInteractive][..])),
        partial_success: true,
    }
}

pub(super) fn ask(prompt: Prompt) -> Auth {
    Auth::Partial {
        name: Cow::Borrowed(""),
        instructions: Cow::Owned(prompt.instructions),
        prompts: Cow::Owned(vec![(Cow::Owned(prompt.text), prompt.echo)]),
    }
}

pub(super) fn notice(text: String) -> Auth {
    Auth::Partial { name: Cow::Borrowed(""), instructions: Cow::Owned(text), prompts: Cow::Owned(vec![]) }
}

/// What a user is told when the gateway itself failed while checking their login: not
/// their fault, so it says so and when to try again, without the error's detail (that is
/// in the log).
pub(super) fn failure_notice(e: &gatehouse_core::Error) -> String {
    let why = match e {
        gatehouse_core::Error::Database(_) => "its database is not available",
        _ => "an internal error occurred",
    };
    format!("The gateway could not check your login: {why}.\nThe login is refused; try again in a moment.")
}

pub(super) fn lock_notice(lock: Lock) -> String {
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
