//! Recordings moved to an S3-compatible bucket (`[recordings.s3]`), against a real
//! S3-compatible server on loopback (moto, which checks every request's signature), with
//! the real OpenSSH client and a real sshd target:
//!
//! - a finished recording is uploaded, leaves the node's disk, is listed as kept in the
//!   bucket, plays in the web UI from there, and retention deletes the object;
//! - a bucket that does not answer refuses new terminal sessions (the default policy,
//!   audited), and a recording whose upload failed stays on the node, is audited, and
//!   moves once the bucket answers again;
//! - with a wrong secret key the store refuses the gateway; under `on_failure = continue`
//!   the session goes on unrecorded, audited, and nothing reaches the bucket.

mod common;
mod shell_support;
mod web_support;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{S3Server, Ssh, describe, run_with_timeout, stdout};
use reqwest::StatusCode;
use shell_support::{Bastion, bastion_with_config};
use web_support::admin_browser;

/// A terminal session on web1 that prints `marker` (a shell word).
fn session(b: &Bastion, marker: &str) -> std::process::Output {
    Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).arg("-tt").stdin("").run(&["web1", &format!("echo {marker}")])
}

/// Polls `what` until it returns Some, for up to `secs` seconds.
fn wait_for<T>(b: &Bastion, secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; the gateway's log:\n{}", b.gw.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The only recording's `storage|path` row.
fn row(b: &Bastion) -> String {
    b.sql("SELECT storage || '|' || path FROM recordings ORDER BY id DESC LIMIT 1").trim().to_string()
}

fn gunzip(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("r.cast.gz");
    std::fs::write(&file, bytes).expect("writing the object");
    let out = run_with_timeout(Command::new("gunzip").arg("-c").arg(&file), None, Duration::from_secs(10));
    assert!(out.status.success(), "gunzip: {}", describe(&out));
    stdout(&out)
}

#[tokio::test]
async fn finished_recordings_move_to_the_bucket_play_from_there_and_expire() {
    let s3 = S3Server::start("recbucket");
    let b = bastion_with_config(&s3.config("prefix = \"gh/rec/\"\n[recordings]\nmax_age_days = 30"));
    b.add_granted("web1");

    let out = session(&b, "s3-marker-$((6*7))");
    assert!(stdout(&out).contains("s3-marker-42"), "{}", describe(&out));

    // The upload happens right after the session: the row moves to the bucket and the
    // node's disk no longer holds the file.
    let path =
        wait_for(&b, 60, "the recording to move to the bucket", || row(&b).strip_prefix("bucket|").map(str::to_string));
    assert!(path.ends_with(".cast.gz"), "{path}");
    assert!(b.recording_files().is_empty(), "the local copy is removed: {:?}", b.recording_files());
    let key = format!("gh/rec/{path}");
    assert_eq!(s3.keys(), vec![key.clone()]);
    let object = s3.get(&key).expect("the object");
    let cast = gunzip(&object);
    assert!(cast.lines().next().unwrap_or_default().contains("\"version\":2"), "{cast}");
    assert!(cast.contains("s3-marker-42"), "{cast}");
    assert!(b.gw.cli_ok(&["recordings", "list"]).contains("(in the bucket)"));

    // The web UI lists it as kept in the bucket and serves it from there.
    let admin = admin_browser(&b.gw).await;
    let list = admin.get("/admin/recordings").await;
    list.assert_status(StatusCode::OK, "list").assert_contains("the bucket", "where it is kept");
    let id = b.sql("SELECT id FROM recordings").trim().to_string();
    let page = admin.get(&format!("/admin/recordings/{id}")).await;
    page.assert_status(StatusCode::OK, "player").assert_contains("id=\"term\"", "the player");
    let served = admin.get(&format!("/admin/recordings/{id}/cast")).await;
    served.assert_status(StatusCode::OK, "cast").assert_contains("s3-marker-42", "the session");

    // A recording larger than one upload part (8 MiB gzipped: 16 MB of base64 noise)
    // goes up in parts and arrives whole.
    let out = session(&b, "$(head -c 12000000 /dev/urandom | base64 -w 0); echo big-done");
    assert!(stdout(&out).contains("big-done"), "{}", common::stderr(&out));
    let big = wait_for(&b, 120, "the large recording to move to the bucket", || {
        let r = b.sql("SELECT storage || '|' || path || '|' || size FROM recordings WHERE id > 1");
        r.trim().strip_prefix("bucket|").map(str::to_string)
    });
    let (big_path, big_size) = big.split_once('|').expect("path|size");
    let object = s3.get(&format!("gh/rec/{big_path}")).expect("the large object");
    assert!(object.len() > 8 << 20, "more than one part: {} bytes", object.len());
    assert_eq!(object.len().to_string(), big_size, "the object is the whole file");
    assert!(gunzip(&object).contains("big-done"), "the object ends with the session's end");

    // Retention deletes the objects, and audits each deletion.
    b.sql("UPDATE recordings SET started_at = started_at - 40 * 86400");
    let pruned = b.gw.cli_ok(&["recordings", "prune"]);
    assert_eq!(pruned.matches("older than 30 days").count(), 2, "{pruned}");
    assert!(s3.keys().is_empty(), "the objects are deleted: {:?}", s3.keys());
    assert!(b.gw.audit("recording.deleted").contains(&format!("recording {id}")));
    admin.get(&format!("/admin/recordings/{id}/cast")).await.assert_status(StatusCode::NOT_FOUND, "gone");
}

#[test]
fn a_bucket_that_does_not_answer_refuses_sessions_and_a_failed_upload_waits_on_the_node() {
    let s3 = S3Server::start("recbucket");
    let b = bastion_with_config(&s3.config("timeout_secs = 2"));
    b.add_granted("web1");

    // The store hangs: no terminal session starts, since its recording could not leave
    // the node (on_failure = refuse, the default). Audited, not silent.
    s3.freeze();
    let out = session(&b, "hung-$((1+1))");
    assert!(!stdout(&out).contains("hung-2"), "a session started unrecorded: {}", describe(&out));
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    let failed = b.gw.audit("recording.failed");
    assert!(failed.contains("bucket is not reachable") && failed.contains("refused"), "{failed}");
    // A command without a terminal is not recorded: it runs.
    let out = Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).run(&["web1", "echo plain"]);
    assert_eq!(stdout(&out), "plain\n", "{}", describe(&out));

    // The store answers again: sessions start. It hangs while one runs: the upload
    // fails, is audited, and the recording stays on the node's disk.
    s3.thaw();
    let (port, key) = (b.gw.ssh_port, b.key.clone());
    let running = std::thread::spawn(move || {
        Ssh::new(port, "alice")
            .identity(&key)
            .arg("-tt")
            .stdin("")
            .run(&["web1", "echo kept-$((2+2)); sleep 4; echo done-$((3+3))"])
    });
    wait_for(&b, 30, "the session to start recording", || {
        (b.sql("SELECT count(*) FROM recordings WHERE ended_at IS NULL").trim() == "1").then_some(())
    });
    s3.freeze();
    let out = running.join().expect("the session thread");
    assert!(stdout(&out).contains("done-6"), "{}", describe(&out));
    wait_for(&b, 90, "the failed upload to be audited", || {
        b.gw.audit("recording.failed").contains("could not be uploaded").then_some(())
    });
    assert!(row(&b).starts_with("local|"), "{}", row(&b));
    assert_eq!(b.recording_files().len(), 1, "the file stays on the node");

    // Once the store answers, the pending recording moves (the gateway retries every
    // minute; the command does it now).
    s3.thaw();
    let moved = b.gw.cli_ok(&["recordings", "upload"]);
    assert!(moved.contains("1 recording(s) moved"), "{moved}");
    let path = row(&b).strip_prefix("bucket|").map(str::to_string).expect("moved to the bucket");
    assert!(b.recording_files().is_empty());
    let cast = gunzip(&s3.get(&format!("recordings/{path}")).expect("the object"));
    assert!(cast.contains("kept-4") && cast.contains("done-6"), "{cast}");
}

#[test]
fn a_wrong_secret_key_is_refused_by_the_store_and_with_continue_the_session_goes_on_unrecorded() {
    let s3 = S3Server::start("recbucket");
    let mut config = s3.config("[recordings]\non_failure = \"continue\"");
    config = config.replace(&s3.secret_access_key, &format!("{}x", s3.secret_access_key));
    let b = bastion_with_config(&config);
    b.add_granted("web1");

    let out = session(&b, "unrecorded-$((5*5))");
    assert!(stdout(&out).contains("unrecorded-25"), "{}", describe(&out));
    let failed = b.gw.audit("recording.failed");
    assert!(failed.contains("bucket is not reachable") && failed.contains("goes on unrecorded"), "{failed}");
    assert!(b.sql("SELECT count(*) FROM recordings").trim() == "0", "no recording was made");
    assert!(s3.keys().is_empty(), "nothing reached the bucket");
    assert!(s3.log().contains(" 403 "), "the store refused the signature:\n{}", s3.log());
}
