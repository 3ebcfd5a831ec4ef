//! Directory logins against local ones, in one run: full SSH logins (the real OpenSSH
//! client, password typed at keyboard-interactive, then a TOTP code) for users whose
//! password the gateway checks itself (argon2id) and for users whose password a real
//! OpenLDAP `slapd` on loopback checks (StartTLS, search account, user bind); and the
//! latency of the LDAP operations themselves, measured with an LDAP client in this process.
//!
//! `cargo bench --bench directory` (environment: `GATEHOUSE_BENCH_LOGINS`, default 40 per
//! measurement; `GATEHOUSE_BENCH_CONCURRENCY`, default 4; `GATEHOUSE_BENCH_BINDS`, default
//! 500). Every login uses its own user: a TOTP code is accepted once.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::sync::Arc;
use std::time::Instant;

use common::ldap::Slapd;
use common::{Backend, Gw, Ssh, stderr, totp_now};
use support::{Stats, env_usize, measure};

const PASSWORD: &str = "bench directory password";

fn main() {
    let logins = env_usize("GATEHOUSE_BENCH_LOGINS", 40);
    let concurrency = env_usize("GATEHOUSE_BENCH_CONCURRENCY", 4);
    let binds = env_usize("GATEHOUSE_BENCH_BINDS", 500);
    let slapd = Slapd::start();
    let toml = format!(
        "[ssh]\nmax_pending_per_source = 200\nmax_pending = 200\n\n[ldap]\nurls = [\"{}\"]\nca_file = \"{}\"\n\
         bind_dn = \"{}\"\nuser_base = \"{}\"\nuser_filter = \"(objectClass=inetOrgPerson)\"\nsync_interval_secs = 0\n",
        slapd.url(),
        slapd.ca_cert_path().display(),
        slapd.service_dn(),
        slapd.people_dn()
    );
    let mut gw = Gw::with_config(Backend::Sqlite, &toml);
    gw.set_env("GATEHOUSE_LDAP__BIND_PASSWORD", slapd.service_password());
    gw.start();

    let users = 2 * logins;
    eprintln!("preparing {users} local and {users} directory users with a TOTP each…");
    let password_login = |name: &str| -> Ssh {
        Ssh::new(gw.ssh_port, name)
            .arg("-v")
            .stdin("")
            .preferred("keyboard-interactive")
            .on_prompt("Password", PASSWORD)
    };
    let mut local = Vec::new();
    let mut directory = Vec::new();
    for i in 0..users {
        let name = format!("l{i}");
        gw.add_user(&name, PASSWORD);
        local.push(gw.enroll_totp(&name));
        let name = format!("d{i}");
        slapd.add_user(&name, PASSWORD, None, &[]);
        // The first login makes the account (nothing forces a factor yet); then a TOTP.
        let out = password_login(&name).run(&[]);
        assert!(stderr(&out).contains("Authenticated to"), "provisioning {name}: {}", stderr(&out));
        directory.push(gw.enroll_totp(&name));
    }
    let login = |prefix: &str, secrets: &[String], i: usize| {
        let name = format!("{prefix}{i}");
        let out = password_login(&name).on_prompt("Authenticator code", &totp_now(&secrets[i])).run(&[]);
        stderr(&out).contains("Authenticated to")
    };
    let rows = [
        ("local password + TOTP, sequential", measure(logins, 1, |i| login("l", &local, i))),
        ("LDAP password + TOTP, sequential", measure(logins, 1, |i| login("d", &directory, i))),
        ("local password + TOTP, concurrent", measure(logins, concurrency, |i| login("l", &local, logins + i))),
        ("LDAP password + TOTP, concurrent", measure(logins, concurrency, |i| login("d", &directory, logins + i))),
    ];
    let (bind, conversation) = ldap_latency(&slapd, binds);

    println!("\nlogins per measurement: {logins}; concurrency for the concurrent rows: {concurrency}");
    println!("{:<40} {:>10} {:>10} {:>10} {:>12}", "", "p50 ms", "p90 ms", "p99 ms", "logins/s");
    for (name, s) in &rows {
        println!(
            "{:<40} {:>10.1} {:>10.1} {:>10.1} {:>12.1}",
            name,
            s.pct(0.5),
            s.pct(0.9),
            s.pct(0.99),
            s.per_second()
        );
    }
    println!(
        "\nLDAP / local: p50 latency {:.2}x, throughput {:.2}x (sequential); throughput {:.2}x (concurrent)",
        rows[1].1.pct(0.5) / rows[0].1.pct(0.5),
        rows[1].1.per_second() / rows[0].1.per_second(),
        rows[3].1.per_second() / rows[2].1.per_second(),
    );
    println!("\nslapd on loopback, {binds} operations each:");
    println!("{:<62} {:>8} {:>8} {:>8}", "", "p50 ms", "p90 ms", "p99 ms");
    for (name, s) in [
        ("one simple bind as a user (open StartTLS connection)", &bind),
        ("a password login's directory conversation (gateway's client)", &conversation),
    ] {
        println!("{:<62} {:>8.2} {:>8.2} {:>8.2}", name, s.pct(0.5), s.pct(0.9), s.pct(0.99));
    }
    println!("  (the second row: StartTLS, search-account bind, user search, user bind)");
}

/// The latency of one user bind on an open StartTLS connection (ldap3, the library the
/// gateway uses), and of the whole conversation a password login has with the directory
/// (a fresh connection, StartTLS, the search account's bind, the user search, the user's
/// bind) with the gateway's own client.
fn ldap_latency(slapd: &Slapd, n: usize) -> (Stats, Stats) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(slapd.ca_cert_path()).expect("the CA");
    for cert in rustls_pemfile_certs(&pem) {
        roots.add(cert).expect("a CA certificate");
    }
    let tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let connect = || async {
        let settings = ldap3::LdapConnSettings::new().set_starttls(true).set_config(tls.clone());
        let (conn, ldap) = ldap3::LdapConnAsync::with_settings(settings, &slapd.url()).await.expect("connecting");
        tokio::spawn(async move {
            let _ = conn.drive().await;
        });
        ldap
    };
    let user_dn = slapd.user_dn("d0");
    rt.block_on(async {
        let mut ldap = connect().await;
        let mut samples = Vec::with_capacity(n);
        let started = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            let r = ldap.simple_bind(&user_dn, PASSWORD).await.expect("bind");
            assert_eq!(r.rc, 0, "bind as {user_dn}");
            samples.push(t.elapsed());
        }
        let bind = Stats { samples, wall: started.elapsed() };
        let _ = ldap.unbind().await;

        // The gateway's own client, as a password login uses it.
        let config = gatehouse_core::config::LdapConfig {
            urls: vec![slapd.url()],
            ca_file: Some(slapd.ca_cert_path()),
            bind_dn: slapd.service_dn().to_string(),
            bind_password: slapd.service_password().to_string(),
            user_base: slapd.people_dn(),
            user_filter: "(objectClass=inetOrgPerson)".into(),
            ..Default::default()
        };
        let client = gatehouse_core::directory::Client::new(&config).expect("the gateway's LDAP client");
        let mut samples = Vec::with_capacity(n);
        let started = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            let bound = client.authenticate("d0", PASSWORD).await.expect("the directory answers");
            assert!(matches!(bound, gatehouse_core::directory::Bound::Accepted(_)), "{bound:?}");
            samples.push(t.elapsed());
        }
        (bind, Stats { samples, wall: started.elapsed() })
    })
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().expect("PEM certificates")
}
