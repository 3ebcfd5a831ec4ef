//! The email second factor in the web UI, with an SMTP sink on loopback standing in for
//! the relay: self-service enrollment confirms the address first; the web login takes the
//! mailed code or waits for the Authorize click; a link opened in a browser signed in as
//! someone else shows nothing; the health page sends a test mail and shows the relay's
//! last answer and last error.

mod common;
mod web_support;

use common::{Backend, Gw, SmtpSink};
use reqwest::StatusCode;
use web_support::{Browser, admin_browser};

const PASSWORD: &str = "correct horse battery";
const ALICE: &str = "alice@example.com";

fn started(smtp: &SmtpSink) -> Gw {
    let mut gw = Gw::with_config(Backend::Sqlite, &smtp.config());
    gw.start();
    gw
}

/// `alice` with her email factor enrolled on the web, logged in (the browser is returned).
async fn alice_enrolled(gw: &Gw, smtp: &SmtpSink) -> Browser {
    gw.add_user("alice", PASSWORD);
    let b = Browser::new(gw);
    b.login("alice", PASSWORD).await;
    b.get("/account").await.assert_contains("Set up email codes", "the account page offers email");
    b.submit("/account/email", "/account/email", &[("address", "not-an-address")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "bad address")
        .assert_contains("not a mail address", "message");
    let sent = b.submit("/account/email", "/account/email", &[("address", ALICE)]).await;
    sent.assert_status(StatusCode::OK, "code sent").assert_contains("A code went to", "confirm step");
    let code = smtp.wait_for(ALICE, 1).code();
    b.post("/account/email/confirm", &[("csrf", &sent.csrf()), ("code", "000000"), ("sent_to", ALICE)])
        .await
        .assert_status(StatusCode::UNAUTHORIZED, "wrong confirmation code");
    b.submit("/account/email", "/account/email/confirm", &[("code", &code)])
        .await
        .assert_redirect("/account?ok=email", "confirmed");
    let list = gw.cli_ok(&["factor", "list", "alice"]);
    assert!(list.contains("email") && list.contains(ALICE), "{list}");
    b
}

#[tokio::test(flavor = "multi_thread")]
async fn web_login_takes_the_mailed_code_or_waits_for_the_click() {
    let smtp = SmtpSink::start();
    let gw = started(&smtp);
    alice_enrolled(&gw, &smtp).await;

    // The code.
    let b = Browser::new(&gw);
    b.login_to_factor("alice", PASSWORD).await;
    let page = b.get("/login/factor").await;
    page.assert_status(StatusCode::OK, "factor page")
        .assert_contains("a***@example.com", "where the mail went")
        .assert_contains("Wait for approval", "the wait button");
    // Reloading the page sends no second mail.
    b.get("/login/factor").await.assert_status(StatusCode::OK, "reload");
    assert_eq!(smtp.mails_to(ALICE).len(), 2, "one confirmation and one login mail");
    let mail = smtp.wait_for(ALICE, 2);
    assert!(mail.body().contains("(web)"), "{}", mail.body());
    b.post("/login/factor", &[("csrf", &page.csrf()), ("method", "email"), ("code", "111111")])
        .await
        .assert_status(StatusCode::UNAUTHORIZED, "wrong code");
    let page = b.get("/login/factor").await;
    b.post("/login/factor", &[("csrf", &page.csrf()), ("method", "email"), ("code", &mail.code())])
        .await
        .assert_redirect("/account", "the mailed code");

    // The click, while the page waits.
    let c = Browser::new(&gw);
    c.login_to_factor("alice", PASSWORD).await;
    let page = c.get("/login/factor").await;
    let link = smtp.wait_for(ALICE, 3).authorize_link();
    let clicker = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let resp = reqwest::Client::new()
            .post(&link)
            .form(&[("action", "authorize")])
            .send()
            .await
            .expect("clicking Authorize");
        resp.text().await.expect("the page")
    });
    c.post("/login/factor", &[("csrf", &page.csrf()), ("method", "email"), ("action", "wait")])
        .await
        .assert_redirect("/account", "released by the click");
    assert!(clicker.await.unwrap().contains("Authorized."));
    let audit = gw.cli_ok(&["audit", "--event", "login"]);
    assert!(audit.contains("login.email_authorized") && audit.contains("email via web"), "{audit}");
}

