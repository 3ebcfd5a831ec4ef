//! The SSH gate, driven with the real OpenSSH client: primary credential, then the second
//! factor over keyboard-interactive, policy, lockout, and that nothing opens before the
//! gate is passed.

mod common;

use std::process::Output;

use common::{Backend, ClientKey, Gw, Ssh, Sshd, TotpDevice, backends, describe, stderr, totp_now};

const PASSWORD: &str = "correct horse battery";

/// A started gateway with user `alice` (password + an enrolled key).
fn gateway_with_alice(backend: Backend) -> (Gw, ClientKey) {
    let mut gw = Gw::new(backend);
    gw.start();
    gw.add_user("alice", PASSWORD);
    let key = gw.add_key("alice");
    (gw, key)
}

/// A client that logs in and leaves at once (the menu sees end of input).
fn ssh(gw: &Gw, user: &str) -> Ssh {
    Ssh::new(gw.ssh_port, user).arg("-v").stdin("")
}

#[test]
fn public_key_then_totp() {
    let (gw, key) = gateway_with_alice(Backend::Sqlite);
    let mut device = TotpDevice::new(&gw.enroll_totp("alice"));
    let client = ssh(&gw, "alice").identity(&key).on_prompt("Authenticator code", &device.code());
    let out = client.run(&[]);
    gw.assert_logged_in(&out, "key + TOTP");
    let prompts = client.prompts_seen();
    assert!(prompts.iter().any(|p| p.contains("Authenticator code")), "{prompts:?}");
    assert!(!prompts.iter().any(|p| p.contains("assword")), "a key login must not ask for the password: {prompts:?}");
    let log = gw.audit("login");
    assert!(log.contains("login.publickey") && log.contains("login.factor") && log.contains("login.success"), "{log}");
}

#[test]
fn password_then_totp() {
    let (gw, _key) = gateway_with_alice(Backend::Sqlite);
    let mut device = TotpDevice::new(&gw.enroll_totp("alice"));
    let client = ssh(&gw, "alice")
        .preferred("password,keyboard-interactive")
        .password(PASSWORD)
        .on_prompt("Authenticator code", &device.code());
    let out = client.run(&[]);
    gw.assert_logged_in(&out, "password + TOTP");
}

#[test]
fn keyboard_interactive_only_client_is_asked_for_the_password_first() {
    let (gw, _key) = gateway_with_alice(Backend::Sqlite);
    let mut device = TotpDevice::new(&gw.enroll_totp("alice"));
    let client = ssh(&gw, "alice")
        .preferred("keyboard-interactive")
        .on_prompt("Password", PASSWORD)
        .on_prompt("Authenticator code", &device.code());
    let out = client.run(&[]);
    gw.assert_logged_in(&out, "keyboard-interactive only");
    let prompts = client.prompts_seen();
    let pw = prompts.iter().position(|p| p.contains("Password")).expect("asked for the password");
    let code = prompts.iter().position(|p| p.contains("Authenticator code")).expect("asked for the code");
    assert!(pw < code, "{prompts:?}");
}

#[test]
fn wrong_code_then_right_code_in_one_login() {
    let (gw, key) = gateway_with_alice(Backend::Sqlite);
    let mut device = TotpDevice::new(&gw.enroll_totp("alice"));
    let right = device.code();
    let wrong = if right == "000000" { "111111".to_string() } else { "000000".to_string() };
    let client = ssh(&gw, "alice")
        .identity(&key)
        .on_prompt("Authenticator code", &wrong)
        .on_prompt("Authenticator code", &right);
    let out = client.run(&[]);
    gw.assert_logged_in(&out, "wrong then right");
    assert!(
        stderr(&out).contains("That answer is not right. 2 attempts left."),
        "the retry says why:\n{}",
        describe(&out)
    );
    assert_eq!(client.prompts_seen().iter().filter(|p| p.contains("Authenticator code")).count(), 2);
}

