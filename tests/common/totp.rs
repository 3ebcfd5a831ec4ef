//! TOTP codes computed by `oathtool`, an implementation independent of the one under test,
//! so a bug shared by the generator and the verifier cannot hide. [`code_for_step`] computes
//! the same codes in process (RFC 6238 over the `hmac` crate, not the product's `totp-rs`),
//! for a load driver that needs a thousand codes at the moment each is typed; check it
//! against [`totp_at`] before relying on it.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::process::{describe, run_with_timeout, stdout};

/// Seconds per TOTP step.
pub const STEP: u64 = 30;

fn epoch() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The current 6-digit code for a base32 secret.
pub fn totp_now(secret_b32: &str) -> String {
    totp_at(secret_b32, epoch())
}

/// The 6-digit code for a base32 secret at `unix_time`.
pub fn totp_at(secret_b32: &str, unix_time: u64) -> String {
    let out = run_with_timeout(
        Command::new("oathtool").args(["--totp", "-b", "--now", &format!("@{unix_time}"), secret_b32]),
        None,
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "oathtool failed:\n{}", describe(&out));
    stdout(&out).trim().to_string()
}

/// The 6-digit code of time step `step` (Unix time / [`STEP`]) for a base32 secret,
/// computed in process. Panics on a secret that is not base32.
pub fn code_for_step(secret_b32: &str, step: u64) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let key = base32_decode(secret_b32).unwrap_or_else(|| panic!("not a base32 secret: {secret_b32}"));
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&key).expect("HMAC accepts any key length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // RFC 4226 dynamic truncation.
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([digest[offset], digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
    format!("{:06}", (bin & 0x7fff_ffff) % 1_000_000)
}

/// The current time step.
pub fn current_step() -> u64 {
    epoch() / STEP
}

/// RFC 4648 base32 (upper or lower case, `=` padding optional).
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut bits, mut acc) = (0u32, 0u64);
    for c in text.trim_end_matches('=').chars() {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u64 - 'A' as u64,
            c @ '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => return None,
        };
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// An authenticator that never hands out two codes of the same time step, so a test can
/// log in several times in a row without tripping the gateway's replay protection. It uses
/// the previous step while it is safely valid, then the current and the next one, and
/// waits for the clock when all three are spent.
pub struct TotpDevice {
    secret: String,
    last_step: Option<u64>,
}

impl TotpDevice {
    pub fn new(secret_b32: &str) -> TotpDevice {
        TotpDevice { secret: secret_b32.to_string(), last_step: None }
    }

    /// The base32 secret.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// A code the gateway will accept now (±1 step) that is newer than every code this
    /// device handed out before.
    pub fn code(&mut self) -> String {
        loop {
            let now = epoch();
            let current = now / STEP;
            // The previous step stays valid until the current one ends; keep a margin for
            // the login round trip.
            let earliest = if now % STEP < STEP - 8 { current.saturating_sub(1) } else { current };
            let step = match self.last_step {
                Some(last) => earliest.max(last + 1),
                None => earliest,
            };
            if step <= current + 1 {
                self.last_step = Some(step);
                return totp_at(&self.secret, step * STEP);
            }
            let wait = STEP - now % STEP;
            std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(200));
        }
    }
}
