//! The asciicast v2 format, as `asciinema play` reads it: a JSON header line, then one JSON
//! array per event, `[seconds, "o", text]` for output and `[seconds, "r", "COLSxROWS"]` for
//! a resize. Every line is complete on its own, which is what makes a file cut short by a
//! killed gateway still playable up to its last line.
//!
//! Output arrives as bytes in arbitrary chunks, while the format carries strings: a UTF-8
//! character split across two chunks is held back and emitted whole with the next chunk;
//! bytes that are not UTF-8 at all become U+FFFD.

use serde_json::json;

/// The header line (without the newline).
pub fn header(width: u32, height: u32, timestamp: i64, term: Option<&str>, title: &str) -> String {
    let mut env = serde_json::Map::new();
    env.insert("TERM".into(), json!(term.unwrap_or("xterm")));
    env.insert("SHELL".into(), json!("/bin/sh"));
    json!({
        "version": 2,
        "width": width,
        "height": height,
        "timestamp": timestamp,
        "title": title,
        "env": env,
    })
    .to_string()
}

/// Turns output chunks into event lines, keeping split UTF-8 characters whole.
#[derive(Debug, Default)]
pub struct Encoder {
    carry: Vec<u8>,
}

impl Encoder {
    /// The `"o"` event line for `bytes` at `seconds`, or `None` when every byte is held
    /// back (part of a character whose end has not arrived).
    pub fn output(&mut self, seconds: f64, bytes: &[u8]) -> Option<String> {
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(bytes);
        let keep = incomplete_tail(&data);
        self.carry = data.split_off(data.len() - keep);
        if data.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&data);
        Some(event(seconds, "o", &text))
    }

    /// Whatever is still held back, as a final event (at the end of a session).
    pub fn finish(&mut self, seconds: f64) -> Option<String> {
        if self.carry.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.carry);
        Some(event(seconds, "o", &String::from_utf8_lossy(&data)))
    }
}

/// The `"r"` event line for a resize.
pub fn resize(seconds: f64, cols: u32, rows: u32) -> String {
    event(seconds, "r", &format!("{cols}x{rows}"))
}

fn event(seconds: f64, code: &str, data: &str) -> String {
    // Rounded to microseconds: players need no more, and the lines stay short.
    let t = (seconds * 1e6).round() / 1e6;
    json!([t, code, data]).to_string()
}

/// How many bytes at the end of `data` start a UTF-8 character that is not complete yet.
fn incomplete_tail(data: &[u8]) -> usize {
    let n = data.len();
    for back in 1..=3.min(n) {
        let b = data[n - back];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue; // continuation byte: look further back for the lead byte
        }
        let need = match b {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => return 0,
        };
        return if need > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_the_v2_fields() {
        let h: serde_json::Value =
            serde_json::from_str(&header(120, 40, 1_700_000_000, Some("xterm-256color"), "alice@web1")).unwrap();
        assert_eq!(h["version"], 2);
        assert_eq!(h["width"], 120);
        assert_eq!(h["height"], 40);
        assert_eq!(h["timestamp"], 1_700_000_000);
        assert_eq!(h["env"]["TERM"], "xterm-256color");
    }

    #[test]
    fn output_events_escape_control_characters() {
        let mut e = Encoder::default();
        let line = e.output(1.5, b"\x1b[1mhi\r\n\"q\"").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v[0], 1.5);
        assert_eq!(v[1], "o");
        assert_eq!(v[2], "\x1b[1mhi\r\n\"q\"");
        assert!(!line.contains('\x1b') && !line.contains('\n'));
        assert_eq!(resize(2.0, 100, 30), "[2.0,\"r\",\"100x30\"]");
    }

    #[test]
    fn split_characters_are_kept_whole() {
        let mut e = Encoder::default();
        let euro = "€".as_bytes(); // 3 bytes
        assert_eq!(e.output(0.1, &[b'a', euro[0]]).as_deref(), Some("[0.1,\"o\",\"a\"]"));
        assert_eq!(e.output(0.2, &euro[1..2]), None);
        assert_eq!(e.output(0.3, &euro[2..]).as_deref(), Some("[0.3,\"o\",\"€\"]"));
        // Invalid bytes become replacement characters instead of breaking the file.
        let line = e.output(0.4, b"\xff\xfe").unwrap();
        assert!(line.contains('\u{fffd}'));
        // A dangling lead byte is flushed at the end.
        assert_eq!(e.output(0.5, &[0xe2]), None);
        assert!(e.finish(0.6).unwrap().contains('\u{fffd}'));
        assert_eq!(e.finish(0.7), None);
    }
}
