//! Channels and requests of every kind sent before the login is complete, with the
//! harness's message-level client (tests/common/wire.rs), since no SSH library sends them
//! that early: session, direct-tcpip, direct-streamlocal, x11, auth-agent and
//! forwarded-tcpip channels; pty-req, env, exec, shell, subsystem, x11-req and agent
//! requests on a channel that was never confirmed; data on it; tcpip-forward and
//! streamlocal-forward global requests and their cancellations. Sent before the password
//! and again between the password and the second factor, each must get nothing: no
//! confirmation, no success, no connection to anything behind the gateway, no audit event
//! of something opened. Once the gate is passed on the same connection, the same
//! forwarding opens: it was the gate that refused it.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::wire::{Auth, Msg, Wire, msg};
use common::{Backend, Gw, totp_now};

const PASSWORD: &str = "correct horse battery";

/// Counts the connections a listener accepts, so a test can tell whether anything was
/// ever forwarded to it.
#[derive(Clone, Default)]
struct Knocks(Arc<AtomicUsize>);

impl Knocks {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A TCP listener on loopback that counts (and holds) what connects to it.
async fn tcp_listener() -> (u16, Knocks) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding a listener");
    let port = listener.local_addr().expect("its address").port();
    let knocks = Knocks::default();
    let k = knocks.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            k.0.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    (port, knocks)
}

/// A Unix socket listener that counts what connects to it.
fn unix_listener(path: &Path) -> Knocks {
    let listener = tokio::net::UnixListener::bind(path).expect("binding a Unix socket");
    let knocks = Knocks::default();
    let k = knocks.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            k.0.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    knocks
}

/// A gateway with alice (password, TOTP) and target `web1`, granted to her, at
/// `127.0.0.1:port`: a listener of the test's, so that any connection the gateway makes
/// there is seen.
fn gateway(port: u16) -> (Gw, String) {
    let mut gw = Gw::new(Backend::Sqlite);
    gw.start();
    gw.add_user("alice", PASSWORD);
    let secret = gw.enroll_totp("alice");
    let out = gw.cli_stdin(
        &[
            "target",
            "add",
            "web1",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--user",
            "root",
            "--password-stdin",
        ],
        "target password\n",
    );
    gw.assert_success(&out, "target add");
    gw.cli_ok(&["target", "grant", "web1", "--user", "alice"]);
    (gw, secret)
}

/// Every channel and request a client can send, numbered from channel id `first`: each
/// with what it is, for the failure message.
fn everything(first: u32, web1_port: u16, socket: &Path, marker: &Path) -> Vec<(&'static str, Msg)> {
    let socket = socket.display().to_string();
    let touch = format!("touch {}", marker.display());
    let f = Msg::fields;
    vec![
        ("session channel", Msg::channel_open("session", first, f())),
        (
            "direct-tcpip to web1's address",
            Msg::channel_open(
                "direct-tcpip",
                first + 1,
                f().string("127.0.0.1").u32(web1_port as u32).string("127.0.0.1").u32(40000),
            ),
        ),
        (
            "direct-streamlocal to a Unix socket",
            Msg::channel_open("direct-streamlocal@openssh.com", first + 2, f().string(&socket).string("").u32(0)),
        ),
        ("x11 channel", Msg::channel_open("x11", first + 3, f().string("127.0.0.1").u32(6010))),
        ("auth-agent channel", Msg::channel_open("auth-agent@openssh.com", first + 4, f())),
        (
            "forwarded-tcpip channel",
            Msg::channel_open(
                "forwarded-tcpip",
                first + 5,
                f().string("127.0.0.1").u32(web1_port as u32).string("127.0.0.1").u32(40001),
            ),
        ),
        // Requests on the gateway's channel 0, which was never confirmed to anyone.
        ("pty-req", Msg::channel_request(0, "pty-req", f().string("xterm").u32(80).u32(24).u32(0).u32(0).string(""))),
        ("env", Msg::channel_request(0, "env", f().string("LD_PRELOAD").string("/tmp/evil.so"))),
        ("exec", Msg::channel_request(0, "exec", f().string(format!("web1 {touch}")))),
        ("shell", Msg::channel_request(0, "shell", f())),
        ("subsystem sftp", Msg::channel_request(0, "subsystem", f().string("sftp"))),
        (
            "x11-req",
            Msg::channel_request(0, "x11-req", f().bool(false).string("MIT-MAGIC-COOKIE-1").string("00ff").u32(0)),
        ),
        ("auth-agent-req", Msg::channel_request(0, "auth-agent-req@openssh.com", f())),
        ("data on channel 0", Msg::new(msg::CHANNEL_DATA).u32(0).string(format!("{touch}\n"))),
        ("tcpip-forward", Msg::global_request("tcpip-forward", f().string("127.0.0.1").u32(0))),
        (
            "cancel-tcpip-forward",
            Msg::global_request("cancel-tcpip-forward", f().string("127.0.0.1").u32(web1_port as u32)),
        ),
        ("streamlocal-forward", Msg::global_request("streamlocal-forward@openssh.com", f().string(&socket))),
        (
            "cancel-streamlocal-forward",
            Msg::global_request("cancel-streamlocal-forward@openssh.com", f().string(&socket)),
        ),
    ]
}

