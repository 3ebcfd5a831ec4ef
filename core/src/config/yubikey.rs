//! The `[yubikey]` table: the validation servers that check YubiKey OTPs.

use serde::{Deserialize, Serialize};

use super::{list_or_commas, text_even_if_numeric};
use crate::{Error, Result};

/// The validation service that checks YubiKey OTPs (Yubico's validation protocol 2.0):
/// YubiCloud by default, or self-hosted `yubikey-val` servers. The URLs are tried in order
/// until one gives a signed, definitive answer.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct YubikeyConfig {
    /// The API client id; empty: the `yubikey` method is off.
    #[serde(deserialize_with = "text_even_if_numeric")]
    pub client_id: String,
    /// The API key that signs requests and answers, base64 (better set through
    /// `GATEHOUSE_YUBIKEY__SECRET_KEY`).
    #[serde(deserialize_with = "text_even_if_numeric")]
    pub secret_key: String,
    /// Full verify URLs (`https://host/wsapi/2.0/verify`), in the order they are tried. A
    /// comma-separated string is accepted too (for the environment variable).
    #[serde(deserialize_with = "list_or_commas")]
    pub api_urls: Vec<String>,
    /// Seconds to wait for one server's answer before the next is asked.
    pub timeout_secs: u64,
}

/// YubiCloud's verify endpoint.
pub const YUBICLOUD_URL: &str = "https://api.yubico.com/wsapi/2.0/verify";

impl std::fmt::Debug for YubikeyConfig {
    /// Never shows the API key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YubikeyConfig")
            .field("client_id", &self.client_id)
            .field("secret_key", &if self.secret_key.is_empty() { "" } else { "(set)" })
            .field("api_urls", &self.api_urls)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

impl Default for YubikeyConfig {
    fn default() -> Self {
        YubikeyConfig {
            client_id: String::new(),
            secret_key: String::new(),
            api_urls: vec![YUBICLOUD_URL.to_string()],
            timeout_secs: 5,
        }
    }
}

impl YubikeyConfig {
    /// Whether the client id and the API key are set.
    pub fn enabled(&self) -> bool {
        !self.client_id.is_empty() && !self.secret_key.is_empty()
    }

    /// The API key, decoded. Empty when it is not set or not base64 (which validation
    /// refuses at load).
    pub fn key_bytes(&self) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(self.secret_key.trim()).unwrap_or_default()
    }

    pub(super) fn validate(&self) -> Result<()> {
        let id_ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if self.client_id.len() > 64 || !self.client_id.chars().all(id_ok) {
            return Err(Error::Config("yubikey.client_id: expected up to 64 letters or digits".into()));
        }
        if !self.secret_key.is_empty() && self.key_bytes().is_empty() {
            return Err(Error::Config("yubikey.secret_key: not base64 (the API key as Yubico issued it)".into()));
        }
        match (self.client_id.is_empty(), self.secret_key.is_empty()) {
            (false, true) => {
                return Err(Error::Config("yubikey.secret_key: must be set when yubikey.client_id is".into()));
            }
            (true, false) => {
                return Err(Error::Config("yubikey.client_id: must be set when yubikey.secret_key is".into()));
            }
            _ => {}
        }
        if self.api_urls.is_empty() {
            return Err(Error::Config("yubikey.api_urls: name at least one verify URL".into()));
        }
        for url in &self.api_urls {
            if let Err(why) = check_verify_url(url) {
                return Err(Error::Config(format!("yubikey.api_urls: '{}' {why}", crate::audit::printable(url))));
            }
        }
        if self.timeout_secs == 0 || self.timeout_secs > 60 {
            return Err(Error::Config("yubikey.timeout_secs: must be 1-60".into()));
        }
        Ok(())
    }
}

/// Why `url` cannot be a verify URL: not http(s), no host, or carrying parts that would
/// leak into logs or clash with the request (credentials, a query, a fragment).
fn check_verify_url(url: &str) -> std::result::Result<(), &'static str> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or("is not an http:// or https:// URL")?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.starts_with(':') {
        return Err("has no host");
    }
    if authority.contains('@') {
        return Err("must not carry credentials");
    }
    if url.contains('?') || url.contains('#') {
        return Err("must not carry a query or a fragment");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains spaces or control characters");
    }
    Ok(())
}
