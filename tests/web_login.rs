//! The web login against a real `gatehouse serve`: the bootstrap administrator's forced
//! password change, session rotation and cookie flags, the second factor (default method,
//! switching, wrong and replayed codes), lockout shared with SSH, CSRF, trusted browsers,
//! and the forced enrollment of a group member.

mod common;
mod web_support;

use common::{Backend, Gw, Ssh, TotpDevice, stderr};
use reqwest::StatusCode;
use web_support::{ADMIN_PASSWORD, Browser, admin_browser, audit, bootstrap_password, field_value};

const PASSWORD: &str = "correct horse battery";

fn started() -> Gw {
    let mut gw = Gw::new(Backend::Sqlite);
    gw.start();
    gw
}

#[tokio::test]
async fn first_start_admin_must_choose_a_new_password_before_anything_else() {
    let gw = started();
    let b = Browser::new(&gw);
    let once = bootstrap_password(&gw);
    b.get("/account").await.assert_redirect("/login", "anonymous");
    b.get("/admin/users").await.assert_redirect("/login", "anonymous admin page");

    b.password_step("admin", "not the password")
        .await
        .assert_status(StatusCode::UNAUTHORIZED, "wrong password")
        .assert_contains("Wrong user name or password", "message");
    b.password_step("", &once)
        .await
        .assert_status(StatusCode::BAD_REQUEST, "empty name")
        .assert_contains("Enter your user name", "message");

    b.login("admin", &once).await;
    for path in ["/account", "/admin/users", "/account/keys", "/enroll"] {
        b.get(path).await.assert_redirect("/account/password", path);
    }
    let page = b.get("/account/password").await;
    page.assert_status(StatusCode::OK, "forced page").assert_contains("Choose a new password", "banner");
    let token = page.csrf();
    let short = b
        .post("/account/password", &[("csrf", &token), ("current", &once), ("new", "short"), ("confirm", "short")])
        .await;
    short.assert_status(StatusCode::BAD_REQUEST, "short password").assert_contains("at least 8 characters", "message");
    let differ = b
        .post(
            "/account/password",
            &[("csrf", &token), ("current", &once), ("new", ADMIN_PASSWORD), ("confirm", "something else")],
        )
        .await;
    differ.assert_status(StatusCode::BAD_REQUEST, "mismatch").assert_contains("The two entries differ", "message");
    let wrong = b
        .post(
            "/account/password",
            &[("csrf", &token), ("current", "wrong current"), ("new", ADMIN_PASSWORD), ("confirm", ADMIN_PASSWORD)],
        )
        .await;
    wrong
        .assert_status(StatusCode::BAD_REQUEST, "wrong current")
        .assert_contains("not your current password", "message");
    b.get("/account").await.assert_redirect("/account/password", "still forced after bad input");

    b.post(
        "/account/password",
        &[("csrf", &token), ("current", &once), ("new", ADMIN_PASSWORD), ("confirm", ADMIN_PASSWORD)],
    )
    .await
    .assert_redirect("/account?ok=password", "change");
    // Next, the first start's administrators' scope asks for a factor before any admin
    // page (tests/web_force_scopes.rs enrolls one); without the scope the page opens.
    b.get("/admin/users").await.assert_redirect("/enroll", "a factor first, for an administrator");
    gw.cli_ok(&["policy", "force-2fa", "off", "--admins"]);
    b.get("/admin/users")
        .await
        .assert_status(StatusCode::OK, "admin page after the change")
        .assert_contains(">admin</a>", "user list");

    let other = Browser::new(&gw);
    other.password_step("admin", &once).await.assert_status(StatusCode::UNAUTHORIZED, "one-time password is spent");
    other.login("admin", ADMIN_PASSWORD).await;
    other.get("/admin/users").await.assert_status(StatusCode::OK, "new password works");
    assert!(audit(&gw, "user.password").contains("changed via web"));
}

