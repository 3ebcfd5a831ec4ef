//! The database: one pool over SQLite (the embedded default) or PostgreSQL (shared by
//! several nodes), and the migrations for each.
//!
//! SQL in this crate is written once for both engines: `$N` placeholders, BIGINT columns
//! for ids, flags and UTC epoch seconds, TEXT for everything else, and
//! `INSERT … ON CONFLICT` / `RETURNING`, which both engines support.

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;

use crate::{Config, Result};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Which engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A pool of database connections. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl Db {
    /// Connects to the database named by the config. SQLite files are created on demand and
    /// opened in WAL mode with a busy timeout, so the web and SSH sides can write at once.
    pub async fn connect(config: &Config) -> Result<Db> {
        Self::connect_url(&config.database_url()).await
    }

    /// Connects to `url` (`sqlite://…` or `postgres://…`).
    pub async fn connect_url(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        if backend == Backend::Sqlite {
            create_private(url);
        }
        let options = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Db { pool, backend })
    }

    /// Applies every migration not yet applied. Safe to run on every start and from
    /// several nodes at once (the migrator takes a lock).
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a transaction; every multi-row change goes through one.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(self.pool.begin().await?)
    }
}

/// Flags are stored as BIGINT 0/1 on both engines.
pub(crate) fn flag(v: bool) -> i64 {
    v as i64
}

/// Builds SQL text from constant fragments (column lists) with `format!`. Only for
/// compile-time constants: values always go through `bind`.
macro_rules! sql {
    ($($arg:tt)*) => { sqlx::AssertSqlSafe(format!($($arg)*)) };
}
pub(crate) use sql;

/// Creates a new SQLite database file readable by its owner only; SQLite gives the
/// `-wal` and `-shm` files the same mode. An existing file is left as it is, and a path
/// that cannot be created here is left to SQLite to report.
fn create_private(url: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || std::path::Path::new(path).exists() {
        return;
    }
    let _ = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
}

/// A migrated SQLite database in a temporary directory, for unit tests (the directory
/// lives as long as the returned guard).
#[cfg(test)]
pub(crate) async fn test_db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db =
        Db::connect_url(&format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display())).await.expect("connect");
    db.migrate().await.expect("migrate");
    (dir, db)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn a_new_sqlite_file_is_private_to_its_owner() {
        let (dir, _db) = super::test_db().await;
        for name in ["t.db", "t.db-wal", "t.db-shm"] {
            let path = dir.path().join(name);
            if let Ok(meta) = std::fs::metadata(&path) {
                assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
            } else {
                assert_ne!(name, "t.db", "the database file exists");
            }
        }
    }
}
