//! The target menu (`gatehouse_shell::menu`) with fuzzed target rows (names, users and
//! hosts as any database row may hold them), a fuzzed typed line and terminal size.
//!
//! Asserts: a full-screen render is the renderer's own clear-screen sequence followed by
//! lines with no control or bidi character but the `\n` that ends each line, every line
//! at most as wide as the terminal, and no more lines than rows (when there is no
//! status message); the plain render has no control or bidi character but `\n`; choices
//! and matches only name entries that exist; Tab completion only lengthens the line with
//! text fit for the terminal; no panic.

#![no_main]

use arbitrary::Arbitrary;
use gatehouse_core::text::is_unsafe;
use gatehouse_shell::line_editor::LineEditor;
use gatehouse_shell::menu::{Choice, Entry, Menu, View};
use gatehouse_shell::sanitize::for_terminal;
use libfuzzer_sys::fuzz_target;

/// What `Menu::render` starts every screen with (`CLEAR` in menu.rs).
const CLEAR: &str = "\x1b[H\x1b[2J";

#[derive(Arbitrary, Debug)]
struct Row {
    name: String,
    username: String,
    host: String,
    port: u16,
}

#[derive(Arbitrary, Debug)]
struct Input {
    rows: Vec<Row>,
    header: String,
    status: Option<Vec<String>>,
    /// What the user typed, as terminal bytes.
    keys: Vec<u8>,
    /// A line submitted as it is (e.g. through a pipe without the editor's filtering).
    line: String,
    tab: bool,
    cols: u32,
    term_rows: u32,
}

fn check_text(text: &str) {
    assert!(!text.chars().any(|c| c != '\n' && is_unsafe(c)), "unsafe character in {text:?}");
}

fuzz_target!(|input: Input| {
    let menu = Menu { entries: input.rows.iter().map(|r| Entry::new(&r.name, &r.username, &r.host, r.port)).collect() };
    let n = menu.entries.len();

    let mut editor = LineEditor::new();
    editor.feed(&input.keys);
    if input.tab {
        if let Some(completed) = menu.complete(editor.line()) {
            assert!(completed.chars().count() > editor.line().trim().chars().count(), "completion did not lengthen");
            check_text(&completed);
            assert!(!completed.contains('\n'), "completion with a line break");
            editor.set_line(&completed);
        }
    }
    for filter in [editor.line(), input.line.as_str()] {
        for i in menu.matching(filter) {
            assert!(i < n, "match {i} of {n} entries");
        }
        match menu.choose(filter) {
            Choice::Target(i) => assert!(i < n, "choice {i} of {n} entries"),
            Choice::Ambiguous(k) => assert!(k >= 2 && k <= n, "{k} ambiguous of {n} entries"),
            Choice::Help | Choice::Exit | Choice::Nothing | Choice::NoMatch => {}
        }
    }

    // The header and status are cleaned by their caller (shell/src/interactive.rs).
    let header = for_terminal(&input.header);
    let status = input.status.map(|lines| lines.iter().map(|l| for_terminal(l)).collect::<Vec<_>>().join("\n"));
    let view = View {
        header: &header,
        status: status.as_deref(),
        filter: editor.line(),
        cols: input.cols,
        rows: input.term_rows,
    };
    let screen = menu.render(&view);
    let body = screen.strip_prefix(CLEAR).expect("a screen starts by clearing the terminal");
    check_text(body);
    let cols = input.cols.max(10) as usize;
    let lines: Vec<&str> = body.split('\n').collect();
    for line in &lines {
        assert!(line.chars().count() <= cols, "line wider than {cols}: {line:?}");
    }
    if status.is_none() {
        let rows = input.term_rows.max(3) as usize;
        assert!(lines.len() <= rows, "{} lines on {rows} rows", lines.len());
    }

    check_text(&menu.render_plain(editor.line()));
    check_text(&menu.render_plain(&input.line));
});
