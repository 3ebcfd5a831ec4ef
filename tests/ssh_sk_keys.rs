//! A FIDO security key used as an SSH key for the second factor, through the gate: after
//! the password, the gate hands the turn to a public-key round, and only a signature by
//! one of the user's registered security keys, with the user-presence flag (and user
//! verification for a key registered with `verify-required`) and a counter that grows,
//! passes. The signatures come from the harness's software key ([`SoftSk`]), laid out as
//! OpenSSH's PROTOCOL.u2f says, with the flags and counters each case needs. Refusals
//! count towards the lock and are audited; nothing opens before the key passed.

mod common;

use std::time::Duration;

use common::sk::{SoftSk, UP, UV};
use common::wire::{Auth, Msg, Wire, msg};
use common::{Backend, Gw, Sshd, backends};

const PASSWORD: &str = "correct horse battery";

/// A started gateway with alice and bob (passwords); `lock_after` failures lock an
/// account.
fn gateway(backend: Backend, lock_after: u32) -> Gw {
    let mut gw = Gw::with_config(
        backend,
        &format!(
            "[lockout]\nuser_threshold = {lock_after}\nsource_threshold = 100\nwindow_secs = 900\nduration_secs = 900\n"
        ),
    );
    gw.start();
    gw.add_user("alice", PASSWORD);
    gw.add_user("bob", PASSWORD);
    gw
}

/// Registers `key` as a second-factor key of `user` through the CLI; returns its id.
fn register(gw: &Gw, user: &str, key: &SoftSk, extra: &[&str]) -> String {
    let line = key.line(&format!("{user}-key"));
    let mut args = vec!["factor", "ssh-sk", "add", user, line.as_str()];
    args.extend_from_slice(extra);
    let out = gw.cli_ok(&args);
    assert!(out.contains("registered"), "{out}");
    out.split_whitespace().nth(2).unwrap_or_default().trim_start_matches('#').to_string()
}

/// Password, then keyboard-interactive up to the gate's hand-over to a public-key round.
async fn reach_key_round(gw: &Gw, user: &str) -> Wire {
    let mut wire = Wire::connect(gw.ssh_port).await;
    let first = wire.password(user.as_bytes(), PASSWORD.as_bytes()).await;
    assert_eq!(
        first,
        Auth::Failure { methods: "keyboard-interactive".into(), partial: true },
        "the password leads to the gate"
    );
    let handed = wire.kbd_start(user.as_bytes()).await;
    match &handed {
        Auth::Failure { methods, partial: true } if methods.split(',').any(|m| m == "publickey") => {}
        other => panic!("the gate should hand the turn to a public-key round, got {other:?}\n{}", gw.log()),
    }
    wire
}

