//! QR codes drawn with Unicode half blocks: two rows of modules per line of text, so an
//! otpauth URI fits an 80x24 terminal. Colours are set explicitly (black on bright white)
//! because scanners need dark modules on a light background, and many terminals are dark.

use qrcode::{Color, EcLevel, QrCode};

/// Modules of light border around the code (the spec asks for 4; 2 scans fine on a
/// screen and saves lines).
const QUIET: usize = 2;
const STYLE: &str = "\x1b[30;107m";
const RESET: &str = "\x1b[0m";

/// A drawn code: its lines and its width in columns.
#[derive(Debug, Clone)]
pub struct Drawing {
    pub lines: Vec<String>,
    pub width: usize,
}

/// Draws `data` as a QR code, or `None` when it cannot be encoded.
pub fn draw(data: &str) -> Option<Drawing> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L).ok()?;
    let n = code.width();
    let colors = code.to_colors();
    let size = n + 2 * QUIET;
    let dark = |x: usize, y: usize| -> bool {
        x >= QUIET
            && y >= QUIET
            && x < n + QUIET
            && y < n + QUIET
            && colors[(y - QUIET) * n + (x - QUIET)] == Color::Dark
    };
    let mut lines = Vec::new();
    for y in (0..size).step_by(2) {
        let mut line = String::from(STYLE);
        for x in 0..size {
            line.push(match (dark(x, y), dark(x, y + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        line.push_str(RESET);
        lines.push(line);
    }
    Some(Drawing { lines, width: size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_square_of_half_blocks() {
        let uri = "otpauth://totp/Gatehouse:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Gatehouse&algorithm=SHA1&digits=6&period=30";
        let d = draw(uri).unwrap();
        let code = QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::L).unwrap();
        assert_eq!(d.width, code.width() + 4);
        assert_eq!(d.lines.len(), d.width.div_ceil(2));
        assert!(d.width <= 80, "fits an 80-column terminal: {}", d.width);
        for line in &d.lines {
            let body = line.strip_prefix(STYLE).unwrap().strip_suffix(RESET).unwrap();
            assert_eq!(body.chars().count(), d.width);
            assert!(body.chars().all(|c| matches!(c, '█' | '▀' | '▄' | ' ')));
        }
        // The finder pattern's top edge: a run of 7 dark modules after the quiet zone.
        let first = d.lines[1].strip_prefix(STYLE).unwrap();
        assert!(first.chars().skip(2).take(7).all(|c| c != ' '), "{first}");
    }
}