#[test]
fn too_many_wrong_codes_end_the_login() {
    let (gw, key) = gateway_with_alice(Backend::Sqlite);
    gw.enroll_totp("alice");
    let client = ssh(&gw, "alice").identity(&key).answers(&["000001", "000002", "000003", "000004", "000005"]);
    let out = client.run(&[]);
    gw.assert_refused(&out, "three wrong codes");
    // Three tries in the connection, then nothing more is asked.
    assert_eq!(
        client.prompts_seen().iter().filter(|p| p.contains("Authenticator code")).count(),
        3,
        "{:?}",
        client.prompts_seen()
    );
}

#[test]
fn a_code_is_accepted_once() {
    let (gw, key) = gateway_with_alice(Backend::Sqlite);
    let secret = gw.enroll_totp("alice");
    let code = totp_now(&secret);
    let first = ssh(&gw, "alice").identity(&key).on_prompt("Authenticator code", &code);
    gw.assert_logged_in(&first.run(&[]), "first use of the code");
    let again = ssh(&gw, "alice").identity(&key).answers(&[&code, &code, &code]);
    let out = again.run(&[]);
    // The same code may still be inside its 30-second window; it must not work twice.
    gw.assert_refused(&out, "replayed code");
    assert!(stderr(&out).contains("already used"), "{}", describe(&out));
    assert!(gw.audit("login.factor").contains("code already used"));
}

#[test]
fn two_parallel_logins_with_one_code_only_one_wins() {
    for backend in backends() {
        let (gw, key) = gateway_with_alice(backend);
        let secret = gw.enroll_totp("alice");
        let code = totp_now(&secret);
        let clients: Vec<Ssh> = (0..2).map(|_| ssh(&gw, "alice").identity(&key).answers(&[&code])).collect();
        let outs: Vec<Output> = std::thread::scope(|s| {
            let handles: Vec<_> = clients.iter().map(|c| s.spawn(move || c.run(&[]))).collect();
            handles.into_iter().map(|h| h.join().expect("ssh thread")).collect()
        });
        let winners = outs.iter().filter(|o| common::ssh::authenticated(o)).count();
        assert_eq!(
            winners,
            1,
            "{backend:?}: exactly one login may use the code\n{}\n{}\n{}",
            describe(&outs[0]),
            describe(&outs[1]),
            gw.log()
        );
    }
}

#[test]
fn backup_code_works_once_and_never_becomes_the_default() {
    let (gw, key) = gateway_with_alice(Backend::Sqlite);
    gw.enroll_totp("alice");
    let codes = gw.cli_ok(&["factor", "backup-codes", "alice"]);
    let codes: Vec<&str> = codes.lines().collect();
    assert_eq!(codes.len(), 10, "default set size: {codes:?}");
    let client = ssh(&gw, "alice")
        .identity(&key)
        .on_prompt("Authenticator code", "?")
        .on_prompt("Method", "backup")
        .on_prompt("Backup code", codes[0]);
    gw.assert_logged_in(&client.run(&[]), "backup code");
    // Once only.
    let again = ssh(&gw, "alice")
        .identity(&key)
        .on_prompt("Authenticator code", "?")
        .on_prompt("Method", "backup")
        .on_prompt("Backup code", codes[0])
        .on_prompt("Backup code", codes[0])
        .on_prompt("Backup code", codes[0]);
    gw.assert_refused(&again.run(&[]), "reused backup code");
    // The default stays the authenticator.
    let next = ssh(&gw, "alice").identity(&key).answers(&["000000"]);
    next.run(&[]);
    assert!(next.prompts_seen()[0].contains("Authenticator code"), "{:?}", next.prompts_seen());
    // Another code of the set still works.
    let other = ssh(&gw, "alice")
        .identity(&key)
        .on_prompt("Authenticator code", "?")
        .on_prompt("Method", "2")
        .on_prompt("Backup code", codes[1]);
    gw.assert_logged_in(&other.run(&[]), "second backup code");
}

#[test]
fn access_keyword() {
    let (gw, key) = gateway_with_alice(Backend::Sqlite);
    let out = gw.cli_stdin(&["factor", "keyword", "alice", "--stdin"], "open sesame\n");
    gw.assert_success(&out, "keyword");
    let client = ssh(&gw, "alice").identity(&key).on_prompt("Access keyword", "open sesame");
    gw.assert_logged_in(&client.run(&[]), "keyword");
    let wrong = ssh(&gw, "alice").identity(&key).answers(&["open says me", "x", "y"]);
    gw.assert_refused(&wrong.run(&[]), "wrong keyword");
}

