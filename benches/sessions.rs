//! The data path, side by side with OpenSSH in one run on loopback:
//!
//! - bulk throughput: `cat` of a text file in a recorded PTY session through the gateway vs
//!   the same `ssh -tt` straight to the sshd; `scp` and `sftp`, both directions, through
//!   the gateway vs straight;
//!   `ssh -J` through the gateway vs `ssh -J` through an OpenSSH sshd jump host;
//! - keystroke echo round trip (p50/p99) through the gateway vs straight;
//! - memory: the gateway's RSS growth per idle authenticated menu session (1,000 of them),
//!   and the PSS of OpenSSH's per-connection sshd processes per idle shell session.
//!
//! `cargo bench --bench sessions`. Environment: `GATEHOUSE_BENCH_MB` (file size, default
//! 1024), `GATEHOUSE_BENCH_RUNS` (runs per throughput row, median and spread reported,
//! default 5), `GATEHOUSE_BENCH_ROWS` (throughput rows to run, comma-separated: `pty`,
//! `scp-down`, `scp-up`, `sftp-down`, `sftp-up`, `jump`; default all),
//! `GATEHOUSE_BENCH_PARTS` (`throughput`, `echo`, `memory`; default all),
//! `GATEHOUSE_BENCH_ECHOES` (keystrokes, default 500), `GATEHOUSE_BENCH_IDLE` (idle
//! gateway sessions, default 1000), `GATEHOUSE_BENCH_IDLE_SSHD` (idle sshd sessions,
//! default 100).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Backend, ClientKey, Gw, Sshd};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Bench {
    gw: Gw,
    target: Sshd,
    jump: Sshd,
    config: PathBuf,
    /// Keeps the config and data files.
    _dir: tempfile::TempDir,
}

impl Bench {
    fn ssh(&self) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F").arg(&self.config);
        c
    }
}

fn setup() -> Bench {
    let mut gw = Gw::new(Backend::Sqlite);
    gw.start();
    let key: ClientKey = gw.new_key("bench");
    gw.cli_ok(&["user", "add", "bench"]);
    gw.cli_ok(&["user", "add-key", "bench", "--key-file", &key.public.display().to_string()]);
    let (target, target_key) = Sshd::start_with_new_key();
    target.authorize(&key.line);
    let jump = Sshd::start(&key.line);
    let port = target.port.to_string();
    let target_key = target_key.display().to_string();
    gw.cli_ok(&[
        "target",
        "add",
        "t1",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--user",
        &target.user,
        "--key-file",
        &target_key,
        "--host-key",
        &target.host_key_pub,
    ]);
    gw.cli_ok(&["target", "grant", "t1", "--user", "bench"]);

    let dir = tempfile::Builder::new().prefix("gatehouse-bench-").tempdir().expect("temp dir");
    let config = dir.path().join("ssh_config");
    let text = format!(
        "Host gw\n  Port {gw}\n  User bench\n\
         Host gw-t1\n  Port {gw}\n  User bench:t1\n\
         Host target\n  Port {t}\n  User {tu}\n\
         Host jump\n  Port {j}\n  User {ju}\n\
         Host *\n  HostName 127.0.0.1\n  IdentityFile {key}\n  IdentitiesOnly yes\n  IdentityAgent none\n  \
         StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  GlobalKnownHostsFile /dev/null\n  \
         BatchMode yes\n  LogLevel ERROR\n  ConnectTimeout 30\n",
        gw = gw.ssh_port,
        t = target.port,
        tu = target.user,
        j = jump.port,
        ju = jump.user,
        key = key.private.display(),
    );
    std::fs::write(&config, text).expect("writing the ssh config");
    Bench { gw, target, jump, config, _dir: dir }
}

/// A file of `mb` MiB of base64 text (printable, so a PTY and the recording carry it as it
/// is, apart from the PTY's CR before each LF).
fn make_file(dir: &Path, mb: usize) -> PathBuf {
    let path = dir.join("payload.txt");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("head -c {} /dev/urandom | base64 -w 76 > '{}'", mb * 1024 * 1024 * 3 / 4, path.display()))
        .status()
        .expect("running head | base64");
    assert!(status.success(), "could not write the payload file");
    path
}

/// Runs `cmd` with stdout to /dev/null; returns the wall time. Panics on failure.
fn timed(what: &str, mut cmd: Command) -> Duration {
    let started = Instant::now();
    let out = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).output().expect("spawning");
    let took = started.elapsed();
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    took
}

