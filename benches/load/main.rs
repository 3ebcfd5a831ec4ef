//! Logins at once: 1,000 SSH logins (public key + TOTP) started at the same moment
//! against one gateway, side by side with 1,000 public-key logins started at once against
//! OpenSSH's sshd, all from one process (the harness's russh client, `tests/common/raw.rs`).
//!
//! Each gateway connection is a full login: TCP connect, key exchange, public key (a
//! partial success), keyboard-interactive answered with the user's current TOTP code,
//! then a session channel whose shell prints the menu, EOF, disconnect. Each uses its
//! own user and TOTP secret: a code is accepted once per user and 30-second step. A few
//! connections, at random positions, answer wrong codes until the gateway ends the login.
//! An sshd connection is a public-key login and an `sftp` session, which sshd serves
//! in process (`internal-sftp`), as the gateway serves its menu: `exec` would add the
//! account's shell and its startup files (root's `.bashrc` runs `pyenv init` on the
//! bench machine: 0.1 s of CPU per login alone, a minute for 200 at once).
//!
//! The bench asserts that every connection was decided as expected (let in, refused, or —
//! only where a cap on logins in progress is below the number of connections — closed
//! before the banner) and prints latency, logins per second and CPU time; it asserts
//! nothing about time.
//!
//! Rows, per database (SQLite; PostgreSQL too when `GATEHOUSE_TEST_POSTGRES_URL` is set):
//! the gateway with its caps on logins in progress raised above the number of connections
//! (`[ssh] max_pending`, `max_pending_per_source`), then at the product's defaults (100 in
//! total, 10 per source address) from one source address and from many (127.0.0.2 and
//! up). Once: sshd with `MaxStartups` raised, and at its default (`10:30:100`).
//!
//! `cargo bench --bench load`. Environment: `GATEHOUSE_BENCH_LOAD_LOGINS` (connections
//! per row, default 1000), `GATEHOUSE_BENCH_LOAD_WRONG` (of which answer wrong codes,
//! default 10), `GATEHOUSE_BENCH_LOAD_SOURCES` (source addresses of the spread row, default
//! 100), `GATEHOUSE_BENCH_LOAD_JOBS` (CLI processes at once while creating users, default
//! 4), `GATEHOUSE_BENCH_LOAD_TIMEOUT` (seconds one connection may take, default 300),
//! `GATEHOUSE_BENCH_LOAD_SEED` (where the wrong codes go; printed when not given),
//! `GATEHOUSE_BENCH_LOAD_SOURCE_THRESHOLD` (`[lockout] source_threshold`, default 100000;
//! the product's default is 20).
//!
//! # Layout
//!
//! - this file: the settings, the users, the gateway's and sshd's rows, the table;
//! - `driver`: the connections of one row, released at once, and how each ended;
//! - `system`: the open-file limit, CPU time and the kernel's TCP counters.

#[path = "../../tests/common/mod.rs"]
mod common;
mod driver;
#[path = "../support/mod.rs"]
mod support;
mod system;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use common::totp::{code_for_step, current_step};
use common::{Backend, ClientKey, Gw, Sshd, backends, totp_at};
use driver::{Driver, Load, Phases, Plan, Row, measure};
use support::provision;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What the environment asks for.
struct Settings {
    logins: usize,
    wrong: usize,
    sources: usize,
    jobs: usize,
    timeout: Duration,
    seed: u64,
    source_threshold: u64,
}

impl Settings {
    fn from_env() -> Settings {
        let seed = std::env::var("GATEHOUSE_BENCH_LOAD_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
        });
        let logins = env_u64("GATEHOUSE_BENCH_LOAD_LOGINS", 1000).max(1) as usize;
        Settings {
            logins,
            // At most a third: each row draws its wrong-code users from those not drawn yet.
            wrong: (env_u64("GATEHOUSE_BENCH_LOAD_WRONG", 10) as usize).min(logins / 3),
            sources: env_u64("GATEHOUSE_BENCH_LOAD_SOURCES", 100).clamp(1, 250) as usize,
            jobs: env_u64("GATEHOUSE_BENCH_LOAD_JOBS", 4).max(1) as usize,
            timeout: Duration::from_secs(env_u64("GATEHOUSE_BENCH_LOAD_TIMEOUT", 300)),
            seed,
            source_threshold: env_u64("GATEHOUSE_BENCH_LOAD_SOURCE_THRESHOLD", 100_000).max(1),
        }
    }
}

