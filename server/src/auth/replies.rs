//! What the SSH login answers: the russh [`Auth`] replies of each turn. The texts a user
//! reads come from `gatehouse_core::login`, the same on every front end.

use std::borrow::Cow;

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

/// Hands the turn to a public-key round, for a signature by a security key, with
/// keyboard-interactive still open to come back to the gate. The two are listed in turns
/// in both orders (`round`): OpenSSH's client starts over with its preferred methods,
/// public keys first, only when the list differs from the one it was sent before.
pub(super) fn continue_with_key(round: u32) -> Auth {
    let methods: &[MethodKind] = if round.is_multiple_of(2) {
        &[MethodKind::PublicKey, MethodKind::KeyboardInteractive]
    } else {
        &[MethodKind::KeyboardInteractive, MethodKind::PublicKey]
    };
    Auth::Reject { proceed_with_methods: Some(MethodSet::from(methods)), partial_success: true }
}
