//! The shell against a real OpenSSH sshd, driven through its [`Terminal`] the way the SSH
//! frontend drives it: host key pinning, exec with exit status, the menu with a recorded
//! PTY session, sftp, refusals, and an administrator ending a session.

mod support;

use std::time::Duration;

use gatehouse_core::audit::{self, Filter};
use gatehouse_core::{live_sessions, recordings, targets};
use gatehouse_shell::{Input, run_direct, run_interactive, run_subsystem};
use support::{Sshd, World, terminal};

async fn events(world: &World, prefix: &str) -> Vec<audit::AuditRecord> {
    audit::list(&world.gw.db, &Filter { event: Some(prefix.into()), limit: 100, ..Default::default() })
        .await
        .expect("reading the audit log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_returns_output_and_exit_status_and_pins_on_first_use() {
    let (sshd, key) = Sshd::start_with_new_key();
    let world = World::new().await;
    world.add_target("web1", &sshd, &key, None).await;
    let (term, mut remote) = terminal(false);
    let task = tokio::spawn(run_direct(
        world.gw.clone(),
        world.visitor().await,
        "web1".into(),
        Some("echo hi-$((40+2)); echo oops >&2; exit 3".into()),
        term,
    ));
    remote.until_closed().await;
    task.await.expect("the shell task");
    assert_eq!(remote.text(), "hi-42\n");
    assert_eq!(String::from_utf8_lossy(&remote.stderr), "oops\n");
    assert_eq!(remote.exit, Some(3));

    let pinned = targets::get(&world.gw.db, "web1").await.unwrap().host_key;
    assert_eq!(pinned.as_deref(), Some(sshd.host_key_pub.as_str()), "trust on first use pins the presented key");
    assert_eq!(events(&world, "target.host_key").await.len(), 1);
    let connects = events(&world, "target.connect").await;
    assert_eq!(connects.len(), 1);
    assert_eq!(connects[0].outcome, "success");
    let disconnects = events(&world, "target.disconnect").await;
    assert!(disconnects[0].detail.contains("exit status 3"), "{}", disconnects[0].detail);
    assert!(recordings::list(&world.gw.db, 10).await.unwrap().is_empty(), "a non-PTY exec is not a terminal session");
    assert!(live_sessions::list(&world.gw.db).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_host_key_is_refused_with_both_fingerprints() {
    let (sshd, key) = Sshd::start_with_new_key();
    let (other, _other_key) = Sshd::start_with_new_key();
    let world = World::new().await;
    world.add_target("web1", &sshd, &key, Some(&other.host_key_pub)).await;
    let (term, mut remote) = terminal(false);
    run_direct(world.gw.clone(), world.visitor().await, "web1".into(), Some("true".into()), term).await;
    remote.until_closed().await;
    let err = String::from_utf8_lossy(&remote.stderr).into_owned();
    assert!(err.contains("host key of web1 has changed"), "{err}");
    let fp = |line: &str| gatehouse_shell::host_key::fingerprint(&russh::keys::PublicKey::from_openssh(line).unwrap());
    assert!(err.contains(&fp(&other.host_key_pub)) && err.contains(&fp(&sshd.host_key_pub)), "{err}");
    assert_eq!(remote.exit, Some(255));
    assert!(!sshd.log().contains("Accepted publickey"), "no credential was offered");
    let connects = events(&world, "target.connect").await;
    assert_eq!(connects[0].outcome, "failure");
    assert_eq!(
        targets::get(&world.gw.db, "web1").await.unwrap().host_key.as_deref(),
        Some(other.host_key_pub.as_str()),
        "a mismatch never replaces the pin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_targets_and_enrollment_mode_reach_nothing() {
    let (sshd, key) = Sshd::start_with_new_key();
    let world = World::new().await;
    world.add_target("web1", &sshd, &key, Some(&sshd.host_key_pub)).await;
    targets::revoke(&world.gw.db, "web1", targets::Grantee::User("alice")).await.unwrap();

    let (term, mut remote) = terminal(false);
    run_direct(world.gw.clone(), world.visitor().await, "web1".into(), None, term).await;
    remote.until_closed().await;
    assert!(String::from_utf8_lossy(&remote.stderr).contains("no target named 'web1' is granted"));
    assert_eq!(remote.exit, Some(255));

    targets::grant(&world.gw.db, "web1", targets::Grantee::User("alice")).await.unwrap();
    let mut visitor = world.visitor().await;
    visitor.login.passage = gatehouse_core::access::Passage::Enrollment;
    let (term, mut remote) = terminal(false);
    run_subsystem(world.gw.clone(), visitor, "web1".into(), "sftp".into(), term).await;
    remote.until_closed().await;
    assert!(String::from_utf8_lossy(&remote.stderr).contains("second factor must be enrolled"));
    assert!(!sshd.log().contains("Connection from"), "the target was never contacted");
    let refusals = events(&world, "target.connect").await;
    assert_eq!(refusals.len(), 2);
    assert!(refusals.iter().all(|e| e.outcome == "failure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn menu_connects_records_and_returns() {
    let (sshd, key) = Sshd::start_with_new_key();
    let world = World::new().await;
    world.add_target("web1", &sshd, &key, Some(&sshd.host_key_pub)).await;
    world.add_target("db1", &sshd, &key, Some(&sshd.host_key_pub)).await;
    let (term, mut remote) = terminal(true);
    let task = tokio::spawn(run_interactive(world.gw.clone(), world.visitor().await, term));
    remote.expect("2  web1").await;
    remote.send(b"we").await;
    remote.expect("> we").await;
    remote.send(b"\r").await;
    remote.expect("Connecting to web1").await;
    remote.send(b"stty size; echo marker-$((6*7))\r").await;
    remote.expect("30 100").await;
    remote.expect("marker-42").await;
    remote.input.send(Input::Resize { cols: 120, rows: 40 }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    remote.send(b"stty size\r").await;
    remote.expect("40 120").await;
    remote.send(b"exit\r").await;
    remote.expect("Connection to web1 closed: exit status 0.").await;
    remote.expect("> ").await;
    remote.send(b"exit\r").await;
    remote.until_closed().await;
    task.await.unwrap();
    assert_eq!(remote.exit, Some(0));

    // Finished, the recording is gzipped in the background (the client does not wait for
    // it); the index then names the compressed file and holds its size.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let recs = loop {
        let recs = recordings::list(&world.gw.db, 10).await.unwrap();
        if recs.iter().all(|r| r.path.ends_with(".cast.gz")) || std::time::Instant::now() > deadline {
            break recs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert_eq!((rec.user_name.as_str(), rec.target_name.as_str()), ("alice", "web1"));
    assert!(rec.ended_at.is_some());
    let path = recordings::file_path(&world.gw.config, rec).unwrap();
    assert!(rec.path.ends_with(".cast.gz"), "{}", rec.path);
    let packed = std::fs::read(&path).unwrap();
    assert_eq!(rec.size as usize, packed.len());
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(packed.as_slice()), &mut text).unwrap();
    assert!(!path.with_extension("").exists(), "the uncompressed file is gone");
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("every line is JSON")).collect();
    assert_eq!(lines[0]["version"], 2);
    assert_eq!((lines[0]["width"].as_u64(), lines[0]["height"].as_u64()), (Some(100), Some(30)));
    let output: String =
        lines[1..].iter().filter(|e| e[1] == "o").map(|e| e[2].as_str().unwrap().to_string()).collect();
    assert!(output.contains("marker-42"));
    assert!(lines[1..].iter().any(|e| e[1] == "r" && e[2] == "120x40"));
    assert!(live_sessions::list(&world.gw.db).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_subsystem_is_proxied() {
    let (sshd, key) = Sshd::start_with_new_key();
    let world = World::new().await;
    world.add_target("files", &sshd, &key, Some(&sshd.host_key_pub)).await;
    let (term, mut remote) = terminal(false);
    let task =
        tokio::spawn(run_subsystem(world.gw.clone(), world.visitor().await, "files".into(), "sftp".into(), term));
    // SSH_FXP_INIT, version 3: the server answers SSH_FXP_VERSION (type 2).
    remote.send(&[0, 0, 0, 5, 1, 0, 0, 0, 3]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while remote.stdout.len() < 9 {
        match tokio::time::timeout_at(deadline, remote.output.recv()).await {
            Ok(Some(gatehouse_shell::Output::Data(d))) => remote.stdout.extend_from_slice(&d),
            other => panic!("no sftp version reply: {other:?}"),
        }
    }
    assert_eq!(remote.stdout[4], 2, "SSH_FXP_VERSION");
    assert_eq!(&remote.stdout[5..9], &[0, 0, 0, 3]);
    remote.input.send(Input::Eof).await.unwrap();
    remote.until_closed().await;
    task.await.unwrap();
    assert_eq!(remote.exit, Some(0));
    let log = sshd.log();
    assert!(log.contains("subsystem 'sftp'"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_can_end_a_session() {
    let (sshd, key) = Sshd::start_with_new_key();
    let world = World::new().await;
    world.add_target("web1", &sshd, &key, Some(&sshd.host_key_pub)).await;
    let (term, mut remote) = terminal(true);
    let task = tokio::spawn(run_direct(world.gw.clone(), world.visitor().await, "web1".into(), None, term));
    remote.send(b"echo ready-$((1+1))\r").await;
    remote.expect("ready-2").await;
    let live = live_sessions::list(&world.gw.db).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(
        (live[0].user_name.as_str(), live[0].target_name.as_str(), live[0].kind.as_str()),
        ("alice", "web1", "shell")
    );
    assert!(live[0].recording_id.is_some());
    assert!(live_sessions::request_terminate(&world.gw.db, live[0].id).await.unwrap());
    tokio::time::timeout(Duration::from_secs(15), remote.until_closed()).await.expect("ended within a few polls");
    task.await.unwrap();
    assert_eq!(remote.exit, Some(255));
    assert!(String::from_utf8_lossy(&remote.stderr).contains("ended by an administrator"));
    let ends = events(&world, "target.disconnect").await;
    assert!(ends[0].detail.contains("ended by an administrator"), "{}", ends[0].detail);
    assert!(live_sessions::list(&world.gw.db).await.unwrap().is_empty());
}