/// xorshift64*: where the wrong codes go, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------
// The gateway.

/// `[ssh]` caps on logins in progress raised to `raised_caps`, or left at the product's
/// defaults; the lockout's threshold per source address at `source_threshold`. The bench
/// raises it by default, since every connection of a row comes from loopback and the wrong
/// codes are failures on purpose: the product's default, 20 failures per source in 15
/// minutes, would lock 127.0.0.1 out after seven wrong-code logins of 3 codes each. It is
/// also the most TOTP checks one source address may have in flight at once.
fn gateway_config(raised_caps: Option<usize>, source_threshold: u64) -> String {
    let mut toml = String::new();
    if let Some(n) = raised_caps {
        toml.push_str(&format!("[ssh]\nmax_pending = {n}\nmax_pending_per_source = {n}\n"));
    }
    toml.push_str(&format!(
        "[lockout]\nuser_threshold = 5\nsource_threshold = {source_threshold}\nwindow_secs = 900\nduration_secs = 900\n"
    ));
    toml
}

/// `logins` plans, `wrong` of them wrong codes at positions drawn from `rng`, avoiding the
/// users in `spent` (so no user collects failures in two rows: the user lockout stays
/// out of the way).
fn gateway_plans(logins: usize, wrong: usize, rng: &mut Rng, spent: &mut Vec<usize>) -> Vec<Plan> {
    let mut plans: Vec<Plan> = (0..logins).map(|user| Plan::Totp { user }).collect();
    let mut placed = 0;
    while placed < wrong {
        let i = rng.below(logins);
        if matches!(plans[i], Plan::WrongCode { .. }) || spent.contains(&i) {
            continue;
        }
        plans[i] = Plan::WrongCode { user: i };
        spent.push(i);
        placed += 1;
    }
    plans
}

/// The lines of the gateway's log after byte `from` at level WARN or ERROR.
fn log_problems(gw: &Gw, from: usize) -> Vec<String> {
    let log = gw.log();
    log.get(from..)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .map(str::to_string)
        .collect()
}

/// Completed logins in the gateway's audit log.
fn audited_logins(gw: &Gw) -> usize {
    gw.sql("SELECT COUNT(*) FROM audit_events WHERE event = 'login.success'").trim().parse().unwrap_or(0)
}

/// A row on the gateway, once every code it needs is for a step the gateway accepts, and
/// the checks only the gateway can make: its audit log must count exactly the logins the
/// client saw succeed, and its warnings are shown.
fn gateway_row(rt: &tokio::runtime::Runtime, gw: &Gw, driver: &Arc<Driver>, load: Load) -> Row {
    // The gateway accepts one step either way of now.
    let step = driver.needed_step(&load.plans);
    while current_step() + 1 < step {
        std::thread::sleep(Duration::from_millis(500));
    }
    let audited = audited_logins(gw);
    let log_at = gw.log().len();
    let mut row = measure(rt, driver, load);
    let audited = audited_logins(gw) - audited;
    if audited != row.accepted.len() {
        row.wrong_count += 1;
        row.wrong.push(format!("the audit log has {audited} completed logins, the client saw {}", row.accepted.len()));
    }
    let problems = log_problems(gw, log_at);
    if !problems.is_empty() {
        eprintln!("gateway log, {} warnings and errors during \"{}\"; the first ones:", problems.len(), row.name);
        for p in problems.iter().take(5) {
            eprintln!("  {p}");
        }
    }
    row
}

