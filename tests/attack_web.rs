//! Attacks on the web UI against a real `gatehouse serve` (IDOR, CSRF and planted
//! cookies are in tests/web_account.rs and webui/tests/): every spelling of an open
//! redirect in `next=` that browsers would follow off the site, markup an attacker
//! controls (an SSH user name typed at the gate, a key comment, a passcode label, a query
//! string) on the pages that show it, and a session cookie replayed after the account's
//! password was reset by an administrator, or after a lock was lifted.

mod common;
mod web_support;

use reqwest::{StatusCode, Url};

use common::raw::RawClient;
use common::{Backend, Gw};
use web_support::{Browser, admin_browser};

const PASSWORD: &str = "correct horse battery";

fn started() -> Gw {
    let mut gw = Gw::new(Backend::Sqlite);
    gw.start();
    gw
}

/// Where a browser on `base` goes when told `Location: location`.
fn followed(base: &str, location: &str) -> Url {
    let base: Url = format!("{base}/account/confirm").parse().expect("base URL");
    base.join(location).unwrap_or_else(|e| panic!("Location {location:?} is not a URL reference: {e}"))
}

/// Spellings of "somewhere else" that some browser or URL parser takes off the site.
const OFF_SITE: &[&str] = &[
    "//evil.example",
    "///evil.example",
    "////evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\\/evil.example",
    "/%5Cevil.example",
    "https:evil.example",
    "https:/evil.example",
    "https://evil.example",
    "HTTPS://evil.example",
    "http://127.0.0.1@evil.example",
    "//evil.example@127.0.0.1",
    "javascript:alert(document.domain)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r//evil.example",
    " //evil.example",
    "\u{3000}//evil.example",
    "/\u{3000}/evil.example",
    "/\u{ff0f}evil.example",
    "evil.example",
    "@evil.example",
    "/.//evil.example",
    "/..//evil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
];

