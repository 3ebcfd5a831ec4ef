//! Application passcodes at the edges of their scope (tests/ssh_app_passcodes.rs has
//! what they are for), with the harness's message-level client: a forward to an address
//! that is no granted target, remote and Unix-socket forwarding, a subsystem on a target
//! that is not granted or on none, a passcode of a locked account, of a deleted account
//! whose name came back, and of another user. Each is refused and the refusal audited;
//! the passcode still does what it is for afterwards.

mod common;
mod shell_support;
mod web_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::wire::{Auth, Fields, Msg, Wire, msg};
use shell_support::{Bastion, PASSWORD, bastion};
use web_support::Browser;

/// A passcode labelled `label` for `user`, made in the web UI (the user needs no second
/// factor at that moment, so the login is the fresh proof the page asks for).
async fn passcode(b: &Bastion, user: &str, password: &str, label: &str) -> String {
    let web = Browser::new(&b.gw);
    web.login(user, password).await;
    let made = web.submit("/account/passcodes", "/account/passcodes", &[("label", label)]).await;
    regex::Regex::new(r#"id="new-passcode">([a-z0-9-]+)<"#)
        .expect("regex")
        .captures(&made.body)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| panic!("no passcode on the page:\n{}", made.body))
}

/// A passcode for alice; then 2FA is forced and she enrolls TOTP, so that her password
/// alone no longer passes and the passcode is the only way in without a code.
async fn alice_passcode(b: &Bastion) -> String {
    let code = passcode(b, "alice", PASSWORD, "nightly backup").await;
    b.gw.cli_ok(&["policy", "force-2fa", "on"]);
    b.gw.enroll_totp("alice");
    code
}

/// Logs in as `user` with `secret` at the password prompt.
async fn login(b: &Bastion, user: &str, secret: &str) -> (Wire, Auth) {
    let mut wire = Wire::connect(b.gw.ssh_port).await;
    let reply = wire.password(user.as_bytes(), secret.as_bytes()).await;
    (wire, reply)
}

/// Opens a channel and returns whether the gateway confirmed it.
async fn open(wire: &mut Wire, id: u32, m: Msg) -> bool {
    wire.send(&m).await.expect("sending a channel open");
    loop {
        match wire.recv(Duration::from_secs(20)).await {
            common::wire::Recv::Message(r) if Fields::of(&r).u32() == Some(id) => match r[0] {
                msg::CHANNEL_OPEN_CONFIRMATION => return true,
                msg::CHANNEL_OPEN_FAILURE => return false,
                _ => {}
            },
            common::wire::Recv::Message(_) => {}
            other => panic!("no answer to the channel open: {other:?}"),
        }
    }
}

fn direct_tcpip(id: u32, host: &str, port: u16) -> Msg {
    Msg::channel_open("direct-tcpip", id, Msg::fields().string(host).u32(port as u32).string("127.0.0.1").u32(40000))
}

/// A global request's answer: true for success.
async fn global(wire: &mut Wire, m: Msg) -> bool {
    wire.send(&m).await.expect("sending a global request");
    loop {
        match wire.recv(Duration::from_secs(20)).await {
            common::wire::Recv::Message(r) if r[0] == msg::REQUEST_SUCCESS => return true,
            common::wire::Recv::Message(r) if r[0] == msg::REQUEST_FAILURE => return false,
            common::wire::Recv::Message(_) => {}
            other => panic!("no answer to the global request: {other:?}"),
        }
    }
}

