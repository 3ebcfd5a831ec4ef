//! The asciicast v2 writer (`gatehouse_shell::asciicast`) with fuzzed terminal output in
//! fuzzed chunks, resizes and header fields: a recording is what a target (or a user
//! typing into it) chose to print.
//!
//! Asserts: every line is one line of valid JSON (parsed back with serde_json); the
//! header has the v2 fields with the values given; an event is `[time, code, text]` with
//! the time as a number (for a time a session can have); the texts of the output events
//! joined give back the bytes exactly as one lossy UTF-8 decoding of all of them would,
//! so no byte is lost or doubled at a chunk boundary; no panic.

#![no_main]

use arbitrary::Arbitrary;
use gatehouse_shell::asciicast::{Encoder, header, resize};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Arbitrary, Debug)]
enum Event {
    Output(Vec<u8>),
    Resize(u32, u32),
}

#[derive(Arbitrary, Debug)]
struct Input {
    width: u32,
    height: u32,
    timestamp: i64,
    term: Option<String>,
    title: String,
    events: Vec<(u32, Event)>,
}

fn one_json_line(line: &str) -> Value {
    assert!(!line.contains('\n') && !line.contains('\r'), "a line break inside {line:?}");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
}

fn check_event(line: &str, code: &str) -> String {
    let v = one_json_line(line);
    let a = v.as_array().expect("an event is an array");
    assert_eq!(a.len(), 3, "{line}");
    assert!(a[0].is_number(), "time is not a number: {line}");
    assert_eq!(a[1], code);
    a[2].as_str().expect("event data is a string").to_string()
}

fuzz_target!(|input: Input| {
    let h = one_json_line(&header(input.width, input.height, input.timestamp, input.term.as_deref(), &input.title));
    assert_eq!(h["version"], 2);
    assert_eq!(h["width"], input.width);
    assert_eq!(h["height"], input.height);
    assert_eq!(h["timestamp"], input.timestamp);
    assert_eq!(h["title"], input.title.as_str());
    assert_eq!(h["env"]["TERM"], input.term.as_deref().unwrap_or("xterm"));

    let mut encoder = Encoder::default();
    let mut all = Vec::new();
    let mut text = String::new();
    // Seconds since the start, in microseconds: up to about 71 minutes per step.
    let mut micros = 0u64;
    for (step, event) in input.events {
        micros += u64::from(step);
        let seconds = micros as f64 / 1e6;
        match event {
            Event::Output(bytes) => {
                all.extend_from_slice(&bytes);
                if let Some(line) = encoder.output(seconds, &bytes) {
                    text.push_str(&check_event(&line, "o"));
                }
            }
            Event::Resize(cols, rows) => {
                assert_eq!(check_event(&resize(seconds, cols, rows), "r"), format!("{cols}x{rows}"));
            }
        }
    }
    if let Some(line) = encoder.finish(micros as f64 / 1e6) {
        text.push_str(&check_event(&line, "o"));
    }
    assert_eq!(text, String::from_utf8_lossy(&all), "chunking changed the text");
});
