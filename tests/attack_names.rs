//! Tricks with names, sent with the harness's message-level client (tests/common/wire.rs)
//! so that any bytes can be a user name: look-alikes of an existing user (case, Cyrillic
//! letters, spaces, NUL, newline, zero-width characters), names that try to leave a lock
//! behind, `user:target` forms that try to reach another target than the one granted,
//! commands whose first word is not quite a target name, names of 10 kB and more, and a
//! user name changed between the password and the second factor. Only the exact name
//! logs in, only an exactly granted target is reached, and nothing breaks.

mod common;
mod shell_support;

use std::time::Duration;

use common::wire::{Auth, Wire};
use common::{Backend, Gw, backends, totp_now};
use shell_support::{PASSWORD, bastion};

/// Whether a reply to a password means the password counted for someone: a login, or the
/// way to the second factor.
fn counted(reply: &Auth) -> bool {
    matches!(reply, Auth::Success | Auth::Failure { partial: true, .. })
}

/// Asserts that every line of `gatehouse audit` is one event: a name with a newline in it
/// must not start a line of its own (a forged event), nor may a raw control character
/// reach the terminal.
fn audit_lines_are_events(gw: &Gw) {
    let out = gw.cli(&["audit", "--limit", "500"]);
    gw.assert_success(&out, "gatehouse audit");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in text.lines() {
        assert!(
            line.len() >= 4 && line[..4].chars().all(|c| c.is_ascii_digit()),
            "a line of the audit output that is not an event (a forged line?): {line:?}"
        );
        assert!(!line.chars().any(|c| c.is_control()), "a control character in the audit output: {line:?}");
    }
}

/// Names that look like `alice` (or contain it) but are not her name.
fn look_alikes() -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = [
        "Alice",
        "ALICE",
        "\u{0430}lice", // Cyrillic a
        "alic\u{0435}", // Cyrillic ie
        "\u{ff41}lice", // fullwidth a
        "alice ",
        " alice",
        "alice\t",
        "alice\n",
        "alice\r\n",
        "alice\0",
        "alice\0bob",
        "\0alice",
        "alice\u{200b}", // zero-width space
        "\u{feff}alice", // byte order mark
        "al\u{00ad}ice", // soft hyphen
        "alice\u{1b}[0m",
        "alice@127.0.0.1",
        "alice/",
        "./alice",
        "%61lice",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    names.push(b"alice\xff".to_vec());
    names.push(b"\xc0\xe1lice".to_vec());
    names
}

/// A gateway with alice, password only: any name the gateway took for hers would log in
/// at once.
fn password_only(backend: Backend, extra: &str) -> Gw {
    let mut gw = Gw::with_config(backend, extra);
    gw.start();
    gw.add_user("alice", PASSWORD);
    gw
}

