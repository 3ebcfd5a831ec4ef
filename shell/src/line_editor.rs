//! A line editor good enough for a menu prompt: it turns the raw bytes a terminal sends
//! into an edited line and a few events. It never writes to the terminal itself: the menu
//! redraws its prompt from [`LineEditor::line`] after every event, so the same editor
//! serves a PTY (raw mode, the gateway echoes) and a plain pipe (the client echoes).
//!
//! Handled: printable UTF-8, Backspace/DEL, Ctrl-U (clear), Ctrl-W (delete word), Ctrl-C
//! (abandon the line), Ctrl-D (end of input on an empty line), Ctrl-L (redraw), Tab, and
//! Enter as CR, LF or CRLF. Escape sequences (arrows, function keys, bracketed paste
//! markers) are swallowed whole so they never land in the line.

use gatehouse_core::text::is_unsafe;

/// The longest line kept; more input is ignored (a menu needs a name, not a novel).
pub const MAX_LINE: usize = 256;

/// What a chunk of input meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The line changed (the prompt should be redrawn).
    Changed,
    /// Enter: the line as typed (the editor is empty again).
    Submit(String),
    /// Ctrl-C: the line was abandoned.
    Interrupt,
    /// Ctrl-D on an empty line.
    EndOfInput,
    /// Ctrl-L.
    Redraw,
    /// Tab.
    Complete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// Got ESC.
    Start,
    /// Inside `ESC [ …` until a final byte.
    Csi,
    /// After `ESC O`: one more byte.
    Ss3,
}

/// The state of one prompt line.
#[derive(Debug)]
pub struct LineEditor {
    line: String,
    /// Bytes of a UTF-8 character split across reads.
    partial: Vec<u8>,
    escape: Escape,
    /// The previous byte was CR (so a following LF is the same Enter).
    after_cr: bool,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

impl LineEditor {
    pub fn new() -> Self {
        LineEditor { line: String::new(), partial: Vec::new(), escape: Escape::None, after_cr: false }
    }

    /// The line as edited so far.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// Replaces the line (e.g. after Tab completion).
    pub fn set_line(&mut self, line: &str) {
        self.line = line.chars().take(MAX_LINE).collect();
    }

