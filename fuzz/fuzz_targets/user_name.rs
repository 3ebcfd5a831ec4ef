//! The SSH user name, the first text an unauthenticated client chooses: the `user:target`
//! split (`gatehouse_server::split_user`), name validation
//! (`gatehouse_core::users::validate_name`) and the one rule for attacker-chosen text
//! (`gatehouse_core::text::printable`).
//!
//! Asserts: the split loses and invents nothing (the user part has no `:`, the parts
//! joined by `:` give the name back, a target is never empty); a valid name is 1-64
//! letters, digits, `.`, `_`, `-`, starting with a letter or digit, so never carries `:`
//! or `@`; the refusal's text is printable; `printable` leaves no character for which
//! `text::is_unsafe` is true, keeps every safe one in place, keeps the character count and
//! is idempotent; no panic.

#![no_main]

use gatehouse_core::text::{is_unsafe, printable};
use gatehouse_core::users::validate_name;
use gatehouse_server::split_user;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|requested: &str| {
    let (user, target) = split_user(requested);
    assert!(!user.contains(':'), "user part {user:?} carries a ':'");
    match target {
        Some(t) => {
            assert!(!t.is_empty(), "empty target");
            assert_eq!(format!("{user}:{t}"), requested);
        }
        None => assert!(requested == user || requested == format!("{user}:"), "{requested:?} lost text"),
    }

    for name in [requested, user] {
        match validate_name("name", name) {
            Ok(()) => {
                assert!((1..=64).contains(&name.len()), "accepted a name of {} bytes", name.len());
                assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
                assert!(name.starts_with(|c: char| c.is_ascii_alphanumeric()));
            }
            Err(e) => {
                let text = e.to_string();
                assert!(!text.chars().any(is_unsafe), "refusal text not printable: {text:?}");
            }
        }
    }

    let shown = printable(requested);
    assert!(!shown.chars().any(is_unsafe), "printable left an unsafe character: {shown:?}");
    assert_eq!(shown.chars().count(), requested.chars().count(), "printable changed the length");
    for (a, b) in requested.chars().zip(shown.chars()) {
        assert!(if is_unsafe(a) { b == '\u{fffd}' } else { a == b }, "{a:?} became {b:?}");
    }
    assert_eq!(printable(&shown), shown, "printable is not idempotent");
});
