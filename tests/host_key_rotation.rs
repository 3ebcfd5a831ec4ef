//! Host key rotation as an operator runs it and as clients see it: `gatehouse hostkey
//! rotate` adds a next key, every node presents it after a restart and announces it to
//! clients after login (OpenSSH's `hostkeys-00@openssh.com`), the real OpenSSH client with
//! `UpdateHostKeys` learns it after the gateway proved it holds it
//! (`hostkeys-prove-00@openssh.com`), and `gatehouse hostkey retire` makes it the only
//! key, which the client notices by forgetting the old one. A client of our own asks for
//! proofs OpenSSH never would: of a key the gateway does not hold.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::wire::{Auth as WireAuth, Fields, Msg, Recv, Wire, msg as wire_msg};
use common::{Backend, ClientKey, Gw, Ssh, TotpDevice, describe, run_with_timeout, stdout};
use russh::client;
use russh::keys::{Algorithm, PublicKey, PublicKeyOrCertificate};

const PASSWORD: &str = "correct horse battery";
/// How long a client may take to rewrite its known_hosts after logging in.
const LEARN_TIMEOUT: Duration = Duration::from_secs(30);

/// One row of `gatehouse hostkey list`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    algorithm: String,
    state: String,
    fingerprint: String,
}

fn list(gw: &Gw) -> Vec<Listed> {
    gw.cli_ok(&["hostkey", "list"])
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some(Listed { algorithm: w.next()?.into(), state: w.next()?.into(), fingerprint: w.next()?.into() })
        })
        .collect()
}

/// The fingerprint of the stored `algorithm` key in `state`.
fn fingerprint_of(keys: &[Listed], algorithm: &str, state: &str) -> String {
    keys.iter()
        .find(|k| k.algorithm == algorithm && k.state == state)
        .unwrap_or_else(|| panic!("no {state} {algorithm} key in {keys:?}"))
        .fingerprint
        .clone()
}

/// The gateway's ed25519 key as `ssh-keyscan` sees it (`ssh-ed25519 BASE64`).
fn keyscan_ed25519(port: u16) -> String {
    keyscan(port, "ed25519")
}

/// The gateway's key of `kind` (`ed25519`, `rsa`) as `ssh-keyscan` sees it (`TYPE BASE64`).
fn keyscan(port: u16, kind: &str) -> String {
    let out = run_with_timeout(
        Command::new("ssh-keyscan").args(["-p", &port.to_string(), "-t", kind, "127.0.0.1"]),
        None,
        Duration::from_secs(30),
    );
    stdout(&out)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.split_once(' ').map(|(_, key)| key.trim().to_string()))
        .unwrap_or_else(|| panic!("no {kind} key scanned: {}", describe(&out)))
}

/// The SHA256 fingerprints of every key in a known_hosts file (`ssh-keygen -l`).
fn known_fingerprints(file: &Path) -> Vec<String> {
    let out = run_with_timeout(Command::new("ssh-keygen").arg("-l").arg("-f").arg(file), None, Duration::from_secs(10));
    stdout(&out).lines().filter_map(|l| l.split_whitespace().nth(1).map(str::to_string)).collect()
}

/// A user `alice` with a key and a TOTP, on a gateway that has started once.
fn gateway_with_alice(backend: Backend) -> (Gw, ClientKey, TotpDevice) {
    let mut gw = Gw::new(backend);
    gw.start();
    gw.add_user("alice", PASSWORD);
    let key = gw.add_key("alice");
    let device = TotpDevice::new(&gw.enroll_totp("alice"));
    (gw, key, device)
}

/// Logs in with OpenSSH (key, then the TOTP at the gate) checking the host key strictly
/// against `known_hosts`, with `UpdateHostKeys`, and holds the connection open (`-N`)
/// until the fingerprints in `known_hosts` satisfy `learned` (the proof the client asks
/// for arrives after the login) or [`LEARN_TIMEOUT`] passes. Returns the fingerprints.
fn log_in_and_learn(
    gw: &Gw,
    key: &ClientKey,
    device: &mut TotpDevice,
    known_hosts: &Path,
    learned: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    log_in_and_learn_with(gw, key, device, known_hosts, &[], learned)
}

