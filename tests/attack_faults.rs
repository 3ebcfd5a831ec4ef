//! Faults and floods the gate must survive, against the real binary: a slowloris flood of
//! idle TCP connections (the pending-connection cap keeps a real login possible), the
//! gateway killed with SIGKILL in the middle of a recorded session (the recording plays up
//! to the kill, the stale live-session row is reclaimed at the next start), and the
//! database lost between the password and the second-factor answer (the login is refused
//! with a message, nothing is half-written, and logins work again once it is back).

mod common;
mod shell_support;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use common::raw::{RawClient, Step};
use common::{Backend, Gw, Ssh, backends, describe, run_with_timeout, stdout, totp_now};
use shell_support::{asciinema_cat, bastion};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

const PASSWORD: &str = "correct horse battery";

/// `127.0.0.N`: every address of 127.0.0.0/8 is loopback, so one machine can play many
/// sources.
fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// A TCP connection to the gateway's SSH port from `source` that never sends a byte.
/// `None` when the connection itself failed.
async fn idle_connection(source: IpAddr, port: u16) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(source, 0)).ok()?;
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    tokio::time::timeout(Duration::from_secs(5), socket.connect(to)).await.ok()?.ok()
}

/// What the gateway did with an idle connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// It sent its SSH banner and kept the connection open.
    Banner,
    /// It closed the connection without a byte.
    Closed,
    /// Neither within the wait.
    Nothing,
}

/// Reads what the gateway sends first on `stream`, waiting up to `wait`.
async fn first_answer(stream: &mut TcpStream, wait: Duration) -> Seen {
    let mut buf = [0u8; 256];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Err(_) => Seen::Nothing,
        Ok(Ok(0)) | Ok(Err(_)) => Seen::Closed,
        Ok(Ok(n)) => {
            assert!(buf[..n].starts_with(b"SSH-2.0-"), "not an SSH banner: {:?}", String::from_utf8_lossy(&buf[..n]));
            Seen::Banner
        }
    }
}

/// Whether the gateway closes `stream` (after whatever it sent) within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Whether a new connection from `source` is let in (gets the banner), retried for up to
/// `wait` while the gateway frees slots.
async fn let_in_within(source: IpAddr, port: u16, wait: Duration) -> Option<TcpStream> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(mut s) = idle_connection(source, port).await
            && first_answer(&mut s, Duration::from_secs(2)).await == Seen::Banner
        {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One real OpenSSH login with a key (`ssh -v`, any command: getting in is what counts);
/// returns how long it took.
fn timed_key_login(gw: &Gw, key: &common::ClientKey, what: &str) -> Duration {
    let started = Instant::now();
    let out = Ssh::new(gw.ssh_port, "alice").identity(key).arg("-v").timeout(Duration::from_secs(30)).run(&["true"]);
    let took = started.elapsed();
    gw.assert_logged_in(&out, what);
    took
}

/// 1,000 idle TCP connections from one address (127.0.0.2) hold at most
/// `max_pending_per_source` slots; the rest are closed before the banner, a new one from
/// that address is refused while the flood holds, and a real OpenSSH login from another
/// address still gets in within a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_idle_flood_cannot_lock_out_a_real_login() {
    const FLOOD: usize = 1000;
    const PER_SOURCE: usize = 10;
    // The flood must still be in place when the real login runs: a long version deadline.
    let mut gw = Gw::with_config(
        Backend::Sqlite,
        "[ssh]\nversion_timeout_secs = 60\nmax_pending_per_source = 10\nmax_pending = 100\n",
    );
    gw.start();
    gw.add_user("alice", PASSWORD);
    let key = gw.add_key("alice");
    let baseline = timed_key_login(&gw, &key, "login before the flood");

    let flooder = loopback(2);
    let started = Instant::now();
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        if let Some(s) = idle_connection(flooder, gw.ssh_port).await {
            flood.push(s);
        }
    }
    let opened = flood.len();
    let open_time = started.elapsed();
    assert!(opened >= FLOOD * 9 / 10, "only {opened} of {FLOOD} connections could be opened");

    let mut seen = Vec::with_capacity(opened);
    for s in flood.iter_mut() {
        seen.push(first_answer(s, Duration::from_millis(500)).await);
    }
    let held = seen.iter().filter(|s| **s == Seen::Banner).count();
    let closed = seen.iter().filter(|s| **s == Seen::Closed).count();
    assert_eq!(held, PER_SOURCE, "flood connections let in (banner sent): {held}\n{}", gw.log());
    assert_eq!(closed, opened - PER_SOURCE, "every other flood connection is closed without a byte");

    // While the flood holds its slots, the same address gets nothing more.
    let mut again = idle_connection(flooder, gw.ssh_port).await.expect("connecting");
    assert_eq!(first_answer(&mut again, Duration::from_secs(2)).await, Seen::Closed, "over the cap: closed");

    // A real user elsewhere is not locked out.
    let with_flood = timed_key_login(&gw, &key, "login during the flood");
    println!(
        "slowloris: {opened} idle connections opened in {open_time:?} ({held} held, {closed} closed at once); \
         key login {baseline:?} before the flood, {with_flood:?} during it"
    );
    assert!(with_flood < Duration::from_secs(10), "the login took {with_flood:?} with the flood in place");
    assert!(gw.is_running());

    // The flood ends: its slots are released and the address is let in again.
    drop(flood);
    drop(again);
    let back = let_in_within(flooder, gw.ssh_port, Duration::from_secs(5)).await;
    assert!(back.is_some(), "the flooder's address was not let in after its connections closed\n{}", gw.log());
    assert!(gw.log().contains("too many connections logging in at once"), "the refusals are logged");
}

