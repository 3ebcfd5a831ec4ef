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
}
