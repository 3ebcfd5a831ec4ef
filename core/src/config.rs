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
mod metrics;
mod radius;
mod recordings;
mod web;
mod yubikey;
pub use audit::AuditConfig;
pub use duo::{DuoConfig, DuoEndpoint};
pub use email::{EmailConfig, SmtpTls};
pub use metrics::MetricsConfig;
pub use radius::RadiusConfig;
pub use recordings::{OnFailure, RecordingsConfig};
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
    /// RADIUS servers for the `radius` second factor.
    pub radius: RadiusConfig,
    /// Duo's Auth API for the `duo` second factor.
    pub duo: DuoConfig,
    /// The SMTP relay for the `email` second factor.
    pub email: EmailConfig,
    /// YubiCloud (or self-hosted) validation servers for the `yubikey` second factor.
    pub yubikey: YubikeyConfig,
}

/// The process log (standard error, or the journal under systemd).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (default) or `json` (one object per line, for log shippers).
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Failed-attempt lockout: counted per user name and per source address in the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// Failures of one user name within `window_secs` that lock the account.
    pub user_threshold: u32,
    /// Failures from one source address within `window_secs` that block the address.
    pub source_threshold: u32,
    /// How far back failures count, in seconds.
    pub window_secs: u64,
    /// How long a lock lasts, in seconds.
    pub duration_secs: u64,
}

/// SSH frontend limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshConfig {
    /// Seconds an unauthenticated connection may take to pass every step of the login.
    pub login_timeout_secs: u64,
    /// Seconds a new connection may take to send its SSH version line. Real clients send
    /// it at once; a connection that says nothing holds a pending slot for no reason, so
    /// it is closed long before `login_timeout_secs`.
    pub version_timeout_secs: u64,
    /// Connections from one source address that may be logging in at once (OpenSSH's
    /// `PerSourceMaxStartups`). Further ones are closed before the SSH banner, so one
    /// address holding idle connections cannot take every slot.
    pub max_pending_per_source: u32,
    /// Connections that may be logging in at once, all sources together (OpenSSH's
    /// `MaxStartups`). Further ones are closed before the SSH banner. Logged-in
    /// connections do not count: a flood delays new logins, never ends live sessions.
    pub max_pending: u32,
    /// Wrong second-factor answers allowed in one connection before it is closed.
    pub gate_attempts: u32,
    /// Seconds of silence after which an authenticated connection is closed (0: never).
    pub idle_timeout_secs: u64,
    /// Lets users forward their SSH agent (`ssh -A`) to the targets they reach.
    pub allow_agent_forwarding: bool,
    /// Host key files (OpenSSH private keys) to present instead of the installation's
    /// keys kept in the database. Empty: the shared keys, made by the first node. A
    /// comma-separated string is accepted too.
    #[serde(deserialize_with = "list_or_commas")]
    pub host_key_files: Vec<String>,
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
            radius: RadiusConfig::default(),
            duo: DuoConfig::default(),
            email: EmailConfig::default(),
            yubikey: YubikeyConfig::default(),
        }
    }
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig { user_threshold: 5, source_threshold: 20, window_secs: 900, duration_secs: 900 }
    }
}

