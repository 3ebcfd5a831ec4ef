//! The `[radius]` table: the RADIUS servers that check the `radius` second factor.

use serde::{Deserialize, Serialize};

use super::{list_or_commas, text_even_if_numeric};
use crate::{Error, Result};

/// RADIUS servers that check the `radius` second factor (RFC 2865 PAP with a
/// Message-Authenticator). The servers are tried in order; each gets `retries`
/// retransmissions `timeout_secs` apart before the next one is asked.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RadiusConfig {
    /// `host:port` of each server, in the order they are tried; empty: RADIUS is off. A
    /// comma-separated string is accepted too (for the environment variable).
    #[serde(deserialize_with = "list_or_commas")]
    pub servers: Vec<String>,
    /// The shared secret (better set through `GATEHOUSE_RADIUS__SECRET`).
    #[serde(deserialize_with = "text_even_if_numeric")]
    pub secret: String,
    /// Seconds to wait for an answer to one transmission.
    pub timeout_secs: u64,
    /// Retransmissions to one server before the next is tried.
    pub retries: u32,
    /// NAS-Identifier sent with each request; empty means the node name.
    pub nas_identifier: String,
    /// Also check the passwords of users whose store is `radius` (`gatehouse user store
    /// NAME radius`), with Access-Challenge answers as further prompts.
    pub primary: bool,
}

impl std::fmt::Debug for RadiusConfig {
    /// Never shows the shared secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RadiusConfig")
            .field("servers", &self.servers)
            .field("secret", &if self.secret.is_empty() { "" } else { "(set)" })
            .field("timeout_secs", &self.timeout_secs)
            .field("retries", &self.retries)
            .field("nas_identifier", &self.nas_identifier)
            .field("primary", &self.primary)
            .finish()
    }
}

impl Default for RadiusConfig {
    fn default() -> Self {
        RadiusConfig {
            servers: Vec::new(),
            secret: String::new(),
            timeout_secs: 3,
            retries: 2,
            nas_identifier: String::new(),
            primary: false,
        }
    }
}

impl RadiusConfig {
    /// Whether any server is configured.
    pub fn enabled(&self) -> bool {
        !self.servers.is_empty()
    }

    pub(super) fn validate(&self) -> Result<()> {
        for server in &self.servers {
            let port = server.rsplit_once(':').and_then(|(host, port)| (!host.is_empty()).then_some(port));
            if port.and_then(|p| p.parse::<u16>().ok()).filter(|p| *p != 0).is_none() {
                return Err(Error::Config(format!(
                    "radius.servers: '{}' is not host:port",
                    crate::audit::printable(server)
                )));
            }
        }
        if self.enabled() && self.secret.is_empty() {
            return Err(Error::Config("radius.secret: must be set when radius.servers is".into()));
        }
        if self.timeout_secs == 0 || self.timeout_secs > 60 {
            return Err(Error::Config("radius.timeout_secs: must be 1-60".into()));
        }
        if self.retries > 10 {
            return Err(Error::Config("radius.retries: must be 0-10".into()));
        }
        if self.primary && !self.enabled() {
            return Err(Error::Config("radius.primary: needs radius.servers".into()));
        }
        if self.nas_identifier.len() > 253 {
            return Err(Error::Config("radius.nas_identifier: at most 253 bytes".into()));
        }
        Ok(())
    }
}
