//! Text from the database on its way to a terminal. Target names, hosts and user names are
//! validated when created, but a row written by other means (or an older version) must
//! still not be able to move the cursor, retitle the window or reorder text: every control
//! character and every bidirectional override is dropped before display.

/// `text` without control characters (C0, DEL, C1) or bidi formatting characters.
pub fn for_terminal(text: &str) -> String {
    text.chars().filter(|&c| !is_unsafe(c)).collect()
}

use gatehouse_core::text::is_unsafe;

/// Cuts `text` to at most `width` characters, marking a cut with `…`.
pub fn fit(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_escape_sequences_and_bidi() {
        assert_eq!(for_terminal("web\x1b[2J\x1b]0;pwned\x071"), "web[2J]0;pwned1");
        assert_eq!(for_terminal("a\r\nb\u{9b}c\u{202e}d\u{7f}"), "abcd");
        assert_eq!(for_terminal("naïve-host"), "naïve-host");
    }

    #[test]
    fn fit_marks_cuts() {
        assert_eq!(fit("abcdef", 10), "abcdef");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abcdef", 0), "");
        assert_eq!(fit("abcdef", 1), "…");
    }
}
