//! The audit log for a SIEM, against a real `gatehouse serve`: every event copied to a
//! JSON-lines file and to syslog (RFC 5424 over UDP and over a Unix datagram socket, each
//! received by a real `socat`), the process log as JSON, and `gatehouse audit export` in
//! JSON lines and CSV (read back with Python's csv module), with a hostile user name.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, Gw, Ssh, describe, free_port, run_with_timeout, stdout};

const PASSWORD: &str = "correct horse battery";
/// A user name a spreadsheet would run as a formula.
const HOSTILE: &str = "=2+5";

/// `socat` receiving datagrams into `out`, killed on drop.
struct Receiver(Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn receive(address: &str, out: &Path) -> Receiver {
    let child = Command::new("socat")
        .args(["-u", address, &format!("CREATE:{}", out.display())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat must be installed (apt-get install socat)");
    Receiver(child)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[test]
fn every_event_goes_to_the_file_and_to_syslog_and_exports_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let (udp_out, unix_out) = (dir.path().join("udp.log"), dir.path().join("unix.log"));
    let unix_socket = dir.path().join("log.sock");
    let port = free_port();
    // socat writes each datagram as received: one message, then the next.
    let _udp = receive(&format!("UDP-RECV:{port},bind=127.0.0.1"), &udp_out);
    let _unix = receive(&format!("UNIX-RECV:{}", unix_socket.display()), &unix_out);
    wait_for("the Unix socket", || unix_socket.exists());

    let config = format!(
        "[audit]\nfile = {:?}\nsyslog = \"udp://127.0.0.1:{port}\"\n[log]\nformat = \"json\"\n",
        file.display()
    );
    let mut gw = Gw::with_config(Backend::Sqlite, &config);
    gw.start();
    gw.add_user("alice", PASSWORD);
    let ok = Ssh::new(gw.ssh_port, "alice").arg("-v").stdin("").preferred("password").password(PASSWORD);
    gw.assert_logged_in(&ok.run(&[]), "password login");
    let hostile = Ssh::new(gw.ssh_port, HOSTILE).arg("-v").stdin("").preferred("password").password("nope");
    gw.assert_refused(&hostile.run(&[]), "an unknown, hostile user name");

    // The file holds exactly the database's events, in order, as JSON objects.
    let db: Vec<serde_json::Value> =
        serde_json::from_value(gw.cli_json(&["audit", "--limit", "1000", "--json"])).unwrap();
    let ids_in_db: Vec<i64> = db.iter().rev().filter_map(|e| e["id"].as_i64()).collect();
    wait_for("the file to catch up", || {
        json_lines(&std::fs::read_to_string(&file).unwrap_or_default()).len() >= ids_in_db.len()
    });
    let copied = json_lines(&std::fs::read_to_string(&file).unwrap());
    let ids_in_file: Vec<i64> = copied.iter().filter_map(|e| e["id"].as_i64()).collect();
    // The CLI's own events (user add) are copied too: it reads the same config.
    assert_eq!(ids_in_file, ids_in_db, "the file has every event once, in order");
    let refused = copied
        .iter()
        .find(|e| e["event"] == "login.password" && e["outcome"] == "failure")
        .unwrap_or_else(|| panic!("no refused login in the file: {copied:#?}"));
    assert_eq!(refused["user"], HOSTILE);
    assert!(refused["at"].as_str().unwrap_or("").ends_with('Z'), "{refused}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o007, 0, "the audit file is not readable by others: {mode:o}");

    // Syslog over UDP: RFC 5424 messages, facility authpriv; a failure is a warning.
    let serve_events: Vec<&serde_json::Value> = copied.iter().filter(|e| e["event"] == "login.success").collect();
    assert_eq!(serve_events.len(), 1);
    wait_for("syslog messages", || std::fs::read_to_string(&udp_out).unwrap_or_default().contains("login.success"));
    let syslog = std::fs::read_to_string(&udp_out).unwrap();
    let failure = syslog
        .split("<8")
        .find(|m| m.contains(" login.password - ") && m.contains("\"failure\""))
        .unwrap_or_else(|| panic!("no failed login.password message:\n{syslog}"));
    assert!(failure.starts_with("4>1 "), "authpriv.warning is <84>: <8{failure}");
    let success = syslog.split("<8").find(|m| m.contains(" login.success - ")).expect("login.success");
    assert!(success.starts_with("5>1 "), "authpriv.notice is <85>: <8{success}");
    let fields: Vec<&str> = success.splitn(7, ' ').collect();
    assert_eq!(fields[3], "gatehouse", "APP-NAME: {success}");
    assert!(fields[1].ends_with('Z') && fields[1].contains('T'), "TIMESTAMP: {success}");
    let body: serde_json::Value = serde_json::from_str(success.split_once(" - ").unwrap().1.trim()).unwrap();
    assert_eq!(body["user"], "alice");

    // The process log is JSON, one object per line.
    let log = std::fs::read_to_string(gw.log_path()).unwrap();
    let objects: Vec<serde_json::Value> =
        log.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).expect("a JSON log line")).collect();
    assert!(objects.iter().any(|o| o["message"] == "gatehouse is listening"), "{log}");

    // Export: JSON lines equal to the file's; CSV read back by a real CSV parser, with the
    // hostile name defused.
    let jsonl = gw.cli_ok(&["audit", "export", "--since", "2000-01-01"]);
    assert_eq!(json_lines(&jsonl), copied, "export = the file");
    let csv = gw.cli_ok(&["audit", "export", "--since", "2000-01-01", "--format", "csv"]);
    let reader = "import csv,sys,json\nprint(json.dumps(list(csv.DictReader(sys.stdin))))";
    let out =
        run_with_timeout(Command::new("/usr/bin/python3").arg("-c").arg(reader), Some(&csv), Duration::from_secs(20));
    assert!(out.status.success(), "{}", describe(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows.len(), copied.len(), "{csv}");
    let hostile_row = rows.iter().find(|r| r["user"].as_str().unwrap_or("").contains("2+5")).expect("the row");
    assert_eq!(hostile_row["user"], format!("'{HOSTILE}"), "a formula is defused");
    // A range with nothing in it, and a date that is not one.
    assert_eq!(gw.cli_ok(&["audit", "export", "--since", "2000-01-01", "--until", "2000-01-02"]), "");
    let e = gw.cli_refused(&["audit", "export", "--since", "2001-02-29"], None);
    assert!(e.contains("--since"), "{e}");

    // The Unix datagram socket (what /dev/log is), from a second node's config.
    let mut unix_gw =
        Gw::with_config(Backend::Sqlite, &format!("[audit]\nsyslog = \"unix://{}\"\n", unix_socket.display()));
    unix_gw.start();
    unix_gw.add_user("bob", PASSWORD);
    wait_for("a message on the Unix socket", || {
        std::fs::read_to_string(&unix_out).unwrap_or_default().contains(" user.create - ")
    });
}

#[test]
fn a_bad_audit_destination_stops_start_up_with_a_clear_error() {
    for (config, expected) in [
        ("[audit]\nsyslog = \"tcp://127.0.0.1:514\"\n", "audit.syslog"),
        ("[audit]\nfile = \"/nonexistent-dir/audit.jsonl\"\n", "/nonexistent-dir/audit.jsonl"),
    ] {
        let gw = Gw::with_config(Backend::Sqlite, config);
        let e = gw.cli_refused(&["migrate"], None);
        assert!(e.contains(expected), "{config}: {e}");
    }
}
