//! A logged-in browser's next request decides from the database as it is now, although
//! each node keeps the policy and the users' groups of the latest access revision it saw
//! (`policy::Cache`): a change made through another node applies to the very next request.

mod common;
mod web_support;

use common::{Backend, Gw, backends, totp_now};
use reqwest::StatusCode;
use web_support::Browser;

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn a_change_made_through_another_node_applies_to_the_next_request() {
    for backend in backends() {
        let mut a = Gw::new(backend);
        a.start();
        let mut b = a.join();
        b.start();
        a.add_user("alice", PASSWORD);
        let secret = a.enroll_totp("alice");

        let browser = Browser::new(&a);
        browser
            .login_with_factor("alice", PASSWORD, "totp", &totp_now(&secret))
            .await
            .assert_redirect("/account", "login on node A");
        // Twice: the second request is served from what the first one read.
        let enrolled = "asked at every login because you enrolled one";
        says(backend, &browser, enrolled, "the first request").await;
        says(backend, &browser, enrolled, "the same revision").await;

        // A group that forces a second factor: it speaks once she is in it.
        b.cli_ok(&["group", "add", "ops"]);
        b.cli_ok(&["policy", "force-2fa", "on", "--group", "ops"]);
        says(backend, &browser, enrolled, "a group she is not in").await;
        b.cli_ok(&["group", "add-member", "ops", "alice"]);
        says(backend, &browser, "required by your group(s): ops.", "joined the group").await;
        b.cli_ok(&["group", "remove-member", "ops", "alice"]);
        says(backend, &browser, enrolled, "left the group").await;

        // The global switch.
        b.cli_ok(&["policy", "force-2fa", "on"]);
        says(backend, &browser, "required for every account.", "2FA forced globally").await;
        b.cli_ok(&["policy", "force-2fa", "off"]);
        says(backend, &browser, enrolled, "2FA no longer forced").await;

        // The administrator flag, read with the session on every request.
        assert_eq!(
            browser.get("/admin/users").await.status,
            StatusCode::FORBIDDEN,
            "{backend:?}: not an administrator"
        );
        b.cli_ok(&["user", "admin", "alice", "on"]);
        assert_eq!(browser.get("/admin/users").await.status, StatusCode::OK, "{backend:?}: made an administrator");
        b.cli_ok(&["user", "admin", "alice", "off"]);
        assert_eq!(browser.get("/admin/users").await.status, StatusCode::FORBIDDEN, "{backend:?}: the flag taken back");

        // Her factors are read with the session too: removing the authenticator on the
        // other node sends her to enroll one.
        b.cli_ok(&["factor", "reset", "alice"]);
        b.cli_ok(&["policy", "force-2fa", "on"]);
        sent_to(backend, &browser, "/enroll", "her factors reset while 2FA is forced").await;

        // A lock ends the session at once.
        b.cli_ok(&["user", "lock", "alice"]);
        sent_to(backend, &browser, "/login", "locked on the other node").await;
    }
}

/// `GET /account` is served and says `sentence` of her second factor.
async fn says(backend: Backend, browser: &Browser, sentence: &str, what: &str) {
    let page = browser.get("/account").await;
    assert_eq!(page.status, StatusCode::OK, "{backend:?}: {what}: redirected to {}", page.location);
    assert!(page.body.contains(sentence), "{backend:?}: {what}: the page does not say \"{sentence}\"");
}

/// `GET /account` sends the browser to `to`.
async fn sent_to(backend: Backend, browser: &Browser, to: &str, what: &str) {
    let page = browser.get("/account").await;
    assert!(
        page.status == StatusCode::SEE_OTHER && page.location.ends_with(to),
        "{backend:?}: {what}: {} to {}, expected {to}",
        page.status,
        page.location
    );
}
