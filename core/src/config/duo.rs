//! The `[duo]` table: the Auth API application that checks the `duo` second factor.

use serde::{Deserialize, Serialize};

use super::text_even_if_numeric;
use crate::{Error, Result};

/// Duo's Auth API v2 (an "Auth API" application in the Duo Admin Panel). The method is on
/// when the integration key, the secret key and the API host are all set.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DuoConfig {
    /// The application's integration key (`DI…`).
    pub integration_key: String,
    /// The application's secret key (better set through `GATEHOUSE_DUO__SECRET_KEY`).
    #[serde(deserialize_with = "text_even_if_numeric", skip_serializing)]
    pub secret_key: String,
    /// The API host, `api-XXXXXXXX.duosecurity.com`, reached over HTTPS. `https://` may be
    /// written out; `http://` is accepted only for a loopback host (a local stand-in).
    pub api_host: String,
    /// Seconds one request to Duo may take.
    pub timeout_secs: u64,
    /// Seconds a push waits for its answer on the phone before the login is refused.
    pub push_timeout_secs: u64,
    /// Lets logins through without the second factor while Duo cannot be reached. Off by
    /// default: an outage refuses Duo logins. Shown on the health page, logged at start-up
    /// and audited on every use.
    pub fail_open: bool,
}

impl std::fmt::Debug for DuoConfig {
    /// Never shows the secret key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuoConfig")
            .field("integration_key", &self.integration_key)
            .field("secret_key", &if self.secret_key.is_empty() { "" } else { "(set)" })
            .field("api_host", &self.api_host)
            .field("timeout_secs", &self.timeout_secs)
            .field("push_timeout_secs", &self.push_timeout_secs)
            .field("fail_open", &self.fail_open)
            .finish()
    }
}

impl Default for DuoConfig {
    fn default() -> Self {
        DuoConfig {
            integration_key: String::new(),
            secret_key: String::new(),
            api_host: String::new(),
            timeout_secs: 10,
            push_timeout_secs: 60,
            fail_open: false,
        }
    }
}

/// Where the Auth API is reached: the scheme and the host (with a port only when it is
/// not the scheme's default), lower-cased as requests are signed with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuoEndpoint {
    /// `https`, or `http` for a loopback host.
    pub scheme: &'static str,
    /// `api-xxxxxxxx.duosecurity.com`, `127.0.0.1:8443`, `[::1]:8443`.
    pub host: String,
}

impl DuoEndpoint {
    /// The address of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.host, path)
    }
}

impl DuoConfig {
    /// Whether the method is configured: keys and host all set.
    pub fn enabled(&self) -> bool {
        !self.integration_key.is_empty() && !self.secret_key.is_empty() && !self.api_host.trim().is_empty()
    }

    /// The API host as requests use it; the error says what is wrong with `api_host`.
    pub fn endpoint(&self) -> Result<DuoEndpoint> {
        parse_endpoint(self.api_host.trim()).map_err(|why| Error::Config(format!("duo.api_host: {why}")))
    }

    pub(super) fn validate(&self) -> Result<()> {
        let set = [
            ("integration_key", !self.integration_key.is_empty()),
            ("secret_key", !self.secret_key.is_empty()),
            ("api_host", !self.api_host.trim().is_empty()),
        ];
        if let Some((given, _)) = set.iter().find(|(_, s)| *s)
            && let Some((missing, _)) = set.iter().find(|(_, s)| !*s)
        {
            return Err(Error::Config(format!("duo.{missing}: must be set when duo.{given} is")));
        }
        let ikey = &self.integration_key;
        if ikey.len() > 64 || !ikey.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::Config(
                "duo.integration_key: expected the letters and digits shown in the Duo Admin Panel (DI…)".into(),
            ));
        }
        let skey = &self.secret_key;
        if skey.len() > 128 || !skey.chars().all(|c| c.is_ascii_graphic()) {
            return Err(Error::Config(
                "duo.secret_key: expected the printable characters shown in the Duo Admin Panel".into(),
            ));
        }
        if !self.api_host.trim().is_empty() {
            self.endpoint()?;
        }
        if self.timeout_secs == 0 || self.timeout_secs > 60 {
            return Err(Error::Config("duo.timeout_secs: must be 1-60".into()));
        }
        if self.push_timeout_secs == 0 || self.push_timeout_secs > 300 {
            return Err(Error::Config("duo.push_timeout_secs: must be 1-300".into()));
        }
        Ok(())
    }
}