/// [`log_in_and_learn`] with extra ssh options (`-o`).
fn log_in_and_learn_with(
    gw: &Gw,
    key: &ClientKey,
    device: &mut TotpDevice,
    known_hosts: &Path,
    options: &[&str],
    learned: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let mut client = Ssh::new(gw.ssh_port, "alice");
    for o in options {
        client = client.option(o);
    }
    let client = client
        .identity(key)
        .on_prompt("Authenticator code", &device.code())
        .option("UpdateHostKeys=yes")
        .option("StrictHostKeyChecking=yes")
        .option(&format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg("-v")
        .arg("-N");
    let log = gw.dir.path().join(format!("ssh-{}.log", common::random_suffix()));
    let mut cmd = client.command(&[]);
    let stderr = std::fs::File::create(&log).expect("creating the ssh log");
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr).spawn().expect("starting ssh");
    let until = Instant::now() + LEARN_TIMEOUT;
    let mut seen = known_fingerprints(known_hosts);
    while !learned(&seen) && Instant::now() < until {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        seen = known_fingerprints(known_hosts);
    }
    let _ = child.kill();
    let _ = child.wait();
    let ssh_log = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(
        learned(&seen),
        "known_hosts did not change as expected: {seen:?}\n--- known_hosts ---\n{}\n--- ssh ---\n{ssh_log}\n--- prompts ---\n{}\n--- gateway log ---\n{}",
        std::fs::read_to_string(known_hosts).unwrap_or_default(),
        client.prompts_seen().join("\n"),
        gw.log()
    );
    assert!(ssh_log.contains("Authenticated to"), "the login did not pass the gate:\n{ssh_log}");
    seen
}

#[test]
fn openssh_learns_the_next_key_and_forgets_the_retired_one() {
    let (mut gw, key, mut device) = gateway_with_alice(Backend::Sqlite);
    let before = list(&gw);
    let old_ed = fingerprint_of(&before, "ssh-ed25519", "active");
    let old_rsa = fingerprint_of(&before, "ssh-rsa", "active");

    // The client knows only the old ed25519 key.
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    let host = format!("[127.0.0.1]:{}", gw.ssh_port);
    let old_line = keyscan_ed25519(gw.ssh_port);
    std::fs::write(&known_hosts, format!("{host} {old_line}\n")).unwrap();
    assert_eq!(known_fingerprints(&known_hosts), vec![old_ed.clone()]);

    let out = gw.cli_ok(&["hostkey", "rotate"]);
    assert!(out.contains("restart every node"), "{out}");
    let rotating = list(&gw);
    let new_ed = fingerprint_of(&rotating, "ssh-ed25519", "next");
    let new_rsa = fingerprint_of(&rotating, "ssh-rsa", "next");
    assert!(out.contains(&new_ed) && out.contains(&new_rsa), "rotate names the new keys:\n{out}");
    assert_eq!(rotating.len(), 4, "{rotating:?}");
    let audit = gw.audit("hostkey.rotated");
    assert!(audit.contains(&new_ed) && audit.contains("cli"), "{audit}");

    gw.stop();
    gw.start();
    // The key exchange still signs with the active key: strict clients keep working.
    assert_eq!(keyscan_ed25519(gw.ssh_port), old_line);
    let seen =
        log_in_and_learn(&gw, &key, &mut device, &known_hosts, |fps| fps.contains(&new_ed) && fps.contains(&new_rsa));
    assert!(seen.contains(&old_ed), "the active key stays known while both are presented: {seen:?}");
    assert!(seen.contains(&old_rsa), "the active RSA key, announced too, is learned: {seen:?}");

    // A client that knows only the RSA key: the exchange is signed with rsa-sha2-256, and
    // OpenSSH then checks the proofs of RSA keys against exactly that algorithm (it learns
    // only keys of the algorithms it accepts, so no ed25519 key here).
    let rsa_known_hosts = dir.path().join("known_hosts_rsa");
    std::fs::write(&rsa_known_hosts, format!("{host} {}\n", keyscan(gw.ssh_port, "rsa"))).unwrap();
    assert_eq!(known_fingerprints(&rsa_known_hosts), vec![old_rsa.clone()]);
    log_in_and_learn_with(&gw, &key, &mut device, &rsa_known_hosts, &["HostKeyAlgorithms=rsa-sha2-256"], |fps| {
        fps.contains(&new_rsa)
    });

    let out = gw.cli_ok(&["hostkey", "retire"]);
    assert!(out.contains(&old_ed) && out.contains("deleted"), "{out}");
    let after = list(&gw);
    assert_eq!(fingerprint_of(&after, "ssh-ed25519", "active"), new_ed);
    assert_eq!(fingerprint_of(&after, "ssh-rsa", "active"), new_rsa);
    assert_eq!(after.len(), 2, "the old keys are deleted: {after:?}");
    let audit = gw.audit("hostkey.retired");
    assert!(audit.contains(&old_ed) && audit.contains(&new_ed), "{audit}");

    gw.stop();
    gw.start();
    let seen = log_in_and_learn(&gw, &key, &mut device, &known_hosts, |fps| !fps.contains(&old_ed));
    assert!(seen.contains(&new_ed) && seen.contains(&new_rsa), "the new keys stay: {seen:?}");
    assert!(!seen.contains(&old_rsa), "the retired RSA key is forgotten too: {seen:?}");

    // A client that only ever knew the new key logs in strictly, without learning.
    let fresh = dir.path().join("known_hosts_new");
    std::fs::write(&fresh, format!("{host} {}\n", keyscan_ed25519(gw.ssh_port))).unwrap();
    assert_eq!(known_fingerprints(&fresh), vec![new_ed.clone()]);
    let client = Ssh::new(gw.ssh_port, "alice")
        .identity(&key)
        .on_prompt("Authenticator code", &device.code())
        .option("StrictHostKeyChecking=yes")
        .option("UpdateHostKeys=no")
        .option(&format!("UserKnownHostsFile={}", fresh.display()))
        .arg("-v")
        .stdin("");
    let out = client.run(&[]);
    gw.assert_logged_in(&out, "a strict login with only the new key known");
}

