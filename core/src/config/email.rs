//! The `[email]` table: the SMTP relay of the `email` second factor.

use serde::{Deserialize, Serialize};

use super::text_even_if_numeric;
use crate::{Error, Result};

/// How the connection to the SMTP relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption at all: only for a relay on the same host or a trusted network.
    None,
}

/// The SMTP relay that carries mailed codes and Authorize links (the `email` second
/// factor), address confirmations and test mails.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// The relay's host name; empty: email is off.
    pub smtp_host: String,
    /// The relay's port; 0 means the usual one for `tls` (587, 465 or 25).
    pub smtp_port: u16,
    /// `starttls`, `tls` or `none`.
    pub tls: SmtpTls,
    /// User name for SMTP AUTH; empty: no AUTH.
    pub username: String,
    /// Password for SMTP AUTH (better set through `GATEHOUSE_EMAIL__PASSWORD`).
    #[serde(deserialize_with = "text_even_if_numeric")]
    pub password: String,
    /// The sender, e.g. `Gatehouse <gatehouse@example.com>`.
    pub from: String,
    /// Seconds a mailed code or link stays valid.
    pub code_ttl_secs: u64,
    /// Seconds to wait for the relay.
    pub timeout_secs: u64,
}

impl std::fmt::Debug for EmailConfig {
    /// Never shows the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &if self.password.is_empty() { "" } else { "(set)" })
            .field("from", &self.from)
            .field("code_ttl_secs", &self.code_ttl_secs)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            smtp_host: String::new(),
            smtp_port: 0,
            tls: SmtpTls::Starttls,
            username: String::new(),
            password: String::new(),
            from: String::new(),
            code_ttl_secs: 600,
            timeout_secs: 10,
        }
    }
}

impl EmailConfig {
    /// Whether a relay is configured.
    pub fn enabled(&self) -> bool {
        !self.smtp_host.trim().is_empty()
    }

    /// The port in force.
    pub fn port(&self) -> u16 {
        match (self.smtp_port, self.tls) {
            (0, SmtpTls::Starttls) => 587,
            (0, SmtpTls::Tls) => 465,
            (0, SmtpTls::None) => 25,
            (p, _) => p,
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        if self.smtp_host.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
            return Err(Error::Config(format!(
                "email.smtp_host: '{}' is not a host name",
                crate::audit::printable(&self.smtp_host)
            )));
        }
        if self.from.trim().is_empty() {
            return Err(Error::Config(
                "email.from: must be set when email.smtp_host is (e.g. \"Gatehouse <gatehouse@example.com>\")".into(),
            ));
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(Error::Config(format!(
                "email.from: '{}' is not a mail address",
                crate::audit::printable(&self.from)
            )));
        }
        if self.username.is_empty() != self.password.is_empty() {
            return Err(Error::Config("email.username and email.password: set both or neither".into()));
        }
        if !(60..=86_400).contains(&self.code_ttl_secs) {
            return Err(Error::Config("email.code_ttl_secs: must be 60-86400".into()));
        }
        if self.timeout_secs == 0 || self.timeout_secs > 120 {
            return Err(Error::Config("email.timeout_secs: must be 1-120".into()));
        }
        Ok(())
    }
}
