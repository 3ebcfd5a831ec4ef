//! The real OpenSSH client with a security key as the second factor. OpenSSH talks to a
//! FIDO key through a middleware library (`SecurityKeyProvider`); this uses OpenSSH's own
//! software one for its regression tests (`regress/misc/sk-dummy`), which `scripts/test`
//! builds from Debian's openssh source (path in `GATEHOUSE_SK_DUMMY`). Keys come from the
//! real `ssh-keygen -t ed25519-sk` / `-t ecdsa-sk`, signatures from the real `ssh`.
//!
//! sk-dummy signs with the flags the key asks for and always the same counter: the first
//! login with a key passes, the second is refused as a copy of the key (the counter did
//! not increase); a key made with `-O verify-required` signs with the user-verification
//! flag (sk-dummy checks no PIN); a key made with `-O no-touch-required` signs without the
//! user-presence flag and is refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Gw, Ssh, backends, describe, run_with_timeout};

/// The sk-dummy middleware; the tests fail (never skip) without it.
fn sk_dummy() -> PathBuf {
    let path = std::env::var_os("GATEHOUSE_SK_DUMMY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/gatehouse-sk-dummy/sk-dummy.so"));
    assert!(
        path.exists(),
        "{} is missing: scripts/test builds OpenSSH's sk-dummy middleware there (or set GATEHOUSE_SK_DUMMY)",
        path.display()
    );
    path
}

/// A security key made by the real `ssh-keygen` through sk-dummy: (private key file, public
/// line).
fn sk_key(dir: &Path, name: &str, kind: &str, options: &[&str]) -> (PathBuf, String) {
    std::fs::create_dir_all(dir).expect("creating the key dir");
    let private = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", "", "-C", &format!("{name}@test")]).arg("-f").arg(&private);
    for o in options {
        cmd.args(["-O", o]);
    }
    cmd.env("SSH_SK_PROVIDER", sk_dummy());
    let out = run_with_timeout(&mut cmd, None, Duration::from_secs(30));
    assert!(out.status.success(), "ssh-keygen -t {kind} failed:\n{}", describe(&out));
    let line = std::fs::read_to_string(private.with_extension("pub")).expect("reading the .pub file");
    (private, line.trim().to_string())
}

/// The real ssh with alice's login key and the security key, through sk-dummy.
fn ssh(gw: &Gw, login_key: &common::ClientKey, sk: &Path) -> Ssh {
    Ssh::new(gw.ssh_port, "alice")
        .arg("-v")
        .stdin("")
        .identity(login_key)
        .option(&format!("IdentityFile={}", sk.display()))
        .option(&format!("SecurityKeyProvider={}", sk_dummy().display()))
}

#[test]
fn the_real_ssh_client_passes_the_gate_with_a_touch_and_a_copy_is_refused() {
    sk_dummy();
    for backend in backends() {
        let mut gw = Gw::new(backend);
        gw.start();
        gw.add_user("alice", "correct horse battery");
        let login_key = gw.add_key("alice");
        let dir = gw.data_dir().join("sk");
        for kind in ["ed25519-sk", "ecdsa-sk"] {
            let (sk, line) = sk_key(&dir, &format!("alice-{kind}"), kind, &[]);
            let out = gw.cli_ok(&["factor", "ssh-sk", "add", "alice", &line, "--name", kind]);
            assert!(out.contains("registered"), "{out}");

            let out = ssh(&gw, &login_key, &sk).run(&[]);
            gw.assert_logged_in(&out, &format!("{backend:?}: {kind} touched"));
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(err.contains("partial success"), "the login key passed first, then the security key:\n{err}");

            // sk-dummy's counter never moves: the same key again looks like a copy.
            let out = ssh(&gw, &login_key, &sk).run(&[]);
            gw.assert_refused(&out, &format!("{backend:?}: {kind} with a counter that did not increase"));
        }
        // Made with verify-required: the signature carries user verification (sk-dummy
        // checks no PIN; ssh answers one only when a key asks), which a key registered
        // with --verify-required needs.
        let (sk, line) = sk_key(&dir, "alice-pin", "ed25519-sk", &["verify-required"]);
        gw.cli_ok(&["factor", "ssh-sk", "add", "alice", &line, "--verify-required", "--name", "pin-key"]);
        let client = ssh(&gw, &login_key, &sk).on_prompt("PIN", "123456");
        let out = client.run(&[]);
        gw.assert_logged_in(&out, &format!("{backend:?}: a verify-required key with its PIN"));
        // A key that does not verify, registered as one that must: refused.
        let (sk, line) = sk_key(&dir, "alice-nopin", "ed25519-sk", &[]);
        gw.cli_ok(&["factor", "ssh-sk", "add", "alice", &line, "--verify-required"]);
        let out = ssh(&gw, &login_key, &sk).run(&[]);
        gw.assert_refused(&out, &format!("{backend:?}: no user verification"));

        // Made so that it signs without a touch: refused.
        let (sk, line) = sk_key(&dir, "alice-untouched", "ed25519-sk", &["no-touch-required"]);
        gw.cli_ok(&["factor", "ssh-sk", "add", "alice", &line]);
        let out = ssh(&gw, &login_key, &sk).run(&[]);
        gw.assert_refused(&out, &format!("{backend:?}: a signature without user presence"));

        let audit = gw.audit("login.factor");
        assert_eq!(audit.matches("ssh-sk key ed25519-sk").count(), 1, "{audit}");
        assert_eq!(audit.matches("ssh-sk key ecdsa-sk").count(), 1, "{audit}");
        assert_eq!(audit.matches("counter did not increase").count(), 2, "{audit}");
        assert!(audit.contains("user-presence flag missing"), "{audit}");
        assert!(audit.contains("ssh-sk key pin-key"), "{audit}");
        assert!(audit.contains("user-verification flag missing"), "{audit}");
    }
}
