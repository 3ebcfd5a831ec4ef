//! Reaching a target without the menu, with the real OpenSSH client: `ssh gw TARGET cmd`
//! (output and exit status come back), `ssh -t gw TARGET`, the target in the user name
//! (`alice:TARGET`), a changed host key, trust on first use, and `ssh -J` through the
//! gateway to a granted target (and refused to anything else); agent forwarding only when
//! the gateway allows it.

mod common;
mod shell_support;

use std::time::Duration;

use common::{Ssh, Sshd, describe, stderr, stdout};
use shell_support::{Bastion, MUST, bastion, bastion_with_config, run, ssh_exit};

#[test]
fn command_after_the_target_returns_output_and_exit_status() {
    let b = bastion();
    b.add_granted("web1");
    let out =
        Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).run(&["web1", "echo out-$((40+2)); echo err >&2; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}\n{}", describe(&out), b.gw.log());
    assert_eq!(stdout(&out), "out-42\n");
    assert!(stderr(&out).contains("err"), "{}", describe(&out));

    // The same with the target in the user name.
    let out = Ssh::new(b.gw.ssh_port, "alice:web1").identity(&b.key).run(&["echo via-name; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}\n{}", describe(&out), b.gw.log());
    assert_eq!(stdout(&out), "via-name\n");

    // Not granted: refused with a message, nothing runs.
    b.add_target("other", &b.sshd, &b.target_key, Some(&b.sshd.host_key_pub));
    let out = Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).run(&["other", "echo should-not-run"]);
    assert_eq!(out.status.code(), Some(255), "{}", describe(&out));
    assert!(stderr(&out).contains("no target named 'other' is granted"), "{}", describe(&out));
    assert!(!stdout(&out).contains("should-not-run"));
    let audit = b.audit("target.connect");
    assert!(audit.contains("failure") && audit.contains("success"), "{audit}");
}

#[test]
fn interactive_target_by_exec_and_by_user_name() {
    let b = bastion();
    b.add_granted("web1");
    let body = format!(
        r#"{MUST}
send "echo marker-\$((6*7)); tty\r"
must "marker-42"
must "/dev/pts/"
send "exit 5\r"
finish
"#
    );
    let out = Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).arg("-t").interact(&["web1"], &body);
    assert_eq!(ssh_exit(&out), Some(5), "{}\n{}", describe(&out), b.gw.log());

    let out = Ssh::new(b.gw.ssh_port, "alice:web1").identity(&b.key).interact(&[], &body);
    assert_eq!(ssh_exit(&out), Some(5), "{}\n{}", describe(&out), b.gw.log());
    assert!(!stdout(&out).contains("targets"), "no menu when the user name names the target");
    assert_eq!(b.recording_files().len(), 2, "both terminal sessions are recorded");
}