/// A target `web1` nobody can reach (nothing listens at its port): for names that carry it.
fn add_web1(gw: &Gw) {
    let out = gw.cli_stdin(
        &["target", "add", "web1", "--host", "127.0.0.1", "--port", "9", "--user", "root", "--password-stdin"],
        "target password\n",
    );
    gw.assert_success(&out, "target add web1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alikes_of_a_user_name_never_log_in_as_that_user() {
    for backend in backends() {
        let mut gw = password_only(backend, "[lockout]\nuser_threshold = 5\nsource_threshold = 1000\n");
        for name in look_alikes() {
            let shown = String::from_utf8_lossy(&name).into_owned();
            let mut wire = Wire::connect(gw.ssh_port).await;
            let reply = wire.password(&name, PASSWORD.as_bytes()).await;
            assert!(!counted(&reply), "{backend:?}: {shown:?} with alice's password: {reply:?}\n{}", gw.log());
            // Nor over keyboard-interactive.
            let mut wire = Wire::connect(gw.ssh_port).await;
            if let Auth::Info { .. } = wire.kbd_start(&name).await {
                let reply = wire.kbd_answer(&[PASSWORD.as_bytes()]).await;
                assert!(!counted(&reply), "{backend:?}: {shown:?} at the password prompt: {reply:?}");
            }
        }
        assert!(gw.is_running(), "{backend:?}: the gateway died:\n{}", gw.log());
        assert!(!gw.log().contains("panicked"), "{}", gw.log());
        let audit = gw.audit("login.success");
        assert!(audit.trim().is_empty(), "{backend:?}: a look-alike logged in:\n{audit}");
        audit_lines_are_events(&gw);

        // Alice herself, with the same password, gets in: the refusals were the names'.
        let mut wire = Wire::connect(gw.ssh_port).await;
        assert_eq!(wire.password(b"alice", PASSWORD.as_bytes()).await, Auth::Success, "{backend:?}\n{}", gw.log());
        gw.stop();
    }
}

/// A lock holds the account, not the spelling: while alice is locked after failed
/// passwords, neither her name with a target, nor an empty target, nor a look-alike gets
/// anyone in with the right password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_account_cannot_be_reached_by_another_spelling_of_its_name() {
    for backend in backends() {
        let mut gw = password_only(backend, "[lockout]\nuser_threshold = 3\nsource_threshold = 1000\n");
        add_web1(&gw);
        for _ in 0..3 {
            let mut wire = Wire::connect(gw.ssh_port).await;
            assert!(!counted(&wire.password(b"alice", b"wrong password").await));
        }
        assert!(gw.audit("login.lockout").contains("account locked"), "{backend:?}: {}", gw.audit("login"));

        for name in ["alice", "alice:web1", "alice:", "alice::", "Alice", "alice ", "\u{0430}lice", "alice\0"] {
            let mut wire = Wire::connect(gw.ssh_port).await;
            let reply = wire.password(name.as_bytes(), PASSWORD.as_bytes()).await;
            assert!(!counted(&reply), "{backend:?}: {name:?} got past the lock: {reply:?}\n{}", gw.log());
            let mut wire = Wire::connect(gw.ssh_port).await;
            match wire.kbd_start(name.as_bytes()).await {
                Auth::Info { prompts, .. } if !prompts.is_empty() => {
                    let reply = wire.kbd_answer(&[PASSWORD.as_bytes()]).await;
                    assert!(!counted(&reply), "{backend:?}: {name:?} over keyboard-interactive: {reply:?}");
                }
                _ => {}
            }
        }
        assert!(gw.audit("login.success").trim().is_empty(), "{backend:?}: {}", gw.audit("login.success"));

        gw.cli_ok(&["user", "unlock", "alice"]);
        let mut wire = Wire::connect(gw.ssh_port).await;
        assert_eq!(wire.password(b"alice", PASSWORD.as_bytes()).await, Auth::Success, "{backend:?}: after the unlock");
        gw.stop();
    }
}

/// How many times the target's sshd let the gateway in so far.
fn target_logins(b: &shell_support::Bastion) -> usize {
    b.sshd.log().matches("Accepted publickey").count()
}

/// `alice:TARGET` with TARGET anything but exactly a granted name: whatever the login
/// does, no program reaches any target (web2 exists on the same sshd, not granted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_tricks_in_the_user_name_reach_only_the_exact_granted_target() {
    let b = bastion();
    b.add_granted("web1");
    b.add_target("web2", &b.sshd, &b.target_key, Some(&b.sshd.host_key_pub));
    let tricks = [
        "alice:web1:extra",
        "alice::web1",
        "alice:WEB1",
        "alice:Web1",
        "alice:web1 ",
        "alice: web1",
        "alice:web1\0",
        "alice:web1\n",
        "alice:web1\u{1b}[2J",
        "alice:../web1",
        "alice:./web1",
        "alice:web1/",
        "alice:web1/../web2",
        "alice:web1;web2",
        "alice:web1,web2",
        "alice:web1 web2",
        "alice:web1%00",
        "alice:web\u{0031}\u{0338}",
        "alice:w\u{0435}b1",
        "alice:web2",
        "alice:*",
        "alice:%",
        "alice:web_",
        ":web1",
        "alice:web1@127.0.0.1",
    ];
    for name in tricks {
        let mut wire = Wire::connect(b.gw.ssh_port).await;
        let reply = wire.password(name.as_bytes(), PASSWORD.as_bytes()).await;
        if reply != Auth::Success {
            assert!(!counted(&reply), "{name:?}: {reply:?}");
            continue;
        }
        // Logged in as alice (the name before the colon): a command and a shell may
        // reach no target.
        let ran = wire.exec(1, "echo reached-$((6*7))").await;
        assert!(
            !ran.as_ref().is_some_and(|(out, _)| out.contains("reached-42")),
            "{name:?} reached a target: {ran:?}\n{}",
            b.gw.log()
        );
    }
    assert_eq!(target_logins(&b), 0, "a trick reached the target's sshd:\n{}", b.sshd.log());
    assert!(!b.gw.log().contains("panicked"), "{}", b.gw.log());
    audit_lines_are_events(&b.gw);

    // The exact name reaches it.
    let mut wire = Wire::connect(b.gw.ssh_port).await;
    assert_eq!(wire.password(b"alice:web1", PASSWORD.as_bytes()).await, Auth::Success);
    let ran = wire.exec(1, "echo reached-$((6*7))").await;
    assert!(ran.as_ref().is_some_and(|(out, _)| out.contains("reached-42")), "{ran:?}\n{}", b.gw.log());
    assert_eq!(target_logins(&b), 1);
}