#[test]
fn switching_methods_and_the_last_used_one_comes_first() {
    let (gw, key) = gateway_with_alice(Backend::Sqlite);
    let mut device = TotpDevice::new(&gw.enroll_totp("alice"));
    gw.assert_success(&gw.cli_stdin(&["factor", "keyword", "alice", "--stdin"], "open sesame\n"), "keyword");

    // No method used yet: the authenticator is asked first; switch to the keyword.
    let client = ssh(&gw, "alice")
        .identity(&key)
        .on_prompt("Authenticator code", "?")
        .on_prompt("Method", "keyword")
        .on_prompt("Access keyword", "open sesame");
    let out = client.run(&[]);
    gw.assert_logged_in(&out, "switch to keyword");
    let prompts = client.prompts_seen();
    assert!(prompts[0].contains("Authenticator code (or ? for another method)"), "{prompts:?}");
    assert!(
        stderr(&out).contains("1) Authenticator code") && stderr(&out).contains("2) Access keyword"),
        "{}",
        describe(&out)
    );

    // The keyword is now the last-used method: asked first.
    let client = ssh(&gw, "alice").identity(&key).on_prompt("Access keyword", "open sesame");
    gw.assert_logged_in(&client.run(&[]), "keyword first");
    assert!(client.prompts_seen()[0].contains("Access keyword"), "{:?}", client.prompts_seen());

    // Back to the authenticator, which then comes first again.
    let client = ssh(&gw, "alice")
        .identity(&key)
        .on_prompt("Access keyword", "")
        .on_prompt("Method", "totp")
        .on_prompt("Authenticator code", &device.code());
    gw.assert_logged_in(&client.run(&[]), "switch back");
    let client = ssh(&gw, "alice").identity(&key).on_prompt("Authenticator code", &device.code());
    gw.assert_logged_in(&client.run(&[]), "authenticator first");
    assert!(client.prompts_seen()[0].contains("Authenticator code"), "{:?}", client.prompts_seen());
    assert_eq!(gw.cli_ok(&["user", "list", "--json"]).matches("\"last_method\": \"totp\"").count(), 1);
}

#[test]
fn policy_not_forced_forced_globally_by_group_and_exempt() {
    let (gw, key) = gateway_with_alice(Backend::Sqlite);
    gw.add_user("bob", PASSWORD);
    let bob_key = gw.add_key("bob");

    // Not forced, nothing enrolled: no second factor asked.
    let client = ssh(&gw, "alice").identity(&key);
    gw.assert_logged_in(&client.run(&[]), "not forced");
    assert!(client.prompts_seen().is_empty(), "{:?}", client.prompts_seen());

    // Forced for the group ops: bob (a member) gets enrollment mode only, alice nothing.
    gw.cli_ok(&["group", "add", "ops"]);
    gw.cli_ok(&["group", "add-member", "ops", "bob"]);
    gw.cli_ok(&["policy", "force-2fa", "on", "--group", "ops"]);
    let show = gw.cli_ok(&["user", "show", "bob"]);
    assert!(show.contains("MustEnroll"), "{show}");
    let show = gw.cli_ok(&["user", "show", "alice"]);
    assert!(show.contains("NotRequired"), "{show}");
    // Once bob enrolls, the group force makes the gate ask him.
    let bob_secret = gw.enroll_totp("bob");
    let client = ssh(&gw, "bob").identity(&bob_key).on_prompt("Authenticator code", &totp_now(&bob_secret));
    gw.assert_logged_in(&client.run(&[]), "group-forced member with a factor");
    assert!(client.prompts_seen()[0].contains("Authenticator code"));

    // Forced globally: alice too.
    gw.cli_ok(&["policy", "force-2fa", "on"]);
    let show = gw.cli_ok(&["user", "show", "alice"]);
    assert!(show.contains("MustEnroll"), "{show}");

    // Exempt: never asked, even with a factor enrolled and force on, and audited.
    gw.enroll_totp("alice");
    gw.cli_ok(&["user", "exempt", "alice", "on"]);
    let client = ssh(&gw, "alice").identity(&key);
    gw.assert_logged_in(&client.run(&[]), "exempt");
    assert!(client.prompts_seen().is_empty(), "{:?}", client.prompts_seen());
    assert!(gw.audit("login.exempt").contains("alice"));
    assert!(gw.cli_ok(&["policy", "show"]).contains("WARNING: user alice is exempt"));
}

