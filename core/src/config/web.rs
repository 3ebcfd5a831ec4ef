//! The `[web]` table: how the web UI is served (TLS, the proxies in front of it).

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::list_or_commas;
use crate::{Error, Result};

/// Whether the web UI speaks TLS itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebTls {
    /// HTTPS: with `tls_cert`/`tls_key` when given, else a self-signed certificate made on
    /// first start in the data dir.
    On,
    /// Plain HTTP, for a TLS-terminating proxy in front (see `trusted_proxies`).
    Off,
}

/// How the web UI is served.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// `on` (the default) or `off`.
    pub tls: WebTls,
    /// PEM certificate chain; read again on SIGHUP and when the file changes.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Addresses of reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto`
    /// are believed (exact addresses). Nobody else's are: by default the client is the
    /// TCP peer. A comma-separated string is accepted too.
    #[serde(deserialize_with = "list_or_commas")]
    pub trusted_proxies: Vec<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig { tls: WebTls::On, tls_cert: None, tls_key: None, trusted_proxies: Vec::new() }
    }
}

impl WebConfig {
    pub(super) fn validate(&self) -> Result<()> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(Error::Config("web.tls_cert, web.tls_key: give both or neither".into()));
        }
        if self.tls == WebTls::Off && self.tls_cert.is_some() {
            return Err(Error::Config("web.tls_cert: set, but web.tls is \"off\"".into()));
        }
        for p in &self.trusted_proxies {
            if p.trim().parse::<IpAddr>().is_err() {
                return Err(Error::Config(format!("web.trusted_proxies: {p:?} is not an IP address")));
            }
        }
        Ok(())
    }

    /// The trusted proxies' addresses (validated at load).
    pub fn proxies(&self) -> Vec<IpAddr> {
        self.trusted_proxies.iter().filter_map(|p| p.trim().parse().ok()).collect()
    }

    pub fn tls_on(&self) -> bool {
        self.tls == WebTls::On
    }
}
