//! "My account" over HTTP against a real `gatehouse serve`: SSH keys, application
//! passcodes (shown once, revoked by label, all revoked on a password change), backup
//! codes, factor removal confirmed by a current factor, and that one user can never
//! touch another's keys, browsers, passcodes or factors.

mod common;
mod web_support;

use common::{Backend, Gw, TotpDevice};
use reqwest::StatusCode;
use web_support::{Browser, audit, field_value};

const PASSWORD: &str = "correct horse battery";

fn started() -> Gw {
    let mut gw = Gw::new(Backend::Sqlite);
    gw.start();
    gw
}

fn public_key(gw: &Gw, label: &str) -> String {
    let key = gw.new_key(label);
    std::fs::read_to_string(&key.public).expect("reading the public key").trim().to_string()
}

#[tokio::test]
async fn ssh_keys_are_added_with_fingerprint_and_removed() {
    let gw = started();
    gw.add_user("alice", PASSWORD);
    let b = Browser::new(&gw);
    b.login("alice", PASSWORD).await;
    b.get("/account/keys").await.assert_contains("No keys yet", "empty state");

    let bad = b.submit("/account/keys", "/account/keys", &[("key", "ssh-ed25519 not-base64 me@laptop")]).await;
    bad.assert_status(StatusCode::BAD_REQUEST, "bad key").assert_contains("not an OpenSSH public key", "message");
    assert!(!gw.cli_ok(&["user", "show", "alice"]).contains("SHA256:"), "nothing written for a bad key");

    let line = public_key(&gw, "alice-laptop");
    b.submit("/account/keys", "/account/keys", &[("key", &line)])
        .await
        .assert_redirect("/account/keys?ok=key-added", "add");
    let keys = b.get("/account/keys?ok=key-added").await;
    let fp = field_value(&keys.body, "fingerprint").expect("a fingerprint on the page");
    assert!(fp.starts_with("SHA256:"), "{fp}");
    keys.assert_contains("ssh-ed25519", "type").assert_contains("The key was added", "notice");
    b.submit("/account/keys", "/account/keys", &[("key", &line)])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "twice")
        .assert_contains("already added", "message");

    b.post("/account/keys/remove", &[("csrf", &keys.csrf()), ("fingerprint", &fp)])
        .await
        .assert_redirect("/account/keys?ok=key-removed", "remove");
    b.get("/account/keys").await.assert_contains("No keys yet", "gone");
    assert!(audit(&gw, "key").contains("key.remove"));
}

