//! HTTPS, the web UI's default, against a real `gatehouse serve`, checked with the real
//! `openssl` and `curl`: the self-signed certificate made on first start and its
//! fingerprint printed at start, the security headers and `Secure` cookies, nothing served
//! in plain text, and an operator's certificate reloaded on change and on SIGHUP without
//! a restart (a broken file keeps the one in force).

mod common;
mod web_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{describe, run_with_timeout, stdout};
use common::{Backend, Gw};
use web_support::{Browser, bootstrap_password};

/// The SHA-256 fingerprint of the certificate the server on `port` presents, as
/// `openssl x509 -fingerprint` prints it (`AA:BB:…`).
fn served_fingerprint(port: u16) -> String {
    let script = format!(
        "openssl s_client -connect 127.0.0.1:{port} -servername localhost </dev/null 2>/dev/null \
         | openssl x509 -noout -fingerprint -sha256"
    );
    let out = run_with_timeout(Command::new("sh").arg("-c").arg(script), None, Duration::from_secs(20));
    stdout(&out).trim().split('=').nth(1).unwrap_or_default().to_string()
}

/// The fingerprint of a PEM certificate file, by `openssl x509`.
fn file_fingerprint(cert: &Path) -> String {
    let out = run_with_timeout(
        Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(cert),
        None,
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", describe(&out));
    stdout(&out).trim().split('=').nth(1).unwrap_or_default().to_string()
}

fn curl(args: &[&str]) -> std::process::Output {
    run_with_timeout(Command::new("curl").args(["-sS", "--max-time", "10"]).args(args), None, Duration::from_secs(20))
}

/// A certificate and key for 127.0.0.1 made by `openssl req` (what an operator brings).
fn operator_certificate(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    let out = run_with_timeout(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
            .args(["-subj", &format!("/CN={name}"), "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        None,
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "openssl req: {}", describe(&out));
    (cert, key)
}

/// Waits until the server presents `expected`, or panics with what it presents.
fn wait_for_fingerprint(gw: &Gw, expected: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = served_fingerprint(gw.web_port);
        if now == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: still serving {now}, expected {expected}\n{}", gw.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn https_by_default_with_the_fingerprint_printed_at_start() {
    // An empty [web] table: every web setting at its default.
    let mut gw = Gw::with_config(Backend::Sqlite, "[web]\n");
    gw.start();
    let cert = gw.data_dir().join("web-tls-cert.pem");
    let key = gw.data_dir().join("web-tls-key.pem");
    let log = gw.log();
    let printed = log
        .lines()
        .find_map(|l| l.split("SHA-256 fingerprint:").nth(1))
        .map(|f| f.trim().to_string())
        .unwrap_or_else(|| panic!("no fingerprint printed at start:\n{log}"));
    assert_eq!(printed, file_fingerprint(&cert), "the printed fingerprint is the file's");
    assert_eq!(served_fingerprint(gw.web_port), printed, "the served certificate is the printed one");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the private key is readable by the gateway only");

    // curl trusting that certificate gets the page, with the headers and a Secure cookie.
    let url = format!("https://127.0.0.1:{}/login", gw.web_port);
    let out = curl(&["-D", "-", "-o", "/dev/null", "--cacert", cert.to_str().unwrap(), &url]);
    assert!(out.status.success(), "{}", describe(&out));
    let head = stdout(&out).to_ascii_lowercase();
    assert!(head.starts_with("http/2 200") || head.starts_with("http/1.1 200"), "{head}");
    for header in [
        "strict-transport-security: max-age=",
        "content-security-policy: default-src 'self'",
        "x-frame-options: deny",
        "referrer-policy: no-referrer",
        "x-content-type-options: nosniff",
    ] {
        assert!(head.contains(header), "missing {header}:\n{head}");
    }
    let cookie = head.lines().find(|l| l.starts_with("set-cookie: gh_login=")).unwrap_or_else(|| panic!("{head}"));
    assert!(cookie.contains("; secure") && cookie.contains("httponly"), "{cookie}");

    // Not trusted by default (it is self-signed), and nothing is served in plain text.
    let out = curl(&["-o", "/dev/null", &url]);
    assert_eq!(out.status.code(), Some(60), "an untrusted certificate: {}", describe(&out));
    let out = curl(&["-i", &format!("http://127.0.0.1:{}/login", gw.web_port)]);
    assert!(!out.status.success() && !stdout(&out).contains("200"), "plain HTTP answered: {}", describe(&out));

    // A browser trusting only that certificate logs in over HTTPS.
    let b = Browser::new(&gw);
    b.password_step("admin", &bootstrap_password(&gw)).await.assert_redirect("/account", "first login");
    b.get("/account").await.assert_redirect("/account/password", "the one-time password must be changed");

    // The certificate is made once: a restart serves the same one.
    gw.stop();
    gw.start();
    assert_eq!(served_fingerprint(gw.web_port), printed, "after a restart");
}

#[test]
fn an_operators_certificate_is_reloaded_on_change_and_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("gw.crt"), dir.path().join("gw.key"));
    let (c1, k1) = operator_certificate(dir.path(), "first");
    let (c2, k2) = operator_certificate(dir.path(), "second");
    let (c3, k3) = operator_certificate(dir.path(), "third");
    std::fs::copy(&c1, &cert).unwrap();
    std::fs::copy(&k1, &key).unwrap();
    let config = format!("[web]\ntls_cert = {:?}\ntls_key = {:?}\n", cert.display(), key.display());
    let mut gw = Gw::with_config(Backend::Sqlite, &config);
    gw.start();
    assert_eq!(served_fingerprint(gw.web_port), file_fingerprint(&c1), "the operator's certificate");
    assert!(!gw.data_dir().join("web-tls-cert.pem").exists(), "no self-signed one is made");

    // New files (renamed into place, as certbot and friends do): picked up without a restart.
    let swap = |c: &Path, k: &Path| {
        std::fs::copy(k, dir.path().join("new.key")).unwrap();
        std::fs::copy(c, dir.path().join("new.crt")).unwrap();
        std::fs::rename(dir.path().join("new.key"), &key).unwrap();
        std::fs::rename(dir.path().join("new.crt"), &cert).unwrap();
    };
    swap(&c2, &k2);
    wait_for_fingerprint(&gw, &file_fingerprint(&c2), "after the files changed");

    // A broken certificate file is refused; the one in force stays.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !gw.log().contains("web TLS certificate not reloaded") {
        assert!(Instant::now() < deadline, "the broken file was not reported:\n{}", gw.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(served_fingerprint(gw.web_port), file_fingerprint(&c2), "the broken file replaced nothing");

    // Files whose modification times do not change are read again on SIGHUP.
    let (cert_time, key_time) = (mtime(&cert), mtime(&key));
    std::fs::copy(&c3, &cert).unwrap();
    std::fs::copy(&k3, &key).unwrap();
    set_mtime(&cert, cert_time);
    set_mtime(&key, key_time);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(served_fingerprint(gw.web_port), file_fingerprint(&c2), "same times: not reloaded before SIGHUP");
    let pid = gw.pid().expect("serve is running").to_string();
    let out = run_with_timeout(Command::new("kill").args(["-HUP", &pid]), None, Duration::from_secs(5));
    assert!(out.status.success(), "{}", describe(&out));
    wait_for_fingerprint(&gw, &file_fingerprint(&c3), "after SIGHUP");
    assert!(gw.is_running(), "SIGHUP does not stop the gateway");
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).and_then(|m| m.modified()).unwrap()
}

fn set_mtime(path: &Path, at: std::time::SystemTime) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(at).unwrap();
}