/// A russh client handler that remembers the keys the gateway announced.
struct Announced(Arc<Mutex<Vec<PublicKey>>>);

impl client::Handler for Announced {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }

    async fn openssh_ext_host_keys_announced(
        &mut self,
        keys: Vec<PublicKey>,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.0.lock().unwrap().extend(keys);
        Ok(())
    }
}

/// Logs `alice` in (password, then the TOTP) with `preferred` host key algorithms; returns
/// the handle and the keys the gateway announced after the login.
async fn logged_in(
    gw: &Gw,
    device: &mut TotpDevice,
    host_key: Algorithm,
) -> (client::Handle<Announced>, Vec<PublicKey>) {
    let announced = Arc::new(Mutex::new(Vec::new()));
    let preferred = russh::Preferred { key: vec![host_key].into(), ..Default::default() };
    let config = Arc::new(client::Config { preferred, ..Default::default() });
    let mut handle =
        client::connect(config, ("127.0.0.1", gw.ssh_port), Announced(announced.clone())).await.expect("connecting");
    let first = handle.authenticate_password("alice", PASSWORD).await.expect("password");
    assert!(!first.success(), "the password alone does not pass the gate");
    let code = device.code();
    let mut step = handle.authenticate_keyboard_interactive_start("alice", None::<String>).await.expect("kbd start");
    for _ in 0..3 {
        match step {
            client::KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = prompts.iter().map(|_| code.clone()).collect();
                step = handle.authenticate_keyboard_interactive_respond(answers).await.expect("kbd answer");
            }
            _ => break,
        }
    }
    assert!(
        matches!(step, client::KeyboardInteractiveAuthResponse::Success),
        "the gate was not passed: {step:?}\n{}",
        gw.log()
    );
    let until = Instant::now() + Duration::from_secs(10);
    while announced.lock().unwrap().is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let keys = announced.lock().unwrap().clone();
    (handle, keys)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_proves_the_keys_it_holds_and_no_other() {
    let (mut gw, _key, mut device) = gateway_with_alice(Backend::Sqlite);
    gw.cli_ok(&["hostkey", "rotate"]);
    gw.stop();
    gw.start();
    let stored = list(&gw);

    for kex_key in [Algorithm::Ed25519, Algorithm::Rsa { hash: Some(russh::keys::HashAlg::Sha256) }] {
        let (handle, announced) = logged_in(&gw, &mut device, kex_key.clone()).await;
        // Every key presented is announced, active ones first, once.
        let fingerprints: Vec<String> =
            announced.iter().map(|k| k.fingerprint(Default::default()).to_string()).collect();
        let expected: Vec<String> = stored.iter().map(|k| k.fingerprint.clone()).collect();
        assert_eq!(fingerprints, expected, "{kex_key:?}: the announced keys, in order");

        // A proof of every announced key: each signature verifies over
        // "hostkeys-prove-00@openssh.com", this session's id and the key (russh's client
        // checks them), RSA ones included, whichever key signed the exchange.
        handle.hostkeys_prove(announced.clone()).await.unwrap_or_else(|e| panic!("{kex_key:?}: proof refused: {e:?}"));
        handle.hostkeys_prove(announced[2..3].to_vec()).await.expect("a proof of one key");

        // A key the gateway does not hold: the whole request fails, alone or among held ones.
        let stranger = PublicKey::from_openssh(&gw.new_key("stranger").line).expect("a public key line");
        let alone = handle.hostkeys_prove(vec![stranger.clone()]).await;
        assert!(matches!(alone, Err(russh::Error::RequestDenied)), "{kex_key:?}: {alone:?}");
        let among = handle.hostkeys_prove(vec![announced[0].clone(), stranger]).await;
        assert!(matches!(among, Err(russh::Error::RequestDenied)), "{kex_key:?}: {among:?}");

        // More proofs than the gateway has keys (each asked 250 times): refused before any
        // signing work, not 1,000 RSA and Ed25519 signatures.
        let flood: Vec<PublicKey> = announced.iter().cycle().take(1000).cloned().collect();
        let flooded = handle.hostkeys_prove(flood).await;
        assert!(matches!(flooded, Err(russh::Error::RequestDenied)), "{kex_key:?}: {flooded:?}");

        // The connection survives all of it.
        assert!(!handle.is_closed(), "{kex_key:?}\n{}", gw.log());
        let _ = handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
    assert!(gw.is_running() && !gw.log().contains("panicked"), "{}", gw.log());
}

/// The keys of a `hostkeys-00@openssh.com` announcement, as blobs, from the messages
/// `wire` receives within a few seconds.
async fn announced_blobs(wire: &mut Wire) -> Vec<Vec<u8>> {
    let (messages, _) = wire.drain(Duration::from_secs(3)).await;
    let announcement = messages
        .iter()
        .find(|m| {
            m[0] == wire_msg::GLOBAL_REQUEST && Fields::of(m).text().as_deref() == Some("hostkeys-00@openssh.com")
        })
        .expect("a hostkeys-00@openssh.com announcement after the login");
    let mut f = Fields::of(announcement);
    let _name = f.text();
    assert_eq!(f.bool(), Some(false), "an announcement wants no reply");
    std::iter::from_fn(|| f.string().map(<[u8]>::to_vec)).collect()
}

/// SSH `string` encoding.
fn ssh_string(bytes: &[u8]) -> Vec<u8> {
    [&(bytes.len() as u32).to_be_bytes()[..], bytes].concat()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proof_signs_the_request_name_the_session_id_and_the_key() {
    let (mut gw, _key, mut device) = gateway_with_alice(Backend::Sqlite);
    gw.cli_ok(&["hostkey", "rotate"]);
    gw.stop();
    gw.start();

    let mut wire = Wire::connect(gw.ssh_port).await;
    assert!(matches!(wire.password(b"alice", PASSWORD.as_bytes()).await, WireAuth::Failure { partial: true, .. }));
    assert!(matches!(wire.kbd_start(b"alice").await, WireAuth::Info { .. }));
    let code = device.code();
    let done = wire.kbd_answer(&[code.as_bytes()]).await;
    assert_eq!(done, WireAuth::Success, "{}", gw.log());
    let blobs = announced_blobs(&mut wire).await;
    assert_eq!(blobs.len(), 4, "two active and two next keys");

    // Each key proven alone, checked here with ring, independently of russh.
    for blob in &blobs {
        let request = Msg::global_request("hostkeys-prove-00@openssh.com", Msg::fields().string(blob));
        wire.send(&request).await.expect("sending the request");
        let reply = loop {
            match wire.recv(Duration::from_secs(20)).await {
                Recv::Message(m) if matches!(m[0], wire_msg::REQUEST_SUCCESS | wire_msg::REQUEST_FAILURE) => break m,
                Recv::Message(_) => {}
                other => panic!("no answer to the proof request: {other:?}"),
            }
        };
        assert_eq!(reply[0], wire_msg::REQUEST_SUCCESS, "a held key is proven");
        let mut f = Fields::of(&reply);
        let signature = f.string().expect("one signature").to_vec();
        assert_eq!(f.string(), None, "one signature per key");
        let sig_message = [&[0u8][..], &signature].concat();
        let mut sig = Fields::of(&sig_message);
        let algorithm = sig.text().expect("the signature's algorithm");
        let sig_bytes = sig.string().expect("the signature").to_vec();
        let signed_by = |session_id: &[u8]| {
            [ssh_string(b"hostkeys-prove-00@openssh.com"), ssh_string(session_id), ssh_string(blob)].concat()
        };
        let signed = signed_by(wire.session_id());
        let key_message = [&[0u8][..], blob.as_slice()].concat();
        let mut key = Fields::of(&key_message);
        match key.text().expect("the key's type").as_str() {
            "ssh-ed25519" => {
                assert_eq!(algorithm, "ssh-ed25519");
                let public = key.string().expect("the ed25519 key");
                let verifier = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public);
                verifier.verify(&signed, &sig_bytes).expect("the ed25519 proof verifies");
                // Bound to this session: not a proof for another session id.
                assert!(verifier.verify(&signed_by(&[0u8; 32]), &sig_bytes).is_err());
            }
            "ssh-rsa" => {
                // The exchange was signed with ed25519 (the server's first choice), so RSA
                // proofs use rsa-sha2-512.
                assert_eq!(algorithm, "rsa-sha2-512");
                let e = key.string().expect("e");
                let n = key.string().expect("n");
                let strip = |v: &[u8]| v.iter().skip_while(|&&b| b == 0).copied().collect::<Vec<u8>>();
                ring::signature::RsaPublicKeyComponents { n: strip(n), e: strip(e) }
                    .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA512, &signed, &sig_bytes)
                    .expect("the RSA proof verifies");
            }
            other => panic!("an unexpected key type {other}"),
        }
    }
    assert!(gw.is_running() && !gw.log().contains("panicked"), "{}", gw.log());
}