/// The cap in total as well as per address; slots freed by a completed login, by a close
/// and by the version-line deadline; logged-in connections never counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_cap_counts_only_connections_still_logging_in() {
    let mut gw = Gw::with_config(
        Backend::Sqlite,
        "[ssh]\nversion_timeout_secs = 4\nmax_pending_per_source = 2\nmax_pending = 4\n",
    );
    gw.start();
    gw.add_user("alice", PASSWORD);
    let port = gw.ssh_port;

    // Two logins from 127.0.0.1 fill its two slots while they run, and free them when
    // they complete: two idle connections from it are let in next to them, a third is not.
    let mut logged_in = Vec::new();
    for _ in 0..2 {
        let mut c = RawClient::connect(port, "alice").await;
        assert_eq!(c.password(PASSWORD).await, Step::Success, "{}", gw.log());
        logged_in.push(c);
    }
    let home = loopback(1);
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut s = idle_connection(home, port).await.expect("connecting");
        assert_eq!(first_answer(&mut s, Duration::from_secs(2)).await, Seen::Banner, "{}", gw.log());
        idle.push(s);
    }
    let mut third = idle_connection(home, port).await.expect("connecting");
    assert_eq!(first_answer(&mut third, Duration::from_secs(2)).await, Seen::Closed, "per-source cap");

    // Two more from another address reach the total of four; a fifth address gets nothing.
    for _ in 0..2 {
        let mut s = idle_connection(loopback(2), port).await.expect("connecting");
        assert_eq!(first_answer(&mut s, Duration::from_secs(2)).await, Seen::Banner, "{}", gw.log());
        idle.push(s);
    }
    let mut fifth = idle_connection(loopback(3), port).await.expect("connecting");
    assert_eq!(first_answer(&mut fifth, Duration::from_secs(2)).await, Seen::Closed, "total cap");

    // A close frees its slot at once.
    drop(idle.pop());
    let replacement = let_in_within(loopback(3), port, Duration::from_secs(2)).await;
    idle.push(replacement.expect("a slot freed by a close was not given to the next connection"));

    // Saying nothing costs the connection its slot after the version deadline.
    for (i, s) in idle.iter_mut().enumerate() {
        assert!(closed_within(s, Duration::from_secs(10)).await, "idle connection {i} was never closed\n{}", gw.log());
    }
    assert!(gw.log().contains("no SSH version line in time"), "{}", gw.log());
    assert!(let_in_within(loopback(4), port, Duration::from_secs(2)).await.is_some(), "slots freed by the deadline");

    // The logged-in connections were never touched by any of it.
    for c in &logged_in {
        assert!(!c.is_closed(), "a logged-in connection was closed");
    }
}

