//! TOTP (RFC 6238): SHA-1, 6 digits, 30-second steps, one step of skew either way.
//!
//! The 160-bit seed is sealed in the vault, bound to the user. A code is accepted once:
//! the factor row keeps the last accepted time step, and a code is accepted only for a
//! strictly greater step, by a single conditional UPDATE, so two logins racing with the
//! same code (on one node or several) see exactly one winner.

use async_trait::async_trait;
use totp_rs::{Algorithm, Builder};
use zeroize::Zeroizing;

use super::{Challenge, Method, SecondFactor, Verdict, normalize_code, upsert};
use crate::users::User;
use crate::vault::constant_time_eq;
use crate::{Error, Gateway, Result, Vault, time};

pub const DIGITS: usize = 6;
pub const STEP: u64 = 30;
pub const SKEW: u64 = 1;
const ISSUER: &str = "Gatehouse";

/// The TOTP method.
pub struct Totp;

fn seed_context(user_id: i64) -> String {
    format!("totp-seed:{user_id}")
}

/// A freshly generated seed, not yet stored.
pub struct NewSeed {
    pub secret: Zeroizing<Vec<u8>>,
}

impl NewSeed {
    pub fn generate() -> NewSeed {
        NewSeed { secret: Zeroizing::new(crate::vault::random_bytes(20)) }
    }

    /// Rebuilds a seed from its base32 text (as an enrollment form carries it back).
    pub fn from_base32(text: &str) -> Result<NewSeed> {
        let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
        let bytes = base32_decode(&clean).ok_or_else(|| Error::invalid("key", "not base32"))?;
        if bytes.len() < 16 {
            return Err(Error::invalid("key", "shorter than 128 bits"));
        }
        Ok(NewSeed { secret: Zeroizing::new(bytes) })
    }

    /// The manual-entry key, base32 without padding.
    pub fn base32(&self) -> String {
        base32_encode(&self.secret)
    }

    /// The `otpauth://totp/…` URI that authenticator apps import (and QR codes carry).
    pub fn uri(&self, account: &str) -> String {
        format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
            issuer = ISSUER,
            account = url_escape(account),
            secret = self.base32(),
        )
    }

    /// Checks a code against this (unstored) seed, e.g. to confirm an enrollment.
    pub fn check(&self, code: &str) -> Option<u64> {
        matching_step(&self.secret, code, time::now() as u64)
    }
}

/// Stores `seed` as `user_id`'s TOTP factor, replacing any previous one.
/// `accepted_step` is the step of the code that confirmed the enrollment, if any, so that
/// the same code cannot log in afterwards.
pub async fn enroll(gw: &Gateway, user_id: i64, seed: &NewSeed, accepted_step: Option<u64>) -> Result<()> {
    let sealed = gw.vault.seal(&seed.secret, &seed_context(user_id))?;
    let mut tx = gw.db.begin().await?;
    upsert(&mut tx, user_id, Method::Totp, &sealed, "authenticator app").await?;
    if let Some(step) = accepted_step {
        sqlx::query("UPDATE factors SET last_step = $1 WHERE user_id = $2 AND method = 'totp'")
            .bind(step as i64)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn build(secret: &[u8]) -> totp_rs::Totp {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_skew(0)
        .with_step_duration(STEP)
        .with_secret(secret.to_vec())
        .build_noncompliant()
}

/// The time step within ±[`SKEW`] of `now` whose code equals `code`, if any. Every
/// candidate is compared in constant time.
pub fn matching_step(secret: &[u8], code: &str, now: u64) -> Option<u64> {
    let code = normalize_code(code);
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = build(secret);
    let current = now / STEP;
    let mut found = None;
    for step in current.saturating_sub(SKEW)..=current + SKEW {
        let expected = totp.generate(step * STEP).to_string();
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

async fn seed_of(gw: &Gateway, vault: &Vault, user_id: i64) -> Result<Option<(i64, Zeroizing<Vec<u8>>)>> {
    let row: Option<(i64, Option<String>)> =
        sqlx::query_as("SELECT id, secret FROM factors WHERE user_id = $1 AND method = 'totp'")
            .bind(user_id)
            .fetch_optional(gw.db.pool())
            .await?;
    match row {
        Some((id, Some(sealed))) => Ok(Some((id, vault.open(&sealed, &seed_context(user_id))?))),
        _ => Ok(None),
    }
}

#[async_trait]
impl SecondFactor for Totp {
    fn method(&self) -> Method {
        Method::Totp
    }

    async fn verify(&self, gw: &Gateway, user: &User, _c: &mut Challenge, answer: &str) -> Result<Verdict> {
        let Some((factor_id, seed)) = seed_of(gw, &gw.vault, user.id).await? else {
            return Ok(Verdict::Rejected);
        };
        let Some(step) = matching_step(&seed, answer, time::now() as u64) else {
            return Ok(Verdict::Rejected);
        };
        let done = sqlx::query(
            "UPDATE factors SET last_step = $1, last_used_at = $2
             WHERE id = $3 AND (last_step IS NULL OR last_step < $1)",
        )
        .bind(step as i64)
        .bind(time::now())
        .bind(factor_id)
        .execute(gw.db.pool())
        .await?;
        Ok(if done.rows_affected() == 1 { Verdict::Accepted } else { Verdict::Replayed })
    }
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(data: &[u8]) -> String {
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(BASE32[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(BASE32[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = BASE32.iter().position(|&x| x == c)? as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_vectors_six_digits() {
        // RFC 6238 Appendix B (SHA1), truncated to the 6 digits this method uses.
        for (t, full) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let code = &full[2..];
            assert_eq!(matching_step(RFC_SECRET, code, t), Some(t / STEP), "t={t}");
        }
    }

    #[test]
    fn skew_is_one_step_either_way() {
        let t = 1_111_111_109;
        assert_eq!(matching_step(RFC_SECRET, "081804", t + 30), Some(t / 30));
        assert_eq!(matching_step(RFC_SECRET, "081804", t - 30), Some(t / 30));
        assert_eq!(matching_step(RFC_SECRET, "081804", t + 65), None);
        assert_eq!(matching_step(RFC_SECRET, "081805", t), None);
        assert_eq!(matching_step(RFC_SECRET, "08180", t), None);
        assert_eq!(matching_step(RFC_SECRET, "abcdef", t), None);
        // Near t = 0 the window must not underflow.
        // Near t = 0 the window must not underflow; step 0's code is HOTP(0) = 755224
        // (RFC 4226 Appendix D).
        assert_eq!(matching_step(RFC_SECRET, "755224", 5), Some(0));
        assert_eq!(matching_step(RFC_SECRET, "287082", 5), Some(1));
    }

    #[test]
    fn base32_round_trip_and_uri() {
        assert_eq!(base32_encode(b"12345678901234567890"), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap(), b"12345678901234567890");
        let seed = NewSeed { secret: Zeroizing::new(RFC_SECRET.to_vec()) };
        let uri = seed.uri("alice");
        assert!(uri.starts_with("otpauth://totp/Gatehouse:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"));
        assert!(NewSeed::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").is_ok());
        assert!(NewSeed::from_base32("!!").is_err());
    }
}
