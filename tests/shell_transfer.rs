//! File transfer through the gateway with the real clients: `scp` (SFTP protocol, the
//! default, and the legacy protocol with `-O`) both ways with equal checksums, and `sftp`.
//!
//! Naming scheme: the target goes in the SSH user name, `alice:TARGET`. Since `scp` and
//! `sftp` split `user@host:path` at the first colon, the user name is given with
//! `-o User=alice:TARGET` or, as here, by a `Host` entry in an ssh_config file
//! (`Host via-web1` → `User alice:web1`).

mod common;
mod shell_support;

use std::time::Duration;

use common::{describe, stdout};
use shell_support::{bastion, random_file, run, sha256};

#[test]
fn scp_both_ways_keeps_files_intact() {
    let b = bastion();
    b.add_granted("web1");
    let config = b.client_config(&["web1"]).display().to_string();
    let work = b.gw.dir.path().join("scp");
    std::fs::create_dir_all(&work).unwrap();
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().display().to_string();
    let original = work.join("payload.bin");
    random_file(&original, 3 * 1024 * 1024 + 17);

    for (mode, flag) in [("sftp", None), ("legacy", Some("-O"))] {
        let mut args = vec!["-F", &config, "-q"];
        args.extend(flag);
        let up_dest = format!("via-web1:{remote}/up-{mode}.bin");
        let mut up = args.clone();
        up.extend([original.to_str().unwrap(), &up_dest]);
        let out = run("scp", &up, Duration::from_secs(120));
        assert!(out.status.success(), "scp upload ({mode}):\n{}\n{}", describe(&out), b.gw.log());
        let uploaded = remote_dir.path().join(format!("up-{mode}.bin"));
        assert_eq!(sha256(&uploaded), sha256(&original), "upload ({mode})");

        let back = work.join(format!("down-{mode}.bin"));
        let down_src = format!("via-web1:{}", uploaded.display());
        let mut down = args.clone();
        down.extend([down_src.as_str(), back.to_str().unwrap()]);
        let out = run("scp", &down, Duration::from_secs(120));
        assert!(out.status.success(), "scp download ({mode}):\n{}\n{}", describe(&out), b.gw.log());
        assert_eq!(sha256(&back), sha256(&original), "download ({mode})");
    }
    assert!(b.sshd.log().contains("subsystem 'sftp'"), "scp's default protocol went through the sftp subsystem");
    assert!(b.audit("target.connect").contains("subsystem:sftp"));
    assert!(b.recording_files().is_empty(), "file transfers are not terminal sessions");
}

#[test]
fn sftp_session_lists_puts_and_gets() {
    let b = bastion();
    b.add_granted("web1");
    let config = b.client_config(&["web1"]).display().to_string();
    let work = b.gw.dir.path().join("sftp");
    std::fs::create_dir_all(&work).unwrap();
    let remote_dir = tempfile::tempdir().unwrap();
    let original = work.join("notes.bin");
    random_file(&original, 200_000);
    let fetched = work.join("fetched.bin");
    let batch = work.join("batch");
    std::fs::write(
        &batch,
        format!(
            "cd {r}\nput {o} notes.bin\nls -l\nget notes.bin {f}\nmkdir made-by-sftp\nbye\n",
            r = remote_dir.path().display(),
            o = original.display(),
            f = fetched.display()
        ),
    )
    .unwrap();
    let out = run("sftp", &["-F", &config, "-b", batch.to_str().unwrap(), "via-web1"], Duration::from_secs(120));
    assert!(out.status.success(), "sftp:\n{}\n{}", describe(&out), b.gw.log());
    assert!(stdout(&out).contains("notes.bin"), "{}", describe(&out));
    assert_eq!(sha256(&fetched), sha256(&original));
    assert!(remote_dir.path().join("made-by-sftp").is_dir());
}

/// Data both ways at once: `cat` on the target sends everything back while the client is
/// still uploading, so the gateway must keep reading from both sides (no lock-step that
/// could deadlock once every queue and window is full).
#[test]
fn bulk_data_both_ways_at_once_through_cat() {
    let b = bastion();
    b.add_granted("web1");
    let config = b.client_config(&["web1"]).display().to_string();
    let work = b.gw.dir.path().join("both-ways");
    std::fs::create_dir_all(&work).unwrap();
    let original = work.join("in.bin");
    random_file(&original, 16 * 1024 * 1024);
    let echoed = work.join("out.bin");
    let script = format!("ssh -F '{config}' via-web1 cat < '{}' > '{}'", original.display(), echoed.display());
    let out = run("sh", &["-c", &script], Duration::from_secs(180));
    assert!(out.status.success(), "cat both ways:\n{}\n{}", describe(&out), b.gw.log());
    assert_eq!(sha256(&echoed), sha256(&original));
}

/// A remote command that writes a lot before it reads its input, while the client uploads
/// at once: the gateway must keep draining the target's output while the target's input
/// window is full (OpenSSH straight to the target handles this too). The upload stays under
/// the gateway's per-channel input queue (16 MiB), past which it would wait.
#[test]
fn output_keeps_flowing_while_the_target_is_not_reading_input() {
    let b = bastion();
    b.add_granted("web1");
    let config = b.client_config(&["web1"]).display().to_string();
    let work = b.gw.dir.path().join("not-reading");
    std::fs::create_dir_all(&work).unwrap();
    let upload = work.join("in.bin");
    random_file(&upload, 8 * 1024 * 1024);
    let script = format!(
        "timeout 100 ssh -F '{config}' via-web1 'head -c 20000000 /dev/zero; wc -c' < '{}' | tr -d '\\000'",
        upload.display()
    );
    let out = run("sh", &["-c", &script], Duration::from_secs(120));
    assert!(out.status.success(), "{}\n{}", describe(&out), b.gw.log());
    assert_eq!(stdout(&out).trim(), (8 * 1024 * 1024).to_string(), "every uploaded byte reached the target");
}

/// The gateway is the client of the target leg and chooses its cipher: AES-256-GCM, which
/// AES-NI makes cheap for the gateway and the target's sshd, as the target's own log says.
#[test]
fn the_target_leg_uses_aes_gcm() {
    let b = bastion();
    let dir = tempfile::tempdir().unwrap();
    let key = common::ClientKey::generate(dir.path(), "gw-to-debug");
    let debug = common::Sshd::start_with(&key.line, "LogLevel DEBUG1");
    b.add_target("debug1", &debug, &key.private, Some(&debug.host_key_pub));
    b.gw.cli_ok(&["target", "grant", "debug1", "--user", "alice"]);
    let config = b.client_config(&["debug1"]).display().to_string();
    let out = run("ssh", &["-F", &config, "via-debug1", "echo", "through"], Duration::from_secs(60));
    assert!(out.status.success() && stdout(&out).contains("through"), "{}", describe(&out));
    let log = debug.log();
    assert!(
        log.contains("kex: client->server cipher: aes256-gcm@openssh.com")
            && log.contains("kex: server->client cipher: aes256-gcm@openssh.com"),
        "the target's log of the gateway's key exchange:\n{log}"
    );
}
