//! Shared set-up for core's database tests: one [`Gateway`] per test on a fresh database
//! of each backend. SQLite always; PostgreSQL when `GATEHOUSE_TEST_POSTGRES_URL` names a
//! server (scripts/test starts one). With `GATEHOUSE_REQUIRE_POSTGRES=1` a missing URL
//! fails the test instead of skipping PostgreSQL silently.
//!
//! The backend logic, processes and TOTP codes are the end-to-end harness's own modules
//! (`tests/common`), included here, not copied.

#![allow(dead_code, unused_imports)]

use gatehouse_core::factors::LoginContext;
use gatehouse_core::{Config, Gateway};
use tempfile::TempDir;

// The end-to-end harness's own modules, shared rather than copied: which backends run,
// fresh PostgreSQL databases, processes, and TOTP codes from oathtool.
#[path = "../../../tests/common/postgres.rs"]
pub mod postgres;
#[path = "../../../tests/common/process.rs"]
pub mod process;
#[path = "../../../tests/common/totp.rs"]
pub mod totp;

pub use postgres::{Backend, backends};
pub use totp::totp_at;

/// A gateway on a fresh database; the temp dir (data dir, SQLite file, secrets key) lives
/// as long as this value.
pub struct TestGw {
    pub gw: Gateway,
    pub backend: Backend,
    pub url: String,
    pub dir: TempDir,
}

impl std::ops::Deref for TestGw {
    type Target = Gateway;
    fn deref(&self) -> &Gateway {
        &self.gw
    }
}

/// Opens a gateway on a fresh database of `backend` with default settings.
pub async fn open(backend: Backend) -> TestGw {
    open_with(backend, |_| {}).await
}

/// Opens a gateway on a fresh database of `backend`, after `adjust` changed the config.
pub async fn open_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestGw {
    let dir = tempfile::tempdir().expect("creating a temp dir");
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("data/gatehouse.db").display()),
        Backend::Postgres => postgres::fresh_postgres_url(),
    };
    let mut config = Config {
        data_dir: dir.path().join("data"),
        database_url: url.clone(),
        node_name: "test-node".into(),
        ..Config::default()
    };
    adjust(&mut config);
    let gw = Gateway::open(config).await.unwrap_or_else(|e| panic!("opening {backend:?} at {url}: {e}"));
    TestGw { gw, backend, url, dir }
}

/// A second node of `first`'s installation: the same database and secrets key, its own
/// data dir and node name.
pub async fn open_on(first: &TestGw, adjust: impl FnOnce(&mut Config)) -> TestGw {
    let dir = tempfile::tempdir().expect("creating a temp dir");
    std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
    std::fs::copy(first.dir.path().join("data/secret.key"), dir.path().join("data/secret.key"))
        .expect("copying the secrets key");
    let mut config = Config {
        data_dir: dir.path().join("data"),
        database_url: first.url.clone(),
        node_name: "test-node-b".into(),
        ..Config::default()
    };
    adjust(&mut config);
    let gw = Gateway::open(config).await.unwrap_or_else(|e| panic!("opening a second node: {e}"));
    TestGw { gw, backend: first.backend, url: first.url.clone(), dir }
}

/// A login from `source` through a test front end.
pub fn login(user: &str, source: &str) -> LoginContext {
    LoginContext {
        user_name: user.to_string(),
        source: source.to_string(),
        frontend: gatehouse_core::factors::Frontend::Ssh,
        attempt: "test-attempt".into(),
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Waits until at least `margin` seconds remain in the current 30-second step, so a test
/// that reasons about "the current step" is not cut in half by the clock.
pub async fn settle_in_step(margin: u64) {
    let into = now() % 30;
    if into + margin >= 30 {
        tokio::time::sleep(std::time::Duration::from_secs(30 - into) + std::time::Duration::from_millis(100)).await;
    }
}

/// The number of rows of `table` (a constant name chosen by the test).
pub async fn count(gw: &Gateway, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(gw.db.pool())
        .await
        .unwrap_or_else(|e| panic!("counting {table}: {e}"))
}
