//! Outgoing mail through the configured SMTP relay (lettre): mailed codes and Authorize
//! links, address confirmations and the administrator's test mail. One connection per
//! mail; STARTTLS or TLS as configured, never silently downgraded.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{EmailConfig, SmtpTls};

/// Why a mail did not go out. The texts name the relay, never a credential.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("no SMTP relay is configured")]
    NotConfigured,
    #[error("the mail could not be built: {0}")]
    Build(String),
    #[error("the SMTP relay {relay} did not take the mail: {reason}")]
    Relay { relay: String, reason: String },
}

/// Longest address accepted (RFC 5321's path limit).
const MAX_ADDRESS: usize = 254;

/// Checks and normalises a mail address typed by a person: trimmed, the domain
/// lower-cased. The error says what is wrong in plain words.
pub fn parse_address(input: &str) -> Result<String, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("Enter a mail address.".into());
    }
    if s.len() > MAX_ADDRESS || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("That is not a mail address.".into());
    }
    let address: Address = s.parse().map_err(|_| "That is not a mail address (name@example.com).".to_string())?;
    Ok(format!("{}@{}", address.user(), address.domain().to_ascii_lowercase()))
}

/// An address as shown to someone who may not be its owner: the first character of the
/// local part, then asterisks, then the domain (`a***@example.com`).
pub fn mask(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// Sends one plain-text mail to `to`.
pub async fn send(config: &EmailConfig, to: &str, subject: &str, body: String) -> Result<(), MailError> {
    if !config.enabled() {
        return Err(MailError::NotConfigured);
    }
    let from: Mailbox = config.from.parse().map_err(|_| MailError::Build("email.from is not a mail address".into()))?;
    let to: Mailbox = to.parse().map_err(|_| MailError::Build("the recipient is not a mail address".into()))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| MailError::Build(e.to_string()))?;
    let host = config.smtp_host.trim();
    let relay = format!("{host}:{}", config.port());
    let failed = |e: &dyn std::fmt::Display| MailError::Relay { relay: relay.clone(), reason: e.to_string() };
    let tls = match config.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls => Tls::Required(TlsParameters::new(host.to_string()).map_err(|e| failed(&e))?),
        SmtpTls::Tls => Tls::Wrapper(TlsParameters::new(host.to_string()).map_err(|e| failed(&e))?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(config.port())
        .tls(tls)
        .timeout(Some(Duration::from_secs(config.timeout_secs)));
    if !config.username.is_empty() {
        builder = builder.credentials(Credentials::new(config.username.clone(), config.password.clone()));
    }
    let transport = builder.build();
    // The transport's own timeout covers each command; this bounds the whole exchange.
    let limit = Duration::from_secs(config.timeout_secs.saturating_mul(3));
    match tokio::time::timeout(limit, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(failed(&e)),
        Err(_) => Err(failed(&"no answer in time")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_masked() {
        assert_eq!(parse_address("  Alice@Example.COM ").unwrap(), "Alice@example.com");
        assert!(parse_address("").is_err());
        assert!(parse_address("alice").is_err());
        assert!(parse_address("alice@").is_err());
        assert!(parse_address("a b@example.com").is_err());
        assert!(parse_address("alice@example.com\r\nBcc: x@y.z").is_err(), "no header injection");
        assert_eq!(mask("alice@example.com"), "a***@example.com");
        assert_eq!(mask("x"), "***");
    }
}