fn gateway_rows(rt: &tokio::runtime::Runtime, backend: Backend, s: &Settings, rng: &mut Rng) -> Vec<Row> {
    let tag = match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    let raised = s.logins.max(100) * 2;
    let mut gw = Gw::with_config(backend, &gateway_config(Some(raised), s.source_threshold));
    gw.start();
    let key = gw.new_key("load");
    let warm_users = 10;
    eprintln!("{tag}: creating {} users with a key and a TOTP each…", s.logins + warm_users);
    let (secrets, took) = provision(&gw, &key, s.logins + warm_users, s.jobs);
    println!(
        "{tag}: {} users (user add, user add-key, factor totp enroll; {} CLI processes at once) \
         in {:.1} s, {:.1} ms per user",
        secrets.len(),
        s.jobs,
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / secrets.len() as f64
    );
    // The in-process codes must be oathtool's.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    for secret in secrets.iter().take(3) {
        assert_eq!(code_for_step(secret, now / 30), totp_at(secret, now / 30 * 30), "TOTP codes differ from oathtool");
    }
    let private = russh::keys::load_secret_key(&key.private, None).expect("reading the client key");
    let mut driver = Arc::new(Driver::gateway(gw.ssh_port, private, secrets, s.timeout));
    let one_source = |_: usize| -> Option<IpAddr> { None };
    let spread = |i: usize| Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % s.sources) as u8)));
    let mut spent = Vec::new();
    let pid = gw.pid().expect("the gateway runs");
    let load = |name: String, plans: Vec<Plan>, capped: bool, pid: u32| Load {
        name,
        plans,
        source: &one_source,
        server_pid: pid,
        server_children: false,
        capped,
        reference: false,
    };
    // Warm-up: the database's pages and the first connections, not shown.
    let plans = (s.logins..s.logins + warm_users).map(|user| Plan::Totp { user }).collect();
    let w = gateway_row(rt, &gw, &driver, load("warm-up".into(), plans, false, pid));
    assert!(w.wrong.is_empty(), "warm-up logins failed: {:?}", w.wrong);

    let mut rows = Vec::new();
    let plans = gateway_plans(s.logins, s.wrong, rng, &mut spent);
    let name = format!("gateway ({tag}), key + TOTP, caps {raised}");
    rows.push(gateway_row(rt, &gw, &driver, load(name, plans, false, pid)));

    // The product's default caps: the same users, the gateway restarted.
    gw.stop();
    gw.set_extra_config(&gateway_config(None, s.source_threshold));
    gw.start();
    Arc::get_mut(&mut driver).expect("every connection of the last row ended").port = gw.ssh_port;
    let pid = gw.pid().expect("the gateway runs");
    let plans = gateway_plans(s.logins, s.wrong, rng, &mut spent);
    let name = format!("gateway ({tag}), default caps, 1 source");
    rows.push(gateway_row(rt, &gw, &driver, load(name, plans, true, pid)));
    let plans = gateway_plans(s.logins, s.wrong, rng, &mut spent);
    let name = format!("gateway ({tag}), default caps, {} sources", s.sources);
    rows.push(gateway_row(rt, &gw, &driver, Load { source: &spread, ..load(name, plans, true, pid) }));
    rows
}

// ---------------------------------------------------------------------------------------
// OpenSSH.

/// A row on a fresh sshd with `MaxStartups` raised to `max_startups` or at its default.
fn sshd_row(rt: &tokio::runtime::Runtime, s: &Settings, max_startups: Option<usize>) -> Row {
    let dir = tempfile::Builder::new().prefix("gatehouse-load-").tempdir().expect("temp dir");
    let key = ClientKey::generate(dir.path(), "load");
    // LoginGraceTime 0: no deadline of sshd's own, the bench's timeout applies (sshd's
    // default, 120 s, would cut logins still waiting behind the others).
    let extra = match max_startups {
        Some(n) => format!("MaxStartups {n}\nLoginGraceTime 0\n"),
        None => "LoginGraceTime 0\n".to_string(),
    };
    let sshd = Sshd::start_with(&key.line, &extra);
    let private = russh::keys::load_secret_key(&key.private, None).expect("reading the client key");
    let driver = Arc::new(Driver::sshd(sshd.port, private, &sshd.user, s.timeout));
    let one_source = |_: usize| -> Option<IpAddr> { None };
    let load = |name: String, n: usize| Load {
        name,
        plans: vec![Plan::Sshd; n],
        source: &one_source,
        server_pid: sshd.pid().expect("sshd runs"),
        server_children: true,
        capped: max_startups.is_none_or(|m| m < n),
        reference: true,
    };
    let w = measure(rt, &driver, load("warm-up".into(), 10));
    assert!(w.wrong.is_empty(), "warm-up logins to sshd failed: {:?}", w.wrong);
    let name = match max_startups {
        Some(n) => format!("OpenSSH sshd, key (no TOTP), MaxStartups {n}"),
        None => "OpenSSH sshd, key (no TOTP), default MaxStartups".to_string(),
    };
    measure(rt, &driver, load(name, s.logins))
}