#[tokio::test]
async fn a_link_opened_by_someone_else_shows_nothing() {
    let smtp = SmtpSink::start();
    let gw = started(&smtp);
    alice_enrolled(&gw, &smtp).await;
    gw.add_user("bob", PASSWORD);
    let a = Browser::new(&gw);
    a.login_to_factor("alice", PASSWORD).await;
    a.get("/login/factor").await.assert_status(StatusCode::OK, "factor page");
    let link = smtp.wait_for(ALICE, 2).authorize_link();
    let path = link.strip_prefix(&gw.web_url()).expect("a link to this gateway").to_string();

    let bob = Browser::new(&gw);
    bob.login("bob", PASSWORD).await;
    let page = bob.get(&path).await;
    page.assert_status(StatusCode::FORBIDDEN, "another account's link")
        .assert_contains("belongs to another account", "message");
    assert!(!page.body.contains("127.0.0.1 ("), "nothing of the login is shown:\n{}", page.body);
    bob.post(&path, &[("action", "authorize")]).await.assert_status(StatusCode::FORBIDDEN, "bob cannot authorize it");
    // Still open for alice.
    let page = Browser::new(&gw).get(&path).await;
    page.assert_status(StatusCode::OK, "the owner's view").assert_contains("Authorize", "still open");
}

#[tokio::test]
async fn health_page_sends_a_test_mail_and_shows_the_last_error() {
    let smtp = SmtpSink::start();
    let gw = started(&smtp);
    let admin = admin_browser(&gw).await;
    let page = admin.get("/admin/health").await;
    page.assert_contains("SMTP relay 127.0.0.1", "email is ready");
    page.assert_contains("only this machine can open", "links to a loopback address are flagged");
    admin
        .submit("/admin/health", "/admin/health/email", &[("to", "ops@example.com")])
        .await
        .assert_status(StatusCode::OK, "test mail")
        .assert_contains("The relay took the mail", "result");
    let mail = smtp.wait_for("ops@example.com", 1);
    assert_eq!(mail.header("Subject").as_deref(), Some("Gatehouse test mail"));

    let port = smtp.port;
    drop(smtp);
    let page = admin.submit("/admin/health", "/admin/health/email", &[("to", "ops@example.com")]).await;
    page.assert_contains("No mail went out", "the failure is said");
    let page = admin.get("/admin/health").await;
    let row = page.body.split("<tr>").find(|r| r.contains("<td>Email code</td>")).unwrap_or_default().to_string();
    assert!(
        row.contains(&format!("127.0.0.1:{port}")) && row.contains("did not take the mail"),
        "the last error is shown:\n{row}"
    );
    let audit = gw.cli_ok(&["audit", "--event", "health.email_test"]);
    assert!(audit.contains("o***@example.com"), "{audit}");
}

#[tokio::test]
async fn a_mailbox_is_not_flooded() {
    let smtp = SmtpSink::start();
    let gw = started(&smtp);
    alice_enrolled(&gw, &smtp).await;
    // The confirmation was the first mail; four logins make five.
    for n in 2..=5 {
        let b = Browser::new(&gw);
        b.login_to_factor("alice", PASSWORD).await;
        b.get("/login/factor").await.assert_contains("a***@example.com", "a mail went out");
        assert_eq!(smtp.mails_to(ALICE).len(), n);
    }
    let b = Browser::new(&gw);
    b.login_to_factor("alice", PASSWORD).await;
    let page = b.get("/login/factor").await;
    page.assert_contains("the most allowed", "the sixth login is told why no mail comes");
    assert!(!page.body.contains("Wait for approval"), "nothing to wait for:\n{}", page.body);
    assert_eq!(smtp.mails_to(ALICE).len(), 5, "no sixth mail");
}