/// A command to time, built afresh for each run.
type Build<'a> = Box<dyn Fn() -> Command + 'a>;

/// One row of the table: the same transfer direct to the target's sshd and via the
/// gateway.
struct Pair<'a> {
    key: &'static str,
    name: &'static str,
    direct: Build<'a>,
    via: Build<'a>,
}

/// An `sftp` batch session with `batch` as its commands.
fn sftp(b: &Bench, host: &str, batch: String) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("printf '%s\\n' \"$1\" | sftp -q -F \"$2\" -b - \"$3\"")
        .arg("sftp-batch")
        .arg(batch)
        .arg(&b.config)
        .arg(host);
    c
}

/// The rows, by key: `pty`, `scp-down`, `scp-up`, `sftp-down`, `sftp-up`, `jump`.
fn pairs<'a>(b: &'a Bench, file: &'a Path) -> Vec<Pair<'a>> {
    let f = file.display().to_string();
    let cat = format!("cat '{f}'");
    let ssh = move |args: Vec<String>| -> Command {
        let mut c = b.ssh();
        c.args(args);
        c
    };
    let scp = move |from: String, to: String| -> Command {
        let mut c = Command::new("scp");
        c.arg("-q").arg("-F").arg(&b.config).args([from, to]);
        c
    };
    let (f1, f2, f3, f4, f5, f6, f7, f8) =
        (f.clone(), f.clone(), f.clone(), f.clone(), f.clone(), f.clone(), f.clone(), f.clone());
    let (c1, c2, c3, c4) = (cat.clone(), cat.clone(), cat.clone(), cat);
    vec![
        Pair {
            key: "pty",
            name: "PTY cat (via: recorded)",
            direct: Box::new(move || ssh(vec!["-tt".into(), "target".into(), c1.clone()])),
            via: Box::new(move || ssh(vec!["-tt".into(), "gw-t1".into(), c2.clone()])),
        },
        Pair {
            key: "scp-down",
            name: "scp download",
            direct: Box::new(move || scp(format!("target:{f1}"), "/dev/null".into())),
            via: Box::new(move || scp(format!("gw-t1:{f2}"), "/dev/null".into())),
        },
        Pair {
            key: "scp-up",
            name: "scp upload",
            direct: Box::new(move || scp(f3.clone(), "target:/dev/null".into())),
            via: Box::new(move || scp(f4.clone(), "gw-t1:/dev/null".into())),
        },
        Pair {
            key: "sftp-down",
            name: "sftp get",
            direct: Box::new(move || sftp(b, "target", format!("get {f5} /dev/null"))),
            via: Box::new(move || sftp(b, "gw-t1", format!("get {f6} /dev/null"))),
        },
        Pair {
            key: "sftp-up",
            name: "sftp put",
            direct: Box::new(move || sftp(b, "target", format!("put {f7} /dev/null"))),
            via: Box::new(move || sftp(b, "gw-t1", format!("put {f8} /dev/null"))),
        },
        Pair {
            key: "jump",
            name: "cat, ssh -J (direct: via OpenSSH sshd)",
            direct: Box::new(move || ssh(vec!["-J".into(), "jump".into(), "target".into(), c3.clone()])),
            via: Box::new(move || ssh(vec!["-J".into(), "gw".into(), "target".into(), c4.clone()])),
        },
    ]
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn spread(v: &[f64]) -> (f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

/// Each row `runs` times, direct and via the gateway back to back in alternating order,
/// so that drift of the machine hits both alike; prints the median rate of each, the
/// spread of the rates, and the ratio of the medians with the spread of the per-run
/// ratios.
fn throughput(b: &Bench, file: &Path, bytes: u64, runs: usize, only: &[String]) {
    let rows: Vec<Pair> =
        pairs(b, file).into_iter().filter(|p| only.is_empty() || only.iter().any(|k| k == p.key)).collect();
    let mib = bytes as f64 / (1024.0 * 1024.0);
    let rate = |d: Duration| mib / d.as_secs_f64();
    let mut rates: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); rows.len()];
    for run in 0..runs {
        for (i, row) in rows.iter().enumerate() {
            let (direct, via) = if run % 2 == 0 {
                let d = timed(row.name, (row.direct)());
                (d, timed(row.name, (row.via)()))
            } else {
                let v = timed(row.name, (row.via)());
                (timed(row.name, (row.direct)()), v)
            };
            rates[i].0.push(rate(direct));
            rates[i].1.push(rate(via));
        }
    }
    println!("\nbulk throughput: {mib:.0} MiB file, {runs} runs of each, MiB/s (median, min-max)");
    println!("{:<40} {:>20} {:>20} {:>18}", "", "direct", "via gateway", "via / direct");
    for (row, (direct, via)) in rows.iter().zip(&rates) {
        let ratios: Vec<f64> = direct.iter().zip(via).map(|(d, v)| v / d).collect();
        let (dl, dh) = spread(direct);
        let (vl, vh) = spread(via);
        let (rl, rh) = spread(&ratios);
        println!(
            "{:<40} {:>20} {:>20} {:>18}",
            row.name,
            format!("{:.1} ({dl:.0}-{dh:.0})", median(direct)),
            format!("{:.1} ({vl:.0}-{vh:.0})", median(via)),
            format!("{:.2}x ({rl:.2}-{rh:.2})", median(via) / median(direct)),
        );
    }
}

