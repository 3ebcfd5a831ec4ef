//! Recordings that cannot be written, with a real full disk: the recordings folder is a
//! small tmpfs, real OpenSSH client and sshd target. By default (`on_failure = refuse`)
//! no session starts unrecorded and a running one ends when its recording fails; with
//! `continue` the session goes on unrecorded. Either way it is audited
//! (`recording.failed`) and counted, never silent. Then retention frees the space.

mod common;
mod shell_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Ssh, describe, run_with_timeout, stdout};
use shell_support::{Bastion, bastion_with_config};

/// A tmpfs of `size` mounted on `dir` (needs root, as the rest of the suite), unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let out = run_with_timeout(
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"]).arg(dir),
            None,
            Duration::from_secs(10),
        );
        assert!(out.status.success(), "mounting a tmpfs (the test needs root): {}", describe(&out));
        SmallDisk(dir.to_path_buf())
    }

    /// Fills what is left of the disk.
    fn fill(&self) {
        let _ = std::fs::write(self.0.join("filler"), vec![0u8; 4 << 20]);
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A gateway whose recordings folder is a 256 KiB disk, with alice granted web1.
fn bastion_on_a_small_disk(extra: &str) -> (Bastion, SmallDisk) {
    let b = bastion_with_config(extra);
    b.add_granted("web1");
    let disk = SmallDisk::mount(&b.gw.data_dir().join("recordings"), "256k");
    (b, disk)
}

/// The end of what a session printed, its exit status and the gateway's log lines about
/// recordings: enough to tell what happened without a megabyte of `x`.
fn summary(b: &Bastion, out: &std::process::Output) -> String {
    let text = stdout(out);
    let tail: String = text.chars().rev().take(200).collect::<Vec<_>>().into_iter().rev().collect();
    let log: Vec<String> = b.gw.log().lines().filter(|l| l.contains("ecording")).map(str::to_string).collect();
    format!(
        "exit {:?}, {} bytes out, ending {tail:?}\nstderr: {}\nlog:\n{}",
        out.status.code(),
        text.len(),
        common::stderr(out),
        log.join("\n")
    )
}

/// A terminal session on web1 printing about 1 MB, then a marker.
fn flood(b: &Bastion) -> std::process::Output {
    Ssh::new(b.gw.ssh_port, "alice")
        .identity(&b.key)
        .arg("-tt")
        .stdin("")
        .run(&["web1", "head -c 1000000 /dev/zero | tr '\\0' x; echo; echo flood-done"])
}

#[test]
fn by_default_a_session_whose_recording_fails_ends_and_none_starts_unrecorded() {
    let (b, disk) = bastion_on_a_small_disk("");
    // The disk fills in the middle of the session: the session ends there.
    let out = flood(&b);
    assert_eq!(out.status.code(), Some(255), "{}", summary(&b, &out));
    assert!(!stdout(&out).contains("flood-done"), "the session went on after its recording failed");
    let failed = b.audit("recording.failed");
    assert!(failed.contains("could not be written") && failed.contains("No space left"), "{failed}");
    assert!(failed.contains("the session is refused"), "{failed}");
    assert!(b.audit("target.disconnect").contains("ended because the recording failed"));

    // The disk is full: a new terminal session does not start.
    disk.fill();
    let out = Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).arg("-tt").stdin("").run(&["web1", "echo ran"]);
    assert!(!stdout(&out).contains("ran"), "a session started unrecorded: {}", describe(&out));
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(b.audit("recording.failed").contains("could not start"), "{}", b.audit("recording.failed"));
    // A command without a terminal is not recorded anyway: it still runs.
    let out = Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).run(&["web1", "echo plain"]);
    assert_eq!(stdout(&out), "plain\n", "{}", describe(&out));
}

#[test]
fn with_continue_the_session_goes_on_unrecorded_and_says_so() {
    let (b, disk) = bastion_on_a_small_disk("[recordings]\non_failure = \"continue\"\nmax_total_gb = 0.0001\n");
    let out = flood(&b);
    assert_eq!(out.status.code(), Some(0), "{}", summary(&b, &out));
    assert!(stdout(&out).contains("flood-done"), "{}", summary(&b, &out));
    let failed = b.audit("recording.failed");
    assert!(failed.contains("could not be written") && failed.contains("goes on unrecorded"), "{failed}");

    disk.fill();
    let out = Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).arg("-tt").stdin("").run(&["web1", "echo ran"]);
    assert!(stdout(&out).contains("ran"), "{}", describe(&out));
    assert!(b.audit("recording.failed").contains("could not start"), "{}", b.audit("recording.failed"));

    // Retention (here: 100 kB in all) deletes the oldest recordings to make room.
    let _ = std::fs::remove_file(disk.0.join("filler"));
    let pruned = b.gw.cli_ok(&["recordings", "prune"]);
    assert!(pruned.contains("deleted recording"), "{pruned}");
    assert!(b.audit("recording.deleted").contains("bytes in all"), "{}", b.audit("recording.deleted"));
}