/// The whole story in a real browser: enroll the address in headless Chromium, then log in
/// over SSH (real `ssh`), wait at the gate, and click Authorize in Chromium.
#[tokio::test(flavor = "multi_thread")]
async fn in_a_real_browser_enroll_then_authorize_a_waiting_ssh_login() {
    use web_support::chrome::{browser, click, fill, shot, start_driver, wait_path, wait_text};
    let smtp = SmtpSink::start();
    let gw = started(&smtp);
    gw.add_user("alice", PASSWORD);
    let key = gw.add_key("alice");
    let driver = start_driver();
    let c = browser(&driver).await;
    c.goto(&format!("{}/login", gw.web_url())).await.expect("goto login");
    fill(&c, "#username", "alice").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "form[action='/login'] button[type=submit]").await;
    wait_path(&c, "/account").await;
    c.goto(&format!("{}/account/email", gw.web_url())).await.expect("goto email");
    fill(&c, "#address", ALICE).await;
    click(&c, "form[action='/account/email'] button[type=submit]").await;
    wait_text(&c, "A code went to").await;
    fill(&c, "#code", &smtp.wait_for(ALICE, 1).code()).await;
    click(&c, "form[action='/account/email/confirm'] button[type=submit]").await;
    wait_text(&c, "Your mail address is confirmed").await;

    let client =
        common::Ssh::new(gw.ssh_port, "alice").arg("-v").stdin("").identity(&key).on_prompt("Code from the mail", "");
    let running = std::thread::spawn(move || client.run(&[]));
    let link = smtp.wait_for(ALICE, 2).authorize_link();
    c.goto(&link).await.expect("opening the link");
    wait_text(&c, "Is this your login?").await;
    shot(&c, "20-email-authorize").await;
    click(&c, "button[value='authorize']").await;
    wait_text(&c, "Authorized.").await;
    let out = tokio::task::spawn_blocking(move || running.join().unwrap()).await.unwrap();
    assert!(common::stderr(&out).contains("Authenticated to"), "{}\n{}", common::describe(&out), gw.log());
    c.close().await.expect("closing the browser");
}

/// `tls = "starttls"` is a requirement: a relay that does not offer STARTTLS gets no mail
/// (the code would otherwise cross the network in clear).
#[tokio::test]
async fn starttls_is_required_never_skipped() {
    let smtp = SmtpSink::start();
    let config = smtp.config().replace("tls = \"none\"", "tls = \"starttls\"");
    let mut gw = Gw::with_config(Backend::Sqlite, &config);
    gw.start();
    let admin = admin_browser(&gw).await;
    let page = admin.submit("/admin/health", "/admin/health/email", &[("to", "ops@example.com")]).await;
    page.assert_contains("No mail went out", "refused without STARTTLS");
    assert!(smtp.mails().is_empty(), "nothing was sent in clear: {:?}", smtp.mails());
}

/// Removing a factor with the email code as proof: an empty proof mails the code, then the
/// code confirms.
#[tokio::test]
async fn the_mailed_code_confirms_removing_a_factor() {
    let smtp = SmtpSink::start();
    let gw = started(&smtp);
    let b = alice_enrolled(&gw, &smtp).await;
    gw.cli_stdin(&["factor", "keyword", "alice", "--stdin"], "purple elephant\n");
    let asked = b
        .submit(
            "/account",
            "/account/factors/remove",
            &[("method", "keyword"), ("proof_method", "email"), ("proof", "")],
        )
        .await;
    asked
        .assert_status(StatusCode::ACCEPTED, "a mail is sent, nothing removed yet")
        .assert_contains("a***@example.com", "where it went");
    let code = smtp.wait_for(ALICE, 2).code();
    b.submit(
        "/account",
        "/account/factors/remove",
        &[("method", "keyword"), ("proof_method", "email"), ("proof", &code)],
    )
    .await
    .assert_redirect("/account?ok=removed", "removed with the mailed code");
    let list = gw.cli_ok(&["factor", "list", "alice"]);
    assert!(!list.contains("keyword") && list.contains("email"), "{list}");
}
