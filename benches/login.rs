//! Full SSH logins per second and login latency through the gateway (public key + TOTP,
//! up to the session greeting), side by side with a direct public-key login to an
//! OpenSSH sshd on the same machine, in one run.
//!
//! `cargo bench --bench login` (environment: `GATEHOUSE_BENCH_LOGINS`, default 60 per
//! measurement; `GATEHOUSE_BENCH_CONCURRENCY`, default 4). Every gateway login uses its
//! own user and TOTP secret: a code is accepted once, so one user cannot log in twice in
//! the same 30-second step.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::{Backend, ClientKey, Gw, Ssh, Sshd, stderr, totp_now};
use support::{env_usize, measure};

fn main() {
    let logins = env_usize("GATEHOUSE_BENCH_LOGINS", 60);
    let concurrency = env_usize("GATEHOUSE_BENCH_CONCURRENCY", 4);
    // One source address opens every login: the pending-login cap must not be what is measured.
    let limits = format!("[ssh]\nmax_pending_per_source = {0}\nmax_pending = {0}\n", (concurrency * 2).max(100));
    let mut gw = Gw::with_config(Backend::Sqlite, &limits);
    gw.start();
    let key: ClientKey = gw.new_key("bench");
    let public = key.public.display().to_string();
    let users = 2 * logins;
    eprintln!("preparing {users} users with a key and a TOTP each…");
    let secrets: Vec<String> = (0..users)
        .map(|i| {
            let name = format!("u{i}");
            gw.cli_ok(&["user", "add", &name]);
            gw.cli_ok(&["user", "add-key", &name, "--key-file", &public]);
            gw.enroll_totp(&name)
        })
        .collect();
    let sshd = Sshd::start(&key.line);

    let gateway_login = |user: usize| {
        let client = Ssh::new(gw.ssh_port, &format!("u{user}"))
            .identity(&key)
            .arg("-v")
            .stdin("")
            .on_prompt("Authenticator code", &totp_now(&secrets[user]));
        stderr(&client.run(&[])).contains("Authenticated to")
    };
    let direct = |kex: Option<&str>| {
        let mut client = Ssh::new(sshd.port, &sshd.user).identity(&key).arg("-v").stdin("");
        if let Some(k) = kex {
            client = client.option(&format!("KexAlgorithms={k}"));
        }
        let out = client.run(&["true"]);
        out.status.success() && stderr(&out).contains("Authenticated to")
    };
    let direct_login = |_i: usize| direct(None);
    // The gateway's key exchange with this client (russh has no sntrup761, which OpenSSH
    // prefers), so the last rows compare the same cryptography.
    let same_kex = |_i: usize| direct(Some("curve25519-sha256"));

    // Warm up both (page cache, first connections) and show what they negotiate.
    let kex_of = |out: &std::process::Output| {
        stderr(out).lines().find(|l| l.contains("kex: algorithm:")).map(|l| l.trim().to_string()).unwrap_or_default()
    };
    let probe = Ssh::new(sshd.port, &sshd.user).identity(&key).arg("-v").stdin("").run(&["true"]);
    println!("OpenSSH sshd: {}", kex_of(&probe));
    gw.cli_ok(&["user", "add", "probe"]);
    gw.cli_ok(&["user", "add-key", "probe", "--key-file", &public]);
    let probe = Ssh::new(gw.ssh_port, "probe").identity(&key).arg("-v").stdin("").run(&[]);
    println!("gateway:      {}", kex_of(&probe));
    let rows = [
        ("gateway, key + TOTP, sequential", measure(logins, 1, gateway_login)),
        ("OpenSSH sshd, key, sequential", measure(logins, 1, direct_login)),
        ("gateway, key + TOTP, concurrent", measure(logins, concurrency, |i| gateway_login(logins + i))),
        ("OpenSSH sshd, key, concurrent", measure(logins, concurrency, direct_login)),
        ("OpenSSH sshd, curve25519, sequential", measure(logins, 1, same_kex)),
        ("OpenSSH sshd, curve25519, concurrent", measure(logins, concurrency, same_kex)),
    ];
    println!("\nlogins per measurement: {logins}; concurrency for the concurrent rows: {concurrency}");
    println!("{:<38} {:>10} {:>10} {:>10} {:>12}", "", "p50 ms", "p90 ms", "p99 ms", "logins/s");
    for (name, s) in &rows {
        println!(
            "{:<38} {:>10.1} {:>10.1} {:>10.1} {:>12.1}",
            name,
            s.pct(0.5),
            s.pct(0.9),
            s.pct(0.99),
            s.per_second()
        );
    }
    println!(
        "\ngateway / sshd: p50 latency {:.2}x, throughput {:.2}x (sequential); throughput {:.2}x (concurrent)",
        rows[0].1.pct(0.5) / rows[1].1.pct(0.5),
        rows[0].1.per_second() / rows[1].1.per_second(),
        rows[2].1.per_second() / rows[3].1.per_second(),
    );
    println!(
        "gateway / sshd with the same key exchange: p50 latency {:.2}x, throughput {:.2}x (sequential); throughput {:.2}x (concurrent)",
        rows[0].1.pct(0.5) / rows[4].1.pct(0.5),
        rows[0].1.per_second() / rows[4].1.per_second(),
        rows[2].1.per_second() / rows[5].1.per_second(),
    );
}