/// A recorded `ssh -tt` session to an sshd target; `gatehouse serve` is killed with
/// SIGKILL while it runs. The recording plays up to the kill, the audit log has the
/// session's start, and the next start removes (and audits) the live-session row the
/// killed process left.
#[test]
fn gateway_killed_mid_session_leaves_a_playable_recording_and_a_reclaimed_row() {
    let mut b = bastion();
    b.add_granted("web1");

    let mut cmd = Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).arg("-tt").command(&["web1"]);
    let mut ssh: Child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("starting ssh -tt");
    let mut typing = ssh.stdin.take().expect("stdin was piped");
    typing.write_all(b"echo before-kill-$((6*7))\n").expect("typing into the session");

    // Wait until the target's answer is in the recording and the session is registered.
    let deadline = Instant::now() + Duration::from_secs(30);
    let cast = loop {
        let file = b.recording_files().into_iter().next();
        if let Some(f) = &file
            && std::fs::read_to_string(f).unwrap_or_default().contains("before-kill-42")
            && b.sql("SELECT count(*) FROM live_sessions").trim() == "1"
        {
            break file.expect("checked above");
        }
        assert!(Instant::now() < deadline, "the session never got going\n{}", b.gw.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    let node = b.sql("SELECT node FROM live_sessions").trim().to_string();

    b.gw.kill();
    let ended = wait_exit(&mut ssh, Duration::from_secs(15));
    assert!(ended, "ssh kept running after the gateway was killed");

    // The recording is valid asciicast up to the kill.
    let played = asciinema_cat(&cast);
    assert!(played.status.success(), "asciinema cat failed on the killed session's recording:\n{}", describe(&played));
    assert!(stdout(&played).contains("before-kill-42"), "{}", describe(&played));

    // The audit log has the session's start; its row is still there, owned by no process.
    let connect = b.audit("target.connect");
    assert!(connect.contains("web1") && connect.contains("success"), "{connect}");
    assert_eq!(b.sql(&format!("SELECT count(*) FROM live_sessions WHERE node = '{node}'")).trim(), "1");

    // The next start of the same node removes it and says so in the audit log.
    b.gw.start();
    assert_eq!(b.sql("SELECT count(*) FROM live_sessions").trim(), "0", "{}", b.gw.log());
    let disconnect = b.audit("target.disconnect");
    assert!(disconnect.contains("web1") && disconnect.contains("stopped without closing it"), "{disconnect}");
    assert!(b.gw.log().contains("removed live sessions left by an earlier run"), "{}", b.gw.log());

    // And the gateway works as before.
    let out = Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).run(&["web1", "echo after-restart"]);
    assert_eq!(stdout(&out), "after-restart\n", "{}\n{}", describe(&out), b.gw.log());
    assert_eq!(b.sql("SELECT count(*) FROM live_sessions").trim(), "0");
}

