//! The menu's line editor (`gatehouse_shell::line_editor`) fed arbitrary terminal bytes,
//! split into arbitrary reads, through both `feed` and `feed_line`.
//!
//! Asserts: the line and every submitted line stay within `MAX_LINE` characters and
//! carry no control or bidi character (the menu echoes the line to the terminal); the
//! same bytes give the same events however they are split into reads; `feed_line` uses
//! at least one byte of a non-empty input, stops right after a submitted line and never
//! reports more bytes than it was given; no panic.

#![no_main]

use arbitrary::Arbitrary;
use gatehouse_core::text::is_unsafe;
use gatehouse_shell::line_editor::{Event, LineEditor, MAX_LINE};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    bytes: Vec<u8>,
    /// Where the reads are cut, as offsets into `bytes`.
    cuts: Vec<u16>,
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

fuzz_target!(|input: Input| {
    // All at once.
    let mut whole = LineEditor::new();
    let all = whole.feed(&input.bytes);
    check(&whole, &all);

    // In the reads the cuts make.
    let mut cuts: Vec<usize> = input.cuts.iter().map(|&c| c as usize % (input.bytes.len() + 1)).collect();
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
    let mut rest: &[u8] = &input.bytes;
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
