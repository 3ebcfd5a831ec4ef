//! Application passcodes over SSH with the real clients: a passcode made in the web UI
//! stands in for password + second factor for a command, scp, sftp and `-J` to a granted
//! target, and for nothing else (no menu, no interactive target, no other target). Every
//! use is audited, and a password change revokes it.

mod common;
mod shell_support;
mod web_support;

use std::process::{Command, Output};
use std::time::Duration;

use common::{Ssh, describe, run_with_timeout, stdout};
use shell_support::{Bastion, PASSWORD, bastion, random_file, sha256};
use web_support::Browser;

/// A passcode for alice, made through the web UI while she needs no second factor; then
/// 2FA is forced for everyone and she enrolls TOTP, so a password alone no longer passes.
async fn passcode_then_forced_2fa(b: &Bastion) -> String {
    let web = Browser::new(&b.gw);
    web.login("alice", PASSWORD).await;
    let made = web.submit("/account/passcodes", "/account/passcodes", &[("label", "nightly backup")]).await;
    let code = regex::Regex::new(r#"id="new-passcode">([a-z0-9-]+)<"#)
        .expect("regex")
        .captures(&made.body)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| panic!("no passcode on the page:\n{}", made.body));
    b.gw.cli_ok(&["policy", "force-2fa", "on"]);
    b.gw.enroll_totp("alice");
    code
}

/// A password-only client (no key) that answers every password prompt with `secret` and
/// never a second-factor prompt.
fn with_secret(b: &Bastion, user: &str, secret: &str) -> Ssh {
    Ssh::new(b.gw.ssh_port, user).password(secret).timeout(Duration::from_secs(60))
}

/// `scp`/`sftp`/`ssh` under setsid with the askpass script of `client` and a config file
/// that trusts any host key and names the gateway as `jumpgw` (alice, password only).
fn run_with_askpass(b: &Bastion, client: &Ssh, program: &str, args: &[&str], stdin: Option<&str>) -> Output {
    // `command` writes the askpass script and its answers into the client's directory.
    let _ = client.command(&[]);
    let config = client.dir().join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host jumpgw\n  HostName 127.0.0.1\n  Port {}\n  User alice\n  PubkeyAuthentication no\n\
             Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  GlobalKnownHostsFile /dev/null\n  \
             IdentityAgent none\n  IdentitiesOnly yes\n  NumberOfPasswordPrompts 1\n  LogLevel ERROR\n",
            b.gw.ssh_port
        ),
    )
    .expect("writing the client config");
    let mut cmd = Command::new("setsid");
    cmd.arg(program)
        .arg("-F")
        .arg(&config)
        .args(args)
        .env("SSH_ASKPASS", client.dir().join("askpass"))
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env_remove("SSH_AUTH_SOCK");
    run_with_timeout(&mut cmd, stdin, Duration::from_secs(120))
}