/// Opens a session channel, asks for subsystem `name` and, if it starts, sends the SFTP
/// greeting (SSH_FXP_INIT, version 3): returns what came back on the channel within a
/// few seconds, or `None` when the channel or the request was refused.
async fn subsystem(wire: &mut Wire, id: u32, name: &str) -> Option<Vec<u8>> {
    wire.send(&Msg::channel_open("session", id, Msg::fields())).await.ok()?;
    let remote = loop {
        match wire.recv(Duration::from_secs(20)).await {
            common::wire::Recv::Message(r) if r[0] == msg::CHANNEL_OPEN_CONFIRMATION => {
                let mut f = Fields::of(&r);
                if f.u32() == Some(id) {
                    break f.u32()?;
                }
            }
            common::wire::Recv::Message(r) if r[0] == msg::CHANNEL_OPEN_FAILURE => return None,
            common::wire::Recv::Message(_) => {}
            _ => return None,
        }
    };
    wire.send(&Msg::channel_request(remote, "subsystem", Msg::fields().string(name))).await.ok()?;
    loop {
        match wire.recv(Duration::from_secs(20)).await {
            common::wire::Recv::Message(r) if Fields::of(&r).u32() == Some(id) => match r[0] {
                msg::CHANNEL_SUCCESS => break,
                msg::CHANNEL_FAILURE => return None,
                _ => {}
            },
            common::wire::Recv::Message(_) => {}
            _ => return None,
        }
    }
    let init = [0, 0, 0, 5, 1, 0, 0, 0, 3];
    wire.send(&Msg::new(msg::CHANNEL_DATA).u32(remote).string(init)).await.ok()?;
    let mut data = Vec::new();
    let (replies, _) = wire.drain(Duration::from_secs(5)).await;
    for r in replies {
        let mut f = Fields::of(&r);
        if r[0] == msg::CHANNEL_DATA && f.u32() == Some(id) {
            data.extend_from_slice(f.string().unwrap_or_default());
        }
    }
    Some(data)
}

/// Whether `data` holds an SFTP server's answer to the greeting (SSH_FXP_VERSION).
fn sftp_version(data: &[u8]) -> bool {
    data.len() >= 5 && data[4] == 2
}

