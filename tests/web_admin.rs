//! The administration pages over HTTP against a real `gatehouse serve`: a plain user gets
//! 403 on every admin route; an administrator manages users, groups, the global and
//! per-group policy, targets and grants, and reads the audit log, recordings and live
//! sessions. Bad input answers 400 with a message and writes nothing.

mod common;
mod web_support;

use common::{Backend, Gw};
use reqwest::StatusCode;
use web_support::{Browser, admin_browser, audit};

const PASSWORD: &str = "correct horse battery";

fn started() -> Gw {
    let mut gw = Gw::new(Backend::Sqlite);
    gw.start();
    gw
}

/// Every admin route (GET pages and POST actions) with a plausible form.
const ADMIN_GETS: &[&str] = &[
    "/admin/health",
    "/admin/users",
    "/admin/users/admin",
    "/admin/groups",
    "/admin/groups/ops",
    "/admin/policy",
    "/admin/targets",
    "/admin/targets/web1",
    "/admin/audit",
    "/admin/recordings",
    "/admin/recordings/1",
    "/admin/recordings/1/cast",
    "/admin/live",
];

const ADMIN_POSTS: &[(&str, &[(&str, &str)])] = &[
    ("/admin/users", &[("name", "mallory"), ("password", "mallory pass 1"), ("is_admin", "on")]),
    ("/admin/users/alice/admin", &[("on", "on")]),
    ("/admin/users/admin/lock", &[("on", "on")]),
    ("/admin/users/alice/exempt", &[("on", "on")]),
    ("/admin/users/alice/force", &[("force", "off")]),
    ("/admin/users/admin/reset-factors", &[]),
    ("/admin/users/admin/password", &[("password", "taken over 1")]),
    ("/admin/users/admin/delete", &[("confirm", "admin")]),
    ("/admin/groups", &[("name", "evil")]),
    ("/admin/groups/ops/force", &[("on", "off")]),
    ("/admin/groups/ops/methods", &[("inherit", "on")]),
    ("/admin/groups/ops/members", &[("user", "alice")]),
    ("/admin/groups/ops/members/remove", &[("user", "admin")]),
    ("/admin/groups/ops/delete", &[]),
    ("/admin/policy/force", &[("on", "off")]),
    ("/admin/policy/force-admins", &[("on", "on")]),
    ("/admin/policy/methods", &[("m_keyword", "on")]),
    ("/admin/policy/backup-codes", &[("count", "1")]),
    (
        "/admin/targets",
        &[
            ("name", "t2"),
            ("host", "127.0.0.1"),
            ("port", "22"),
            ("username", "x"),
            ("credential_kind", "password"),
            ("credential", "pw"),
        ],
    ),
    ("/admin/targets/web1/edit", &[("host", "10.0.0.1"), ("port", "22"), ("username", "root")]),
    ("/admin/targets/web1/host-key", &[("key", "ssh-ed25519 AAAA")]),
    ("/admin/targets/web1/forget-host-key", &[]),
    ("/admin/targets/web1/grant", &[("kind", "user"), ("who", "alice")]),
    ("/admin/targets/web1/revoke", &[("kind", "group"), ("who", "ops")]),
    ("/admin/targets/web1/delete", &[]),
    ("/admin/live/1/terminate", &[]),
    ("/admin/health/radius", &[("user", "alice"), ("password", "x")]),
];