#[tokio::test]
async fn session_cookie_is_rotated_at_each_step_and_flags_are_set() {
    let gw = started();
    gw.add_user("alice", PASSWORD);
    let mut device = TotpDevice::new(&gw.enroll_totp("alice"));
    let b = Browser::new(&gw);

    let login = b.get("/login").await;
    // The form starts no session: its cookie only carries what the CSRF token is made from.
    assert!(!login.set_cookies.iter().any(|c| c.starts_with("gh_session=")), "{:?}", login.set_cookies);
    let cookie = login.set_cookies.iter().find(|c| c.starts_with("gh_login=")).expect("the login form's cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http must not set Secure: {cookie}");
    assert_eq!(b.session_id(), None, "no session before the password");

    b.post("/login", &[("csrf", &login.csrf()), ("username", "alice"), ("password", PASSWORD)])
        .await
        .assert_redirect("/login/factor", "password");
    let after_password = b.session_id().expect("session after the password");
    b.get("/account").await.assert_redirect("/login", "half-logged-in session is not a login");

    let page = b.get("/login/factor").await;
    page.assert_status(StatusCode::OK, "factor page").assert_contains("Authenticator code", "default method");
    b.post("/login/factor", &[("csrf", &page.csrf()), ("method", "totp"), ("code", &device.code())])
        .await
        .assert_redirect("/account", "factor");
    let full = b.session_id().expect("full session");
    assert_ne!(after_password, full, "the id must change when the factor is passed");
    b.get("/account").await.assert_status(StatusCode::OK, "logged in");

    // Earlier ids are dead: replaying them gets nowhere.
    let raw = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    for old in [&after_password] {
        let r = raw
            .get(format!("{}/account", gw.web_url()))
            .header("cookie", format!("gh_session={old}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers().get("location").and_then(|v| v.to_str().ok()), Some("/login"));
    }

    // Logout ends the session on the server, not only in the browser.
    let token = b.get("/account").await.csrf();
    b.post("/logout", &[("csrf", &token)]).await.assert_redirect("/login", "logout");
    let r = raw
        .get(format!("{}/account", gw.web_url()))
        .header("cookie", format!("gh_session={full}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/login"),
        "a logged-out id must not work"
    );
}

#[tokio::test]
async fn second_factor_offers_the_last_used_method_and_checks_answers() {
    let gw = started();
    gw.add_user("alice", PASSWORD);
    let mut device = TotpDevice::new(&gw.enroll_totp("alice"));
    let b = Browser::new(&gw);
    b.login_to_factor("alice", PASSWORD).await;
    let page = b.get("/login/factor").await;
    let token = page.csrf();
    b.post("/login/factor", &[("csrf", &token), ("method", "totp"), ("code", "")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "empty")
        .assert_contains("Enter the code", "message");
    b.post("/login/factor", &[("csrf", &token), ("method", "totp"), ("code", "000000")])
        .await
        .assert_status(StatusCode::UNAUTHORIZED, "wrong")
        .assert_contains("not right", "message");
    b.post("/login/factor", &[("csrf", &token), ("method", "radius"), ("code", "1")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "method not enrolled");
    let code = device.code();
    b.post("/login/factor", &[("csrf", &token), ("method", "totp"), ("code", &code)])
        .await
        .assert_redirect("/account", "right code");

    // The same code in another browser is a replay.
    let other = Browser::new(&gw);
    other
        .login_with_factor("alice", PASSWORD, "totp", &code)
        .await
        .assert_status(StatusCode::UNAUTHORIZED, "replay")
        .assert_contains("already used", "message");

    // Add a keyword on the web; the default stays the last-used method (TOTP).
    let token = b.get("/account").await.csrf();
    b.post("/account/keyword", &[("csrf", &token), ("keyword", "open sesame"), ("confirm", "open sesame")])
        .await
        .assert_redirect("/account?ok=keyword", "keyword");
    let c = Browser::new(&gw);
    c.login_to_factor("alice", PASSWORD).await;
    let page = c.get("/login/factor").await;
    page.assert_contains("Enter your <strong>Authenticator code</strong>", "TOTP is the default")
        .assert_contains("/login/factor?method=keyword", "keyword offered");
    let page = c.get("/login/factor?method=keyword").await;
    page.assert_contains("Enter your <strong>Access keyword</strong>", "switched");
    c.post("/login/factor", &[("csrf", &page.csrf()), ("method", "keyword"), ("code", "open sesame")])
        .await
        .assert_redirect("/account", "keyword login");

    // Now the keyword is the default, on the web and over SSH.
    let d = Browser::new(&gw);
    d.login_to_factor("alice", PASSWORD).await;
    d.get("/login/factor")
        .await
        .assert_contains("Enter your <strong>Access keyword</strong>", "keyword became the default");
    let ssh = Ssh::new(gw.ssh_port, "alice")
        .arg("-v")
        .stdin("")
        .preferred("password,keyboard-interactive")
        .password(PASSWORD)
        .on_prompt("keyword", "open sesame");
    let out = ssh.run(&[]);
    let prompts = ssh.prompts_seen();
    assert!(
        stderr(&out).contains("Authenticated to"),
        "ssh with the keyword: {prompts:?}\n{}\n{}",
        stderr(&out),
        gw.log()
    );
    let first_factor = prompts.iter().find(|p| !p.to_lowercase().contains("password")).cloned().unwrap_or_default();
    assert!(first_factor.contains("keyword"), "SSH must first ask for the method last used on the web: {prompts:?}");
    let log = audit(&gw, "login.factor");
    assert!(log.contains("keyword via web") && log.contains("totp via web"), "{log}");
}

#[tokio::test]
async fn failed_web_logins_lock_the_account_for_ssh_too() {
    let mut gw = Gw::with_config(
        Backend::Sqlite,
        "[lockout]\nuser_threshold = 3\nsource_threshold = 100\nwindow_secs = 600\nduration_secs = 600\n",
    );
    gw.start();
    gw.add_user("alice", PASSWORD);
    let b = Browser::new(&gw);
    for _ in 0..3 {
        b.password_step("alice", "wrong password!").await.assert_status(StatusCode::UNAUTHORIZED, "wrong password");
    }
    b.password_step("alice", PASSWORD)
        .await
        .assert_status(StatusCode::TOO_MANY_REQUESTS, "locked")
        .assert_contains("Too many failed attempts", "message");
    let out = Ssh::new(gw.ssh_port, "alice").arg("-v").stdin("").preferred("password").password(PASSWORD).run(&[]);
    assert!(!stderr(&out).contains("Authenticated to"), "the web failures must lock SSH as well:\n{}", stderr(&out));
    assert!(audit(&gw, "login.lockout").contains("account locked"));
}

#[tokio::test]
async fn every_post_needs_the_session_csrf_token() {
    let gw = started();
    let admin = admin_browser(&gw).await;
    let token = admin.get("/account").await.csrf();
    let posts: &[(&str, &[(&str, &str)])] = &[
        ("/admin/users", &[("name", "eve"), ("password", "eve password 1")]),
        ("/admin/groups", &[("name", "ops")]),
        ("/admin/policy/force", &[("on", "on")]),
        ("/account/keyword", &[("keyword", "abcdefgh"), ("confirm", "abcdefgh")]),
        ("/account/passcodes", &[("label", "job")]),
        ("/account/password", &[("current", ADMIN_PASSWORD), ("new", "another one 1"), ("confirm", "another one 1")]),
        ("/logout", &[]),
    ];
    for (path, form) in posts {
        admin
            .post(path, form)
            .await
            .assert_status(StatusCode::FORBIDDEN, &format!("{path} without a token"))
            .assert_contains("Form expired", "message");
        let mut wrong: Vec<(&str, &str)> = form.to_vec();
        wrong.push(("csrf", "0000"));
        admin.post(path, &wrong).await.assert_status(StatusCode::FORBIDDEN, &format!("{path} with a wrong token"));
    }
    // A token of another session is no good either.
    let other = Browser::new(&gw);
    let foreign = other.get("/login").await.csrf();
    admin
        .post("/admin/users", &[("csrf", &foreign), ("name", "eve"), ("password", "eve password 1")])
        .await
        .assert_status(StatusCode::FORBIDDEN, "foreign token");
    // The login form itself is protected.
    other
        .post("/login", &[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .await
        .assert_status(StatusCode::FORBIDDEN, "login without token");

    // Nothing was written, and the session still works with its own token.
    let users = gw.cli_ok(&["user", "list"]);
    assert!(!users.contains("eve"), "{users}");
    assert!(gw.cli_ok(&["policy", "show"]).contains("force 2FA (global): off"));
    admin.get("/account").await.assert_status(StatusCode::OK, "still logged in");
    admin
        .post("/admin/groups", &[("csrf", &token), ("name", "ops")])
        .await
        .assert_redirect("/admin/groups/ops", "with the token");
    other.login("admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn trusted_browser_skips_the_web_factor_but_never_ssh() {
    let gw = started();
    gw.add_user("alice", PASSWORD);
    let mut device = TotpDevice::new(&gw.enroll_totp("alice"));
    let b = Browser::new(&gw);
    b.login_to_factor("alice", PASSWORD).await;
    let page = b.get("/login/factor").await;
    let token = page.csrf();
    b.post(
        "/login/factor",
        &[("csrf", &token), ("method", "totp"), ("code", &device.code()), ("trust", "on"), ("trust_days", "365")],
    )
    .await
    .assert_status(StatusCode::BAD_REQUEST, "too many days")
    .assert_contains("Choose 1 to 90 days", "message");
    let done = b
        .post(
            "/login/factor",
            &[("csrf", &token), ("method", "totp"), ("code", &device.code()), ("trust", "on"), ("trust_days", "30")],
        )
        .await;
    done.assert_redirect("/account", "factor with trust");
    let trust = done.set_cookies.iter().find(|c| c.starts_with("gh_trust=")).expect("a trust cookie");
    assert!(trust.contains("Max-Age=2592000") && trust.contains("HttpOnly"), "{trust}");

    let devices = b.get("/account/devices").await;
    devices
        .assert_contains("this browser", "the current browser is marked")
        .assert_contains("Chrome on Linux", "label");
    let token = devices.csrf();
    b.post("/logout", &[("csrf", &token)]).await;

    // Same browser: the password alone is enough on the web.
    b.login("alice", PASSWORD).await;
    assert!(audit(&gw, "login.success").contains("password and trusted browser via web"));
    // Another browser is asked.
    Browser::new(&gw).password_step("alice", PASSWORD).await.assert_redirect("/login/factor", "untrusted browser");
    // SSH is always asked, whatever the browser.
    let ssh = Ssh::new(gw.ssh_port, "alice")
        .arg("-v")
        .stdin("")
        .preferred("password,keyboard-interactive")
        .password(PASSWORD);
    let out = ssh.run(&[]);
    assert!(!stderr(&out).contains("Authenticated to"), "SSH must not be skipped by a trusted browser");
    assert!(ssh.prompts_seen().iter().any(|p| p.contains("Authenticator code")), "{:?}", ssh.prompts_seen());

    // Revoking this browser brings the factor back.
    let devices = b.get("/account/devices").await;
    let id = field_value(&devices.body, "id").expect("device id");
    b.post("/account/devices/revoke", &[("csrf", &devices.csrf()), ("id", &id)])
        .await
        .assert_redirect("/account/devices?ok=revoked", "revoke");
    b.get("/account/devices").await.assert_contains("No trusted browsers", "empty state");
    let token = b.get("/account").await.csrf();
    b.post("/logout", &[("csrf", &token)]).await;
    b.password_step("alice", PASSWORD).await.assert_redirect("/login/factor", "revoked browser is asked again");
}

#[tokio::test]
async fn group_forced_member_must_enroll_before_anything_else_then_ssh_asks() {
    let gw = started();
    let admin = admin_browser(&gw).await;
    admin
        .submit("/admin/users", "/admin/users", &[("name", "bob"), ("password", "bob one-time 1")])
        .await
        .assert_redirect("/admin/users/bob", "create bob");
    admin
        .submit("/admin/groups", "/admin/groups", &[("name", "ops")])
        .await
        .assert_redirect("/admin/groups/ops", "create ops");
    admin
        .submit("/admin/groups/ops", "/admin/groups/ops/members", &[("user", "bob")])
        .await
        .assert_redirect("/admin/groups/ops", "add bob");
    admin
        .submit("/admin/groups/ops", "/admin/groups/ops/force", &[("on", "on")])
        .await
        .assert_redirect("/admin/groups/ops", "force on");
    admin.get("/admin/groups").await.assert_contains("required", "group list shows the switch");

    let b = Browser::new(&gw);
    b.login("bob", "bob one-time 1").await;
    b.submit(
        "/account/password",
        "/account/password",
        &[("current", "bob one-time 1"), ("new", PASSWORD), ("confirm", PASSWORD)],
    )
    .await
    .assert_redirect("/account?ok=password", "bob's own password");
    for path in ["/account", "/account/keys", "/account/passcodes", "/admin/users"] {
        b.get(path).await.assert_redirect("/enroll", path);
    }
    let page = b.get("/enroll").await;
    page.assert_status(StatusCode::OK, "enroll page")
        .assert_contains("requires a second factor", "banner")
        .assert_contains("<svg", "QR code")
        .assert_contains("otpauth://totp/Gatehouse:bob", "URI");
    let key = field_value(&page.body, "seed").expect("the seed in the form");
    let token = page.csrf();
    b.post("/account/totp", &[("csrf", &token), ("seed", &key), ("code", "123")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "bad code")
        .assert_contains("does not match", "message");
    b.get("/account").await.assert_redirect("/enroll", "still forced after a bad code");
    let mut device = TotpDevice::new(&key);
    b.post("/account/totp", &[("csrf", &token), ("seed", &key), ("code", &device.code())])
        .await
        .assert_redirect("/account?ok=totp", "enrolled");
    b.get("/account")
        .await
        .assert_status(StatusCode::OK, "free after enrolling")
        .assert_contains("required by your group(s): ops", "reason");

    // Over SSH, bob is now asked for the code by the real client.
    let ssh = Ssh::new(gw.ssh_port, "bob")
        .arg("-v")
        .stdin("")
        .preferred("password,keyboard-interactive")
        .password(PASSWORD)
        .on_prompt("Authenticator code", &device.code());
    let out = ssh.run(&[]);
    assert!(stderr(&out).contains("Authenticated to"), "{:?}\n{}\n{}", ssh.prompts_seen(), stderr(&out), gw.log());
    assert!(ssh.prompts_seen().iter().any(|p| p.contains("Authenticator code")), "{:?}", ssh.prompts_seen());
    assert!(audit(&gw, "policy.force_2fa").contains("group ops: on"));
}

/// The web tables on each configured database (SQLite always, PostgreSQL when the test
/// command provides one): sessions through every stage, a trusted browser, application
/// passcodes, and their revocation by a password change.
#[tokio::test]
async fn web_state_works_on_every_backend() {
    for backend in common::backends() {
        let mut gw = Gw::new(backend);
        gw.start();
        gw.add_user("alice", PASSWORD);
        let mut device = TotpDevice::new(&gw.enroll_totp("alice"));
        let b = Browser::new(&gw);
        b.login_to_factor("alice", PASSWORD).await;
        let page = b.get("/login/factor").await;
        b.post(
            "/login/factor",
            &[
                ("csrf", &page.csrf()),
                ("method", "totp"),
                ("code", &device.code()),
                ("trust", "on"),
                ("trust_days", "1"),
            ],
        )
        .await
        .assert_redirect("/account", &format!("{backend:?}: factor"));
        b.get("/account/devices").await.assert_contains("this browser", &format!("{backend:?}: trusted browser"));
        for label in ["one", "two"] {
            b.submit("/account/passcodes", "/account/passcodes", &[("label", label)])
                .await
                .assert_status(StatusCode::OK, &format!("{backend:?}: passcode"));
        }
        b.get("/account/passcodes").await.assert_contains("two", "listed");
        let token = b.get("/account").await.csrf();
        b.post("/logout", &[("csrf", &token)]).await.assert_redirect("/login", "logout");
        b.login("alice", PASSWORD).await;
        // The trusted browser skipped the factor: the password change asks for it first.
        b.get("/account/password").await.assert_redirect(
            "/account/confirm?next=%2Faccount%2Fpassword",
            &format!("{backend:?}: fresh factor needed"),
        );
        b.confirm("/account/password", "totp", &device.code())
            .await
            .assert_redirect("/account/password", &format!("{backend:?}: confirmed"));
        b.submit(
            "/account/password",
            "/account/password",
            &[("current", PASSWORD), ("new", "new password 12"), ("confirm", "new password 12")],
        )
        .await
        .assert_redirect("/account/password?ok=password", &format!("{backend:?}: change"));
        b.get("/account/passcodes").await.assert_contains("No passcodes", &format!("{backend:?}: passcodes revoked"));
        assert!(audit(&gw, "user.password").contains("2 application passcodes revoked"), "{backend:?}");
    }
}