// ---------------------------------------------------------------------------------------

fn print_rows(rows: &[Row]) {
    println!(
        "\n{:<50} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "", "conns", "in", "refus", "nobnr", "lost", "wrong", "p50 ms", "p99 ms", "logins/s", "srv ms/l", "cli ms/l"
    );
    for r in rows {
        let per = |cpu: f64| if r.accepted.is_empty() { f64::NAN } else { cpu * 1000.0 / r.accepted.len() as f64 };
        println!(
            "{:<50} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>8.1} {:>8.1} {:>8.1} {:>8.2} {:>8.2}",
            r.name,
            r.attempted,
            r.accepted.len(),
            r.refused.len(),
            r.no_banner,
            r.lost,
            r.wrong_count,
            r.latency(0.5),
            r.latency(0.99),
            r.per_second(),
            per(r.server_cpu),
            per(r.client_cpu),
        );
    }
    println!("\nsteps of the accepted logins, ms (p50 / p99):");
    println!(
        "{:<50} {:>17} {:>17} {:>17} {:>17} {:>17}",
        "", "handshake", "publickey", "code prompt", "code checked", "session"
    );
    for r in rows.iter().filter(|r| !r.accepted.is_empty()) {
        let p = |f: fn(&Phases) -> f64| format!("{:.1} / {:.1}", r.pct(0.5, |(_, x)| f(x)), r.pct(0.99, |(_, x)| f(x)));
        let cols = [p(|x| x.handshake), p(|x| x.publickey), p(|x| x.prompt), p(|x| x.code), p(|x| x.session)];
        let text: Vec<String> = cols.iter().map(|c| format!("{c:>17}")).collect();
        println!("{:<50} {}", r.name, text.join(" "));
    }
    println!();
    for r in rows {
        let refused: Vec<String> =
            r.refused.iter().map(|(d, n)| format!("{:.0} ms/{n}", d.as_secs_f64() * 1000.0)).collect();
        println!(
            "{}: all decided in {:.2} s; kernel: {} listen-queue overflows, {} SYN cookies, {} SYN retransmits",
            r.name,
            r.wall_all.as_secs_f64(),
            r.tcp.listen_overflows,
            r.tcp.syncookies_sent,
            r.tcp.syn_retransmits
        );
        if !r.refused.is_empty() {
            println!("  wrong codes refused (time / codes sent): {}", refused.join(", "));
        }
        if !r.no_banner_said.is_empty() {
            println!("  closed before the banner: {:?}", r.no_banner_said);
        }
    }
}

fn main() {
    let s = Settings::from_env();
    println!(
        "{} connections per row, {} of them with wrong codes at the gateway (seed {}); load average now: {}",
        s.logins,
        s.wrong,
        s.seed,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    // The client sockets here, the gateway's or sshd's, and the files of both.
    system::raise_open_files((s.logins as u64) * 2 + 1024);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let mut rng = Rng(s.seed | 1);
    let mut rows = Vec::new();
    for backend in backends() {
        rows.extend(gateway_rows(&rt, backend, &s, &mut rng));
        if backend == Backend::Sqlite {
            rows.push(sshd_row(&rt, &s, Some(s.logins.max(100) * 2)));
            rows.push(sshd_row(&rt, &s, None));
        }
    }
    print_rows(&rows);
    println!(
        "\nin: logged in; refus: wrong codes refused; nobnr: closed before the banner by a cap on \
         logins in progress; lost: the reference server dropped them before its banner with no \
         cap in force (its listen queue overflowed); wrong: not decided as expected. \
         srv/cli ms/l: CPU ms per login of the server (sshd with its per-connection processes; \
         not PostgreSQL's) and of this client."
    );
    let failures: Vec<&Row> = rows.iter().filter(|r| r.wrong_count > 0).collect();
    for r in &failures {
        eprintln!("{}: {} connections not decided as expected:", r.name, r.wrong_count);
        for w in &r.wrong {
            eprintln!("  {w}");
        }
    }
    assert!(failures.is_empty(), "some connections were not decided as expected (see above)");
}