#[test]
fn rotation_refuses_what_it_cannot_do_and_writes_nothing_then() {
    for backend in common::backends() {
        let mut gw = Gw::new(backend);
        gw.start();
        gw.stop();
        let initial = list(&gw);
        assert_eq!(initial.iter().filter(|k| k.state == "active").count(), 2, "{backend:?}: {initial:?}");

        // Retire with nothing to retire.
        let err = gw.cli_refused(&["hostkey", "retire"], None);
        assert!(err.contains("no rotation is under way"), "{backend:?}: {err}");
        assert_eq!(list(&gw), initial, "{backend:?}: retire changed nothing");

        // Rotate twice.
        gw.cli_ok(&["hostkey", "rotate"]);
        let rotating = list(&gw);
        assert_eq!(rotating.len(), 4, "{backend:?}: {rotating:?}");
        let err = gw.cli_refused(&["hostkey", "rotate"], None);
        assert!(err.contains("already under way"), "{backend:?}: {err}");
        assert_eq!(list(&gw), rotating, "{backend:?}: the second rotate changed nothing");
        assert_eq!(gw.audit("hostkey.rotated").lines().filter(|l| l.contains("hostkey.rotated")).count(), 1);

        // Host key files configured: rotation is refused, the files are the operator's.
        gw.cli_ok(&["hostkey", "retire"]);
        let retired = list(&gw);
        assert_eq!(retired.len(), 2, "{backend:?}: {retired:?}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("own_ed25519");
        let out = run_with_timeout(
            Command::new("ssh-keygen").args(["-q", "-N", "", "-t", "ed25519", "-f"]).arg(&file),
            None,
            Duration::from_secs(30),
        );
        assert!(out.status.success(), "{}", describe(&out));
        gw.set_extra_config(&format!("[ssh]\nhost_key_files = [{:?}]\n", file.display().to_string()));
        let err = gw.cli_refused(&["hostkey", "rotate"], None);
        assert!(err.contains("ssh.host_key_files"), "{backend:?}: {err}");
        assert_eq!(list(&gw), retired, "{backend:?}: nothing written");
        assert_eq!(gw.audit("hostkey.rotated").lines().filter(|l| l.contains("hostkey.rotated")).count(), 1);
    }
}
