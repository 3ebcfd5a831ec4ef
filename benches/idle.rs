//! Idle sessions: how many logged-in sessions one gateway holds and what each costs.
//!
//! One process (the harness's russh client, `tests/common/raw.rs`) opens N connections,
//! each a full login (public key, then keyboard-interactive answered with the user's own
//! TOTP code), then a session channel with a terminal whose shell is the gateway's menu,
//! and keeps them all open. The gateway's resident memory is read before the first and
//! after the last, and the growth divided by N. Then everything is closed and the memory
//! read again; then as many sessions are opened again and the memory read with all held:
//! the allocator keeps what the first wave freed, and the second wave reuses it.
//!
//! `cargo bench --bench idle`. Environment: `GATEHOUSE_BENCH_IDLE_SESSIONS` (default
//! 10000), `GATEHOUSE_BENCH_IDLE_PARALLEL` (logins in flight at once, default 64),
//! `GATEHOUSE_BENCH_IDLE_JOBS` (CLI processes at once while creating users, default 4).
//! It asserts that every session was opened; it asserts nothing about time or memory.

#[path = "../tests/common/mod.rs"]
mod common;
// Only its open-file limit is used here.
mod support;
#[path = "load/system.rs"]
#[allow(dead_code)]
mod system;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::raw::{RawClient, Step};
use common::totp::{code_for_step, current_step};
use common::{Backend, Gw};
use support::{env_usize, provision};

/// What one held session is made of, on this side.
struct Held {
    _client: RawClient,
    _channel: russh::Channel<russh::client::Msg>,
}

/// `VmRSS` and `RssAnon` of `pid`, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"))
}

/// Logs in as `u{user}` with `secret` and opens a menu session.
async fn open(
    port: u16,
    user: usize,
    key: Arc<russh::keys::PrivateKey>,
    secret: &str,
    last_step: &AtomicU64,
    config: Arc<russh::client::Config>,
) -> Result<Held, String> {
    let mut c =
        RawClient::try_connect(port, &format!("u{user}"), None, config).await.map_err(|e| format!("connect: {e:?}"))?;
    match c.try_publickey(key).await {
        Ok(Step::Failure { partial: true, kbd: true }) => {}
        other => return Err(format!("public key: {other:?}")),
    }
    match c.try_kbd_start().await {
        Ok(step) if step.prompt().is_some_and(|p| p.contains("Authenticator code")) => {}
        other => return Err(format!("code prompt: {other:?}")),
    }
    // A code is accepted once per user and step; each user logs in once here.
    let step = current_step().max(last_step.load(Ordering::Relaxed) + 1);
    last_step.fetch_max(step, Ordering::Relaxed);
    match c.try_kbd_answer(&[&code_for_step(secret, step)]).await {
        Ok(Step::Success) => {}
        other => return Err(format!("code: {other:?}")),
    }
    let channel = c.idle_shell().await.ok_or("no menu")?;
    Ok(Held { _client: c, _channel: channel })
}

