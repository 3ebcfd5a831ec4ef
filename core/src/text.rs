//! Text an attacker may have chosen (a user name typed at a login prompt, a label, a
//! reply from a remote server) on its way into storage or onto a screen.
//!
//! One rule, used everywhere: no control character (C0, DEL, C1) and no bidirectional
//! formatting character survives, so nothing stored can move a cursor, retitle a
//! terminal, clear a screen or reorder what an administrator reads.

/// Whether `c` must not reach a terminal, a log line or a page as it is.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
        )
}

/// The most characters of a name kept where it is stored and indexed: the lockout
/// counters and the audit log. Real user, group and target names have at most 64; a
/// longer one typed at a login prompt names nobody, and is cut here (the cut marked) so
/// that every database can index it and the attempt is counted and audited like any
/// other. PostgreSQL refuses an index entry of more than about 2.7 kB.
pub const MAX_STORED_NAME: usize = 200;

/// The most characters of an audit event's detail kept. Details are sentences the
/// gateway writes, but some quote what others chose (a command, a server's reply); none
/// needs more, and a megabyte quoted on every attempt would grow the log without bound.
pub const MAX_STORED_DETAIL: usize = 4000;

/// `name` cut to [`MAX_STORED_NAME`] characters, ending with `…` where it was cut; the
/// same long name always gives the same result.
pub fn stored_name(name: &str) -> std::borrow::Cow<'_, str> {
    cut(name, MAX_STORED_NAME)
}

/// `text` cut to `max` characters, ending with `…` where it was cut.
pub fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if max == 0 || text.chars().nth(max).is_none() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    std::borrow::Cow::Owned(cut)
}

/// `text` with every unsafe character replaced by U+FFFD, so that a reader sees that
/// something was there.
pub fn printable(text: &str) -> String {
    if !text.chars().any(is_unsafe) {
        return text.to_string();
    }
    text.chars().map(|c| if is_unsafe(c) { '\u{fffd}' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_bidi_become_visible_replacements() {
        assert_eq!(printable("\x1b]0;PWNED\x07\x1b[2Jroot"), "\u{fffd}]0;PWNED\u{fffd}\u{fffd}[2Jroot");
        assert_eq!(printable("admin\u{202e}nimda"), "admin\u{fffd}nimda");
        assert_eq!(printable("a\u{9b}b\u{200f}c\u{2066}d"), "a\u{fffd}b\u{fffd}c\u{fffd}d");
        assert_eq!(printable("naïve-host ok"), "naïve-host ok");
    }

    #[test]
    fn names_longer_than_any_real_one_are_cut_with_a_mark() {
        let real = "a".repeat(64);
        assert_eq!(stored_name(&real), real.as_str());
        let at_the_limit = "é".repeat(MAX_STORED_NAME);
        assert_eq!(stored_name(&at_the_limit), at_the_limit.as_str());
        let long = format!("alice{}", "é".repeat(200 * 1024));
        let cut = stored_name(&long);
        assert_eq!(cut.chars().count(), MAX_STORED_NAME);
        assert!(cut.starts_with("aliceé") && cut.ends_with('…'), "{cut}");
        assert_eq!(stored_name(&long), cut, "the same name gives the same key");
    }
}
