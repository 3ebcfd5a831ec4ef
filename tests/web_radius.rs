//! The RADIUS second factor in the web login, against a real FreeRADIUS: the same core
//! check as the SSH gate, including an Access-Challenge round (its question on the page,
//! its State carried by the form) and a wrong answer.

mod common;
mod web_support;

use common::{Backend, Gw, Radius};
use reqwest::StatusCode;
use web_support::{Browser, field_value};

const PASSWORD: &str = "correct horse battery";

fn started(radius: &Radius) -> Gw {
    let mut gw = Gw::with_config(
        Backend::Sqlite,
        &format!("[radius]\nservers = [\"{}\"]\nsecret = \"{}\"\ntimeout_secs = 1\n", radius.address(), Radius::SECRET),
    );
    gw.start();
    gw
}

#[tokio::test]
async fn web_login_with_radius_accept_reject_and_challenge() {
    let radius = Radius::start();
    let gw = started(&radius);
    gw.add_user("alice", PASSWORD);
    gw.cli_ok(&["factor", "radius", "enroll", "alice", "--radius-user", "radalice"]);
    gw.add_user("carol", PASSWORD);
    gw.cli_ok(&["factor", "radius", "enroll", "carol"]);

    let b = Browser::new(&gw);
    b.login_with_factor("alice", PASSWORD, "radius", "wrong")
        .await
        .assert_status(StatusCode::UNAUTHORIZED, "wrong RADIUS answer")
        .assert_contains("not right", "message");
    let page = b.get("/login/factor").await;
    page.assert_contains("RADIUS", "the only method is asked for");
    b.post("/login/factor", &[("csrf", &page.csrf()), ("method", "radius"), ("code", Radius::ALICE_PASSWORD)])
        .await
        .assert_redirect("/account", "right RADIUS answer");

    let c = Browser::new(&gw);
    let question = c.login_with_factor("carol", PASSWORD, "radius", Radius::CAROL_FIRST).await;
    question
        .assert_status(StatusCode::OK, "challenge page")
        .assert_contains(Radius::CAROL_QUESTION, "the server's question");
    let state = field_value(&question.body, "state").expect("the State travels in the form");
    c.post(
        "/login/factor",
        &[("csrf", &question.csrf()), ("method", "radius"), ("state", &state), ("code", Radius::CAROL_PIN)],
    )
    .await
    .assert_redirect("/account", "answer to the challenge");
}

/// The administrator's test request on the health page, against the same FreeRADIUS.
#[tokio::test]
async fn health_page_test_request_reaches_the_radius_server() {
    let radius = Radius::start();
    let gw = started(&radius);
    let admin = web_support::admin_browser(&gw).await;
    admin.get("/admin/health").await.assert_contains("servers, in order", "RADIUS is ready");
    let test = |user: &'static str, password: &'static str| {
        let admin = &admin;
        async move { admin.submit("/admin/health", "/admin/health/radius", &[("user", user), ("password", password)]).await }
    };
    test("radalice", Radius::ALICE_PASSWORD).await.assert_contains("Access-Accept", "right password");
    test("radalice", "wrong").await.assert_contains("Access-Reject", "wrong password");
    test("carol", Radius::CAROL_FIRST).await.assert_contains(Radius::CAROL_QUESTION, "challenge");
    let log = gw.cli_ok(&["audit", "--event", "health.radius_test"]);
    assert!(!log.contains(Radius::ALICE_PASSWORD), "the password stays out of the audit log:\n{log}");
}