#[tokio::test]
async fn a_plain_user_gets_403_on_every_admin_route_and_changes_nothing() {
    let gw = started();
    let admin = admin_browser(&gw).await;
    admin
        .submit("/admin/groups", "/admin/groups", &[("name", "ops")])
        .await
        .assert_redirect("/admin/groups/ops", "group");
    admin.submit("/admin/groups/ops", "/admin/groups/ops/force", &[("on", "on")]).await;
    gw.cli_stdin(&["target", "add", "web1", "--host", "127.0.0.1", "--user", "root", "--password-stdin"], "pw\n");
    gw.add_user("alice", PASSWORD);
    let before_users = gw.cli_ok(&["user", "list"]);
    let before_policy = gw.cli_ok(&["policy", "show"]);

    let alice = Browser::new(&gw);
    alice.login("alice", PASSWORD).await;
    let token = alice.get("/account").await.csrf();
    let own = alice.get("/account").await;
    own.assert_status(StatusCode::OK, "alice's own page");
    assert!(!own.body.contains("/admin/users"), "no admin navigation for a plain user");
    for path in ADMIN_GETS {
        alice.get(path).await.assert_status(StatusCode::FORBIDDEN, path).assert_contains("for administrators", path);
    }
    for (path, form) in ADMIN_POSTS {
        let mut full: Vec<(&str, &str)> = form.to_vec();
        full.push(("csrf", &token));
        alice.post(path, &full).await.assert_status(StatusCode::FORBIDDEN, path);
    }
    assert_eq!(gw.cli_ok(&["user", "list"]), before_users, "no user changed");
    assert_eq!(gw.cli_ok(&["policy", "show"]), before_policy, "no policy changed");
    assert!(gw.cli_ok(&["target", "list"]).contains("web1"), "target still there");
    // The same admin routes work for the administrator (GETs).
    for path in [
        "/admin/users",
        "/admin/groups/ops",
        "/admin/policy",
        "/admin/targets/web1",
        "/admin/audit",
        "/admin/recordings",
        "/admin/live",
    ] {
        admin.get(path).await.assert_status(StatusCode::OK, path);
    }
}

