//! The `[ssh]`, `[lockout]` and `[log]` tables: the SSH frontend's limits, the failed-attempt
//! lockout and the process log.

use serde::{Deserialize, Serialize};

use super::list_or_commas;

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
    /// Connections held at once, logged in or not; further ones wait in the kernel's
    /// backlog until one ends. Each holds a socket (and a target session another), so keep
    /// it under the process's open-file limit.
    pub max_connections: u32,
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
            max_connections: 16_384,
            gate_attempts: 3,
            idle_timeout_secs: 3600,
            allow_agent_forwarding: false,
            host_key_files: Vec::new(),
        }
    }
}
