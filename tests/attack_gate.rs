//! Attacks on the login itself with the harness's own SSH client (tests/common/raw.rs),
//! where OpenSSH will not go: a burst of second-factor guesses released at once, a user
//! name full of terminal escapes, and a forced user trying to enroll long after the
//! first-login window closed.

mod common;

use std::time::Duration;

use common::raw::{RawClient, Step};
use common::{Backend, Gw, Ssh, backends, describe, totp_now};

const PASSWORD: &str = "correct horse battery";

/// These tests play many users logging in at once from one address (127.0.0.1): more than
/// the default cap on pending connections per source lets in (`ssh.max_pending_per_source`,
/// tested in attack_faults.rs).
const MANY_PENDING: &str = "[ssh]\nmax_pending_per_source = 100\nmax_pending = 100\n";

fn gateway(backend: Backend, extra: &str) -> Gw {
    let mut gw = Gw::with_config(backend, extra);
    gw.start();
    gw
}

/// A 6-digit code that is certainly not valid now for `secret` (none of the codes of the
/// steps around now).
fn wrong_code(secret: &str) -> String {
    let now = totp_now(secret).parse::<u32>().expect("a numeric code");
    format!("{:06}", (now + 500_000) % 1_000_000)
}

/// 40 logins wait at the second-factor prompt, then all answer wrong at once: no more
/// answers than the threshold may be checked, on each database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_wrong_codes_never_checks_more_than_the_threshold() {
    const LOGINS: usize = 40;
    const THRESHOLD: usize = 5;
    for backend in backends() {
        let gw = gateway(backend, &format!("[lockout]\nuser_threshold = 5\nsource_threshold = 10000\n{MANY_PENDING}"));
        gw.add_user("alice", PASSWORD);
        let secret = gw.enroll_totp("alice");
        let wrong = wrong_code(&secret);

        // Password first, one login at a time, so that every one reaches the gate.
        let mut waiting = Vec::new();
        for _ in 0..LOGINS {
            let mut c = RawClient::connect(gw.ssh_port, "alice").await;
            let step = c.reach_gate(PASSWORD).await;
            assert!(step.prompt().is_some_and(|p| p.contains("code")), "{step:?}\n{}", gw.log());
            waiting.push(c);
        }
        // Then every answer at once.
        let answers = waiting.into_iter().map(|mut c| {
            let wrong = wrong.clone();
            tokio::spawn(async move { c.kbd_answer(&[&wrong]).await })
        });
        let steps: Vec<Step> = futures_join(answers).await;
        assert!(steps.iter().all(|s| *s != Step::Success), "a wrong code let someone in: {steps:?}");

        let audit = gw.cli_ok(&["audit", "--user", "alice", "--event", "login.factor", "--limit", "500"]);
        let checked = audit.lines().filter(|l| l.contains("wrong answer")).count();
        assert!(
            checked <= THRESHOLD,
            "{checked} wrong answers were checked with a threshold of {THRESHOLD} ({backend:?}):\n{audit}"
        );
        assert!(checked >= 1, "no answer was checked at all ({backend:?}):\n{audit}");
        // The account is locked, and the right code does not help now.
        let mut late = RawClient::connect(gw.ssh_port, "alice").await;
        assert_ne!(late.password(PASSWORD).await, Step::Success);
        let out = gw.cli_ok(&["audit", "--event", "login.lockout", "--limit", "10"]);
        assert!(out.contains("account locked"), "{out}");
    }
}

async fn futures_join<T: Send + 'static>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks.collect::<Vec<_>>() {
        out.push(t.await.expect("a login task panicked"));
    }
    out
}