fn wait_exit(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Makes the database unusable for the gateway, and gives it back on drop.
enum Outage {
    /// A `sqlite3` child holding the write lock (`BEGIN EXCLUSIVE`): every write of the
    /// gateway waits out its busy timeout and fails.
    SqliteLock(Child, ChildStdin),
    /// The database refuses new connections and the gateway's are terminated; the
    /// server-level URL (to undo it) and the database name.
    PostgresDown(String, String),
}

impl Outage {
    fn start(gw: &Gw) -> Outage {
        match gw.backend {
            Backend::Sqlite => {
                let path = gw.data_dir().join("gatehouse.db");
                let mut child = Command::new("sqlite3")
                    .arg(&path)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("starting sqlite3");
                // The pipe stays open, and the transaction with it, until the outage ends.
                let mut input = child.stdin.take().expect("stdin was piped");
                // With a busy timeout, so that a write the gateway happens to be making at
                // this moment delays the lock instead of failing it.
                input.write_all(b".timeout 20000\nBEGIN EXCLUSIVE;\n").expect("sending BEGIN EXCLUSIVE");
                // Wait until the lock is really held: a write from elsewhere must fail.
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let probe = run_with_timeout(
                        Command::new("sqlite3")
                            .args(["-cmd", ".timeout 100"])
                            .arg(&path)
                            .arg("BEGIN IMMEDIATE; ROLLBACK;"),
                        None,
                        Duration::from_secs(10),
                    );
                    if !probe.status.success() {
                        break;
                    }
                    assert!(Instant::now() < deadline, "sqlite3 never took the lock");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Outage::SqliteLock(child, input)
            }
            Backend::Postgres => {
                let server =
                    std::env::var(common::postgres::POSTGRES_URL_VAR).expect("PostgreSQL URL").trim().to_string();
                let name = gw.database_url.rsplit('/').next().unwrap_or_default().split('?').next().unwrap_or_default();
                psql(&server, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"));
                psql(
                    &server,
                    &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
                );
                Outage::PostgresDown(server, name.to_string())
            }
        }
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        match self {
            Outage::SqliteLock(child, input) => {
                let _ = input.write_all(b"ROLLBACK;\n");
                let _ = child.kill();
                let _ = child.wait();
            }
            Outage::PostgresDown(server, name) => {
                psql(server, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
            }
        }
    }
}

fn psql(url: &str, statement: &str) {
    let out = run_with_timeout(
        Command::new("psql").args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", statement]),
        None,
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "psql {statement:?}:\n{}", describe(&out));
}

/// Between the password and the second-factor answer the database goes away (SQLite: a
/// writer holds the lock; PostgreSQL: the gateway's connections are terminated and new
/// ones refused). The right code is then refused with a message saying why, the gateway
/// keeps running, nothing of the attempt is left half-written, and once the database is
/// back a new login passes without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_lost_at_the_second_factor_refuses_cleanly_and_recovers() {
    for backend in backends() {
        let mut gw = Gw::new(backend);
        gw.start();
        gw.add_user("alice", PASSWORD);
        let secret = gw.enroll_totp("alice");

        let mut c = RawClient::connect(gw.ssh_port, "alice").await;
        let step = c.reach_gate(PASSWORD).await;
        assert!(step.prompt().is_some_and(|p| p.contains("code")), "{step:?}\n{}", gw.log());

        let outage = Outage::start(&gw);
        let started = Instant::now();
        let answer = c.kbd_answer(&[&totp_now(&secret)]).await;
        let took = started.elapsed();
        println!("{backend:?}: the answer during the outage came back after {took:?}: {answer:?}");
        match &answer {
            Step::Info { instructions, prompts } => {
                assert!(prompts.is_empty(), "a refusal asks nothing more: {answer:?}");
                assert!(instructions.contains("database"), "the refusal says why: {answer:?}");
            }
            other => panic!("{backend:?}: expected a refusal with a message, got {other:?}\n{}", gw.log()),
        }
        // The notice is the last word: the login is over.
        let after = c.kbd_answer(&[]).await;
        assert!(matches!(after, Step::Failure { partial: false, .. }), "{after:?}");
        drop(outage);

        assert!(gw.is_running(), "the gateway died:\n{}", gw.log());
        assert!(!gw.log().contains("panicked"), "{}", gw.log());
        // Nothing half-written: no success, no lock, no guess left pending.
        assert_eq!(gw.sql("SELECT count(*) FROM login_failures WHERE pending = 1").trim(), "0", "{backend:?}");
        assert_eq!(gw.sql("SELECT count(*) FROM lockouts WHERE locked_until > 0").trim(), "0", "{backend:?}");
        let audit = gw.cli_ok(&["audit", "--user", "alice", "--limit", "50"]);
        assert!(!audit.contains("login.success"), "{backend:?}: {audit}");

        // The database is back: a new login passes, on the same running gateway.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut c = RawClient::connect(gw.ssh_port, "alice").await;
            let step = c.password(PASSWORD).await;
            if step == (Step::Failure { partial: true, kbd: true }) {
                let _ = c.kbd_start().await;
                let done = c.kbd_answer(&[&totp_now(&secret)]).await;
                assert_eq!(done, Step::Success, "{backend:?}\n{}", gw.log());
                break;
            }
            assert!(Instant::now() < deadline, "{backend:?}: logins never worked again: {step:?}\n{}", gw.log());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let audit = gw.cli_ok(&["audit", "--user", "alice", "--event", "login.success", "--limit", "50"]);
        assert_eq!(audit.lines().filter(|l| l.contains("login.success")).count(), 1, "{backend:?}: {audit}");
        gw.stop();
    }
}
