//! The Prometheus exporter against a real `gatehouse serve`: real logins with the OpenSSH
//! client and over the web, then `/metrics` scraped with curl and parsed by the reference
//! OpenMetrics parser (Python's `prometheus_client`), whose counts must match what was
//! done. No label carries a user name or an address.

mod common;
mod web_support;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::{Backend, Gw, Ssh, TotpDevice, describe, free_port, run_with_timeout, stdout};
use web_support::Browser;

const PASSWORD: &str = "correct horse battery";

/// Every sample of the scrape as `name{label="v",…}` → value, sorted label order, by the
/// OpenMetrics parser (which rejects a malformed exposition).
fn scrape(port: u16) -> (String, HashMap<String, f64>) {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let out =
        run_with_timeout(Command::new("curl").args(["-sS", "-D", "/dev/stderr", &url]), None, Duration::from_secs(20));
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        common::stderr(&out).to_ascii_lowercase().contains("content-type: application/openmetrics-text"),
        "{}",
        describe(&out)
    );
    let parser = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items()))
        print("%s{%s} %r" % (s.name, labels, s.value))
"#;
    let out =
        run_with_timeout(Command::new("/usr/bin/python3").arg("-c").arg(parser), Some(&text), Duration::from_secs(20));
    assert!(out.status.success(), "the OpenMetrics parser refused the scrape:\n{}\n{text}", describe(&out));
    let samples = stdout(&out)
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_string(), v.parse::<f64>().unwrap_or(f64::NAN)))
        .collect();
    (text, samples)
}

fn value(samples: &HashMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

fn step(frontend: &str, step: &str, method: &str, outcome: &str) -> String {
    format!(
        "gatehouse_login_steps_total{{frontend=\"{frontend}\",method=\"{method}\",outcome=\"{outcome}\",step=\"{step}\"}}"
    )
}

#[tokio::test]
async fn logins_are_counted_and_scraped_by_a_real_parser() {
    let port = free_port();
    let mut gw = Gw::with_config(
        Backend::Sqlite,
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n[lockout]\nuser_threshold = 3\nsource_threshold = 50\n"),
    );
    gw.start();
    gw.add_user("alice", PASSWORD);
    let key = gw.add_key("alice");
    let mut device = TotpDevice::new(&gw.enroll_totp("alice"));

    // SSH: key + a wrong code + the right one; then one login with a password only (no
    // factor answered: the client gives up).
    let ok = Ssh::new(gw.ssh_port, "alice").arg("-v").stdin("").identity(&key).answers(&["000000", &device.code()]);
    gw.assert_logged_in(&ok.run(&[]), "key + TOTP after a wrong code");
    // The web: a wrong password, then the right one (alice has TOTP: the factor step).
    let b = Browser::new(&gw);
    b.password_step("alice", "wrong").await;
    b.login_to_factor("alice", PASSWORD).await;
    // Mallory's wrong passwords lock her name (threshold 3).
    for _ in 0..3 {
        Browser::new(&gw).password_step("mallory", "guess").await;
    }

    let (text, samples) = scrape(port);
    for (key, expected) in [
        (step("ssh", "primary", "publickey", "success"), 1.0),
        (step("ssh", "factor", "totp", "failure"), 1.0),
        (step("ssh", "factor", "totp", "success"), 1.0),
        (step("ssh", "complete", "any", "success"), 1.0),
        (step("web", "primary", "password", "success"), 1.0),
        (step("web", "primary", "password", "failure"), 4.0),
        ("gatehouse_lockouts_total{subject=\"user\"}".to_string(), 1.0),
    ] {
        assert_eq!(value(&samples, &key), expected, "{key}\n{text}");
    }
    // Each decided step has its duration observed.
    let timed = "gatehouse_login_step_duration_seconds_count{frontend=\"web\",method=\"password\",step=\"primary\"}";
    assert_eq!(value(&samples, timed), 5.0, "{text}");
    assert!(value(&samples, "gatehouse_db_pool_connections{}") >= 1.0, "{text}");
    // The scrape itself waited for a connection: a real, non-negative wait, well under the
    // pool's timeout on an idle gateway.
    let wait = samples.get("gatehouse_db_pool_acquire_seconds{}").copied().unwrap_or(f64::NAN);
    assert!((0.0..30.0).contains(&wait), "{text}");
    assert!(samples.contains_key("gatehouse_live_sessions{}"), "{text}");
    // Nothing a user typed or where they came from.
    for secret in ["alice", "mallory", "127.0.0.1", PASSWORD] {
        assert!(!text.contains(secret), "the scrape shows {secret:?}:\n{text}");
    }
}

#[test]
fn the_exporter_is_off_unless_configured() {
    let mut gw = Gw::new(Backend::Sqlite);
    gw.start();
    assert!(!gw.log().contains("Prometheus metrics"), "{}", gw.log());
    // The web UI does not serve it either.
    let out = run_with_timeout(
        Command::new("curl").args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{}/metrics", gw.web_url()),
        ]),
        None,
        Duration::from_secs(20),
    );
    assert_eq!(stdout(&out).trim(), "404", "{}", describe(&out));
}
