//! Shared set-up for core's database tests: one [`Gateway`] per test on a fresh database
//! of each backend. SQLite always; PostgreSQL when `GATEHOUSE_TEST_POSTGRES_URL` names a
//! server (scripts/test starts one). With `GATEHOUSE_REQUIRE_POSTGRES=1` a missing URL
//! fails the test instead of skipping PostgreSQL silently.
//!
//! This is a small copy of the backend logic of the end-to-end harness (`tests/common`),
//! which core's tests cannot reach.

#![allow(dead_code)]

use std::process::Command;

use gatehouse_core::factors::LoginContext;
use gatehouse_core::{Config, Gateway};
use sqlx::Connection;
use tempfile::TempDir;

pub const POSTGRES_URL_VAR: &str = "GATEHOUSE_TEST_POSTGRES_URL";
pub const REQUIRE_POSTGRES_VAR: &str = "GATEHOUSE_REQUIRE_POSTGRES";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite, plus PostgreSQL when configured; panics when it is required but missing.
pub fn backends() -> Vec<Backend> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => vec![Backend::Sqlite, Backend::Postgres],
        _ if std::env::var(REQUIRE_POSTGRES_VAR).as_deref() == Ok("1") => {
            panic!("{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set (run scripts/test)")
        }
        _ => {
            eprintln!("{POSTGRES_URL_VAR} not set: PostgreSQL variant not run");
            vec![Backend::Sqlite]
        }
    }
}

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
        Backend::Postgres => fresh_postgres_url().await,
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

/// Creates `gh_test_<random>` on the PostgreSQL server and returns its URL.
pub async fn fresh_postgres_url() -> String {
    let base = std::env::var(POSTGRES_URL_VAR).expect("PostgreSQL URL");
    let name = format!("gh_test_{}", random_suffix());
    let mut conn = sqlx::postgres::PgConnection::connect(base.trim())
        .await
        .unwrap_or_else(|e| panic!("connecting to {base}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
    let _ = conn.close().await;
    let (head, query) = match base.trim().split_once('?') {
        Some((h, q)) => (h.to_string(), format!("?{q}")),
        None => (base.trim().to_string(), String::new()),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match head[scheme_end..].find('/') {
        Some(i) => head[..scheme_end + i].to_string(),
        None => head.clone(),
    };
    format!("{root}/{name}{query}")
}

fn random_suffix() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    format!("{:016x}", h.finish())
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

/// The TOTP code of a base32 secret at `unix_time`, from `oathtool` (an implementation
/// independent of the one under test).
pub fn oathtool_totp(secret_b32: &str, unix_time: u64) -> String {
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "--now", &format!("@{unix_time}"), secret_b32])
        .output()
        .expect("running oathtool (apt-get install oathtool, or run scripts/test)");
    assert!(out.status.success(), "oathtool failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
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