fn main() {
    let sessions = env_usize("GATEHOUSE_BENCH_IDLE_SESSIONS", 10_000).max(1);
    let parallel = env_usize("GATEHOUSE_BENCH_IDLE_PARALLEL", 64).max(1);
    let jobs = env_usize("GATEHOUSE_BENCH_IDLE_JOBS", 4).max(1);
    // This process's sockets (the gateway, started after, inherits the limit and holds as
    // many), with room for everything else.
    system::raise_open_files(sessions as u64 + 2048);
    let caps = parallel * 2;
    let mut gw = Gw::with_config(
        Backend::Sqlite,
        &format!("[ssh]\nmax_pending = {caps}\nmax_pending_per_source = {caps}\nidle_timeout_secs = 0\n"),
    );
    gw.start();
    let key = gw.new_key("idle");
    eprintln!("creating {sessions} users with a key and a TOTP each…");
    let (secrets, took) = provision(&gw, &key, sessions, jobs);
    println!(
        "{sessions} users (user add, user add-key, factor totp enroll; {jobs} CLI processes at once) in {:.1} s",
        took.as_secs_f64()
    );
    let private = Arc::new(russh::keys::load_secret_key(&key.private, None).expect("reading the client key"));
    let secrets = Arc::new(secrets);
    let steps: Arc<Vec<AtomicU64>> = Arc::new((0..sessions).map(|_| AtomicU64::new(0)).collect());
    let pid = gw.pid().expect("the gateway runs");
    let port = gw.ssh_port;
    let config = Arc::new(russh::client::Config { inactivity_timeout: None, nodelay: true, ..Default::default() });

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    std::thread::sleep(Duration::from_secs(2));
    let (before, before_anon) = rss_kib(pid);
    let started = Instant::now();
    let open_all = || {
        let next = Arc::new(AtomicUsize::new(0));
        rt.block_on(async {
            let mut workers = Vec::new();
            for _ in 0..parallel {
                let (next, secrets, steps, private, config) =
                    (next.clone(), secrets.clone(), steps.clone(), private.clone(), config.clone());
                workers.push(tokio::spawn(async move {
                    let (mut held, mut failures) = (Vec::new(), Vec::new());
                    loop {
                        let user = next.fetch_add(1, Ordering::Relaxed);
                        if user >= sessions {
                            return (held, failures);
                        }
                        let attempt = open(port, user, private.clone(), &secrets[user], &steps[user], config.clone());
                        match tokio::time::timeout(Duration::from_secs(120), attempt).await {
                            Ok(Ok(h)) => held.push(h),
                            Ok(Err(e)) => failures.push(format!("u{user}: {e}")),
                            Err(_) => failures.push(format!("u{user}: no session within 120 s")),
                        }
                    }
                }));
            }
            let (mut held, mut failures): (Vec<Held>, Vec<String>) = (Vec::new(), Vec::new());
            for w in workers {
                let (h, f) = w.await.expect("a worker panicked");
                held.extend(h);
                failures.extend(f);
            }
            (held, failures)
        })
    };
    let (held, mut failures) = open_all();
    let opened_in = started.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let (after, after_anon) = rss_kib(pid);
    let open_now: usize =
        gw.sql("SELECT COUNT(*) FROM audit_events WHERE event = 'login.success'").trim().parse().unwrap_or(0);
    let n = held.len();
    println!("\nidle logged-in sessions (key + TOTP, a terminal at the menu), one gateway on SQLite:");
    println!("{:<44} {:>12}", "sessions held", n);
    println!("{:<44} {:>12.1}", "opened in, seconds", opened_in.as_secs_f64());
    println!("{:<44} {:>12.0}", "logins per second while opening", n as f64 / opened_in.as_secs_f64());
    println!("{:<44} {:>12}", "gateway RSS before, KiB", before);
    println!("{:<44} {:>12}", "gateway RSS with all held, KiB", after);
    println!("{:<44} {:>12.1}", "RSS growth per session, KiB", (after.saturating_sub(before)) as f64 / n.max(1) as f64);
    println!(
        "{:<44} {:>12.1}",
        "of which anonymous memory (heap), KiB",
        (after_anon.saturating_sub(before_anon)) as f64 / n.max(1) as f64
    );
    println!("{:<44} {:>12}", "completed logins in the audit log", open_now);
    rt.block_on(async move { drop(held) });
    std::thread::sleep(Duration::from_secs(5));
    let (closed, _) = rss_kib(pid);
    println!("{:<44} {:>12}", "gateway RSS 5 s after closing all, KiB", closed);
    // The allocator keeps freed memory for reuse rather than returning it: a second wave
    // of as many sessions should find it, not add to it.
    let (again, second_failures) = open_all();
    std::thread::sleep(Duration::from_secs(3));
    let (second, _) = rss_kib(pid);
    println!("{:<44} {:>12}", "second wave: sessions held", again.len());
    println!("{:<44} {:>12}", "second wave: gateway RSS with all held, KiB", second);
    rt.block_on(async move { drop(again) });
    failures.extend(second_failures);
    for f in failures.iter().take(10) {
        eprintln!("  {f}");
    }
    assert!(failures.is_empty(), "{} sessions were not opened (see above)", failures.len());
    assert_eq!(n, sessions, "every session was opened");
    drop(rt);
}