#[tokio::test]
async fn application_passcodes_are_shown_once_and_revoked_by_label_or_password_change() {
    let gw = started();
    gw.add_user("alice", PASSWORD);
    let b = Browser::new(&gw);
    b.login("alice", PASSWORD).await;
    b.get("/account/passcodes").await.assert_contains("No passcodes", "empty state");
    b.submit("/account/passcodes", "/account/passcodes", &[("label", "")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "empty label")
        .assert_contains("1-64 printable", "message");

    let made = b.submit("/account/passcodes", "/account/passcodes", &[("label", "backup job")]).await;
    made.assert_status(StatusCode::OK, "create").assert_contains("shown only this once", "warning");
    let code = regex::Regex::new(r#"id="new-passcode">([a-z0-9-]+)<"#)
        .expect("regex")
        .captures(&made.body)
        .map(|c| c[1].to_string())
        .expect("the passcode");
    assert_eq!(code.len(), 24, "{code}");
    let listed = b.get("/account/passcodes").await;
    listed.assert_contains("backup job", "listed");
    assert!(!listed.body.contains(&code), "the passcode must never be shown again");
    b.submit("/account/passcodes", "/account/passcodes", &[("label", "backup job")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "duplicate label");

    b.submit("/account/passcodes", "/account/passcodes/revoke", &[("label", "no such label")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "unknown label");
    b.submit("/account/passcodes", "/account/passcodes/revoke", &[("label", "backup job")])
        .await
        .assert_redirect("/account/passcodes?ok=revoked", "revoke");
    b.get("/account/passcodes").await.assert_contains("No passcodes", "revoked");

    for label in ["one", "two"] {
        b.submit("/account/passcodes", "/account/passcodes", &[("label", label)])
            .await
            .assert_status(StatusCode::OK, label);
    }
    // Another session of alice, to see it end with the password change.
    let other = Browser::new(&gw);
    other.login("alice", PASSWORD).await;
    b.submit(
        "/account/password",
        "/account/password",
        &[("current", PASSWORD), ("new", "a new password 1"), ("confirm", "a new password 1")],
    )
    .await
    .assert_redirect("/account/password?ok=password", "change");
    b.get("/account/passcodes").await.assert_contains("No passcodes", "all revoked by the password change");
    other.get("/account").await.assert_redirect("/login", "other sessions end");
    assert!(audit(&gw, "user.password").contains("2 application passcodes revoked"));
}

#[tokio::test]
async fn backup_codes_and_factor_removal_need_a_current_factor() {
    let gw = started();
    gw.add_user("alice", PASSWORD);
    let mut device = TotpDevice::new(&gw.enroll_totp("alice"));
    let b = Browser::new(&gw);
    b.login_with_factor("alice", PASSWORD, "totp", &device.code()).await.assert_redirect("/account", "login");

    let codes = b.submit("/account", "/account/backup-codes", &[]).await;
    codes.assert_status(StatusCode::OK, "codes").assert_contains("shown only this once", "warning");
    let list: Vec<String> = regex::Regex::new(r"<code>([a-z0-9]{4}-[a-z0-9]{4})</code>")
        .expect("regex")
        .captures_iter(&codes.body)
        .map(|c| c[1].to_string())
        .collect();
    assert_eq!(list.len(), 10, "{}", codes.body);
    b.get("/account").await.assert_contains("You have 10 unused backup codes", "count");

    // A backup code logs in once.
    let other = Browser::new(&gw);
    other
        .login_with_factor("alice", PASSWORD, "backup-code", &list[0])
        .await
        .assert_redirect("/account", "backup code");
    Browser::new(&gw)
        .login_with_factor("alice", PASSWORD, "backup-code", &list[0])
        .await
        .assert_status(StatusCode::UNAUTHORIZED, "used backup code");

    // Removing TOTP needs a current factor; a wrong one removes nothing.
    let page = b.get("/account").await;
    let token = page.csrf();
    b.post(
        "/account/factors/remove",
        &[("csrf", &token), ("method", "totp"), ("proof_method", "totp"), ("proof", "000000")],
    )
    .await
    .assert_status(StatusCode::UNAUTHORIZED, "wrong proof")
    .assert_contains("nothing was removed", "message");
    b.post(
        "/account/factors/remove",
        &[("csrf", &token), ("method", "keyword"), ("proof_method", "totp"), ("proof", "1")],
    )
    .await
    .assert_status(StatusCode::BAD_REQUEST, "not enrolled");
    assert!(gw.cli_ok(&["factor", "list", "alice"]).contains("totp"));
    b.post(
        "/account/factors/remove",
        &[("csrf", &token), ("method", "totp"), ("proof_method", "backup-code"), ("proof", &list[1])],
    )
    .await
    .assert_redirect("/account?ok=removed", "removed");
    assert!(!gw.cli_ok(&["factor", "list", "alice"]).contains("totp"));
    assert!(audit(&gw, "factor.remove").contains("totp via web"));
}

#[tokio::test]
async fn one_user_cannot_touch_another_users_keys_devices_passcodes_or_factors() {
    let gw = started();
    gw.add_user("alice", PASSWORD);
    gw.add_user("bob", PASSWORD);
    let bob_key = gw.add_key("bob");
    let mut bob_device = TotpDevice::new(&gw.enroll_totp("bob"));

    // Bob: a passcode and a trusted browser.
    let bob = Browser::new(&gw);
    bob.login_to_factor("bob", PASSWORD).await;
    let page = bob.get("/login/factor").await;
    bob.post(
        "/login/factor",
        &[
            ("csrf", &page.csrf()),
            ("method", "totp"),
            ("code", &bob_device.code()),
            ("trust", "on"),
            ("trust_days", "7"),
        ],
    )
    .await
    .assert_redirect("/account", "bob");
    bob.submit("/account/passcodes", "/account/passcodes", &[("label", "bobs job")])
        .await
        .assert_status(StatusCode::OK, "bob passcode");
    let bob_devices = bob.get("/account/devices").await;
    let bob_device_id = field_value(&bob_devices.body, "id").expect("bob's device id");

    let alice = Browser::new(&gw);
    alice.login("alice", PASSWORD).await;
    alice
        .submit("/account/keys", "/account/keys/remove", &[("fingerprint", &bob_key.fingerprint())])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "bob's key")
        .assert_contains("no key with that fingerprint", "message");
    alice
        .submit("/account/devices", "/account/devices/revoke", &[("id", &bob_device_id)])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "bob's browser");
    alice
        .submit("/account/devices", "/account/devices/revoke-others", &[])
        .await
        .assert_redirect("/account/devices", "alice revokes her own others");
    alice
        .submit("/account/passcodes", "/account/passcodes/revoke", &[("label", "bobs job")])
        .await
        .assert_status(StatusCode::BAD_REQUEST, "bob's passcode");
    alice
        .submit(
            "/account",
            "/account/factors/remove",
            &[("method", "totp"), ("proof_method", "totp"), ("proof", &bob_device.code())],
        )
        .await
        .assert_status(StatusCode::BAD_REQUEST, "alice has no totp; bob's stays");
    alice.get("/account/passcodes").await.assert_contains("No passcodes", "alice does not see bob's passcodes");
    alice.get("/account/devices").await.assert_contains("No trusted browsers", "alice does not see bob's browsers");

    // Bob still has everything.
    assert!(gw.cli_ok(&["user", "show", "bob"]).contains(&bob_key.fingerprint()));
    assert!(gw.cli_ok(&["factor", "list", "bob"]).contains("totp"));
    bob.get("/account/passcodes").await.assert_contains("bobs job", "bob's passcode remains");
    bob.get("/account/devices").await.assert_contains("this browser", "bob's browser remains");
}