/// `ssh gw 'TARGET command'` with a first word that is not quite a granted target's name
/// (shell syntax glued to it, a path, another case, an escape, a NUL): nothing runs,
/// neither on the gateway nor on a target. The marker file would show either, since the
/// target's sshd runs on this machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_tricks_in_an_exec_command_reach_only_the_exact_granted_target() {
    let b = bastion();
    b.add_granted("web1");
    b.add_target("web2", &b.sshd, &b.target_key, Some(&b.sshd.host_key_pub));
    let marker = b.gw.dir.path().join("marker");
    let touch = format!("touch {}", marker.display());
    let commands: Vec<String> = [
        "web1;{touch}",
        "web1&&{touch}",
        "web1|{touch}",
        "web1`{touch}`",
        "web1$({touch})",
        "$({touch})",
        "`{touch}`",
        ";{touch}",
        "|{touch}",
        "../web1 {touch}",
        "./web1 {touch}",
        "web1/ {touch}",
        "/web1 {touch}",
        "WEB1 {touch}",
        "web1\u{1b}[2J {touch}",
        "web1\0 {touch}",
        "web1\u{200b} {touch}",
        "w\u{0435}b1 {touch}",
        "web2 {touch}",
        "web1:web2 {touch}",
        "alice:web1 {touch}",
        "-oProxyCommand={touch} web1",
        "{touch}",
    ]
    .iter()
    .map(|c| c.replace("{touch}", &touch))
    .collect();

    let mut wire = Wire::connect(b.gw.ssh_port).await;
    assert_eq!(wire.password(b"alice", PASSWORD.as_bytes()).await, Auth::Success);
    for (i, command) in commands.iter().enumerate() {
        let ran = wire.exec(10 + i as u32, command).await;
        if let Some((_, status)) = &ran {
            assert_ne!(*status, Some(0), "{command:?} succeeded: {ran:?}");
        }
        assert!(!marker.exists(), "{command:?} ran something:\n{}", b.gw.log());
    }
    assert_eq!(target_logins(&b), 0, "a trick reached the target's sshd:\n{}", b.sshd.log());
    let refused = b.audit("target.connect");
    assert!(refused.contains("failure"), "the refusals are audited:\n{refused}");
    audit_lines_are_events(&b.gw);

    // The exact name runs the command on the target: the marker appears.
    let ran = wire.exec(100, &format!("web1 {touch}")).await;
    assert_eq!(ran.map(|(_, s)| s), Some(Some(0)), "{}", b.gw.log());
    assert!(marker.exists(), "the granted command did not run");
}

/// `n` letters and digits that do not compress (so that no database squeezes them under a
/// limit): a fixed pseudo-random sequence.
fn noise(n: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let c = b"abcdefghijklmnopqrstuvwxyz0123456789"[(x % 36) as usize];
            c as char
        })
        .collect()
}