/// One interactive `stty raw -echo; cat` session; measures single-byte round trips.
fn echo_latency(mut cmd: Command, echoes: usize) -> Vec<Duration> {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawning ssh");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<u8>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                if tx.send(b).is_err() {
                    return;
                }
            }
        }
    });
    // Let the session start and `stty` take effect, then drop whatever came so far.
    stdin.write_all(b"w").expect("writing");
    rx.recv_timeout(Duration::from_secs(30)).expect("the session never echoed");
    std::thread::sleep(Duration::from_secs(1));
    while rx.try_recv().is_ok() {}
    let mut samples = Vec::with_capacity(echoes);
    for i in 0..echoes {
        let byte = b'a' + (i % 26) as u8;
        let t = Instant::now();
        stdin.write_all(&[byte]).expect("writing a keystroke");
        let got = rx.recv_timeout(Duration::from_secs(10)).expect("no echo within 10 s");
        samples.push(t.elapsed());
        assert_eq!(got, byte, "echo out of order");
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    samples
}

fn pct(samples: &[Duration], p: f64) -> f64 {
    let mut s: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    s.sort_by(|a, b| a.total_cmp(b));
    s[(((s.len() - 1) as f64) * p).round() as usize]
}

fn latency(b: &Bench, echoes: usize) {
    let program = "stty raw -echo; cat";
    let mut direct = b.ssh();
    direct.args(["-tt", "target", program]);
    let mut via = b.ssh();
    via.args(["-tt", "gw-t1", program]);
    let d = echo_latency(direct, echoes);
    let g = echo_latency(via, echoes);
    println!("\nkeystroke echo round trip ({echoes} keystrokes, PTY, remote `cat` in raw mode)");
    println!("{:<36} {:>10} {:>10}", "", "p50 ms", "p99 ms");
    println!("{:<36} {:>10.3} {:>10.3}", "direct to sshd", pct(&d, 0.5), pct(&d, 0.99));
    println!("{:<36} {:>10.3} {:>10.3}", "via gateway (recorded)", pct(&g, 0.5), pct(&g, 0.99));
}

/// Resident set size of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    proc_field(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// Proportional set size of `pid` in KiB (shared pages split among sharers).
fn pss_kib(pid: u32) -> u64 {
    proc_field(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

fn proc_field(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// A soft limit from `/proc/PID/limits`.
fn proc_limit(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l[name.len()..].split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(u64::MAX)
}

/// Every process below `root` (children, grandchildren, …).
fn descendants(root: u32) -> Vec<(u32, String)> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let comm = stat[open + 1..close].to_string();
        let ppid: u32 = stat[close + 2..].split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
        parent_of.push((pid, ppid, comm));
    }
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, ppid, comm) in &parent_of {
            if *ppid == p {
                found.push((*pid, comm.clone()));
                frontier.push(*pid);
            }
        }
    }
    found
}

