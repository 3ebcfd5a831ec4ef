//! Secrets at rest.
//!
//! - Reversible secrets (TOTP seeds, target credentials) are sealed with XChaCha20-Poly1305
//!   under a 256-bit key that lives in `<data_dir>/secret.key` (created on first start,
//!   mode 0600) or comes from `GATEHOUSE_SECRET_KEY` (base64; every node of a cluster must
//!   use the same key). Each sealed value is bound to its row by associated data, so a
//!   ciphertext copied into another row does not open.
//! - One-way secrets (passwords, backup codes, keywords, passcodes) are hashed with
//!   argon2id; verification is constant time in the hash library.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::Rng;
use zeroize::Zeroizing;

use crate::{Config, Error, Result};

const KEY_FILE: &str = "secret.key";
const KEY_ENV: &str = "GATEHOUSE_SECRET_KEY";
/// Sealed values carry this version prefix so the scheme can change later.
const SEAL_PREFIX: &str = "v1:";

/// The key for reversible secrets at rest.
pub struct Vault {
    cipher: XChaCha20Poly1305,
    /// Key of [`Vault::mac`], derived from the vault key (never the same key for two uses).
    mac_key: Zeroizing<[u8; 32]>,
}

impl Vault {
    /// Loads the key from `GATEHOUSE_SECRET_KEY` or the data dir, creating the file (0600)
    /// with a fresh random key when neither exists.
    pub fn load_or_create(config: &Config) -> Result<Vault> {
        if let Ok(encoded) = std::env::var(KEY_ENV) {
            return Self::from_base64(encoded.trim()).map_err(|e| Error::Secrets(format!("{KEY_ENV}: {e}")));
        }
        let path = config.data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(text.trim()).map_err(|e| Error::Secrets(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(&path),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn create(path: &Path) -> Result<Vault> {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(key.as_mut());
        let encoded = Zeroizing::new(B64.encode(key.as_ref()));
        let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(f) => f,
            // Another process created it between our read and our create: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
                return Self::from_base64(text.trim()).map_err(|e| Error::Secrets(format!("{}: {e}", path.display())));
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        file.write_all(format!("{}\n", encoded.as_str()).as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io(path, e))?;
        Ok(Self::from_key(&key))
    }

    /// A vault from a base64-encoded 32-byte key.
    pub fn from_base64(encoded: &str) -> std::result::Result<Vault, String> {
        let bytes = Zeroizing::new(B64.decode(encoded).map_err(|_| "not valid base64".to_string())?);
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| "the key must be 32 bytes".to_string())?;
        Ok(Self::from_key(&key))
    }

    fn from_key(key: &[u8; 32]) -> Vault {
        let mut mac_key = Zeroizing::new([0u8; 32]);
        mac_key.copy_from_slice(&hmac_sha256(key, &[b"gatehouse/v1/mac-key"]));
        Vault { cipher: XChaCha20Poly1305::new(key.into()), mac_key }
    }

    /// A keyed MAC of `data` for `purpose` (HMAC-SHA256, hex): a value the gateway can
    /// check later without storing it, e.g. the login form's CSRF token derived from its
    /// cookie. Every node with the same secrets key computes the same value.
    pub fn mac(&self, purpose: &str, data: &[u8]) -> String {
        hex::encode(hmac_sha256(self.mac_key.as_ref(), &[purpose.as_bytes(), &[0], data]))
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. `"totp:42"`), as printable text.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String> {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .map_err(|_| Error::Secrets("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEAL_PREFIX}{}", B64.encode(out)))
    }

    /// Decrypts a value made by [`Vault::seal`] with the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Zeroizing<Vec<u8>>> {
        let fail = || Error::Secrets(format!("cannot decrypt the secret for {context} (wrong key?)"));
        let body = sealed.strip_prefix(SEAL_PREFIX).ok_or_else(fail)?;
        let raw = B64.decode(body).map_err(|_| fail())?;
        if raw.len() < 24 + 16 {
            return Err(fail());
        }
        let (nonce, ct) = raw.split_at(24);
        let nonce = XNonce::try_from(nonce).map_err(|_| fail())?;
        let plain = self.cipher.decrypt(&nonce, Payload { msg: ct, aad: context.as_bytes() }).map_err(|_| fail())?;
        Ok(Zeroizing::new(plain))
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Hashes a password, code or keyword with argon2id (random salt, PHC string).
pub fn hash_secret(secret: &str) -> Result<String> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Secrets(format!("hashing failed: {e}")))
}

/// Checks `secret` against a PHC hash made by [`hash_secret`]. A malformed hash never
/// matches.
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a throwaway secret, checked when the real one does not exist, so that an
/// unknown user costs the same time as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_secret("gatehouse-timing-equaliser").unwrap_or_default())
}

/// Compares two byte strings in constant time (for their common length).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `n` random bytes from the operating system's generator.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    rand::rng().fill_bytes(&mut buf);
    buf
}

/// The stored form of a 256-bit random token (a web session, a trusted browser, an
/// Authorize link): SHA-256, hex. Such tokens need no slow hash: they cannot be guessed,
/// and a copy of the database must not let anyone use them.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random string of `len` characters from an alphabet without look-alikes
/// (no 0/O, 1/l/I), for one-time passwords and codes people type.
pub fn random_code(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut out = String::with_capacity(len);
    let mut rng = rand::rng();
    while out.len() < len {
        let b = (rng.next_u32() & 0xff) as usize;
        // Rejection sampling keeps the distribution uniform.
        if b < 256 - 256 % ALPHABET.len() {
            out.push(ALPHABET[b % ALPHABET.len()] as char);
        }
    }
    out
}

/// [`hash_secret`] on the blocking pool, so that an argon2 run does not stall the async
/// runtime.
pub async fn hash_blocking(secret: String) -> Result<String> {
    let secret = Zeroizing::new(secret);
    tokio::task::spawn_blocking(move || hash_secret(&secret))
        .await
        .map_err(|e| Error::Secrets(format!("hashing task failed: {e}")))?
}

/// [`verify_secret`] on the blocking pool.
pub async fn verify_blocking(secret: String, hash: String) -> bool {
    let secret = Zeroizing::new(secret);
    tokio::task::spawn_blocking(move || verify_secret(&secret, &hash)).await.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let vault = Vault::from_base64(&B64.encode([7u8; 32])).unwrap();
        let sealed = vault.seal(b"seed", "totp:1").unwrap();
        assert!(!sealed.contains("seed"));
        assert_eq!(vault.open(&sealed, "totp:1").unwrap().as_slice(), b"seed");
        assert!(vault.open(&sealed, "totp:2").is_err());
        let other = Vault::from_base64(&B64.encode([8u8; 32])).unwrap();
        assert!(other.open(&sealed, "totp:1").is_err());
        assert!(vault.open("v1:garbage", "totp:1").is_err());
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
        let a = Vault::load_or_create(&config).unwrap();
        let sealed = a.seal(b"x", "c").unwrap();
        let b = Vault::load_or_create(&config).unwrap();
        assert_eq!(b.open(&sealed, "c").unwrap().as_slice(), b"x");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn hashes_verify_and_are_argon2id() {
        let h = hash_secret("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_secret("correct horse", &h));
        assert!(!verify_secret("wrong horse", &h));
        assert!(!verify_secret("x", "not a hash"));
    }

    #[test]
    fn random_codes_use_the_alphabet() {
        let c = random_code(12);
        assert_eq!(c.len(), 12);
        assert!(c.chars().all(|ch| ch.is_ascii_alphanumeric() && !"01lIO".contains(ch)));
    }
}
