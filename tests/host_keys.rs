//! The SSH host keys of an installation, seen by the real `ssh-keyscan`: every node on one
//! PostgreSQL presents the same keys (made by the first node, sealed in the database), a
//! node upgraded from data-dir key files keeps presenting them, and key files named in
//! the config win.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Backend, Gw, describe, run_with_timeout, stdout};

/// The host keys the server on `port` presents, as `TYPE BASE64` lines, sorted.
fn keyscan(port: u16) -> Vec<String> {
    let out = run_with_timeout(
        Command::new("ssh-keyscan").args(["-p", &port.to_string(), "-t", "ed25519,rsa", "127.0.0.1"]),
        None,
        Duration::from_secs(30),
    );
    let mut keys: Vec<String> = stdout(&out)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' ').map(|(_, key)| key.trim().to_string()))
        .collect();
    keys.sort();
    assert_eq!(keys.len(), 2, "ed25519 and rsa expected: {}", describe(&out));
    keys
}

/// The public half of an OpenSSH private key file, as `TYPE BASE64`.
fn public_of(path: &std::path::Path) -> String {
    let out = run_with_timeout(Command::new("ssh-keygen").arg("-y").arg("-f").arg(path), None, Duration::from_secs(10));
    assert!(out.status.success(), "{}", describe(&out));
    stdout(&out).split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

fn keygen(path: &std::path::Path, kind: &str) {
    let out = run_with_timeout(
        Command::new("ssh-keygen").args(["-q", "-N", "", "-t", kind, "-f"]).arg(path),
        None,
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn every_node_of_a_cluster_presents_the_same_host_keys() {
    for backend in common::backends() {
        let mut a = Gw::new(backend);
        a.start();
        let mut b = a.join();
        b.start();
        let (first, second) = (keyscan(a.ssh_port), keyscan(b.ssh_port));
        assert_eq!(first, second, "{backend:?}: two nodes, one set of host keys");
        // Kept across restarts, and nothing is written to the data dir.
        a.stop();
        a.start();
        assert_eq!(keyscan(a.ssh_port), first, "{backend:?}: after a restart");
        assert!(!a.data_dir().join("ssh_host_ed25519_key").exists(), "{backend:?}: no key file");
        // Sealed in the database: the private key is not there in clear.
        let sealed = a.sql("SELECT sealed FROM host_keys WHERE algorithm = 'ssh-ed25519'");
        assert!(sealed.trim().starts_with("v1:") && !sealed.contains("OPENSSH"), "{backend:?}: {sealed}");
    }
}

#[test]
fn an_upgraded_node_keeps_its_data_dir_keys_and_configured_files_win() {
    // A data dir from a version that kept the keys there.
    let mut gw = Gw::new(Backend::Sqlite);
    std::fs::create_dir_all(gw.data_dir()).unwrap();
    let (ed, rsa) = (gw.data_dir().join("ssh_host_ed25519_key"), gw.data_dir().join("ssh_host_rsa_key"));
    keygen(&ed, "ed25519");
    keygen(&rsa, "rsa");
    let mut old = vec![public_of(&ed), public_of(&rsa)];
    old.sort();
    gw.start();
    assert_eq!(keyscan(gw.ssh_port), old, "the keys clients already know");
    assert!(gw.log().contains("adopted from the data dir"), "{}", gw.log());

    // Files named in the config win over the installation's keys.
    gw.stop();
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join("own_ed25519");
    let own_rsa = dir.path().join("own_rsa");
    keygen(&own, "ed25519");
    keygen(&own_rsa, "rsa");
    gw.set_extra_config(&format!(
        "[ssh]\nhost_key_files = [{:?}, {:?}]\n",
        own.display().to_string(),
        own_rsa.display().to_string()
    ));
    gw.start();
    let mut configured = vec![public_of(&own), public_of(&own_rsa)];
    configured.sort();
    assert_eq!(keyscan(gw.ssh_port), configured, "the configured files");
}
