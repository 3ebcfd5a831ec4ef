//! Misuse of the Authorize link of a login mail (tests/ssh_email.rs and web_email.rs have
//! its normal use, a second click, a made-up token and another account's browser): a link
//! clicked after it expired, a real token altered or cut short, and the link of a login
//! that already went through (with the mailed code) clicked while a later login waits.
//! None releases a login; the login's own fresh link still does.

mod common;

use std::time::Duration;

use common::raw::{RawClient, Step};
use common::{Backend, Gw, SmtpSink};
use reqwest::StatusCode;

const PASSWORD: &str = "correct horse battery";
const ALICE: &str = "alice@example.com";

/// A started gateway sending through `smtp`, with alice whose only factor is email.
fn gateway(smtp: &SmtpSink) -> Gw {
    let mut gw = Gw::with_config(
        Backend::Sqlite,
        &format!("[lockout]\nuser_threshold = 50\nsource_threshold = 1000\n{}", smtp.config()),
    );
    gw.start();
    gw.add_user("alice", PASSWORD);
    gw.cli_ok(&["factor", "email", "enroll", "alice", ALICE]);
    let code = smtp.wait_for(ALICE, 1).code();
    gw.cli_ok(&["factor", "email", "confirm", "alice", &code]);
    gw
}

/// A login at the email prompt; returns it with the mail it caused.
async fn at_the_prompt(gw: &Gw, smtp: &SmtpSink) -> (RawClient, common::smtp::Mail) {
    let sent = smtp.mails_to(ALICE).len();
    let mut c = RawClient::connect(gw.ssh_port, "alice").await;
    let step = c.reach_gate(PASSWORD).await;
    assert!(step.prompt().is_some_and(|p| p.contains("mail")), "{step:?}\n{}", gw.log());
    let mail = smtp.wait_for(ALICE, sent + 1);
    (c, mail)
}

/// The login answers Enter and waits for a click, on its own task.
fn waiting(mut c: RawClient) -> tokio::task::JoinHandle<Step> {
    tokio::spawn(async move { c.kbd_answer(&[""]).await })
}

/// Asserts the waiting login is still waiting after a moment (nothing released it).
async fn still_waiting(login: &tokio::task::JoinHandle<Step>, what: &str) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!login.is_finished(), "{what}: the waiting login ended");
}

/// Releases `login` with its own link and checks it gets in: the legitimate path works.
async fn released_by(login: tokio::task::JoinHandle<Step>, link: &str, gw: &Gw) {
    let (status, page) = common::links::press(link, "authorize").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Authorized."), "{page}");
    let step = tokio::time::timeout(Duration::from_secs(30), login).await.expect("the login waited on").expect("task");
    assert_eq!(step, Step::Success, "{}", gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_releases_nothing() {
    let smtp = SmtpSink::start();
    let gw = gateway(&smtp);
    let (c, mail) = at_the_prompt(&gw, &smtp).await;
    let login = waiting(c);
    // The mail's lifetime is over, as the clock would have it, while the login waits.
    gw.sql("UPDATE email_approvals SET expires_at = expires_at - 3600 WHERE purpose = 'login'");
    let (status, page) = common::links::press(&mail.authorize_link(), "authorize").await;
    assert_eq!(status, StatusCode::GONE, "{page}");
    assert!(page.contains("expired") && !page.contains("Authorized."), "{page}");
    let step = tokio::time::timeout(Duration::from_secs(60), login).await.expect("the login ended").expect("task");
    assert_ne!(step, Step::Success, "an expired link let the login in\n{}", gw.log());
    let audit = gw.cli_ok(&["audit", "--event", "login", "--limit", "100"]);
    assert!(!audit.contains("login.email_authorized") && !audit.contains("login.success"), "{audit}");

    // A new login gets a new mail, and its link works.
    let (c, mail) = at_the_prompt(&gw, &smtp).await;
    released_by(waiting(c), &mail.authorize_link(), &gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_or_truncated_token_authorizes_nothing() {
    let smtp = SmtpSink::start();
    let gw = gateway(&smtp);
    let (c, mail) = at_the_prompt(&gw, &smtp).await;
    let login = waiting(c);
    let link = mail.authorize_link();
    let (base, token) = link.rsplit_once('/').expect("a link with a token");
    assert_eq!(token.len(), 64, "{link}");
    let flip = |i: usize| {
        let mut t: Vec<char> = token.chars().collect();
        t[i] = if t[i] == '0' { '1' } else { '0' };
        t.into_iter().collect::<String>()
    };
    let variants = [
        token[..63].to_string(),
        token[..32].to_string(),
        format!("{token}0"),
        format!("{token}{token}"),
        flip(0),
        flip(31),
        flip(63),
        token.to_uppercase(),
        token.chars().rev().collect(),
        format!("{token}%00"),
        format!("{token}%20"),
        format!("%20{token}"),
        format!("{}.", &token[..63]),
        format!("{token}/"),
        format!("..%2F{token}"),
        "0".repeat(64),
        String::new(),
    ];
    for v in &variants {
        let url = format!("{base}/{v}");
        let resp = reqwest::Client::new().post(&url).form(&[("action", "authorize")]).send().await.expect("POST");
        let status = resp.status();
        let page = resp.text().await.unwrap_or_default();
        assert!(!status.is_success() || !page.contains("Authorized."), "{v:?}: {status}\n{page}");
        assert!(!page.contains("127.0.0.1 (SSH)"), "{v:?} shows the login:\n{page}");
    }
    still_waiting(&login, "after the altered tokens").await;
    let audit = gw.cli_ok(&["audit", "--event", "login", "--limit", "100"]);
    assert!(!audit.contains("login.email_authorized"), "{audit}");
    released_by(login, &link, &gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_of_a_finished_login_releases_no_later_one() {
    let smtp = SmtpSink::start();
    let gw = gateway(&smtp);
    // The first login goes through with the mailed code; its link is left in the mailbox.
    let (mut c, first) = at_the_prompt(&gw, &smtp).await;
    assert_eq!(c.kbd_answer(&[&first.code()]).await, Step::Success, "{}", gw.log());
    let old = first.authorize_link();
    let (status, page) = common::links::press(&old, "authorize").await;
    assert_eq!(status, StatusCode::GONE, "{page}");
    assert!(page.contains("already used"), "{page}");

    // A second login waits; the first login's link is clicked, Authorize and Deny.
    let (c, second) = at_the_prompt(&gw, &smtp).await;
    let login = waiting(c);
    for action in ["authorize", "deny"] {
        let (status, page) = common::links::press(&old, action).await;
        assert_eq!(status, StatusCode::GONE, "{action}: {page}");
        assert!(!page.contains("Authorized.") && !page.contains("Denied"), "{action}: {page}");
    }
    still_waiting(&login, "after the old link").await;
    // Nor does the old mail's code.
    let mut other = RawClient::connect(gw.ssh_port, "alice").await;
    let _ = other.reach_gate(PASSWORD).await;
    let step = other.kbd_answer(&[&first.code()]).await;
    assert_ne!(step, Step::Success, "the code of a finished login was taken again");
    still_waiting(&login, "after the old code").await;

    released_by(login, &second.authorize_link(), &gw).await;
    let audit = gw.cli_ok(&["audit", "--event", "login", "--limit", "100"]);
    assert_eq!(audit.lines().filter(|l| l.contains("login.email_authorized")).count(), 1, "{audit}");
}