#[test]
fn forced_user_with_nothing_enrolled_reaches_no_target() {
    let (gw, key) = gateway_with_alice(Backend::Sqlite);
    let (sshd, gateway_key) = Sshd::start_with_new_key();
    gw.cli_ok(&[
        "target",
        "add",
        "web1",
        "--host",
        "127.0.0.1",
        "--port",
        &sshd.port.to_string(),
        "--user",
        &sshd.user,
        "--key-file",
        gateway_key.to_str().expect("utf-8 path"),
    ]);
    gw.cli_ok(&["target", "grant", "web1", "--user", "alice"]);
    gw.cli_ok(&["policy", "force-2fa", "on"]);
    let out = ssh(&gw, "alice").identity(&key).run(&["web1", "echo", "reached"]);
    assert!(!common::stdout(&out).contains("reached"), "enrollment mode must not reach a target:\n{}", describe(&out));
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    let text = format!("{}{}", common::stdout(&out), stderr(&out)).to_lowercase();
    assert!(text.contains("enrol"), "the user is told to enroll:\n{}", describe(&out));
}

#[test]
fn lockout_after_failures_then_unlock() {
    let mut gw = Gw::with_config(
        Backend::Sqlite,
        "[lockout]\nuser_threshold = 3\nsource_threshold = 50\nwindow_secs = 600\nduration_secs = 600\n",
    );
    gw.start();
    gw.add_user("alice", PASSWORD);
    let secret = gw.enroll_totp("alice");
    for _ in 0..3 {
        let bad =
            ssh(&gw, "alice").preferred("password").answers(&["wrong password"]).option("NumberOfPasswordPrompts=1");
        gw.assert_refused(&bad.run(&[]), "wrong password");
    }
    // The right password and a right code are now refused too: 2FA exempts no one.
    let client = ssh(&gw, "alice")
        .preferred("keyboard-interactive")
        .on_prompt("Password", PASSWORD)
        .on_prompt("Authenticator code", &totp_now(&secret));
    let out = client.run(&[]);
    gw.assert_refused(&out, "locked account");
    assert!(stderr(&out).contains("locked"), "the user is told the account is locked:\n{}", describe(&out));
    assert!(gw.cli_ok(&["user", "show", "alice"]).contains("locked out"));
    assert!(gw.audit("login.lockout").contains("account locked"));

    gw.cli_ok(&["user", "unlock", "alice"]);
    let mut device = TotpDevice::new(&secret);
    let client = ssh(&gw, "alice")
        .preferred("keyboard-interactive")
        .on_prompt("Password", PASSWORD)
        .on_prompt("Authenticator code", &device.code());
    gw.assert_logged_in(&client.run(&[]), "after unlock");
}

#[test]
fn disabled_and_unknown_users_look_like_wrong_passwords() {
    let (gw, _key) = gateway_with_alice(Backend::Sqlite);
    gw.cli_ok(&["user", "lock", "alice"]);
    let locked =
        ssh(&gw, "alice").preferred("password").password(PASSWORD).option("NumberOfPasswordPrompts=1").run(&[]);
    let unknown =
        ssh(&gw, "mallory").preferred("password").password(PASSWORD).option("NumberOfPasswordPrompts=1").run(&[]);
    gw.assert_refused(&locked, "disabled user");
    gw.assert_refused(&unknown, "unknown user");
    let last = |o: &Output| {
        stderr(o)
            .lines()
            .filter(|l| l.contains("Permission denied"))
            .map(|l| l.replace("mallory", "alice"))
            .collect::<Vec<_>>()
    };
    assert_eq!(last(&locked), last(&unknown));
}

