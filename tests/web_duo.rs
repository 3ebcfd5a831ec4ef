//! The Duo second factor in the web login, against the loopback Duo stand-in: a passcode
//! typed in the form, a push waited for with the "Wait for approval" button (clicked in a
//! real Chromium, and posted as a form), a denied push, and the administrator's
//! "Duo /check" on the health page, which shows what Duo answered.

mod common;
mod web_support;

use common::duo::{Preauth, Push, duo_table, last_duo_error};
use common::{Backend, Duo, Gw, backends};
use reqwest::StatusCode;
use web_support::Browser;
use web_support::chrome::{body, browser, click, fill, start_driver, wait_path};

const PASSWORD: &str = "correct horse battery";

fn started(backend: Backend, duo: &Duo, secret_key: &str) -> Gw {
    let mut gw = Gw::with_config(backend, &duo_table(&duo.api_host(), ""));
    gw.set_env("GATEHOUSE_DUO__SECRET_KEY", secret_key);
    gw.start();
    gw
}

fn enrolled(gw: &Gw, user: &str) {
    gw.add_user(user, PASSWORD);
    gw.cli_ok(&["factor", "duo", "enroll", user]);
}

#[tokio::test]
async fn web_login_with_a_duo_passcode_or_a_push() {
    let duo = Duo::start();
    duo.user("alice", Preauth::Auth, Push::ApproveAfter(1));
    duo.user("bob", Preauth::Auth, Push::Deny);
    for backend in backends() {
        duo.clear();
        let gw = started(backend, &duo, Duo::SECRET_KEY);
        enrolled(&gw, "alice");
        enrolled(&gw, "bob");

        // A wrong passcode, then the right one.
        let b = Browser::new(&gw);
        b.login_with_factor("alice", PASSWORD, "duo", "000000")
            .await
            .assert_status(StatusCode::UNAUTHORIZED, "wrong Duo passcode")
            .assert_contains("not right", "message");
        let page = b.get("/login/factor").await;
        page.assert_contains("Wait for approval", "a push can be waited for")
            .assert_contains(Duo::DEVICE, "the device is named");
        b.post("/login/factor", &[("csrf", &page.csrf()), ("method", "duo"), ("code", Duo::PASSCODE)])
            .await
            .assert_redirect("/account", "right Duo passcode");

        // The push, waited for: the form's "Wait for approval" button.
        let c = Browser::new(&gw);
        c.login_to_factor("alice", PASSWORD).await;
        let page = c.get("/login/factor").await;
        c.post("/login/factor", &[("csrf", &page.csrf()), ("method", "duo"), ("code", ""), ("action", "wait")])
            .await
            .assert_redirect("/account", "approved push");
        let push = duo
            .requests_to("/auth/v2/auth")
            .into_iter()
            .find(|r| r.param("factor") == Some("push"))
            .expect("a push was sent");
        assert!(push.param("pushinfo").unwrap_or_default().contains("Via=web"), "{push:?}");
        assert!(duo.requests().iter().all(|r| r.signature == Ok("sha512")));

        // A denied push ends this login: back to the password.
        let d = Browser::new(&gw);
        d.login_to_factor("bob", PASSWORD).await;
        let page = d.get("/login/factor").await;
        d.post("/login/factor", &[("csrf", &page.csrf()), ("method", "duo"), ("code", ""), ("action", "wait")])
            .await
            .assert_redirect("/login", "denied push");
        assert_ne!(d.get("/login/factor").await.status, StatusCode::OK, "the pending login is gone");

        let audit = gw.cli_ok(&["audit", "--event", "login.factor"]);
        assert!(audit.contains("duo via web"), "{audit}");
        assert!(audit.contains("duo: wrong answer"), "{audit}");
    }
}

/// The "Wait for approval" button as a person uses it, in a real browser.
#[tokio::test]
async fn the_wait_button_in_a_browser_waits_for_the_push() {
    let duo = Duo::start();
    duo.user("alice", Preauth::Auth, Push::ApproveAfter(2));
    let gw = started(Backend::Sqlite, &duo, Duo::SECRET_KEY);
    enrolled(&gw, "alice");
    let driver = start_driver();
    let c = browser(&driver).await;
    c.goto(&format!("{}/login", gw.web_url())).await.expect("goto login");
    fill(&c, "#username", "alice").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "form[action='/login'] button[type=submit]").await;
    wait_path(&c, "/login/factor").await;
    assert!(
        body(&c).await.contains("Enter for a push") || body(&c).await.contains("send a push"),
        "{}",
        body(&c).await
    );
    // The code field stays empty: the button needs none.
    click(&c, "button[name=action][value=wait]").await;
    wait_path(&c, "/account").await;
    assert_eq!(duo.requests_to("/auth/v2/auth_status").len(), 3, "two 'waiting', then 'allow'");
    let _ = c.close().await;
}

/// The administrator's "Duo /check": Duo's answer on the page and in the audit log; a
/// refused signature is shown and recorded as the service's last error.
#[tokio::test]
async fn health_page_asks_duo_to_check_the_keys() {
    let duo = Duo::start();
    let gw = started(Backend::Sqlite, &duo, Duo::SECRET_KEY);
    let admin = web_support::admin_browser(&gw).await;
    admin.get("/admin/health").await.assert_contains(&format!("Duo Auth API at {}", duo.api_host()), "Duo is ready");
    admin
        .submit("/admin/health", "/admin/health/duo", &[])
        .await
        .assert_status(StatusCode::OK, "check")
        .assert_contains("OK: Duo answered /check", "good keys");
    assert_eq!(duo.requests_to("/auth/v2/check").len(), 1);
    assert!(gw.cli_ok(&["audit", "--event", "health.duo_check"]).contains("OK: Duo answered /check"));

    let mut gw = Gw::with_config(Backend::Sqlite, &duo_table(&duo.api_host(), "fail_open = true\n"));
    gw.set_env("GATEHOUSE_DUO__SECRET_KEY", "notTheSecretKey0000000000000000000000000");
    gw.start();
    let admin = web_support::admin_browser(&gw).await;
    admin.get("/admin/health").await.assert_contains("FAIL-OPEN", "fail_open is shown");
    admin
        .submit("/admin/health", "/admin/health/duo", &[])
        .await
        .assert_contains("Invalid signature in request credentials", "Duo's refusal is shown");
    assert!(last_duo_error(&gw).contains("40103"), "{}", last_duo_error(&gw));
}