/// Refused without passing the step, the round still open.
fn refused(reply: &Auth) -> bool {
    matches!(reply, Auth::Failure { partial: false, .. })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_touched_key_passes_the_gate_and_only_then_the_session_opens() {
    for backend in backends() {
        let gw = gateway(backend, 20);
        let (sshd, target_key) = Sshd::start_with_new_key();
        let port = sshd.port.to_string();
        let key_file = target_key.display().to_string();
        gw.cli_ok(&[
            "target",
            "add",
            "web1",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            &sshd.user,
            "--key-file",
            &key_file,
            "--host-key",
            &sshd.host_key_pub,
        ]);
        gw.cli_ok(&["target", "grant", "web1", "--user", "alice"]);
        for key in [SoftSk::ed25519("ssh:"), SoftSk::ecdsa("ssh:")] {
            register(&gw, "alice", &key, &["--name", "desk key"]);

            // Before the key signed: a session channel is refused, nothing reaches the target.
            let mut waiting = reach_key_round(&gw, "alice:web1").await;
            waiting.send(&Msg::channel_open("session", 7, Msg::fields())).await.expect("sending a channel open");
            let (got, _closed) = waiting.drain(Duration::from_secs(2)).await;
            assert!(
                !got.iter().any(|m| m[0] == msg::CHANNEL_OPEN_CONFIRMATION),
                "a channel opened before the security key signed: {got:?}"
            );

            // The touch passes, and the session reaches the target.
            let mut wire = reach_key_round(&gw, "alice:web1").await;
            assert_eq!(key.sign_in(&mut wire, "alice:web1", UP, 1).await, Auth::Success, "{}", gw.log());
            let ran = wire.exec(1, "echo reached-$((6*7))").await;
            assert!(ran.as_ref().is_some_and(|(out, _)| out.contains("reached-42")), "{ran:?}\n{}", gw.log());
        }
        let audit = gw.audit("login.factor");
        assert!(audit.contains("ssh-sk key desk key"), "the passed key is audited:\n{audit}");
        let success = gw.audit("login.success");
        assert!(success.contains("password + ssh-sk"), "{success}");
        // The key's counter and last use are stored.
        let listed = gw.cli_json(&["factor", "ssh-sk", "list", "alice", "--json"]);
        let keys = listed.as_array().expect("a list");
        assert_eq!(keys.len(), 2, "{listed}");
        assert!(keys.iter().all(|k| k["last_counter"] == 1 && !k["last_used_at"].is_null()), "{listed}");
        // Passing made it the default: the next login is handed to the key at once.
        let factors = gw.cli_ok(&["factor", "list", "alice"]);
        assert!(factors.contains("ssh-sk"), "{factors}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_counters_applications_and_other_keys_are_refused_and_audited() {
    for backend in backends() {
        let gw = gateway(backend, 50);
        let key = SoftSk::ed25519("ssh:");
        register(&gw, "alice", &key, &[]);
        let pin = SoftSk::ecdsa("ssh:");
        register(&gw, "alice", &pin, &["--verify-required"]);
        let bobs = SoftSk::ed25519("ssh:");
        register(&gw, "bob", &bobs, &[]);
        let login_key = SoftSk::ed25519("ssh:");
        gw.cli_ok(&["user", "add-key", "alice", "--key", &login_key.line("alice-login")]);

        // Not touched: refused, and the gate says why when the client comes back.
        let mut wire = reach_key_round(&gw, "alice").await;
        let reply = key.sign_in(&mut wire, "alice", 0, 10).await;
        assert!(refused(&reply), "no user presence: {reply:?}");
        match wire.kbd_start(b"alice").await {
            Auth::Info { instruction, .. } => {
                assert!(instruction.contains("not touched"), "{instruction}");
                assert!(instruction.contains("Security key (SSH)"), "{instruction}");
            }
            other => panic!("expected the method list, got {other:?}"),
        }
        // Picking the key again hands out another round, where the touch passes.
        match wire.kbd_answer(&[b"1"]).await {
            Auth::Failure { methods, partial: true } => assert!(methods.contains("publickey"), "{methods}"),
            other => panic!("expected another public-key round, got {other:?}"),
        }
        assert_eq!(key.sign_in(&mut wire, "alice", UP, 10).await, Auth::Success);

        // The same counter again, or a lower one: a copy of the key. Refused.
        for counter in [10, 9] {
            let mut wire = reach_key_round(&gw, "alice").await;
            let reply = key.sign_in(&mut wire, "alice", UP, counter).await;
            assert!(refused(&reply), "counter {counter} after 10: {reply:?}");
        }
        let mut wire = reach_key_round(&gw, "alice").await;
        assert_eq!(key.sign_in(&mut wire, "alice", UP, 11).await, Auth::Success, "a growing counter passes");

        // A key registered with verify-required needs the user-verification flag.
        let mut wire = reach_key_round(&gw, "alice").await;
        let reply = pin.sign_in(&mut wire, "alice", UP, 1).await;
        assert!(refused(&reply), "no user verification: {reply:?}");
        let mut wire = reach_key_round(&gw, "alice").await;
        assert_eq!(pin.sign_in(&mut wire, "alice", UP | UV, 2).await, Auth::Success);

        // Signed for another application: the signature does not verify.
        let mut wire = reach_key_round(&gw, "alice").await;
        let reply = key.sign_in_for(&mut wire, "alice", UP, 50, "ssh:other").await;
        assert!(refused(&reply), "another application: {reply:?}");
        // Bob's registered key, and alice's own login key, are not her second factor.
        for (other, what) in [(&bobs, "another user's security key"), (&login_key, "a login key")] {
            let mut wire = reach_key_round(&gw, "alice").await;
            let reply = other.sign_in(&mut wire, "alice", UP | UV, 100).await;
            assert!(refused(&reply), "{what}: {reply:?}");
        }

        let audit = gw.audit("login.factor");
        for why in
            ["user-presence flag missing", "signature counter did not increase", "user-verification flag missing"]
        {
            assert!(audit.contains(why), "refusal {why:?} is audited:\n{audit}");
        }
        // Other keys never reach the signature check: nothing counted for them.
        assert!(!audit.contains("key not registered"), "{audit}");
        // A counter that did not grow is audited once per refused login (two above).
        assert_eq!(audit.matches("counter did not increase").count(), 2, "{audit}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_signatures_count_towards_the_lock() {
    for backend in backends() {
        let gw = gateway(backend, 3);
        let key = SoftSk::ed25519("ssh:");
        register(&gw, "alice", &key, &[]);
        for _ in 0..3 {
            let mut wire = reach_key_round(&gw, "alice").await;
            let reply = key.sign_in(&mut wire, "alice", 0, 1).await;
            assert_ne!(reply, Auth::Success);
        }
        let locks = gw.audit("login.lockout");
        assert!(locks.contains("account locked"), "three refused signatures lock the account:\n{locks}");
        // Locked: even a touched key with a fresh counter gets nothing now.
        let mut wire = Wire::connect(gw.ssh_port).await;
        let reply = wire.password(b"alice", PASSWORD.as_bytes()).await;
        assert!(!matches!(reply, Auth::Success | Auth::Failure { partial: true, .. }), "{reply:?}");
        let reply = key.sign_in(&mut wire, "alice", UP, 5).await;
        assert_ne!(reply, Auth::Success);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_without_the_key_comes_back_and_picks_another_method() {
    for backend in backends() {
        let gw = gateway(backend, 20);
        let key = SoftSk::ed25519("ssh:");
        register(&gw, "alice", &key, &[]);
        // A login with the key makes it the default, asked first from now on.
        let mut wire = reach_key_round(&gw, "alice").await;
        assert_eq!(key.sign_in(&mut wire, "alice", UP, 1).await, Auth::Success);
        let secret = gw.enroll_totp("alice");

        // No key signs: the client comes back to keyboard-interactive and gets the list.
        let mut wire = reach_key_round(&gw, "alice").await;
        let list = wire.kbd_start(b"alice").await;
        let Auth::Info { instruction, .. } = &list else { panic!("expected the method list, got {list:?}") };
        assert!(instruction.contains("no registered security key signed"), "{instruction}");
        let pick = if instruction.contains("1) Authenticator code") { b"1" } else { b"2" };
        let Auth::Info { prompts, .. } = wire.kbd_answer(&[pick]).await else { panic!("expected a prompt") };
        assert!(prompts[0].starts_with("Authenticator code"), "{prompts:?}");
        let code = common::totp_now(&secret);
        assert_eq!(wire.kbd_answer(&[code.as_bytes()]).await, Auth::Success);
        // A public-key request now is out of turn at the code prompt: never a pass.
        let mut wire = Wire::connect(gw.ssh_port).await;
        assert!(matches!(wire.password(b"alice", PASSWORD.as_bytes()).await, Auth::Failure { partial: true, .. }));
        let reply = key.sign_in(&mut wire, "alice", UP, 99).await;
        assert_ne!(reply, Auth::Success, "a signature before the gate handed out a round");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn enrollment_refuses_other_key_types_and_keys_for_other_applications() {
    let gw = gateway(Backend::Sqlite, 20);
    let plain = gw.new_key("plain");
    let err = gw.cli_refused(&["factor", "ssh-sk", "add", "alice", &plain.line], None);
    assert!(err.contains("not a security key"), "{err}");
    let web = SoftSk::ed25519("https://example.com");
    let err = gw.cli_refused(&["factor", "ssh-sk", "add", "alice", &web.line("web")], None);
    assert!(err.contains("not for SSH"), "{err}");
    // A login key cannot also be the second factor.
    let key = SoftSk::ed25519("ssh:");
    gw.cli_ok(&["user", "add-key", "alice", "--key", &key.line("both")]);
    let err = gw.cli_refused(&["factor", "ssh-sk", "add", "alice", &key.line("both")], None);
    assert!(err.contains("already a login key"), "{err}");
    // Registered, listed, removed; each change audited.
    let other = SoftSk::ed25519("ssh:");
    let id = register(&gw, "alice", &other, &["--name", "spare"]);
    let listed = gw.cli_ok(&["factor", "ssh-sk", "list", "alice"]);
    assert!(listed.contains("spare") && listed.contains("sk-ssh-ed25519@openssh.com"), "{listed}");
    gw.cli_ok(&["factor", "ssh-sk", "remove", "alice", &id]);
    let err = gw.cli_refused(&["factor", "ssh-sk", "remove", "alice", &id], None);
    assert!(err.contains("no security key"), "{err}");
    let audit = gw.audit("factor");
    assert!(audit.contains("factor.enroll") && audit.contains("factor.remove"), "{audit}");
    assert!(audit.contains("ssh-sk key"), "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_limited_to_security_keys_is_asked_for_nothing_else() {
    for backend in backends() {
        let gw = gateway(backend, 20);
        let key = SoftSk::ed25519("ssh:");
        register(&gw, "alice", &key, &[]);
        let secret = gw.enroll_totp("alice");
        // The authenticator code passes while nothing limits the methods.
        let mut wire = Wire::connect(gw.ssh_port).await;
        assert!(matches!(wire.password(b"alice", PASSWORD.as_bytes()).await, Auth::Failure { partial: true, .. }));
        let Auth::Info { prompts, .. } = wire.kbd_start(b"alice").await else { panic!("expected a prompt") };
        assert!(prompts[0].starts_with("Authenticator code"), "{prompts:?}");
        let code = common::totp_now(&secret);
        assert_eq!(wire.kbd_answer(&[code.as_bytes()]).await, Auth::Success);

        gw.cli_ok(&["group", "add", "ops"]);
        gw.cli_ok(&["group", "add-member", "ops", "alice"]);
        gw.cli_ok(&["policy", "methods", "ssh-sk", "--group", "ops"]);
        // Now the key alone, though the code was her last method.
        let mut wire = reach_key_round(&gw, "alice").await;
        assert_eq!(key.sign_in(&mut wire, "alice", UP, 1).await, Auth::Success);
        let mut wire = reach_key_round(&gw, "alice").await;
        let Auth::Info { instruction, .. } = wire.kbd_start(b"alice").await else { panic!("expected the list") };
        assert!(!instruction.contains("Authenticator code"), "a method the group does not allow: {instruction}");
    }
}