#[tokio::test]
async fn no_spelling_of_next_leaves_the_site() {
    let gw = started();
    gw.add_user("alice", PASSWORD);
    let b = Browser::new(&gw);
    b.login("alice", PASSWORD).await;
    let base = gw.web_url();
    let home = followed(&base, "/account");

    // Fresh from the login: the confirmation page sends the browser on at once.
    for next in OFF_SITE {
        let query = serde_json::to_string(next).expect("json");
        let path = format!("/account/confirm?{}", encode_query(&[("next", next)]));
        let page = b.get(&path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "next={query}: {}", page.body);
        let to = followed(&base, &page.location);
        assert_eq!(
            (to.scheme(), to.host_str(), to.port()),
            (home.scheme(), home.host_str(), home.port()),
            "next={query} sent the browser to {to} (Location: {:?})",
            page.location
        );
    }

    // After the proofs aged: the form carries `next`, the password confirms, and the
    // redirect after it stays on the site too.
    gw.sql("UPDATE web_sessions SET password_at = password_at - 300, factor_at = factor_at - 300");
    for next in OFF_SITE {
        let query = serde_json::to_string(next).expect("json");
        let form = b.get(&format!("/account/confirm?{}", encode_query(&[("next", next)]))).await;
        form.assert_status(StatusCode::OK, &format!("confirmation page for next={query}"));
        let page = b
            .post(
                "/account/confirm",
                &[("csrf", &form.csrf()), ("next", next), ("method", "password"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "next={query}: {}", page.body);
        let to = followed(&base, &page.location);
        assert_eq!(to.host_str(), home.host_str(), "next={query} after the password went to {to}");
        gw.sql("UPDATE web_sessions SET password_at = password_at - 300, factor_at = factor_at - 300");
    }
    // A local path is still followed.
    let page = b.get("/account/confirm?next=%2Faccount%2Fkeys").await;
    assert_eq!(page.status, StatusCode::OK, "aged proofs: the form again");
    let page = b
        .post(
            "/account/confirm",
            &[("csrf", &page.csrf()), ("next", "/account/keys"), ("method", "password"), ("password", PASSWORD)],
        )
        .await;
    page.assert_redirect("/account/keys", "a local path");
}

/// `application/x-www-form-urlencoded` query text for `pairs`.
fn encode_query(pairs: &[(&str, &str)]) -> String {
    let url = Url::parse_with_params("http://x/", pairs).expect("encoding a query");
    url.query().unwrap_or_default().to_string()
}

/// Markup an attacker controls, each with a marker of where it came from.
fn payload(from: &str) -> String {
    format!("<script>alert('{from}')</script><img src=x onerror=alert('{from}')>\"'><svg onload=alert('{from}')>")
}

/// Asserts that `body` carries none of the payload's markup as markup.
fn inert(body: &str, what: &str) {
    for raw in ["<script>alert(", "<img src=x", "<svg onload", "\"'><"] {
        assert!(!body.contains(raw), "{what}: the page carries {raw:?} as it was typed:\n{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn markup_an_attacker_controls_is_inert_on_every_page_that_shows_it() {
    let gw = started();
    gw.add_user("alice", PASSWORD);
    let admin = admin_browser(&gw).await;

    // At the SSH gate, without an account: a user name made of markup, into the audit log.
    let ssh_name = payload("ssh");
    let mut c = RawClient::connect(gw.ssh_port, &ssh_name).await;
    let _ = c.password("whatever password").await;

    // With an account: a key comment and a passcode label.
    let alice = Browser::new(&gw);
    alice.login("alice", PASSWORD).await;
    let key = gw.new_key("xss");
    let line = std::fs::read_to_string(&key.public).expect("the public key");
    let mut parts = line.split_whitespace();
    let line = format!("{} {} {}", parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), payload("key"));
    let added = alice.submit("/account/keys", "/account/keys", &[("key", &line)]).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    // (A label is at most 64 characters.)
    let made =
        alice.submit("/account/passcodes", "/account/passcodes", &[("label", "<script>alert('label')</script>")]).await;
    made.assert_status(StatusCode::OK, "a passcode with markup in its label");
    inert(&made.body, "the page that shows the new passcode");

    let mut seen_escaped = 0;
    let pages = [
        (&admin, "/admin/audit".to_string()),
        (
            &admin,
            format!("/admin/audit?{}", encode_query(&[("user", &payload("query")), ("event", &payload("event"))])),
        ),
        (&admin, "/admin/users".to_string()),
        (&admin, "/admin/users/alice".to_string()),
        (&alice, "/account/keys".to_string()),
        (&alice, "/account/passcodes".to_string()),
        (&alice, "/account".to_string()),
    ];
    for (who, path) in &pages {
        let page = who.get(path).await;
        page.assert_status(StatusCode::OK, path);
        inert(&page.body, path);
        if page.body.contains("&lt;script&gt;alert(") || page.body.contains("&#60;script&#62;alert(") {
            println!("{path}: shows the markup as text");
            seen_escaped += 1;
        }
    }
    // The payloads are there, as text: the checks above looked at pages that show them.
    assert!(seen_escaped >= 4, "the payloads were not shown at all (only {seen_escaped} pages); nothing was tested");
    // The user name typed at the SSH gate is among them, on the audit page.
    let audit = admin.get("/admin/audit").await;
    let shown = regex::Regex::new(r"(&lt;|&#60;)script(&gt;|&#62;)alert\((&#x27;|&#39;|')ssh").expect("regex");
    assert!(shown.is_match(&audit.body), "the SSH user name is not on the audit page:\n{}", audit.body);
}

/// The session of a browser that logged in as alice (its cookie, as an attacker who took
/// it would replay it): whether it is still a login.
async fn still_a_login(gw: &Gw, cookie: &str) -> bool {
    let raw = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let r = raw
        .get(format!("{}/account", gw.web_url()))
        .header("cookie", format!("gh_session={cookie}"))
        .send()
        .await
        .expect("GET");
    r.status() == StatusCode::OK
}

#[tokio::test]
async fn a_web_session_does_not_survive_an_administrators_password_reset() {
    let gw = started();
    gw.add_user("alice", PASSWORD);
    let admin = admin_browser(&gw).await;

    // From the command line (`user passwd`).
    let taken = Browser::new(&gw);
    taken.login("alice", PASSWORD).await;
    let cookie = taken.session_id().expect("a session cookie");
    assert!(still_a_login(&gw, &cookie).await, "the cookie is a login before the reset");
    let out = gw.cli_stdin(&["user", "passwd", "alice", "--password-stdin"], "a new password 1\n");
    gw.assert_success(&out, "user passwd");
    assert!(!still_a_login(&gw, &cookie).await, "the cookie of a session opened with the old password still works");
    taken.get("/account").await.assert_redirect("/login", "the browser that had the old password");

    // From the admin pages (a one-time password).
    let taken = Browser::new(&gw);
    taken.login("alice", "a new password 1").await;
    let cookie = taken.session_id().expect("a session cookie");
    let page = admin.get("/admin/users/alice").await;
    admin
        .post("/admin/users/alice/password", &[("csrf", &page.csrf()), ("password", "one-time password 2")])
        .await
        .assert_redirect("/admin/users/alice", "set a one-time password");
    assert!(!still_a_login(&gw, &cookie).await, "the cookie still works after the admin page's reset");

    // Alice, with the password she was given, logs in (and is asked to choose her own).
    let b = Browser::new(&gw);
    b.password_step("alice", "one-time password 2").await.assert_status(StatusCode::SEE_OTHER, "login");
    b.get("/account").await.assert_redirect("/account/password", "a one-time password must be replaced");
}

#[tokio::test]
async fn a_web_session_ended_by_a_lock_stays_ended_after_the_unlock() {
    let gw = started();
    gw.add_user("alice", PASSWORD);
    let taken = Browser::new(&gw);
    taken.login("alice", PASSWORD).await;
    let cookie = taken.session_id().expect("a session cookie");
    gw.cli_ok(&["user", "lock", "alice"]);
    assert!(!still_a_login(&gw, &cookie).await, "a locked account's session");
    gw.cli_ok(&["user", "unlock", "alice"]);
    assert!(!still_a_login(&gw, &cookie).await, "the session came back with the unlock");
    taken.get("/account").await.assert_redirect("/login", "the browser of the locked session");
    // A new login works.
    let b = Browser::new(&gw);
    b.login("alice", PASSWORD).await;
    b.get("/account").await.assert_status(StatusCode::OK, "a new login after the unlock");
}
