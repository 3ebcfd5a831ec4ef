//! Faults and floods the gate must survive, against the real binary: a slowloris flood of
//! idle TCP connections (the pending-connection cap keeps a real login possible).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::raw::{RawClient, Step};
use common::{Backend, Gw, Ssh};
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