    /// Feeds bytes from the terminal; returns what they meant, in order. Consecutive
    /// edits are folded into one [`Event::Changed`].
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (more, used) = self.feed_line(rest);
            events.extend(more);
            rest = &rest[used..];
        }
        events
    }

    /// Like [`feed`](Self::feed), but stops after the first line submitted (Enter, with the
    /// `\n` of a `\r\n` pair) and returns how many bytes it used: what the user typed
    /// after Enter belongs to whatever that line starts (e.g. the target session).
    pub fn feed_line(&mut self, bytes: &[u8]) -> (Vec<Event>, usize) {
        let mut events = Vec::new();
        let mut changed = false;
        let flush = |events: &mut Vec<Event>, changed: &mut bool| {
            if *changed {
                events.push(Event::Changed);
                *changed = false;
            }
        };
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(events.last(), Some(Event::Submit(_))) && !(self.after_cr && b == b'\n') {
                return (events, i);
            }
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match self.escape {
                Escape::Start => {
                    self.escape = match b {
                        b'[' => Escape::Csi,
                        b'O' => Escape::Ss3,
                        _ => Escape::None,
                    };
                    continue;
                }
                Escape::Csi => {
                    if (0x40..=0x7e).contains(&b) {
                        self.escape = Escape::None;
                    }
                    continue;
                }
                Escape::Ss3 => {
                    self.escape = Escape::None;
                    continue;
                }
                Escape::None => {}
            }
            if !self.partial.is_empty() || b >= 0x80 {
                self.push_utf8(b, &mut changed);
                continue;
            }
            match b {
                0x1b => self.escape = Escape::Start,
                b'\r' => {
                    flush(&mut events, &mut changed);
                    events.push(Event::Submit(std::mem::take(&mut self.line)));
                    self.after_cr = true;
                }
                b'\n' if !after_cr => {
                    flush(&mut events, &mut changed);
                    events.push(Event::Submit(std::mem::take(&mut self.line)));
                }
                0x7f | 0x08 => changed |= self.line.pop().is_some(),
                0x15 => {
                    changed |= !self.line.is_empty();
                    self.line.clear();
                }
                0x17 => changed |= self.delete_word(),
                0x03 => {
                    flush(&mut events, &mut changed);
                    self.line.clear();
                    events.push(Event::Interrupt);
                }
                0x04 if self.line.is_empty() => {
                    flush(&mut events, &mut changed);
                    events.push(Event::EndOfInput);
                }
                0x0c => {
                    flush(&mut events, &mut changed);
                    events.push(Event::Redraw);
                }
                b'\t' => {
                    flush(&mut events, &mut changed);
                    events.push(Event::Complete);
                }
                0x20..=0x7e => changed |= self.push(b as char),
                _ => {}
            }
        }
        flush(&mut events, &mut changed);
        (events, bytes.len())
    }

    /// Adds `c` unless the line is full or `c` is unsafe on a terminal: the menu echoes
    /// the line, so a bidi formatting character would reorder what the user reads just
    /// as a control character would move the cursor.
    fn push(&mut self, c: char) -> bool {
        if self.line.chars().count() >= MAX_LINE || is_unsafe(c) {
            return false;
        }
        self.line.push(c);
        true
    }

    fn push_utf8(&mut self, b: u8, changed: &mut bool) {
        self.partial.push(b);
        match std::str::from_utf8(&self.partial) {
            Ok(s) => {
                let c = s.chars().next();
                self.partial.clear();
                if let Some(c) = c {
                    *changed |= self.push(c);
                }
            }
            Err(e) if e.error_len().is_some() || self.partial.len() >= 4 => self.partial.clear(),
            Err(_) => {}
        }
    }

    fn delete_word(&mut self) -> bool {
        let before = self.line.len();
        let trimmed = self.line.trim_end().len();
        self.line.truncate(trimmed);
        let cut = self.line.rfind(' ').map(|i| i + 1).unwrap_or(0);
        self.line.truncate(cut);
        self.line.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(s: &str) -> Event {
        Event::Submit(s.to_string())
    }

    #[test]
    fn typing_and_enter_variants() {
        let mut ed = LineEditor::new();
        assert_eq!(ed.feed(b"web"), vec![Event::Changed]);
        assert_eq!(ed.line(), "web");
        assert_eq!(ed.feed(b"1\r\n"), vec![Event::Changed, submit("web1")]);
        assert_eq!(ed.feed(b"db\n2\r"), vec![Event::Changed, submit("db"), Event::Changed, submit("2")]);
        // A CR at the end of one read and the LF in the next are one Enter.
        assert_eq!(ed.feed(b"\n"), vec![]);
        assert_eq!(ed.feed(b"\n"), vec![submit("")]);
    }

    #[test]
    fn feed_line_leaves_what_follows_enter() {
        let mut ed = LineEditor::new();
        let input = b"1\r\necho hi\r";
        let (events, used) = ed.feed_line(input);
        assert_eq!(events, vec![Event::Changed, submit("1")]);
        assert_eq!(&input[used..], b"echo hi\r", "the LF of CR LF is part of the Enter");
        let (events, used) = ed.feed_line(b"2\nls\n");
        assert_eq!((events, used), (vec![Event::Changed, submit("2")], 2));
        assert_eq!(ed.feed_line(b"abc"), (vec![Event::Changed], 3));
    }

    #[test]
    fn editing_keys() {
        let mut ed = LineEditor::new();
        ed.feed(b"abc\x7f\x08d");
        assert_eq!(ed.line(), "ad");
        ed.feed(b" two words \x17");
        assert_eq!(ed.line(), "ad two ");
        ed.feed(b"\x15");
        assert_eq!(ed.line(), "");
        assert_eq!(ed.feed(b"\x7f"), vec![]);
        assert_eq!(ed.feed(b"xy\x03"), vec![Event::Changed, Event::Interrupt]);
        assert_eq!(ed.line(), "");
    }

    #[test]
    fn ctrl_d_only_ends_an_empty_line() {
        let mut ed = LineEditor::new();
        assert_eq!(ed.feed(b"a\x04"), vec![Event::Changed]);
        assert_eq!(ed.feed(b"\x15\x04"), vec![Event::Changed, Event::EndOfInput]);
    }

    #[test]
    fn escape_sequences_are_swallowed() {
        let mut ed = LineEditor::new();
        ed.feed(b"a\x1b[A\x1b[1;5Cb\x1bOPc\x1b[200~d\x1b[201~");
        assert_eq!(ed.line(), "abcd");
        // Split across reads.
        ed.feed(b"\x1b");
        ed.feed(b"[");
        ed.feed(b"3~e");
        assert_eq!(ed.line(), "abcde");
        assert_eq!(ed.feed(b"\x0c\t"), vec![Event::Redraw, Event::Complete]);
    }

    #[test]
    fn utf8_split_across_reads_and_invalid_bytes() {
        let mut ed = LineEditor::new();
        let bytes = "é€".as_bytes();
        ed.feed(&bytes[..1]);
        ed.feed(&bytes[1..3]);
        ed.feed(&bytes[3..]);
        assert_eq!(ed.line(), "é€");
        ed.feed(b"\xff\xfex");
        assert_eq!(ed.line(), "é€x");
        ed.feed("\u{9b}".as_bytes());
        assert_eq!(ed.line(), "é€x", "C1 controls never enter the line");
    }

    #[test]
    fn bidi_formatting_characters_never_enter_the_line() {
        let mut ed = LineEditor::new();
        // U+061C ARABIC LETTER MARK, the input the line_editor fuzz target found.
        assert_eq!(ed.feed(b"\xd8\x9c"), vec![]);
        assert_eq!(ed.line(), "");
        ed.feed("a\u{202e}b\u{2066}c\u{200f}d\u{feff}".as_bytes());
        assert_eq!(ed.line(), "abcd");
    }

    #[test]
    fn line_length_is_bounded() {
        let mut ed = LineEditor::new();
        ed.feed(&[b'a'; 1000]);
        assert_eq!(ed.line().len(), MAX_LINE);
    }
}
