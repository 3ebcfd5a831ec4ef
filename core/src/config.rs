//! The gateway's configuration: one struct, read from a TOML file, then overridden by
//! `GATEHOUSE_*` environment variables, then by command-line flags.
//!
//! Unknown keys and bad values stop start-up with a message that names the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

mod audit;
mod duo;
mod email;
mod ldap;
mod limits;
mod metrics;
mod radius;
mod recordings;
mod web;
mod yubikey;
pub use audit::AuditConfig;
pub use duo::{DuoConfig, DuoEndpoint};
pub use email::{EmailConfig, SmtpTls};
pub use ldap::{LdapConfig, LdapServer};
pub use limits::{LockoutConfig, LogConfig, LogFormat, SshConfig};
pub use metrics::MetricsConfig;
pub use radius::RadiusConfig;
pub use recordings::{OnFailure, RecordingsConfig, S3Config};
pub use web::{WebConfig, WebTls};
pub use yubikey::{YUBICLOUD_URL, YubikeyConfig};

/// Environment variables with the `GATEHOUSE_` prefix that are not config keys.
const NON_KEY_VARIABLES: &[&str] = &["GATEHOUSE_CONFIG", "GATEHOUSE_SECRET_KEY", "GATEHOUSE_LOG"];

/// Gateway configuration. Every field has a default, so an empty file (or none) is valid.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the SQLite database, host keys, the secrets key and recordings.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://…`; empty means `sqlite://<data_dir>/gatehouse.db`.
    pub database_url: String,
    /// Address the SSH frontend listens on.
    pub ssh_listen: SocketAddr,
    /// Address the web UI listens on.
    pub web_listen: SocketAddr,
    /// The web UI's address as users reach it (used in links and enrollment hints); empty
    /// means `https://localhost:<web port>` (`http://` when `web.tls` is off).
    pub public_url: String,
    /// How the web UI is served: TLS, trusted proxies.
    pub web: WebConfig,
    /// Recording retention and what a session does when its recording fails.
    pub recordings: RecordingsConfig,
    /// The Prometheus exporter.
    pub metrics: MetricsConfig,
    /// Copies of the audit log: a JSON-lines file, syslog.
    pub audit: AuditConfig,
    /// The process log's format.
    pub log: LogConfig,
    /// This node's name in audit events and approval pages; empty means the host name.
    pub node_name: String,
    /// Failed-attempt lockout.
    pub lockout: LockoutConfig,
    /// SSH frontend limits.
    pub ssh: SshConfig,
    /// An LDAP server or Active Directory for directory users' passwords and groups.
    pub ldap: LdapConfig,
    /// RADIUS servers for the `radius` second factor.
    pub radius: RadiusConfig,
    /// Duo's Auth API for the `duo` second factor.
    pub duo: DuoConfig,
    /// The SMTP relay for the `email` second factor.
    pub email: EmailConfig,
    /// YubiCloud (or self-hosted) validation servers for the `yubikey` second factor.
    pub yubikey: YubikeyConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            database_url: String::new(),
            ssh_listen: SocketAddr::from(([0, 0, 0, 0], 2222)),
            web_listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            public_url: String::new(),
            web: WebConfig::default(),
            recordings: RecordingsConfig::default(),
            metrics: MetricsConfig::default(),
            audit: AuditConfig::default(),
            log: LogConfig::default(),
            node_name: String::new(),
            lockout: LockoutConfig::default(),
            ssh: SshConfig::default(),
            ldap: LdapConfig::default(),
            radius: RadiusConfig::default(),
            duo: DuoConfig::default(),
            email: EmailConfig::default(),
            yubikey: YubikeyConfig::default(),
        }
    }
}

/// Values given on the command line; they win over the file and the environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub ssh_listen: Option<String>,
    pub web_listen: Option<String>,
}