#[tokio::test]
async fn admin_manages_users_with_validation_and_visible_exemption() {
    let gw = started();
    let admin = admin_browser(&gw).await;
    let bad =
        admin.submit("/admin/users", "/admin/users", &[("name", "bad name!"), ("password", "long enough 1")]).await;
    bad.assert_status(StatusCode::BAD_REQUEST, "bad name").assert_contains("must be 1-64 letters", "message");
    admin
        .submit("/admin/users", "/admin/users", &[("name", "carol"), ("password", "short")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "short password")
        .assert_contains("at least 8", "message");
    assert!(!gw.cli_ok(&["user", "list"]).contains("carol"), "nothing written on bad input");

    admin
        .submit(
            "/admin/users",
            "/admin/users",
            &[("name", "carol"), ("password", "carol once 1"), ("email", "carol@example.com")],
        )
        .await
        .assert_redirect("/admin/users/carol", "create");
    admin
        .submit("/admin/users", "/admin/users", &[("name", "carol"), ("password", "carol once 1")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "duplicate")
        .assert_contains("already exists", "message");
    admin.get("/admin/users/nobody").await.assert_status(StatusCode::NOT_FOUND, "unknown user");

    admin
        .submit("/admin/users/carol", "/admin/users/carol/exempt", &[("on", "maybe")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "bad switch");
    admin
        .submit("/admin/users/carol", "/admin/users/carol/exempt", &[("on", "on")])
        .await
        .assert_redirect("/admin/users/carol", "exempt");
    admin.get("/admin/users/carol").await.assert_contains("Exempt from the second factor", "warning on the user page");
    admin.get("/admin/users").await.assert_contains("exempt from 2FA", "warning in the list");
    admin
        .get("/admin/policy")
        .await
        .assert_contains("Never asked for a second factor: carol", "warning on the policy page");
    let carol = Browser::new(&gw);
    carol.login("carol", "carol once 1").await;
    carol
        .get("/account/password")
        .await
        .assert_contains("exempt from the second factor", "the user sees the warning too");

    admin
        .submit("/admin/users/carol", "/admin/users/carol/lock", &[("on", "on")])
        .await
        .assert_redirect("/admin/users/carol", "lock");
    carol.get("/account/password").await.assert_redirect("/login", "a locked user's session ends");
    Browser::new(&gw)
        .password_step("carol", "carol once 1")
        .await
        .assert_status(StatusCode::UNAUTHORIZED, "locked user cannot log in");
    admin
        .submit("/admin/users/carol", "/admin/users/carol/lock", &[("on", "off")])
        .await
        .assert_redirect("/admin/users/carol", "unlock");
    Browser::new(&gw).login("carol", "carol once 1").await;

    admin
        .submit("/admin/users/admin", "/admin/users/admin/lock", &[("on", "on")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "self lock")
        .assert_contains("cannot lock your own", "message");
    admin
        .submit("/admin/users/carol", "/admin/users/carol/admin", &[("on", "on")])
        .await
        .assert_redirect("/admin/users/carol", "make admin");
    gw.enroll_totp("carol");
    admin
        .submit("/admin/users/carol", "/admin/users/carol/reset-factors", &[])
        .await
        .assert_redirect("/admin/users/carol", "reset");
    assert!(gw.cli_ok(&["factor", "list", "carol"]).contains("no second factor"));
    admin
        .submit("/admin/users/carol", "/admin/users/carol/delete", &[("confirm", "carl")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "confirm mismatch");
    admin
        .submit("/admin/users/carol", "/admin/users/carol/delete", &[("confirm", "carol")])
        .await
        .assert_redirect("/admin/users?ok=deleted", "delete");
    let log = audit(&gw, "user");
    for ev in ["user.create", "user.exempt", "user.lock", "user.unlock", "user.admin", "user.delete"] {
        assert!(log.contains(ev), "{ev} missing:\n{log}");
    }
}

#[tokio::test]
async fn admin_sets_global_and_group_policy() {
    let gw = started();
    let admin = admin_browser(&gw).await;
    admin
        .submit("/admin/groups", "/admin/groups", &[("name", "")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "empty group name");
    admin
        .submit("/admin/groups", "/admin/groups", &[("name", "ops")])
        .await
        .assert_redirect("/admin/groups/ops", "group");
    admin
        .submit("/admin/groups/ops", "/admin/groups/ops/members", &[("user", "ghost")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "unknown member")
        .assert_contains("no such user", "message");
    admin
        .submit("/admin/groups/ops", "/admin/groups/ops/methods", &[])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "no method")
        .assert_contains("Tick at least one", "message");
    admin
        .submit("/admin/groups/ops", "/admin/groups/ops/methods", &[("m_totp", "on"), ("m_backup-code", "on")])
        .await
        .assert_redirect("/admin/groups/ops", "group methods");
    admin
        .submit("/admin/groups/ops", "/admin/groups/ops/force", &[("on", "on")])
        .await
        .assert_redirect("/admin/groups/ops", "group force");
    let shown = gw.cli_ok(&["policy", "show"]);
    assert!(shown.contains("ops") && shown.contains("totp,backup-code"), "{shown}");

    admin
        .submit("/admin/policy", "/admin/policy/backup-codes", &[("count", "500")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "count")
        .assert_contains("from 1 to 50", "message");
    admin
        .submit("/admin/policy", "/admin/policy/methods", &[])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "no global method");
    assert!(gw.cli_ok(&["policy", "show"]).contains("10 per set"), "nothing written");
    admin
        .submit("/admin/policy", "/admin/policy/backup-codes", &[("count", "6")])
        .await
        .assert_redirect("/admin/policy", "count");
    admin
        .submit(
            "/admin/policy",
            "/admin/policy/methods",
            &[("m_totp", "on"), ("m_keyword", "on"), ("m_backup-code", "on")],
        )
        .await
        .assert_redirect("/admin/policy", "methods");
    admin
        .submit("/admin/policy", "/admin/policy/force", &[("on", "on")])
        .await
        .assert_redirect("/admin/policy", "force");
    let shown = gw.cli_ok(&["policy", "show"]);
    assert!(
        shown.contains("force 2FA (global): on")
            && shown.contains("6 per set")
            && shown.contains("totp,backup-code,keyword"),
        "{shown}"
    );
    // The administrator is forced too, and has no factor yet: enrollment comes first.
    admin.get("/admin/policy").await.assert_redirect("/enroll", "the admin must enroll as well");
    let enroll = admin.get("/enroll").await;
    let seed = web_support::field_value(&enroll.body, "seed").expect("seed");
    let mut device = common::TotpDevice::new(&seed);
    admin
        .post("/account/totp", &[("csrf", &enroll.csrf()), ("seed", &seed), ("code", &device.code())])
        .await
        .assert_redirect("/account?ok=totp", "admin enrolls");
    admin.get("/admin/policy").await.assert_contains("Turn off for everyone", "switch shows its state");
    admin
        .submit("/admin/groups/ops", "/admin/groups/ops/delete", &[])
        .await
        .assert_redirect("/admin/groups", "delete group");
    assert!(audit(&gw, "policy.force_2fa").contains("global: on"));
}

#[tokio::test]
async fn admin_manages_targets_host_keys_and_grants() {
    let gw = started();
    let admin = admin_browser(&gw).await;
    gw.add_user("alice", PASSWORD);
    admin.get("/admin/targets").await.assert_contains("No targets yet", "empty state");
    let form = |port: &'static str| {
        vec![
            ("name", "web1"),
            ("host", "127.0.0.1"),
            ("port", port),
            ("username", "root"),
            ("credential_kind", "password"),
            ("credential", "secret pw"),
        ]
    };
    admin
        .submit("/admin/targets", "/admin/targets", &form("70000"))
        .await
        .assert_status(StatusCode::BAD_REQUEST, "bad port")
        .assert_contains("from 1 to 65535", "message");
    admin
        .submit(
            "/admin/targets",
            "/admin/targets",
            &[
                ("name", "web1"),
                ("host", "127.0.0.1"),
                ("port", "22"),
                ("username", "root"),
                ("credential_kind", "key"),
                ("credential", "not a key"),
            ],
        )
        .await
        .assert_status(StatusCode::BAD_REQUEST, "bad key")
        .assert_contains("not an OpenSSH private key", "message");
    assert!(!gw.cli_ok(&["target", "list"]).contains("web1"), "nothing written");
    admin
        .submit("/admin/targets", "/admin/targets", &form("22"))
        .await
        .assert_redirect("/admin/targets/web1", "create");
    let page = admin.get("/admin/targets/web1").await;
    page.assert_contains("No key pinned", "unpinned").assert_contains("Nobody can reach this target yet", "no grants");
    assert!(!page.body.contains("secret pw"), "the credential is never shown");

    admin
        .submit("/admin/targets/web1", "/admin/targets/web1/host-key", &[("key", "ssh-ed25519 garbage")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "bad host key");
    let key = gw.new_key("hostkey");
    admin
        .submit("/admin/targets/web1", "/admin/targets/web1/host-key", &[("key", &key.line)])
        .await
        .assert_redirect("/admin/targets/web1", "pin");
    admin.get("/admin/targets/web1").await.assert_contains(&key.fingerprint(), "fingerprint shown");
    admin
        .submit("/admin/targets/web1", "/admin/targets/web1/forget-host-key", &[])
        .await
        .assert_redirect("/admin/targets/web1", "forget");
    admin.get("/admin/targets/web1").await.assert_contains("No key pinned", "forgotten");

    admin
        .submit(
            "/admin/targets/web1",
            "/admin/targets/web1/edit",
            &[("host", "bad host!"), ("port", "22"), ("username", "root")],
        )
        .await
        .assert_status(StatusCode::BAD_REQUEST, "bad host");
    admin
        .submit(
            "/admin/targets/web1",
            "/admin/targets/web1/edit",
            &[("host", "localhost"), ("port", "2022"), ("username", "deploy")],
        )
        .await
        .assert_redirect("/admin/targets/web1", "edit");
    admin.get("/admin/targets").await.assert_contains("localhost:2022", "edited address");

    admin
        .submit("/admin/targets/web1", "/admin/targets/web1/grant", &[("kind", "user"), ("who", "ghost")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "unknown user");
    admin
        .submit("/admin/targets/web1", "/admin/targets/web1/grant", &[("kind", "user"), ("who", "alice")])
        .await
        .assert_redirect("/admin/targets/web1", "grant");
    admin
        .submit("/admin/targets/web1", "/admin/targets/web1/grant", &[("kind", "user"), ("who", "alice")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "grant twice");
    admin.get("/admin/targets").await.assert_contains("user alice", "grantee listed");
    admin
        .submit("/admin/targets/web1", "/admin/targets/web1/revoke", &[("kind", "user"), ("who", "alice")])
        .await
        .assert_redirect("/admin/targets/web1", "revoke");
    admin
        .submit("/admin/targets/web1", "/admin/targets/web1/delete", &[])
        .await
        .assert_redirect("/admin/targets?ok=deleted", "delete");
    let log = audit(&gw, "target");
    assert!(
        log.contains("target.create") && log.contains("target.host_key.pin") && log.contains("target.delete"),
        "{log}"
    );
}

#[tokio::test]
async fn audit_log_filters_and_pages_and_session_pages_have_empty_states() {
    let gw = started();
    let admin = admin_browser(&gw).await;
    for i in 0..55 {
        Browser::new(&gw).password_step(&format!("nobody{i}"), "wrong password").await;
    }
    let page = admin.get("/admin/audit?event=login.password&user=nobody3").await;
    page.assert_status(StatusCode::OK, "filtered").assert_contains("nobody3", "match");
    assert!(!page.body.contains("nobody4<"), "filter by user");
    admin
        .get("/admin/audit?since=yesterday")
        .await
        .assert_status(StatusCode::BAD_REQUEST, "bad date")
        .assert_contains("YYYY-MM-DD", "message");
    admin.get("/admin/audit?since=2000-01-01&until=2000-01-02").await.assert_contains("No events match", "empty range");
    let first = admin.get("/admin/audit?event=login").await;
    let older = regex::Regex::new(r#"href="/admin/audit\?([^"]+)" id="older""#)
        .expect("regex")
        .captures(&first.body)
        .map(|c| c[1].replace("&amp;", "&"))
        .expect("a link to older events");
    admin
        .get(&format!("/admin/audit?{older}"))
        .await
        .assert_status(StatusCode::OK, "older page")
        .assert_contains("login.", "older events");

    admin.get("/admin/recordings").await.assert_contains("No recordings yet", "empty recordings");
    admin.get("/admin/recordings/999").await.assert_status(StatusCode::NOT_FOUND, "unknown recording");
    admin.get("/admin/live").await.assert_contains("Nobody is connected", "empty live sessions");
    admin
        .submit("/admin/live", "/admin/live/999/terminate", &[])
        .await
        .assert_status(StatusCode::NOT_FOUND, "unknown session");
}

#[tokio::test]
async fn health_page_shows_what_can_be_checked_and_warns_about_forced_scopes_that_cannot() {
    let gw = started();
    let admin = admin_browser(&gw).await;
    let page = admin.get("/admin/health").await;
    page.assert_status(StatusCode::OK, "health page");
    let row = |label: &str| -> String {
        let start = page
            .body
            .find(&format!("<td>{label}</td>"))
            .unwrap_or_else(|| panic!("no row for {label}:\n{}", page.body));
        page.body[start..].split("</tr>").next().unwrap_or_default().to_string()
    };
    assert!(row("Authenticator code").contains("ready"), "{}", row("Authenticator code"));
    assert!(row("RADIUS").contains("not configured") && row("RADIUS").contains("[radius]"), "{}", row("RADIUS"));
    assert!(row("Duo").contains("not configured") && row("Duo").contains("[duo]"), "{}", row("Duo"));
    assert!(!page.body.contains("Cannot work"), "nothing is forced yet");

    // Forced for everyone with only methods this gateway cannot check: a warning, and the
    // same for a forced group whose own set leaves nothing usable.
    // (The administrator is exempt, or the forced policy would send them to enrollment.)
    gw.cli_ok(&["user", "exempt", "admin", "on"]);
    gw.cli_ok(&["policy", "methods", "duo,radius"]);
    gw.cli_ok(&["policy", "force-2fa", "on"]);
    gw.cli_ok(&["group", "add", "ops"]);
    gw.cli_ok(&["policy", "force-2fa", "on", "--group", "ops"]);
    let page = admin.get("/admin/health").await;
    page.assert_contains("Cannot work", "warning")
        .assert_contains("forced for everyone", "global warning")
        .assert_contains("Group ops", "group warning");
    // Every admin page says so too, with a link to the health page.
    admin.get("/admin/users").await.assert_contains("id=\"health-warning\"", "the warning on the admin pages");
    gw.cli_ok(&["policy", "methods", "totp,duo"]);
    let users = admin.get("/admin/users").await;
    assert!(!users.body.contains("health-warning"), "no warning once a usable method is allowed");
    let page = admin.get("/admin/health").await;
    assert!(!page.body.contains("Cannot work"), "TOTP can be checked: no warning\n{}", page.body);
    // The administrators' scope alone, with nothing it allows that can be checked here.
    gw.cli_ok(&["policy", "force-2fa", "off"]);
    gw.cli_ok(&["policy", "force-2fa", "off", "--group", "ops"]);
    gw.cli_ok(&["policy", "methods", "duo,radius"]);
    gw.cli_ok(&["policy", "force-2fa", "on", "--admins"]);
    admin.get("/admin/health").await.assert_contains("required of every administrator", "administrators' warning");
    gw.cli_ok(&["policy", "methods", "totp,duo"]);

    // The RADIUS test with no servers says so; bad input is refused.
    admin
        .submit("/admin/health", "/admin/health/radius", &[("user", "alice"), ("password", "x")])
        .await
        .assert_status(StatusCode::OK, "test request")
        .assert_contains("no RADIUS server is configured", "result");
    admin
        .submit("/admin/health", "/admin/health/radius", &[("user", ""), ("password", "x")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "empty user");
    assert!(audit(&gw, "health.radius_test").contains("test request for RADIUS user alice"));
}