impl Default for SshConfig {
    fn default() -> Self {
        SshConfig {
            login_timeout_secs: 120,
            version_timeout_secs: 10,
            max_pending_per_source: 10,
            max_pending: 100,
            gate_attempts: 3,
            idle_timeout_secs: 3600,
            allow_agent_forwarding: false,
            host_key_files: Vec::new(),
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
        if self.ssh.max_pending_per_source > self.ssh.max_pending {
            return Err(Error::Config("ssh.max_pending_per_source: must not exceed ssh.max_pending".into()));
        }
        self.web.validate()?;
        self.recordings.validate()?;
        self.audit.validate()?;
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
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatehouse.toml");
        std::fs::write(&path, text).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load(Some(&path), env, &Overrides::default())
    }

    #[test]
    fn zero_config_defaults() {
        let c = Config::load(None, Vec::new(), &Overrides::default()).unwrap();
        assert_eq!(c.ssh_listen.port(), 2222);
        assert_eq!(c.web_listen.port(), 8080);
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert!(c.database_url().starts_with("sqlite://./data/gatehouse.db"));
        assert_eq!(c.public_url(), "https://localhost:8080");
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let c = load(
            "ssh_listen = \"127.0.0.1:1\"\n[lockout]\nuser_threshold = 9\n",
            &[("GATEHOUSE_SSH_LISTEN", "127.0.0.1:2"), ("GATEHOUSE_LOCKOUT__WINDOW_SECS", "60")],
        )
        .unwrap();
        assert_eq!(c.ssh_listen.port(), 2);
        assert_eq!(c.lockout.user_threshold, 9);
        assert_eq!(c.lockout.window_secs, 60);

        let overrides = Overrides { ssh_listen: Some("127.0.0.1:3".into()), ..Default::default() };
        let env = vec![("GATEHOUSE_SSH_LISTEN".to_string(), "127.0.0.1:2".to_string())];
        let c = Config::load(None, env, &overrides).unwrap();
        assert_eq!(c.ssh_listen.port(), 3);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load("ssh_lisen = \"127.0.0.1:1\"\n", &[]).unwrap_err().to_string();
        assert!(err.contains("ssh_lisen"), "{err}");
        let err = load("", &[("GATEHOUSE_WEB_LISTN", "x")]).unwrap_err().to_string();
        assert!(err.contains("web_listn"), "{err}");
    }

    #[test]
    fn bad_value_is_named() {
        let err = load("web_listen = \"nowhere\"\n", &[]).unwrap_err().to_string();
        assert!(err.contains("web_listen"), "{err}");
        let err = load("database_url = \"mysql://x\"\n", &[]).unwrap_err().to_string();
        assert!(err.contains("database_url"), "{err}");
        let err = load("[lockout]\nuser_threshold = \"many\"\n", &[]).unwrap_err().to_string();
        assert!(err.contains("user_threshold"), "{err}");
    }

    #[test]
    fn pending_limits_are_checked() {
        let c = load("", &[]).unwrap();
        assert_eq!((c.ssh.max_pending_per_source, c.ssh.max_pending, c.ssh.version_timeout_secs), (10, 100, 10));
        for bad in ["max_pending = 0", "max_pending_per_source = 0", "version_timeout_secs = 0", "max_pending = 5"] {
            let err = load(&format!("[ssh]\n{bad}\n"), &[]).unwrap_err().to_string();
            assert!(err.contains("ssh."), "{bad}: {err}");
        }
        let c = load("[ssh]\nmax_pending = 5\nmax_pending_per_source = 5\n", &[]).unwrap();
        assert_eq!(c.ssh.max_pending, 5);
    }

    #[test]
    fn radius_table() {
        let c = load(
            "[radius]\nservers = [\"127.0.0.1:1812\", \"radius.example:1645\"]\ntimeout_secs = 2\n",
            &[("GATEHOUSE_RADIUS__SECRET", "s3cret")],
        )
        .unwrap();
        assert_eq!(c.radius.servers, ["127.0.0.1:1812", "radius.example:1645"]);
        assert_eq!(c.radius.secret, "s3cret");
        assert_eq!((c.radius.timeout_secs, c.radius.retries), (2, 2));
        assert!(!format!("{c:?}").contains("s3cret"), "Debug must not show the secret");

        let c = load("", &[("GATEHOUSE_RADIUS__SERVERS", "a:1812, b:1812"), ("GATEHOUSE_RADIUS__SECRET", "123456")])
            .unwrap();
        assert_eq!(c.radius.servers, ["a:1812", "b:1812"]);
        assert_eq!(c.radius.secret, "123456");
        let err = load("[radius]\nservers = 5\n", &[]).unwrap_err().to_string();
        assert!(err.contains("servers"), "{err}");

        let err = load("[radius]\nserver = []\n", &[]).unwrap_err().to_string();
        assert!(err.contains("server"), "{err}");
        let err = load("[radius]\nservers = [\"nohost\"]\nsecret = \"x\"\n", &[]).unwrap_err().to_string();
        assert!(err.contains("radius.servers"), "{err}");
        let err = load("[radius]\nservers = [\"h:1812\"]\n", &[]).unwrap_err().to_string();
        assert!(err.contains("radius.secret"), "{err}");
        let err = load("[radius]\ntimeout_secs = 0\n", &[]).unwrap_err().to_string();
        assert!(err.contains("radius.timeout_secs"), "{err}");
        let err = load("[radius]\nretries = \"x\"\n", &[]).unwrap_err().to_string();
        assert!(err.contains("retries"), "{err}");
    }

    #[test]
    fn duo_table() {
        let c = load(
            "[duo]\nintegration_key = \"DIWJ8X6AEYOR5OMC6TQ1\"\napi_host = \"api-XXXXXXXX.duosecurity.com\"\n",
            &[("GATEHOUSE_DUO__SECRET_KEY", "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep")],
        )
        .unwrap();
        assert!(c.duo.enabled());
        assert_eq!(c.duo.endpoint().unwrap().host, "api-xxxxxxxx.duosecurity.com");
        assert_eq!((c.duo.timeout_secs, c.duo.push_timeout_secs, c.duo.fail_open), (10, 60, false));
        assert!(!format!("{c:?}").contains("Zh5eGmUq"), "Debug must not show the secret key");
        assert!(!Config::default().duo.enabled(), "off unless configured");

        let c = load("[duo]\nfail_open = true\n", &[("GATEHOUSE_DUO__PUSH_TIMEOUT_SECS", "5")]).unwrap();
        assert!(!c.duo.enabled() && c.duo.fail_open && c.duo.push_timeout_secs == 5);

        let err = load("[duo]\nintegration_key = \"DIX\"\napi_host = \"api-x.duosecurity.com\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("duo.secret_key: must be set"), "{err}");
        let err = load("[duo]\napi_host = \"api-x.duosecurity.com\"\n", &[]).unwrap_err().to_string();
        assert!(err.contains("duo.integration_key: must be set"), "{err}");
        let err = load("", &[("GATEHOUSE_DUO__SECRET_KEY", "s")]).unwrap_err().to_string();
        assert!(err.contains("duo.integration_key"), "{err}");
        let full = "[duo]\nintegration_key = \"DIX\"\nsecret_key = \"s\"\n";
        let err = load(&format!("{full}api_host = \"http://api-x.duosecurity.com\"\n"), &[]).unwrap_err().to_string();
        assert!(err.contains("duo.api_host") && err.contains("loopback"), "{err}");
        assert!(load(&format!("{full}api_host = \"http://127.0.0.1:9\"\n"), &[]).is_ok());
        let err = load("[duo]\nintegration_key = \"DI X\"\nsecret_key = \"s\"\napi_host = \"h\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("duo.integration_key"), "{err}");
        let err = load("[duo]\ntimeout_secs = 0\n", &[]).unwrap_err().to_string();
        assert!(err.contains("duo.timeout_secs"), "{err}");
        let err = load("[duo]\npush_timeout_secs = 301\n", &[]).unwrap_err().to_string();
        assert!(err.contains("duo.push_timeout_secs"), "{err}");
        let err = load("[duo]\nfail_open = \"yes\"\n", &[]).unwrap_err().to_string();
        assert!(err.contains("fail_open"), "{err}");
        let err = load("[duo]\nhost = \"x\"\n", &[]).unwrap_err().to_string();
        assert!(err.contains("host"), "{err}");
    }

    #[test]
    fn yubikey_table() {
        let c = load("", &[]).unwrap();
        assert!(!c.yubikey.enabled(), "off by default");
        assert_eq!(c.yubikey.api_urls, [YUBICLOUD_URL]);

        // The key from the environment, as the README advises; a numeric id stays text.
        let c = load(
            "[yubikey]\napi_urls = [\"http://127.0.0.1:8000/wsapi/2.0/verify\"]\ntimeout_secs = 2\n",
            &[
                ("GATEHOUSE_YUBIKEY__CLIENT_ID", "12345"),
                ("GATEHOUSE_YUBIKEY__SECRET_KEY", "c2VjcmV0LWtleS0yMC1ieXRlcyE="),
            ],
        )
        .unwrap();
        assert!(c.yubikey.enabled());
        assert_eq!(c.yubikey.client_id, "12345");
        assert_eq!(c.yubikey.key_bytes(), b"secret-key-20-bytes!");
        assert_eq!(c.yubikey.timeout_secs, 2);
        assert!(!format!("{c:?}").contains("c2VjcmV0"), "Debug must not show the key");

        let c = load("", &[("GATEHOUSE_YUBIKEY__API_URLS", "https://a.example/v, http://b.example:8080/v")]).unwrap();
        assert_eq!(c.yubikey.api_urls, ["https://a.example/v", "http://b.example:8080/v"]);

        let key = "[yubikey]\nclient_id = \"1\"\n";
        for (text, env, named) in [
            ("[yubikey]\nclient_id = \"1\"\nsecret_key = \"not base64!\"\n", vec![], "yubikey.secret_key"),
            (key, vec![], "yubikey.secret_key"),
            ("[yubikey]\nsecret_key = \"a2V5\"\n", vec![], "yubikey.client_id"),
            ("[yubikey]\nclient_id = \"1 2\"\nsecret_key = \"a2V5\"\n", vec![], "yubikey.client_id"),
            ("[yubikey]\napi_urls = [\"ftp://x/verify\"]\n", vec![], "yubikey.api_urls"),
            ("[yubikey]\napi_urls = [\"api.yubico.com/wsapi/2.0/verify\"]\n", vec![], "yubikey.api_urls"),
            ("[yubikey]\napi_urls = [\"https://u:p@x/verify\"]\n", vec![], "yubikey.api_urls"),
            ("[yubikey]\napi_urls = [\"https://x/verify?id=1\"]\n", vec![], "yubikey.api_urls"),
            ("[yubikey]\napi_urls = [\"https:///verify\"]\n", vec![], "yubikey.api_urls"),
            ("[yubikey]\napi_urls = []\n", vec![], "yubikey.api_urls"),
            ("[yubikey]\ntimeout_secs = 0\n", vec![], "yubikey.timeout_secs"),
            ("[yubikey]\napi_url = []\n", vec![], "api_url"),
            (
                "",
                vec![("GATEHOUSE_YUBIKEY__CLIENT_ID", "7"), ("GATEHOUSE_YUBIKEY__SECRET_KEY", "%%%")],
                "yubikey.secret_key",
            ),
        ] {
            let err = load(text, &env).unwrap_err().to_string();
            assert!(err.contains(named), "{text:?} {env:?}: {err}");
            assert!(!err.contains("%%%"), "the key is not echoed: {err}");
        }
    }
}
