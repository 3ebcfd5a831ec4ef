//! Tests of the end-to-end harness itself, against the real programs it drives: the
//! OpenSSH client answering prompts through the askpass script, a throwaway sshd target,
//! TOTP codes from oathtool, and a gateway started and stopped by signal. When one of
//! these fails, every other end-to-end test would fail for the same reason; this file
//! says so first and plainly.

mod common;

use std::process::Command;

use common::{Backend, ClientKey, Gw, Ssh, Sshd, TotpDevice, backends, describe, stdout, totp_at};

#[test]
fn ssh_client_reaches_a_throwaway_sshd_with_a_key() {
    let (sshd, key) = Sshd::start_with_new_key();
    let out = Ssh::new(sshd.port, &sshd.user).identity_file(&key).run(&["echo", "hello from the target"]);
    assert!(out.status.success(), "{}\n--- sshd log ---\n{}", describe(&out), sshd.log());
    assert_eq!(stdout(&out).trim(), "hello from the target");
    assert!(sshd.host_key_pub.starts_with("ssh-ed25519 "), "{}", sshd.host_key_pub);
    assert_eq!(sshd.host_key_pub.split_whitespace().count(), 2, "host key without comment");

    // An unauthorized key is refused.
    let dir = tempfile::tempdir().unwrap();
    let stranger = ClientKey::generate(dir.path(), "stranger");
    let out = Ssh::new(sshd.port, &sshd.user).identity(&stranger).run(&["true"]);
    assert!(!out.status.success(), "an unauthorized key got in:\n{}", describe(&out));
}

#[test]
fn askpass_answers_by_prompt_and_logs_what_it_was_asked() {
    // A passphrase-protected key makes ssh ask through SSH_ASKPASS.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("locked");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "s3cret phrase", "-f"])
        .arg(&key)
        .status()
        .expect("running ssh-keygen");
    assert!(made.success());
    let public = std::fs::read_to_string(dir.path().join("locked.pub")).unwrap();
    let sshd = Sshd::start(&public);

    let ssh = Ssh::new(sshd.port, &sshd.user).identity_file(&key).on_prompt("passphrase", "s3cret phrase");
    let out = ssh.run(&["echo", "ok"]);
    assert!(out.status.success(), "{}\n--- sshd log ---\n{}", describe(&out), sshd.log());
    assert_eq!(stdout(&out).trim(), "ok");
    let prompts = ssh.prompts_seen();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert!(prompts[0].contains("Enter passphrase for key"), "{prompts:?}");

    // The same builder runs again with fresh counters.
    assert!(ssh.run(&["true"]).status.success(), "second run");

    // Answers are used in order; a wrong one first means a second prompt.
    let ssh = Ssh::new(sshd.port, &sshd.user)
        .identity_file(&key)
        .on_prompt("passphrase", "wrong")
        .on_prompt("passphrase", "s3cret phrase");
    let out = ssh.run(&["true"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(ssh.prompts_seen().len(), 2, "{:?}", ssh.prompts_seen());

    // No rule and no fallback: the askpass gives up and says so in the log.
    let ssh = Ssh::new(sshd.port, &sshd.user).identity_file(&key).option("PasswordAuthentication=no");
    let out = ssh.run(&["true"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(ssh.prompts_seen().iter().any(|p| p.starts_with("[askpass] no answer")), "{:?}", ssh.prompts_seen());
}

#[test]
fn oathtool_codes_match_rfc_6238_and_never_repeat() {
    // RFC 6238 appendix B, SHA1 secret "12345678901234567890", truncated to 6 digits.
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    assert_eq!(totp_at(secret, 59), "287082");
    assert_eq!(totp_at(secret, 1_111_111_109), "081804");
    assert_eq!(totp_at(secret, 2_000_000_000), "279037");

    let mut device = TotpDevice::new(secret);
    let codes: Vec<String> = (0..3).map(|_| device.code()).collect();
    assert!(codes.iter().all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())), "{codes:?}");
    let mut unique = codes.clone();
    unique.dedup();
    assert_eq!(unique.len(), 3, "three consecutive steps: {codes:?}");
}

#[test]
fn backends_include_postgres_when_configured() {
    let list = backends();
    assert_eq!(list[0], Backend::Sqlite);
    let configured = std::env::var("GATEHOUSE_TEST_POSTGRES_URL").is_ok_and(|u| !u.trim().is_empty());
    assert_eq!(list.contains(&Backend::Postgres), configured);
    if configured {
        let url = common::fresh_postgres_url();
        assert!(url.contains("/gh_test_"), "{url}");
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-d", &url, "-c", "SELECT current_database()"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        assert!(stdout(&out).trim().starts_with("gh_test_"));
    }
}

#[test]
fn gateway_starts_answers_health_and_stops_on_sigterm() {
    for backend in backends() {
        let mut gw = Gw::new(backend);
        gw.start();
        assert!(gw.is_running());
        assert!(common::gateway::healthz(gw.web_port));
        let log = gw.log();
        assert_eq!(log.matches("One-time password").count(), 1, "{backend:?}: bootstrap password printed once:\n{log}");
        assert!(
            log.contains(&format!("ssh=127.0.0.1:{}", gw.ssh_port)),
            "{backend:?}: the log says where it listens:\n{log}"
        );
        assert!(!log.contains('\u{1b}'), "{backend:?}: escape codes in the log file:\n{log}");
        let admin_password = gw.bootstrap_password().expect("the one-time password");
        assert!(admin_password.len() >= 12, "{admin_password}");
        let status = gw.stop().expect("an exit status");
        assert!(status.success(), "{backend:?}: unclean exit on SIGTERM ({status}):\n{}", gw.log());

        // A second start on the same database prints no new password.
        gw.start();
        let status = gw.stop().expect("an exit status");
        assert!(status.success(), "{}", gw.log());
        assert_eq!(gw.log().matches("One-time password").count(), 1, "{backend:?}:\n{}", gw.log());
    }
}

#[test]
fn interactive_session_under_expect() {
    let (sshd, key) = Sshd::start_with_new_key();
    let ssh = Ssh::new(sshd.port, &sshd.user).identity_file(&key).arg("-t");
    let out = ssh.interact(
        &["bash", "-c", "'read -p \"name? \" x; echo \"got:$x\"'"],
        r#"expect "name? " { send "gatehouse\r" } timeout { exit 3 }
expect "got:gatehouse" {} timeout { exit 4 }
expect eof"#,
    );
    assert!(out.status.success(), "{}\n--- sshd log ---\n{}", describe(&out), sshd.log());
    assert!(stdout(&out).contains("got:gatehouse"), "{}", describe(&out));
}