async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding a listener");
    let port = listener.local_addr().expect("its address").port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    (port, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passcode_forwards_to_granted_targets_only() {
    let b = bastion();
    b.add_granted("web1");
    let code = alice_passcode(&b).await;
    let (elsewhere, knocks) = counting_listener().await;
    let socket = b.gw.dir.path().join("forward.sock");

    let (mut wire, reply) = login(&b, "alice", &code).await;
    assert_eq!(reply, Auth::Success, "{}", b.gw.log());
    let refused = [
        ("an address that is no target", 1, direct_tcpip(1, "127.0.0.1", elsewhere)),
        ("the gateway's own web UI", 2, direct_tcpip(2, "127.0.0.1", b.gw.web_port)),
        ("the gateway's own SSH port", 3, direct_tcpip(3, "127.0.0.1", b.gw.ssh_port)),
        ("web1's port on another address", 4, direct_tcpip(4, "0.0.0.0", b.sshd.port)),
        (
            "a Unix socket",
            5,
            Msg::channel_open(
                "direct-streamlocal@openssh.com",
                5,
                Msg::fields().string(socket.display().to_string()).string("").u32(0),
            ),
        ),
    ];
    for (what, id, m) in refused {
        assert!(!open(&mut wire, id, m).await, "a passcode opened a forward to {what}\n{}", b.gw.log());
    }
    assert!(!global(&mut wire, Msg::global_request("tcpip-forward", Msg::fields().string("127.0.0.1").u32(0))).await);
    let listen =
        Msg::global_request("streamlocal-forward@openssh.com", Msg::fields().string(socket.display().to_string()));
    assert!(!global(&mut wire, listen).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(knocks.load(Ordering::SeqCst), 0, "the gateway connected to an address that is no target");
    assert!(!socket.exists(), "a Unix socket was made on the gateway");
    let audit = b.audit("forward");
    assert!(audit.contains("not granted") && audit.contains("forward.remote"), "refusals are audited:\n{audit}");

    // The granted target's address opens, on the same connection.
    assert!(open(&mut wire, 10, direct_tcpip(10, "127.0.0.1", b.sshd.port)).await, "{}", b.gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passcode_opens_no_subsystem_on_a_target_that_is_not_granted() {
    let b = bastion();
    b.add_granted("web1");
    b.add_target("other", &b.sshd, &b.target_key, Some(&b.sshd.host_key_pub));
    let code = alice_passcode(&b).await;

    for user in ["alice:other", "alice", "alice:", "alice:web1:other", "alice:WEB1"] {
        let (mut wire, reply) = login(&b, user, &code).await;
        if reply != Auth::Success {
            assert!(!matches!(reply, Auth::Failure { partial: true, .. }), "{user}: {reply:?}");
            continue;
        }
        let got = subsystem(&mut wire, 1, "sftp").await;
        assert!(!got.as_deref().is_some_and(sftp_version), "{user}: an SFTP server answered\n{}", b.gw.log());
    }
    assert!(!b.sshd.log().contains("subsystem request for sftp"), "a target got the request:\n{}", b.sshd.log());

    // The granted target's sftp answers.
    let (mut wire, reply) = login(&b, "alice:web1", &code).await;
    assert_eq!(reply, Auth::Success);
    let got = subsystem(&mut wire, 1, "sftp").await;
    assert!(got.as_deref().is_some_and(sftp_version), "{got:?}\n{}", b.gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passcode_of_a_locked_account_opens_nothing() {
    let b = bastion();
    b.add_granted("web1");
    let code = alice_passcode(&b).await;

    // Locked by an administrator.
    b.gw.cli_ok(&["user", "lock", "alice"]);
    for user in ["alice", "alice:web1"] {
        let (_, reply) = login(&b, user, &code).await;
        assert!(
            !matches!(reply, Auth::Success | Auth::Failure { partial: true, .. }),
            "{user} while locked: {reply:?}"
        );
    }
    assert!(b.audit("login.password").contains("account disabled"), "{}", b.audit("login"));
    b.gw.cli_ok(&["user", "unlock", "alice"]);

    // Locked by failed passwords (the harness's threshold: 5).
    for _ in 0..5 {
        let (_, reply) = login(&b, "alice", "not the password").await;
        assert!(!matches!(reply, Auth::Success));
    }
    assert!(b.audit("login.lockout").contains("account locked"), "{}", b.audit("login"));
    let (_, reply) = login(&b, "alice:web1", &code).await;
    assert!(!matches!(reply, Auth::Success | Auth::Failure { partial: true, .. }), "under the lockout: {reply:?}");
    assert!(b.audit("login.password").contains("refused while locked"), "{}", b.audit("login"));

    // Unlocked, the passcode does its job again.
    b.gw.cli_ok(&["user", "unlock", "alice"]);
    let (mut wire, reply) = login(&b, "alice:web1", &code).await;
    assert_eq!(reply, Auth::Success, "{}", b.gw.log());
    let ran = wire.exec(1, "echo back-$((6*7))").await;
    assert!(ran.is_some_and(|(o, _)| o.contains("back-42")), "{}", b.gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passcode_does_not_outlive_its_account() {
    let b = bastion();
    b.add_granted("web1");
    b.gw.add_user("bob", "bob's password 1");
    b.gw.cli_ok(&["target", "grant", "web1", "--user", "bob"]);
    let code = passcode(&b, "bob", "bob's password 1", "cron").await;
    let (_, reply) = login(&b, "bob:web1", &code).await;
    assert_eq!(reply, Auth::Success, "the passcode works first");

    // Bob is deleted; a new bob, same name, same password, same grant.
    b.gw.cli_ok(&["user", "delete", "bob"]);
    b.gw.add_user("bob", "bob's password 1");
    b.gw.cli_ok(&["target", "grant", "web1", "--user", "bob"]);
    for user in ["bob", "bob:web1"] {
        let (_, reply) = login(&b, user, &code).await;
        assert!(!matches!(reply, Auth::Success | Auth::Failure { partial: true, .. }), "{user}: {reply:?}");
    }
    assert_eq!(b.sql("SELECT count(*) FROM app_passcodes").trim(), "0", "the old account's passcode is gone");
    let (_, reply) = login(&b, "bob:web1", "bob's password 1").await;
    assert_eq!(reply, Auth::Success, "the new bob logs in with his password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_passcode_opens_nothing_for_another_user() {
    let b = bastion();
    b.add_granted("web1");
    b.gw.add_user("bob", "bob's password 1");
    b.gw.cli_ok(&["target", "grant", "web1", "--user", "bob"]);
    let alices = passcode(&b, "alice", PASSWORD, "alice's job").await;
    let bobs = passcode(&b, "bob", "bob's password 1", "bob's job").await;
    for (user, code) in [("bob", &alices), ("bob:web1", &alices), ("alice", &bobs), ("alice:web1", &bobs)] {
        let (_, reply) = login(&b, user, code).await;
        assert!(!matches!(reply, Auth::Success | Auth::Failure { partial: true, .. }), "{user}: {reply:?}");
    }
    let audit = b.audit("login.password");
    assert!(audit.contains("wrong password or application passcode"), "{audit}");
    // Each opens its own account.
    assert_eq!(login(&b, "alice:web1", &alices).await.1, Auth::Success);
    assert_eq!(login(&b, "bob:web1", &bobs).await.1, Auth::Success);
}
