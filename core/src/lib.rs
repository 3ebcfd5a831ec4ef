//! Gatehouse domain: everything that decides who gets through the gateway, with no
//! knowledge of SSH or HTTP.
//!
//! # Layout
//!
//! - [`config`]: the one `Config` struct, loaded from TOML, `GATEHOUSE_*` variables and flags.
//! - [`db`]: the connection pool (SQLite by default, PostgreSQL for several nodes) and
//!   migrations.
//! - [`vault`]: secrets at rest (AEAD for TOTP seeds and target credentials) and argon2id
//!   hashing for passwords, codes and keywords.
//! - [`users`], [`groups`], [`ssh_keys`], [`targets`]: the tables admins manage.
//! - [`policy`]: the global and per-group force-2FA switches and allowed methods, and the
//!   resolution of what a given user must pass.
//! - [`factors`]: one module per second-factor method behind one [`factors::SecondFactor`]
//!   trait, used unchanged by the SSH gate and the web login.
//! - [`login`]: the shared login decisions (primary credential, factor answers) with
//!   lockout and audit applied the same way on every front end.
//! - [`lockout`], [`audit`]: failure counters and the audit log, both in the database so
//!   that every node sees them.
//! - [`sudo`]: the fresh proof a change of credentials on the web needs, and [`notify`],
//!   the mail that tells the user of each such change.
//! - [`host_keys`]: the installation's SSH host keys, sealed, one active and during a
//!   rotation one next per algorithm; [`admin::host_keys`] rotates and retires them.
//! - [`Gateway`]: the handle that front ends hold: database, vault and config.

pub mod access;
pub mod admin;
pub mod app_passcodes;
pub mod audit;
pub mod config;
pub mod db;
pub mod directory;
pub mod error;
pub mod factors;
pub mod groups;
pub mod health;
pub mod host_keys;
pub mod housekeeping;
pub mod live_sessions;
pub mod lockout;
pub mod login;
pub mod mail;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod recordings;
pub mod ssh_keys;
pub mod sudo;
pub mod targets;
pub mod text;
pub mod time;
pub mod trusted_devices;
pub mod users;
pub mod vault;
pub mod web_sessions;

use std::sync::Arc;

pub use config::Config;
pub use db::Db;
pub use error::{Error, Result};
pub use vault::Vault;

/// What every front end (SSH, web, CLI) holds: the database, the vault for secrets at rest,
/// and the configuration. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    pub db: Db,
    pub vault: Arc<Vault>,
    pub config: Arc<Config>,
    /// This process's metrics (shared by every clone).
    pub metrics: Arc<metrics::Metrics>,
    /// Copies of the audit log besides the database (`[audit]`).
    pub audit_copies: Arc<audit::sinks::Sinks>,
    /// Where finished recordings go (`[recordings.s3]`), if anywhere but this node's disk.
    pub recording_bucket: Option<Arc<recordings::bucket::Bucket>>,
    /// The directory that checks directory users' passwords (`[ldap]`), if one is set.
    pub directory: Option<Arc<directory::Client>>,
    /// The policy and users' groups as of the latest access revision this node saw
    /// (`policy::resolve_at`).
    pub policy_cache: Arc<policy::Cache>,
}

impl Gateway {
    /// Opens the database (applying migrations) and the vault key described by `config`.
    pub async fn open(config: Config) -> Result<Self> {
        config.ensure_data_dir()?;
        let vault = Vault::load_or_create(&config)?;
        let db = Db::connect(&config).await?;
        db.migrate().await?;
        let audit_copies = Arc::new(audit::sinks::Sinks::open(&config.audit)?);
        let recording_bucket =
            config.recordings.s3.as_ref().map(recordings::bucket::Bucket::open).transpose()?.map(Arc::new);
        let directory =
            if config.ldap.enabled() { Some(Arc::new(directory::Client::new(&config.ldap)?)) } else { None };
        Ok(Gateway {
            directory,
            db,
            vault: Arc::new(vault),
            config: Arc::new(config),
            metrics: Arc::new(metrics::Metrics::new()),
            audit_copies,
            recording_bucket,
            policy_cache: Arc::new(policy::Cache::default()),
        })
    }
}