/// User names of 10 kB and 200 kB (a 300 kB one does not fit in a packet), of letters
/// that do not compress: refused, each attempt audited and counted like any other (no
/// database error on the way, no name too long to index), stored cut short, and the
/// gateway keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn very_long_user_names_are_refused_without_harm() {
    for backend in backends() {
        let mut gw = password_only(backend, "[lockout]\nuser_threshold = 5\nsource_threshold = 1000\n");
        for size in [10 * 1024, 200 * 1024, 300 * 1024] {
            let name = format!("alice{}", noise(size));
            let started = std::time::Instant::now();
            let mut wire = Wire::connect(gw.ssh_port).await;
            let reply = wire.password(name.as_bytes(), PASSWORD.as_bytes()).await;
            assert!(!counted(&reply), "{backend:?}: a name of {size} bytes: {reply:?}");
            let with_target = format!("alice:{}", noise(size));
            let mut wire = Wire::connect(gw.ssh_port).await;
            let reply = wire.password(with_target.as_bytes(), PASSWORD.as_bytes()).await;
            if reply == Auth::Success {
                let ran = wire.exec(1, "echo reached").await;
                assert!(!ran.is_some_and(|(o, _)| o.contains("reached")), "{backend:?}: a {size}-byte target name");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{backend:?}: {size} bytes took {:?}",
                started.elapsed()
            );
        }
        assert!(gw.is_running(), "{backend:?}:\n{}", gw.log());
        assert!(!gw.log().contains("panicked"), "{}", gw.log());
        let errors: Vec<String> =
            gw.log().lines().filter(|l| l.contains("ERROR")).map(|l| l.chars().take(300).collect()).collect();
        assert!(errors.is_empty(), "{backend:?}: the long names caused errors:\n{}", errors.join("\n"));
        let refused = gw.cli_ok(&["audit", "--event", "login.password", "--limit", "50"]);
        let lengths: Vec<usize> = refused.lines().filter(|l| l.contains("unknown user")).map(str::len).collect();
        assert_eq!(
            lengths.len(),
            2,
            "{backend:?}: the attempts of the 10 kB and 200 kB names are audited: {lengths:?}"
        );
        assert!(lengths.iter().all(|n| *n < 1024), "{backend:?}: the names are stored whole: {lengths:?}");
        audit_lines_are_events(&gw);
        let mut wire = Wire::connect(gw.ssh_port).await;
        assert_eq!(wire.password(b"alice", PASSWORD.as_bytes()).await, Auth::Success, "{backend:?}\n{}", gw.log());
        gw.stop();
    }
}

/// One login, two names: the password of one account, then the second factor of another
/// (the attacker's own account, whose code they have). Neither order gets anyone in, and
/// neither does adding a target to the name half way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_user_name_between_the_password_and_the_code_gets_nobody_in() {
    let mut gw = Gw::with_config(Backend::Sqlite, "[lockout]\nuser_threshold = 20\nsource_threshold = 1000\n");
    gw.start();
    gw.add_user("alice", PASSWORD);
    let alice = gw.enroll_totp("alice");
    gw.add_user("mallory", "mallory's own password");
    let mallory = gw.enroll_totp("mallory");
    add_web1(&gw);

    let cases: [(&str, &str, &str); 4] = [
        ("alice", PASSWORD, "mallory"),
        ("mallory", "mallory's own password", "alice"),
        ("alice", PASSWORD, "alice:web1"),
        ("alice", PASSWORD, "Alice"),
    ];
    for (first, password, second) in cases {
        let mut wire = Wire::connect(gw.ssh_port).await;
        let reply = wire.password(first.as_bytes(), password.as_bytes()).await;
        assert_eq!(reply, Auth::Failure { methods: "keyboard-interactive".into(), partial: true });
        let reply = wire.kbd_start(second.as_bytes()).await;
        // Whatever it answers, the code of either account gets nobody in.
        let mut outcome = reply.clone();
        if let Auth::Info { .. } = reply {
            outcome = wire.kbd_answer(&[totp_now(&mallory).as_bytes()]).await;
            if let Auth::Info { .. } = outcome {
                outcome = wire.kbd_answer(&[totp_now(&alice).as_bytes()]).await;
            }
        }
        assert_ne!(outcome, Auth::Success, "{first} then {second}: logged in\n{}", gw.log());
        // The connection is done with: the first name's own code does not help now.
        let code = if first == "alice" { &alice } else { &mallory };
        let late = wire.kbd_start(first.as_bytes()).await;
        let late =
            if let Auth::Info { .. } = late { wire.kbd_answer(&[totp_now(code).as_bytes()]).await } else { late };
        assert_ne!(late, Auth::Success, "{first} then {second}, then {first} again: logged in\n{}", gw.log());
    }
    assert!(gw.audit("login.success").trim().is_empty(), "{}", gw.audit("login.success"));
    assert!(gw.log().contains("client changed user name during login"), "{}", gw.log());

    // A login that keeps its name passes.
    let mut wire = Wire::connect(gw.ssh_port).await;
    assert_eq!(
        wire.password(b"alice", PASSWORD.as_bytes()).await,
        Auth::Failure { methods: "keyboard-interactive".into(), partial: true }
    );
    assert!(matches!(wire.kbd_start(b"alice").await, Auth::Info { .. }));
    let reply = wire.kbd_answer(&[totp_now(&alice).as_bytes()]).await;
    assert_eq!(reply, Auth::Success, "{}", gw.log());
}