/// Correct logins in parallel are not mistaken for a burst of guesses: they wait for each
/// other instead of being refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_correct_passwords_all_pass() {
    let gw = gateway(Backend::Sqlite, &format!("[lockout]\nuser_threshold = 3\n{MANY_PENDING}"));
    gw.add_user("alice", PASSWORD);
    let tasks = (0..12).map(|_| {
        let port = gw.ssh_port;
        tokio::spawn(async move { RawClient::connect(port, "alice").await.password(PASSWORD).await })
    });
    let steps = futures_join(tasks).await;
    assert!(steps.iter().all(|s| *s == Step::Success), "{steps:?}\n{}", gw.log());
}

/// A user name made of terminal escapes, typed while a lock holds that name, reaches the
/// audit log (and `gatehouse audit`) only as harmless text.
#[tokio::test(flavor = "multi_thread")]
async fn escape_sequences_in_a_user_name_never_reach_the_audit_output() {
    let gw = gateway(Backend::Sqlite, "[lockout]\nuser_threshold = 1\n");
    let evil = "\u{1b}]0;PWNED\u{7}\u{1b}[2J\u{202e}root";
    // One wrong password locks the name...
    let mut c = RawClient::connect(gw.ssh_port, evil).await;
    assert_ne!(c.password("wrong password").await, Step::Success);
    // ...and a keyboard-interactive login with it while the lock holds.
    let mut c = RawClient::connect(gw.ssh_port, evil).await;
    let step = c.kbd_start().await;
    assert!(matches!(&step, Step::Info { instructions, .. } if instructions.contains("locked")), "{step:?}");

    for args in [vec!["audit", "--limit", "50"], vec!["audit", "--limit", "50", "--json"]] {
        let out = gw.cli(&args);
        assert!(out.status.success(), "{}", describe(&out));
        let bytes = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
        assert!(
            !bytes.contains(&0x1b) && !bytes.contains(&0x07),
            "raw escapes in `gatehouse {}`:\n{}",
            args.join(" "),
            describe(&out)
        );
        assert!(!String::from_utf8_lossy(&bytes).contains('\u{202e}'), "a bidi override in the audit output");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("PWNED"),
            "the event is there, made harmless:\n{}",
            describe(&out)
        );
    }
}

/// A forced user with no factor may enroll one with the password alone only inside the
/// first-login window; after it they are refused and told to ask an administrator, until
/// an administrator resets their factors.
#[tokio::test(flavor = "multi_thread")]
async fn forced_user_without_a_factor_is_refused_after_the_enrollment_window() {
    let gw = gateway(Backend::Sqlite, "");
    gw.add_user("bob", PASSWORD);
    gw.cli_ok(&["policy", "force-2fa", "on"]);
    let ssh = Ssh::new(gw.ssh_port, "bob").password(PASSWORD).timeout(Duration::from_secs(30));

    // Inside the window: enrollment mode (the menu says so).
    let out = ssh.run(&["true"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("time to set one up"), "still inside the window:\n{}", describe(&out));

    // The window is over (as if the account were 8 days old).
    gw.cli_ok(&["policy", "enrollment-window", "1"]);
    sql(&gw, "UPDATE users SET enroll_from = enroll_from - 8 * 86400 WHERE name = 'bob'");
    let out = ssh.run(&["true"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Ask an administrator"),
        "the user is told what to do:\n{}",
        describe(&out)
    );
    assert!(gw.cli_ok(&["audit", "--event", "login.enrollment_closed"]).contains("bob"));
    let shown = gw.cli_ok(&["user", "show", "bob"]);
    assert!(shown.contains("EnrollmentClosed") || shown.contains("window is over"), "{shown}");

    // An administrator's reset opens a new window.
    gw.cli_ok(&["factor", "reset", "bob"]);
    let out = ssh.run(&["true"]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("Ask an administrator"),
        "after the reset:\n{}",
        describe(&out)
    );
}

fn sql(gw: &Gw, statement: &str) {
    let db = gw.database_url.trim_start_matches("sqlite://").split('?').next().unwrap_or_default().to_string();
    let out = common::run_with_timeout(
        std::process::Command::new("sqlite3").arg(&db).arg(statement),
        None,
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "sqlite3: {}", describe(&out));
}
