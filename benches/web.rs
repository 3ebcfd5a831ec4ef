//! The web UI under load: requests per second and latency of a logged-in page
//! (`/account`), the login form (`/login`) and the health probe (`/healthz`, the server's
//! floor: no database, no template), each driven by `wrk` over HTTPS (the product's
//! default) with keep-alive, in one run against one release gateway on SQLite.
//!
//! `cargo bench --bench web` (environment: `GATEHOUSE_BENCH_SECONDS`, default 10 per
//! endpoint; `GATEHOUSE_BENCH_CONNECTIONS`, default 64; `wrk` must be installed:
//! `apt-get install wrk`). Before and after each endpoint it counts the rows of the
//! web-session table: a pre-login page must write none.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/web_support/mod.rs"]
mod web_support;

use std::process::Command;
use std::time::Duration;

use common::{Backend, Gw, describe, run_with_timeout, stdout};
use reqwest::StatusCode;
use reqwest::cookie::CookieStore;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What `wrk --latency` printed, in numbers.
struct Run {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    errors: u64,
}

/// `12.5ms`, `900.00us`, `1.20s` in milliseconds.
fn millis(text: &str) -> f64 {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len()));
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}

fn parse(out: &str) -> Run {
    let field = |prefix: &str| -> Option<&str> {
        out.lines().map(str::trim).find_map(|l| l.strip_prefix(prefix)).map(str::trim)
    };
    let requests = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let errors = field("Non-2xx or 3xx responses:").and_then(|n| n.parse().ok()).unwrap_or(0)
        + field("Socket errors:")
            .map(|s| s.split(',').filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok()).sum::<u64>())
            .unwrap_or(0);
    Run {
        per_second: field("Requests/sec:").and_then(|n| n.parse().ok()).unwrap_or(f64::NAN),
        p50_ms: field("50%").map(millis).unwrap_or(f64::NAN),
        p99_ms: field("99%").map(millis).unwrap_or(f64::NAN),
        requests,
        errors,
    }
}

fn wrk(url: &str, cookie: Option<&str>, seconds: u64, connections: u64) -> Run {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency"]);
    if let Some(c) = cookie {
        cmd.args(["-H", &format!("Cookie: {c}")]);
    }
    cmd.arg(url);
    let out = run_with_timeout(&mut cmd, None, Duration::from_secs(seconds + 60));
    assert!(out.status.success(), "wrk failed (apt-get install wrk): {}", describe(&out));
    parse(&stdout(&out))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let seconds = env_u64("GATEHOUSE_BENCH_SECONDS", 10);
    let connections = env_u64("GATEHOUSE_BENCH_CONNECTIONS", 64);
    // `[web]` keeps the product's default, HTTPS with the self-signed certificate.
    let mut gw = Gw::with_config(Backend::Sqlite, "[web]\n");
    gw.start();
    let admin = web_support::admin_browser(&gw).await;
    let base = gw.web_url();
    let url = reqwest::Url::parse(&base).expect("the web URL");
    let cookie = admin.jar.cookies(&url).expect("a session cookie").to_str().expect("ASCII cookies").to_string();
    // The page measured is the page, not a redirect to the login.
    admin.get("/account").await.assert_status(StatusCode::OK, "the logged-in page");

    let sessions = || gw.sql("SELECT count(*) FROM web_sessions").trim().parse::<i64>().unwrap_or(-1);
    println!(
        "\nwrk -t2 -c{connections} -d{seconds}s over HTTPS (keep-alive), release gateway on SQLite, same machine\n"
    );
    println!("| endpoint | requests/s | p50 ms | p99 ms | requests | errors | web-session rows written |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (path, with_cookie) in [("/healthz", false), ("/login", false), ("/account", true)] {
        let before = sessions();
        let run = wrk(&format!("{base}{path}"), with_cookie.then_some(cookie.as_str()), seconds, connections);
        let written = sessions() - before;
        println!(
            "| `GET {path}`{} | {:.0} | {:.2} | {:.2} | {} | {} | {written} |",
            if with_cookie { " (logged in)" } else { "" },
            run.per_second,
            run.p50_ms,
            run.p99_ms,
            run.requests,
            run.errors
        );
    }
    // Still logged in: the figures above are of the page, not of refusals.
    admin.get("/account").await.assert_status(StatusCode::OK, "the logged-in page after the run");
}