/// The messages that would mean something was granted.
fn granted(m: &[u8]) -> bool {
    matches!(
        m[0],
        msg::CHANNEL_OPEN_CONFIRMATION
            | msg::CHANNEL_SUCCESS
            | msg::CHANNEL_DATA
            | msg::CHANNEL_EXTENDED_DATA
            | msg::CHANNEL_WINDOW_ADJUST
            | msg::REQUEST_SUCCESS
            | msg::USERAUTH_SUCCESS
    )
}

/// Sends everything, then reads what comes back for a few seconds: nothing may be a grant.
/// Returns whether the gateway closed the connection over it (allowed: it owes an
/// unauthenticated client nothing).
async fn send_everything(wire: &mut Wire, attempts: Vec<(&'static str, Msg)>, gw: &Gw) -> bool {
    for (what, m) in &attempts {
        if wire.send(m).await.is_err() {
            println!("the gateway closed the connection at {what}");
            return true;
        }
    }
    let (replies, closed) = wire.drain(Duration::from_secs(3)).await;
    let kinds: Vec<u8> = replies.iter().map(|m| m[0]).collect();
    println!("replies before the gate: {kinds:?}, closed: {closed}");
    assert!(!replies.iter().any(|m| granted(m)), "something was granted before the gate: {kinds:?}\n{}", gw.log());
    closed
}

/// What must hold after any of these attempts: nothing reached web1's address or the Unix
/// socket, nothing ran, the audit log has nothing opened, the gateway runs.
fn nothing_reached(gw: &mut Gw, web1: &Knocks, socket: &Knocks, marker: &Path) {
    assert_eq!(web1.count(), 0, "the gateway connected to web1's address before the gate");
    assert_eq!(socket.count(), 0, "the gateway connected to the Unix socket");
    assert!(!marker.exists(), "a command ran before the gate");
    let audit = gw.cli_ok(&["audit", "--limit", "500"]);
    for kind in ["forward.", "target.connect", "login.success"] {
        assert!(
            !audit.lines().any(|l| l.contains(kind) && l.contains("success")),
            "an event of something opened ({kind}) before the gate:\n{audit}"
        );
    }
    assert!(gw.is_running(), "the gateway died:\n{}", gw.log());
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
}

/// The forwarding the attacks asked for, now after the gate on the same connection: it
/// opens, and the connection reaches web1's address.
async fn forward_after_the_gate(wire: &mut Wire, id: u32, web1_port: u16, web1: &Knocks, gw: &Gw) {
    let open = Msg::channel_open(
        "direct-tcpip",
        id,
        Msg::fields().string("127.0.0.1").u32(web1_port as u32).string("127.0.0.1").u32(40002),
    );
    wire.send(&open).await.expect("sending the channel open");
    let (replies, _) = wire.drain(Duration::from_secs(3)).await;
    let confirmed: Vec<u32> = replies
        .iter()
        .filter(|m| m[0] == msg::CHANNEL_OPEN_CONFIRMATION)
        .filter_map(|m| common::wire::Fields::of(m).u32())
        .collect();
    assert_eq!(confirmed, vec![id], "only the channel opened after the gate is confirmed\n{}", gw.log());
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while web1.count() == 0 && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(web1.count(), 1, "the granted forward reached web1's address");
}

fn marker(gw: &Gw) -> PathBuf {
    gw.dir.path().join("ran-before-the-gate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_and_requests_of_every_kind_before_the_password_get_nothing() {
    let (port, web1) = tcp_listener().await;
    let (mut gw, secret) = gateway(port);
    let socket_path = gw.dir.path().join("agent.sock");
    let socket = unix_listener(&socket_path);
    let marker = marker(&gw);

    let mut wire = Wire::connect(gw.ssh_port).await;
    let closed = send_everything(&mut wire, everything(0, port, &socket_path, &marker), &gw).await;
    nothing_reached(&mut gw, &web1, &socket, &marker);

    // The same connection (or a new one, if the gateway hung up) logs in as it should,
    // and only then does the forward open.
    if closed {
        wire = Wire::connect(gw.ssh_port).await;
    }
    assert_eq!(
        wire.password(b"alice", PASSWORD.as_bytes()).await,
        Auth::Failure { methods: "keyboard-interactive".into(), partial: true }
    );
    assert!(matches!(wire.kbd_start(b"alice").await, Auth::Info { .. }));
    assert_eq!(wire.kbd_answer(&[totp_now(&secret).as_bytes()]).await, Auth::Success, "{}", gw.log());
    forward_after_the_gate(&mut wire, 100, port, &web1, &gw).await;
    assert_eq!(socket.count(), 0, "streamlocal stays refused after the gate too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_and_requests_of_every_kind_between_the_password_and_the_code_get_nothing() {
    let (port, web1) = tcp_listener().await;
    let (mut gw, secret) = gateway(port);
    let socket_path = gw.dir.path().join("agent.sock");
    let socket = unix_listener(&socket_path);
    let marker = marker(&gw);

    // The password passed: the gate waits for the code.
    let mut wire = Wire::connect(gw.ssh_port).await;
    assert_eq!(
        wire.password(b"alice", PASSWORD.as_bytes()).await,
        Auth::Failure { methods: "keyboard-interactive".into(), partial: true }
    );
    let prompt = wire.kbd_start(b"alice").await;
    assert!(matches!(&prompt, Auth::Info { prompts, .. } if prompts.iter().any(|p| p.contains("code"))), "{prompt:?}");

    let closed = send_everything(&mut wire, everything(0, port, &socket_path, &marker), &gw).await;
    assert!(!closed, "the gateway closed a connection at the gate:\n{}", gw.log());
    nothing_reached(&mut gw, &web1, &socket, &marker);

    // A wrong code, then the same again: still nothing.
    let wrong = format!("{:06}", (totp_now(&secret).parse::<u32>().expect("a code") + 500_000) % 1_000_000);
    assert!(matches!(wire.kbd_answer(&[wrong.as_bytes()]).await, Auth::Info { .. }));
    send_everything(&mut wire, everything(10, port, &socket_path, &marker), &gw).await;
    nothing_reached(&mut gw, &web1, &socket, &marker);

    // The right code: logged in, and the early channels were not opened late.
    assert_eq!(wire.kbd_answer(&[totp_now(&secret).as_bytes()]).await, Auth::Success, "{}", gw.log());
    forward_after_the_gate(&mut wire, 100, port, &web1, &gw).await;
    assert!(!marker.exists(), "the early exec ran after the gate");
    assert_eq!(socket.count(), 0);
    let audit = gw.audit("forward.direct");
    assert_eq!(audit.lines().filter(|l| l.contains("success")).count(), 1, "one forward, after the gate:\n{audit}");
}