#[test]
fn nothing_opens_before_the_gate() {
    let (gw, key) = gateway_with_alice(Backend::Sqlite);
    gw.enroll_totp("alice");
    let (sshd, gateway_key) = Sshd::start_with_new_key();
    gw.cli_ok(&[
        "target",
        "add",
        "web1",
        "--host",
        "127.0.0.1",
        "--port",
        &sshd.port.to_string(),
        "--user",
        &sshd.user,
        "--key-file",
        gateway_key.to_str().expect("utf-8 path"),
    ]);
    gw.cli_ok(&["target", "grant", "web1", "--user", "alice"]);
    let local = common::free_port();
    let attempts: Vec<(&str, Vec<&str>, Vec<String>)> = vec![
        ("exec", vec![], vec!["web1".into(), "echo".into(), "reached".into()]),
        ("local forward", vec!["-N", "-o", "ExitOnForwardFailure=yes"], vec![]),
        ("sftp subsystem", vec!["-s"], vec!["sftp".into()]),
        ("agent forwarding", vec!["-A"], vec!["web1".into(), "true".into()]),
        ("remote forward", vec!["-N", "-R", "0:127.0.0.1:9"], vec![]),
        ("dynamic forward", vec!["-N", "-D", "0"], vec![]),
    ];
    for (what, args, remote) in attempts {
        let mut client = ssh(&gw, "alice").identity(&key).answers(&["000000", "111111", "222222"]);
        for a in &args {
            client = client.arg(a);
        }
        if what == "local forward" {
            client = client.arg("-L").arg(&format!("{local}:127.0.0.1:{}", sshd.port));
        }
        let remote: Vec<&str> = remote.iter().map(String::as_str).collect();
        let out = client.run(&remote);
        gw.assert_refused(&out, what);
        assert!(!common::stdout(&out).contains("reached"));
    }
    // The target never saw a connection from the gateway.
    assert!(!sshd.log().contains("Accepted publickey"), "{}", sshd.log());
}

#[test]
fn after_the_gate_only_granted_forwarding_is_allowed() {
    let (gw, key) = gateway_with_alice(Backend::Sqlite);
    // Not forced, nothing enrolled: the gate is passed with the key alone.
    let out = ssh(&gw, "alice")
        .identity(&key)
        .arg("-N")
        .arg("-o")
        .arg("ExitOnForwardFailure=yes")
        .arg("-R")
        .arg("0:127.0.0.1:9")
        .run(&[]);
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(stderr(&out).contains("remote port forwarding failed"), "{}", describe(&out));
    // -W to an address that is no granted target is prohibited.
    let out = ssh(&gw, "alice").identity(&key).arg("-W").arg("127.0.0.1:9").run(&[]);
    assert!(stderr(&out).contains("administratively prohibited"), "{}", describe(&out));
    let log = gw.audit("forward");
    assert!(log.contains("forward.remote") && log.contains("forward.direct"), "{log}");
}

/// Two gateway nodes on one database (PostgreSQL when configured, else one SQLite file):
/// a code used on one node is refused on the other, and both write one audit log.
#[test]
fn two_nodes_share_used_codes() {
    for backend in backends() {
        let (a, key) = gateway_with_alice(backend);
        let mut b = a.join();
        b.start();
        let secret = a.enroll_totp("alice");
        let code = totp_now(&secret);
        let on_a = ssh(&a, "alice").identity(&key).on_prompt("Authenticator code", &code);
        a.assert_logged_in(&on_a.run(&[]), "first use, node A");
        let on_b = ssh(&b, "alice").identity(&key).answers(&[&code, &code, &code]);
        let out = on_b.run(&[]);
        b.assert_refused(&out, "the same code on node B");
        assert!(stderr(&out).contains("already used"), "{backend:?}: {}", describe(&out));
        let log = a.audit("login.success");
        assert_eq!(log.lines().filter(|l| l.contains("login.success")).count(), 1, "{backend:?}: {log}");
        assert!(
            a.audit("login.factor").contains("code already used"),
            "{backend:?}: node B's refusal is in the shared log"
        );
    }
}
