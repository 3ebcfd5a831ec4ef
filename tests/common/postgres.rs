//! Database backends for end-to-end tests. SQLite always runs; PostgreSQL runs when
//! `GATEHOUSE_TEST_POSTGRES_URL` names a server (the test command starts a throwaway one).
//! With `GATEHOUSE_REQUIRE_POSTGRES=1` a missing URL is a failure, never a silent skip.

use std::process::Command;
use std::time::Duration;

use super::process::{describe, run_with_timeout};

/// Server-level URL of the PostgreSQL the tests may create databases on.
pub const POSTGRES_URL_VAR: &str = "GATEHOUSE_TEST_POSTGRES_URL";
/// When `1`, PostgreSQL tests must run.
pub const REQUIRE_POSTGRES_VAR: &str = "GATEHOUSE_REQUIRE_POSTGRES";

/// Which database a gateway under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite, plus PostgreSQL when it is configured. Panics when PostgreSQL is required but
/// not configured.
pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => out.push(Backend::Postgres),
        _ => {
            if std::env::var(REQUIRE_POSTGRES_VAR).as_deref() == Ok("1") {
                panic!(
                    "{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set: \
                     run the suite with scripts/test, which starts a PostgreSQL"
                );
            }
            eprintln!("[harness] {POSTGRES_URL_VAR} not set: PostgreSQL variants not run");
        }
    }
    out
}

/// Creates an empty database `gh_test_<random>` on the server at
/// `GATEHOUSE_TEST_POSTGRES_URL` and returns its URL.
pub fn fresh_postgres_url() -> String {
    let base = std::env::var(POSTGRES_URL_VAR)
        .unwrap_or_else(|_| panic!("{POSTGRES_URL_VAR} is not set; cannot create a PostgreSQL database"));
    let name = format!("gh_test_{}", super::process::random_suffix());
    let out = run_with_timeout(
        Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", base.trim()])
            .args(["-c", &format!("CREATE DATABASE {name}")]),
        None,
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "creating database {name} on {base}:\n{}", describe(&out));
    with_database(base.trim(), &name)
}

/// `url` with its database name replaced by `db` (query string kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let after_scheme = head.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match head[after_scheme..].find('/') {
        Some(i) => &head[..after_scheme + i],
        None => head,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}
