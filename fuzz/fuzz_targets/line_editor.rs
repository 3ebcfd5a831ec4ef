//! The menu's line editor (`gatehouse_shell::line_editor`) fed arbitrary terminal bytes,
//! split into arbitrary reads, through both `feed` and `feed_line`.
//!
//! Asserts: the line and every submitted line stay within `MAX_LINE` characters and
//! carry no control or bidi character (the menu echoes the line to the terminal); the
//! same bytes give the same events however they are split into reads; `feed_line` uses
//! at least one byte of a non-empty input, stops right after a submitted line and never
//! reports more bytes than it was given; no panic.

#![no_main]

use gatehouse_core::text::is_unsafe;
use gatehouse_shell::line_editor::{Event, LineEditor, MAX_LINE};
use libfuzzer_sys::fuzz_target;

/// The input: its first octet `n` (mod 8) counts the cuts, the next `n` octets place them,
/// the rest are the terminal's bytes.
struct Input<'a> {
    bytes: &'a [u8],
    /// Where the reads are cut, as offsets into `bytes`.
    cuts: Vec<usize>,
}

fn input(data: &[u8]) -> Option<Input<'_>> {
    let (&n, rest) = data.split_first()?;
    let n = usize::from(n % 8).min(rest.len());
    let (cuts, bytes) = rest.split_at(n);
    // A cut at octet c of 256 falls at the same proportion of the bytes.
    Some(Input { bytes, cuts: cuts.iter().map(|&c| usize::from(c) * (bytes.len() + 1) / 256).collect() })
}

fn check_text(text: &str) {
    assert!(text.chars().count() <= MAX_LINE, "line longer than MAX_LINE: {}", text.chars().count());
    assert!(!text.chars().any(is_unsafe), "unsafe character in the line {text:?}");
}

fn check(ed: &LineEditor, events: &[Event]) {
    check_text(ed.line());
    for e in events {
        if let Event::Submit(line) = e {
            check_text(line);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = input(data) else { return };
    // All at once.
    let mut whole = LineEditor::new();
    let all = whole.feed(input.bytes);
    check(&whole, &all);

    // In the reads the cuts make.
    let mut cuts = input.cuts;
    cuts.sort_unstable();
    cuts.push(input.bytes.len());
    let mut split = LineEditor::new();
    let mut submitted = Vec::new();
    let mut start = 0;
    for cut in cuts {
        let events = split.feed(&input.bytes[start..cut]);
        check(&split, &events);
        submitted.extend(events.into_iter().filter(|e| !matches!(e, Event::Changed)));
        start = cut;
    }
    let expected: Vec<&Event> = all.iter().filter(|e| !matches!(e, Event::Changed)).collect();
    assert_eq!(submitted.iter().collect::<Vec<_>>(), expected, "events depend on how the bytes were read");
    assert_eq!(split.line(), whole.line(), "the line depends on how the bytes were read");

    // Line by line, as the menu reads before handing the rest to a target session.
    let mut by_line = LineEditor::new();
    let mut rest: &[u8] = input.bytes;
    let mut lines = Vec::new();
    while !rest.is_empty() {
        let (events, used) = by_line.feed_line(rest);
        check(&by_line, &events);
        assert!(used >= 1 && used <= rest.len(), "feed_line used {used} of {} bytes", rest.len());
        let submits = events.iter().filter(|e| matches!(e, Event::Submit(_))).count();
        assert!(submits <= 1, "feed_line went past a submitted line");
        if used < rest.len() {
            assert!(matches!(events.last(), Some(Event::Submit(_))), "feed_line stopped early without a line");
        }
        lines.extend(events.into_iter().filter(|e| !matches!(e, Event::Changed)));
        rest = &rest[used..];
    }
    assert_eq!(lines.iter().collect::<Vec<_>>(), expected, "feed_line and feed disagree");
});