#[test]
fn changed_host_key_is_refused_and_first_use_is_pinned() {
    let b = bastion();
    let (impostor, _key) = Sshd::start_with_new_key();
    // Pinned to another server's key: refused, both fingerprints named.
    b.add_target("web1", &b.sshd, &b.target_key, Some(&impostor.host_key_pub));
    b.gw.cli_ok(&["target", "grant", "web1", "--user", "alice"]);
    let out = Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).run(&["web1", "echo should-not-run"]);
    assert_eq!(out.status.code(), Some(255), "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.contains("host key of web1 has changed"), "{err}");
    let fp = |line: &str| {
        let out = run("sh", &["-c", &format!("echo '{line}' | ssh-keygen -lf -")], Duration::from_secs(10));
        stdout(&out).split_whitespace().nth(1).unwrap_or_default().to_string()
    };
    assert!(err.contains(&fp(&impostor.host_key_pub)) && err.contains(&fp(&b.sshd.host_key_pub)), "{err}");
    assert!(!b.sshd.log().contains("Accepted publickey"), "no credential went to the server");

    // Not pinned: the first key seen is pinned, audited, and then enforced.
    b.add_target("fresh", &b.sshd, &b.target_key, None);
    b.gw.cli_ok(&["target", "grant", "fresh", "--user", "alice"]);
    let out = Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).run(&["fresh", "echo first"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", describe(&out), b.gw.log());
    let listed = b.gw.cli_ok(&["target", "list", "--json"]);
    let key_b64 = b.sshd.host_key_pub.split_whitespace().nth(1).unwrap();
    assert!(listed.contains(key_b64), "the pinned key is shown to admins: {listed}");
    assert!(b.audit("target.host_key").contains("pinned on first use"));
}

#[test]
fn proxy_jump_reaches_granted_targets_only() {
    let b = bastion();
    b.add_granted("web1");
    // The client's own key is what the target sees on a -J hop (end-to-end encryption).
    b.sshd.authorize(&b.key.line);
    let config = b.client_config(&["web1"]);
    let config = config.display().to_string();
    let out = run("ssh", &["-F", &config, "-J", "gw", "direct", "echo jumped-$((1+1))"], Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}\n{}", describe(&out), b.gw.log());
    assert_eq!(stdout(&out), "jumped-2\n");

    // Another server on loopback that is not a granted target.
    let (other, _key) = Sshd::start_with_new_key();
    other.authorize(&b.key.line);
    let port = other.port.to_string();
    let out =
        run("ssh", &["-F", &config, "-J", "gw", "-p", &port, "direct", "echo should-not-run"], Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(255), "{}", describe(&out));
    assert!(!stdout(&out).contains("should-not-run"));
    let audit = b.audit("forward.direct");
    assert!(audit.contains(&format!("127.0.0.1:{port} not granted")), "{audit}");
    assert!(!other.log().contains("Connection from"), "the refused target was never contacted");
}

/// `ssh -A` with a real `ssh-agent` holding a key the gateway never sees: on the target,
/// `ssh-add -l` lists it only when the gateway allows agent forwarding.
#[test]
fn agent_forwarding_reaches_the_target_only_when_allowed() {
    fn list_keys_on_target(b: &Bastion) -> (std::process::Output, String) {
        b.add_granted("web1");
        let config = b.client_config(&["web1"]).display().to_string();
        let agent_dir = tempfile::tempdir().unwrap();
        let sock = agent_dir.path().join("agent.sock");
        let sock_s = sock.display().to_string();
        let started = run("ssh-agent", &["-a", &sock_s], Duration::from_secs(20));
        assert!(started.status.success(), "{}", describe(&started));
        let pid = stdout(&started)
            .split([';', '\n'])
            .find_map(|p| p.trim().strip_prefix("SSH_AGENT_PID=").map(str::to_string))
            .expect("ssh-agent prints its pid");
        let key = b.gw.new_key("in-agent");
        let added =
            std::process::Command::new("ssh-add").arg(&key.private).env("SSH_AUTH_SOCK", &sock).output().unwrap();
        assert!(added.status.success(), "{}", describe(&added));
        let agent = format!("IdentityAgent={sock_s}");
        let out = run(
            "ssh",
            &["-F", &config, "-A", "-o", &agent, "via-web1", "ssh-add -l; echo status=$?"],
            Duration::from_secs(60),
        );
        let _ = run("kill", &[&pid], Duration::from_secs(10));
        (out, key.fingerprint())
    }

    let b = bastion_with_config("[ssh]\nallow_agent_forwarding = true\n");
    let (out, fingerprint) = list_keys_on_target(&b);
    assert!(out.status.success(), "{}\n{}", describe(&out), b.gw.log());
    assert!(stdout(&out).contains(&fingerprint), "the target sees the user's agent:\n{}", describe(&out));
    assert!(b.audit("forward.agent").contains("agent forwarding requested"));

    let b = bastion();
    let (out, fingerprint) = list_keys_on_target(&b);
    assert!(!stdout(&out).contains(&fingerprint), "forwarding is off by default:\n{}", describe(&out));
    assert!(stdout(&out).contains("status=2"), "no agent on the target:\n{}", describe(&out));
    assert!(b.audit("forward.agent").contains("refused by policy"));
}
