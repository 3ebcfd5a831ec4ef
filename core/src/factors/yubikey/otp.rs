//! The shape of a Yubico OTP as a key types it: a public id (on keys programmed by Yubico,
//! 12 characters), then one AES-128 block as 32 characters, all in modhex (the hex digits
//! spelled `cbdefghijklnrtuv`, letters that sit in the same place on most keyboard
//! layouts). Only the validation server holds the AES key, so nothing here can tell a
//! real OTP from a well-formed fake: this is the format check done before asking it.

use std::fmt;

use sha2::{Digest, Sha256};

/// The modhex alphabet, in the order of the hex digits 0–f.
pub const MODHEX: &[u8; 16] = b"cbdefghijklnrtuv";
/// Length of the encrypted part, in modhex characters (16 bytes).
pub const CIPHERTEXT_LEN: usize = 32;
/// Length of the public id of a key that YubiCloud knows, in modhex characters.
pub const PUBLIC_ID_LEN: usize = 12;
/// Longest OTP: a public id of at most 16 characters, then the encrypted part.
pub const MAX_LEN: usize = 48;

/// A string with the shape of a Yubico OTP (32–48 modhex characters), lower-cased. It is
/// not verified: only the validation server can say whether it is valid.
#[derive(Clone, PartialEq, Eq)]
pub struct Otp(String);

/// Why a typed string is not an OTP. The messages never quote the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OtpError {
    #[error("a YubiKey OTP is 32 to 48 characters long, this is {0}; touch the key once with the cursor in the field")]
    Length(usize),
    #[error("a YubiKey OTP has only the letters cbdefghijklnrtuv; touch the key once with the cursor in the field")]
    NotModhex,
}

impl Otp {
    /// Checks the shape of `text`: surrounding white space is dropped and upper case (a
    /// key typing while Caps Lock is on) is folded to lower case.
    pub fn parse(text: &str) -> Result<Otp, OtpError> {
        let otp = text.trim().to_ascii_lowercase();
        let len = otp.chars().count();
        if !(CIPHERTEXT_LEN..=MAX_LEN).contains(&len) {
            return Err(OtpError::Length(len));
        }
        if !otp.bytes().all(|b| MODHEX.contains(&b)) {
            return Err(OtpError::NotModhex);
        }
        Ok(Otp(otp))
    }

    /// The whole OTP, for the validation request. Never log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The public id: everything before the encrypted block (empty for a key programmed
    /// without one).
    pub fn public_id(&self) -> &str {
        &self.0[..self.0.len() - CIPHERTEXT_LEN]
    }

    /// A 64-bit digest of the OTP, kept to refuse the same OTP twice. An OTP is single-use
    /// and spent once accepted, so the digest reveals nothing worth having.
    pub fn fingerprint(&self) -> i64 {
        let digest = Sha256::digest(self.0.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(first)
    }
}

impl fmt::Debug for Otp {
    /// Shows the public id only: the rest is a one-time secret until it is used.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Otp({}…)", self.public_id())
    }
}

/// Whether `id` is a 12-character modhex public id.
pub fn is_public_id(id: &str) -> bool {
    id.len() == PUBLIC_ID_LEN && id.bytes().all(|b| MODHEX.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    // From Yubico's validation protocol documentation.
    const SAMPLE: &str = "vvvvvvcucrlcietctckflvnncdgckubflugerlnr";

    #[test]
    fn parses_the_shape_only() {
        let otp =
            Otp::parse(&format!("  {}\n", "cccjgjgkhcbb".to_owned() + "irdrfdnlnghhfgrtnnlgedjlftrbdeut")).unwrap();
        assert_eq!(otp.public_id(), "cccjgjgkhcbb");
        assert_eq!(otp.as_str().len(), 44);
        assert_eq!(Otp::parse(SAMPLE).unwrap().public_id(), "vvvvvvcu");
        assert_eq!(Otp::parse(&"C".repeat(32)).unwrap().public_id(), "", "no public id; caps lock folded");
        assert_eq!(Otp::parse(&"c".repeat(31)), Err(OtpError::Length(31)));
        assert_eq!(Otp::parse(&"c".repeat(49)), Err(OtpError::Length(49)));
        assert_eq!(Otp::parse(""), Err(OtpError::Length(0)));
        assert_eq!(Otp::parse(&"a".repeat(44)), Err(OtpError::NotModhex), "a is not modhex");
        assert_eq!(Otp::parse(&format!("{}é", "c".repeat(40))), Err(OtpError::NotModhex));
        assert_eq!(Otp::parse("123456"), Err(OtpError::Length(6)));
    }

    #[test]
    fn errors_and_debug_never_show_the_otp() {
        let otp = Otp::parse(SAMPLE).unwrap();
        assert_eq!(format!("{otp:?}"), "Otp(vvvvvvcu…)");
        let err = Otp::parse(&format!("{SAMPLE}x")).unwrap_err().to_string();
        assert!(!err.contains("vvvv"), "{err}");
    }

    #[test]
    fn fingerprints_differ_per_otp() {
        let a = Otp::parse(SAMPLE).unwrap();
        let b = Otp::parse(&SAMPLE.replace("lnr", "lnt")).unwrap();
        assert_eq!(a.fingerprint(), Otp::parse(&SAMPLE.to_uppercase()).unwrap().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn public_ids() {
        assert!(is_public_id("cccjgjgkhcbb"));
        assert!(!is_public_id("cccjgjgkhcb"));
        assert!(!is_public_id("cccjgjgkhcba"));
    }
}