/// Opens `n` idle sessions with `cmd()` (stdin kept open) and waits until `ready(n)`.
fn open_idle(n: usize, batch: usize, cmd: impl Fn() -> Command, ready: impl Fn(usize) -> bool) -> Vec<Child> {
    let mut clients = Vec::with_capacity(n);
    while clients.len() < n {
        let upto = (clients.len() + batch).min(n);
        while clients.len() < upto {
            let child =
                cmd().stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawning ssh");
            clients.push(child);
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while !ready(clients.len()) {
            assert!(Instant::now() < deadline, "sessions did not come up ({} started)", clients.len());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    clients
}

fn close_all(clients: Vec<Child>) {
    for mut c in clients {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Successful logins so far, from the gateway's audit log.
fn logins(gw: &Gw) -> usize {
    let db = gw.database_url.trim_start_matches("sqlite://").split('?').next().unwrap_or_default().to_string();
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT COUNT(*) FROM audit_events WHERE event = 'login.success'")
        .output()
        .expect("running sqlite3");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

fn memory(b: &Bench, idle: usize, idle_sshd: usize) {
    let gw_pid = b.gw.pid().expect("the gateway runs");
    let limit = proc_limit(gw_pid, "Max open files");
    assert!(
        limit > idle as u64 + 100,
        "the gateway may open {limit} files: too few for {idle} sessions (raise ulimit -n)"
    );
    let menu = || {
        let mut c = b.ssh();
        c.args(["-tt", "gw"]);
        c
    };
    // Warm-up: a few sessions so allocator pools and the database pool exist.
    let base = logins(&b.gw);
    let warm = open_idle(5, 5, menu, |n| logins(&b.gw) >= base + n);
    std::thread::sleep(Duration::from_secs(1));
    close_all(warm);
    std::thread::sleep(Duration::from_secs(2));
    let before = rss_kib(gw_pid);
    let base = logins(&b.gw);
    let started = Instant::now();
    let clients = open_idle(idle, 50, menu, |n| logins(&b.gw) >= base + n);
    let opened_in = started.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let after = rss_kib(gw_pid);
    close_all(clients);

    // OpenSSH: the per-connection sshd processes of idle shell sessions.
    let sshd_pid = b.target.pid().expect("sshd runs");
    let sshd_procs = || descendants(sshd_pid).into_iter().filter(|(_, c)| c.starts_with("sshd")).collect::<Vec<_>>();
    // A logged-in session has a process titled `sshd: USER@pts/N`.
    let logged_in = || sshd_procs().iter().filter(|(p, _)| cmdline(*p).contains('@')).count();
    // Batches of 5 stay under sshd's MaxStartups (10 unauthenticated at once).
    let sessions = open_idle(
        idle_sshd,
        5,
        || {
            let mut c = b.ssh();
            c.args(["-tt", "target"]);
            c
        },
        |n| logged_in() >= n,
    );
    std::thread::sleep(Duration::from_secs(3));
    let procs = sshd_procs();
    let idle_sshd = logged_in();
    let pss: u64 = procs.iter().map(|(p, _)| pss_kib(*p)).sum();
    let rss: u64 = procs.iter().map(|(p, _)| rss_kib(*p)).sum();
    close_all(sessions);

    let per = (after.saturating_sub(before)) as f64 / idle as f64;
    println!("\nmemory of idle authenticated sessions");
    println!(
        "gateway: {idle} idle menu sessions opened in {:.1} s; RSS {before} KiB -> {after} KiB: {per:.1} KiB per session",
        opened_in.as_secs_f64()
    );
    println!(
        "OpenSSH sshd: {idle_sshd} idle shell sessions, {} sshd processes: PSS {:.1} KiB, RSS {:.1} KiB per session (shell not counted)",
        procs.len(),
        pss as f64 / idle_sshd as f64,
        rss as f64 / idle_sshd as f64
    );
}

fn main() {
    let mb = env_usize("GATEHOUSE_BENCH_MB", 1024);
    let runs = env_usize("GATEHOUSE_BENCH_RUNS", 5).max(1);
    let echoes = env_usize("GATEHOUSE_BENCH_ECHOES", 500);
    let idle = env_usize("GATEHOUSE_BENCH_IDLE", 1000);
    let idle_sshd = env_usize("GATEHOUSE_BENCH_IDLE_SSHD", 100);
    let list = |name: &str| -> Vec<String> {
        std::env::var(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    let rows = list("GATEHOUSE_BENCH_ROWS");
    let parts = list("GATEHOUSE_BENCH_PARTS");
    let part = |p: &str| parts.is_empty() || parts.iter().any(|x| x == p);
    let b = setup();
    if part("throughput") {
        let file = make_file(b.target.dir.path(), mb);
        let bytes = std::fs::metadata(&file).expect("payload").len();
        throughput(&b, &file, bytes, runs, &rows);
        // The recordings of the PTY rows are as large as the file.
        for f in std::fs::read_dir(b.gw.data_dir().join("recordings")).into_iter().flatten().flatten() {
            let _ = std::fs::remove_file(f.path());
        }
    }
    if part("echo") {
        latency(&b, echoes);
    }
    if part("memory") {
        memory(&b, idle, idle_sshd);
    }
    let _ = &b.jump;
}