impl Config {
    /// Loads the file at `path` (if any), applies the `GATEHOUSE_*` variables from `env`,
    /// then `overrides`, and validates the result.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config> {
        let text = match path {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?),
            None => None,
        };
        Config::from_text(path.zip(text.as_deref()), env, overrides)
    }

    /// Like [`Config::load`] with the file already read: `file` is its path (named in
    /// errors) and its text, or none for no file. Parses and validates without touching
    /// the file system, which is what lets the fuzz targets (`fuzz/`) feed it any text.
    pub fn from_text(
        file: Option<(&Path, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config> {
        let mut table = match file {
            Some((path, text)) => text
                .parse::<toml::Table>()
                .map_err(|e| Error::Config(format!("{}: {}", path.display(), e.message())))?,
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix("GATEHOUSE_") else { continue };
            if NON_KEY_VARIABLES.contains(&name.as_str()) {
                continue;
            }
            set_path(&mut table, &key.to_ascii_lowercase(), env_value(&value));
        }
        let set = |table: &mut toml::Table, key: &str, value: &Option<String>| {
            if let Some(v) = value {
                table.insert(key.to_string(), toml::Value::String(v.clone()));
            }
        };
        if let Some(dir) = &overrides.data_dir {
            table.insert("data_dir".into(), toml::Value::String(dir.display().to_string()));
        }
        set(&mut table, "database_url", &overrides.database_url);
        set(&mut table, "ssh_listen", &overrides.ssh_listen);
        set(&mut table, "web_listen", &overrides.web_listen);

        let config: Config = Config::deserialize(toml::Value::Table(table))
            .map_err(|e| Error::Config(e.to_string().trim().replace('\n', " ")))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(Error::Config("data_dir: must not be empty".into()));
        }
        let url = self.database_url.trim();
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(Error::Config(
                "database_url: expected sqlite://PATH or postgres://… (or empty for the default)".into(),
            ));
        }
        let web_address = self.public_url.starts_with("http://") || self.public_url.starts_with("https://");
        if !self.public_url.is_empty() && !web_address {
            return Err(Error::Config("public_url: expected an http:// or https:// address".into()));
        }
        if self.lockout.user_threshold == 0 || self.lockout.source_threshold == 0 {
            return Err(Error::Config("lockout: thresholds must be at least 1".into()));
        }
        if self.ssh.gate_attempts == 0 {
            return Err(Error::Config("ssh.gate_attempts: must be at least 1".into()));
        }
        if self.ssh.version_timeout_secs == 0 {
            return Err(Error::Config("ssh.version_timeout_secs: must be at least 1".into()));
        }
        if self.ssh.max_pending == 0 || self.ssh.max_pending_per_source == 0 {
            return Err(Error::Config("ssh.max_pending, ssh.max_pending_per_source: must be at least 1".into()));
        }
        if self.ssh.max_connections < self.ssh.max_pending {
            return Err(Error::Config("ssh.max_connections: must be at least ssh.max_pending".into()));
        }
        if self.ssh.max_pending_per_source > self.ssh.max_pending {
            return Err(Error::Config("ssh.max_pending_per_source: must not exceed ssh.max_pending".into()));
        }
        self.web.validate()?;
        self.recordings.validate()?;
        self.audit.validate()?;
        self.ldap.validate()?;
        self.radius.validate()?;
        self.duo.validate()?;
        self.email.validate()?;
        self.yubikey.validate()?;
        Ok(())
    }

    /// The database URL in force (the SQLite default spelled out).
    pub fn database_url(&self) -> String {
        if self.database_url.trim().is_empty() {
            format!("sqlite://{}?mode=rwc", self.data_dir.join("gatehouse.db").display())
        } else {
            self.database_url.trim().to_string()
        }
    }

    /// The web UI's address as users reach it.
    pub fn public_url(&self) -> String {
        if self.public_url.is_empty() {
            let scheme = if self.web.tls_on() { "https" } else { "http" };
            format!("{scheme}://localhost:{}", self.web_listen.port())
        } else {
            self.public_url.trim_end_matches('/').to_string()
        }
    }

    /// This node's name.
    pub fn node_name(&self) -> String {
        if !self.node_name.is_empty() {
            return self.node_name.clone();
        }
        std::fs::read_to_string("/etc/hostname")
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "gatehouse".into())
    }

    /// Creates the data directory (mode 0700) if it does not exist.
    pub fn ensure_data_dir(&self) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        if !self.data_dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.data_dir)
                .map_err(|e| Error::io(&self.data_dir, e))?;
        }
        Ok(())
    }
}

/// Environment values are typed like TOML literals when they parse as one (numbers,
/// booleans), and are strings otherwise.
/// A host name or address of this machine's loopback (`localhost`, 127.0.0.0/8, `::1`,
/// bracketed or not): the one place a plain-`http://` stand-in of a hosted service may run.
pub(crate) fn is_loopback_host(name: &str) -> bool {
    if name == "localhost" {
        return true;
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_string()),
    }
}

/// A list of strings, or one string of comma-separated items (as an environment variable
/// gives it).
fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<String>),
        Text(String),
    }
    match Form::deserialize(d).map_err(|_| serde::de::Error::custom("expected a list of strings"))? {
        Form::List(v) => Ok(v),
        Form::Text(t) => Ok(t.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()),
    }
}

/// A string; an environment value that happens to look like a number stays its text.
fn text_even_if_numeric<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Text(String),
        Number(i64),
    }
    match Form::deserialize(d).map_err(|_| serde::de::Error::custom("expected a string"))? {
        Form::Text(t) => Ok(t),
        Form::Number(n) => Ok(n.to_string()),
    }
}

/// Sets `a__b` as `[a] b = …`.
fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once("__") {
        Some((head, rest)) => {
            let entry = table.entry(head.to_string()).or_insert_with(|| toml::Table::new().into());
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            } else {
                *entry = toml::Value::Table(toml::Table::new());
                if let toml::Value::Table(inner) = entry {
                    set_path(inner, rest, value);
                }
            }
        }
        None => {
            table.insert(key.to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests;