/// `host[:port]`, `https://host[:port]`, or `http://host[:port]` for a loopback host only:
/// plain HTTP would let anyone on the path read and change Duo's answers, so it is for a
/// stand-in on this machine (the tests' loopback Duo) and nothing else.
fn parse_endpoint(text: &str) -> std::result::Result<DuoEndpoint, String> {
    let (scheme, rest) = match text.split_once("://") {
        Some((s, rest)) if s.eq_ignore_ascii_case("https") => ("https", rest),
        Some((s, rest)) if s.eq_ignore_ascii_case("http") => ("http", rest),
        Some(_) => return Err("expected a host name, https://HOST or (for a loopback host) http://HOST".into()),
        None => ("https", text),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']');
    if rest.is_empty() || rest.len() > 253 || !rest.chars().all(valid) {
        return Err(format!(
            "'{}' is not a host name (expected api-XXXXXXXX.duosecurity.com, without a path)",
            crate::audit::printable(text)
        ));
    }
    let host = rest.to_ascii_lowercase();
    let (name, port) =
        split_port(&host).ok_or_else(|| format!("'{}' has a bad port", crate::audit::printable(text)))?;
    if scheme == "http" && !super::is_loopback_host(name) {
        return Err(
            "http:// is only accepted for a loopback host (127.0.0.1, ::1, localhost); Duo is reached over https"
                .into(),
        );
    }
    let default_port = if scheme == "https" { 443 } else { 80 };
    let host = match port {
        Some(p) if p != default_port => host,
        _ => name.to_string(),
    };
    Ok(DuoEndpoint { scheme, host })
}

/// Splits `name:port` (`[v6]:port` for IPv6); `None` when the port is not a number.
fn split_port(host: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let (addr, after) = v6.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (&host[..addr.len() + 2], port)
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if name.is_empty() || name == "[]" {
        return None;
    }
    match port {
        None => Some((name, None)),
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).map(|p| (name, Some(p))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(text: &str) -> std::result::Result<DuoEndpoint, String> {
        parse_endpoint(text)
    }

    #[test]
    fn api_hosts() {
        let e = endpoint("API-XXXXXXXX.duosecurity.com").unwrap();
        assert_eq!((e.scheme, e.host.as_str()), ("https", "api-xxxxxxxx.duosecurity.com"));
        assert_eq!(e.url("/auth/v2/check"), "https://api-xxxxxxxx.duosecurity.com/auth/v2/check");
        assert_eq!(endpoint("https://api-x.duosecurity.com/").unwrap().host, "api-x.duosecurity.com");
        assert_eq!(
            endpoint("https://api-x.duosecurity.com:443").unwrap().host,
            "api-x.duosecurity.com",
            "default port dropped"
        );
        assert_eq!(endpoint("api-x.duosecurity.com:8443").unwrap().host, "api-x.duosecurity.com:8443");
        let e = endpoint("http://127.0.0.1:4242").unwrap();
        assert_eq!((e.scheme, e.host.as_str()), ("http", "127.0.0.1:4242"));
        assert_eq!(endpoint("http://[::1]:4242").unwrap().host, "[::1]:4242");
        assert_eq!(endpoint("http://localhost:80").unwrap().host, "localhost");

        assert!(endpoint("http://api-x.duosecurity.com").unwrap_err().contains("loopback"));
        assert!(endpoint("http://10.0.0.1:80").unwrap_err().contains("loopback"));
        assert!(endpoint("ftp://x").is_err());
        assert!(endpoint("https://api-x.duosecurity.com/auth/v2").is_err(), "no path");
        assert!(endpoint("user@api-x.duosecurity.com").is_err());
        assert!(endpoint("api-x.duosecurity.com:http").is_err());
        assert!(endpoint("api-x.duosecurity.com:0").is_err());
        assert!(endpoint("").is_err());
    }
}