#[tokio::test(flavor = "multi_thread")]
async fn passcode_opens_commands_and_transfers_to_granted_targets_only() {
    let b = bastion();
    b.add_granted("web1");
    b.add_target("other", &b.sshd, &b.target_key, Some(&b.sshd.host_key_pub));
    let code = passcode_then_forced_2fa(&b).await;

    // The password alone now leads to the second-factor prompt, which this client cannot answer.
    let pw_only = with_secret(&b, "alice", PASSWORD);
    let out = pw_only.run(&["web1", "echo", "nope"]);
    assert!(!out.status.success(), "password without the second factor:\n{}", describe(&out));
    assert!(pw_only.prompts_seen().iter().any(|p| p.contains("code")), "{:?}", pw_only.prompts_seen());

    // A command on a granted target: TARGET COMMAND, and the target in the user name.
    let client = with_secret(&b, "alice", &code);
    let out = client.run(&["web1", "echo", "via-passcode-$((6*7))"]);
    assert!(out.status.success(), "{}\n{}", describe(&out), b.gw.log());
    assert!(stdout(&out).contains("via-passcode-42"), "{}", describe(&out));
    assert_eq!(client.prompts_seen().len(), 1, "only the password prompt: {:?}", client.prompts_seen());
    let out = with_secret(&b, "alice:web1", &code).run(&["exit 7"]);
    assert_eq!(out.status.code(), Some(7), "the target's exit status comes back:\n{}", describe(&out));

    // Typed with spaces instead of dashes and in capitals, it is the same passcode.
    let loose = code.replace('-', " ").to_uppercase();
    let out = with_secret(&b, "alice", &loose).run(&["web1", "true"]);
    assert!(out.status.success(), "{}", describe(&out));

    // Not the menu, not an interactive target session, not a target that is not granted.
    let out = client.run(&[]);
    assert!(!out.status.success(), "menu with a passcode:\n{}", describe(&out));
    let out = with_secret(&b, "alice", &code).arg("-tt").run(&["web1"]);
    assert!(!out.status.success(), "interactive target with a passcode:\n{}", describe(&out));
    let out = with_secret(&b, "alice", &code).run(&["other", "echo", "leak"]);
    assert!(!out.status.success() && !stdout(&out).contains("leak"), "ungranted target:\n{}", describe(&out));

    // scp both ways, sftp, and -J.
    let port = b.gw.ssh_port.to_string();
    let work = b.gw.dir.path().join("passcode-files");
    std::fs::create_dir_all(&work).unwrap();
    let remote = tempfile::tempdir().unwrap();
    let original = work.join("data.bin");
    random_file(&original, 1024 * 1024 + 3);
    let up = format!("127.0.0.1:{}/up.bin", remote.path().display());
    let out = run_with_askpass(
        &b,
        &client,
        "scp",
        &["-P", &port, "-o", "User=alice:web1", "-o", "PubkeyAuthentication=no", original.to_str().unwrap(), &up],
        None,
    );
    assert!(out.status.success(), "scp up:\n{}\n{}", describe(&out), b.gw.log());
    assert_eq!(sha256(&remote.path().join("up.bin")), sha256(&original));
    let back = work.join("back.bin");
    let out = run_with_askpass(
        &b,
        &client,
        "scp",
        &["-P", &port, "-o", "User=alice:web1", "-o", "PubkeyAuthentication=no", &up, back.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "scp down:\n{}", describe(&out));
    assert_eq!(sha256(&back), sha256(&original));

    // Commands on stdin, not `-b`: batch mode forbids password prompts.
    let commands = format!("ls {}\nbye\n", remote.path().display());
    let out = run_with_askpass(
        &b,
        &client,
        "sftp",
        &["-P", &port, "-o", "User=alice:web1", "-o", "PubkeyAuthentication=no", "127.0.0.1"],
        Some(&commands),
    );
    assert!(out.status.success() && stdout(&out).contains("up.bin"), "sftp:\n{}\n{}", describe(&out), b.audit(""));

    // -J: the gateway gets the passcode, the target the key of its own user.
    let sshd_port = b.sshd.port.to_string();
    let target_key = b.target_key.display().to_string();
    let dest = format!("{}@127.0.0.1", b.sshd.user);
    let out = run_with_askpass(
        &b,
        &client,
        "ssh",
        &["-J", "jumpgw", "-i", &target_key, "-p", &sshd_port, &dest, "echo jumped"],
        None,
    );
    assert!(
        out.status.success() && stdout(&out).contains("jumped"),
        "-J with a passcode:\n{}\n{}",
        describe(&out),
        b.gw.log()
    );

    let audit = b.audit("");
    assert!(audit.matches("login.passcode").count() >= 5, "each use is audited:\n{audit}");
    assert!(audit.contains("nightly backup"), "{audit}");
    assert!(audit.contains("session.refused"), "{audit}");

    // Without an enrolled second factor (forced, so the user must enroll first), the
    // passcode stands in for nothing.
    b.gw.cli_ok(&["factor", "remove", "alice", "totp"]);
    let out = with_secret(&b, "alice", &code).run(&["web1", "echo", "leak"]);
    assert!(
        !out.status.success() && !stdout(&out).contains("leak"),
        "passcode while enrollment is due:\n{}",
        describe(&out)
    );
    assert!(b.audit("login.passcode").contains("must be enrolled first"), "{}", b.audit("login.passcode"));
    b.gw.enroll_totp("alice");

    // A new password revokes the passcode.
    b.gw.cli_stdin(&["user", "passwd", "alice", "--password-stdin"], "another fine password\n");
    let out = with_secret(&b, "alice", &code).run(&["web1", "true"]);
    assert!(!out.status.success(), "revoked passcode:\n{}", describe(&out));
}
