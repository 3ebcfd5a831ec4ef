//! Sudo mode on the web, against a real `gatehouse serve`: someone with the password and
//! a trusted browser's cookie (a full web session without any factor) can change no
//! credential — no TOTP seed, application passcode, SSH key or keyword — until they pass
//! a second factor at the confirmation page, which counts wrong answers towards the lock,
//! returns only to local pages, and holds for a few minutes. Each change is mailed to the
//! user. A wrong current password at the password page counts like a failed login.

mod common;
mod web_support;

use common::{Backend, Gw, SmtpSink, Ssh, TotpDevice, totp_now};
use reqwest::StatusCode;
use web_support::{Browser, audit};

const PASSWORD: &str = "correct horse battery";
/// A TOTP seed the attacker's own authenticator holds.
const ATTACKER_SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const ALICE: &str = "alice@example.com";

fn started() -> Gw {
    let mut gw = Gw::new(Backend::Sqlite);
    gw.start();
    gw
}

/// `alice` with a TOTP, and a browser that has her password and trusted-browser cookie.
async fn trusted_session(gw: &Gw) -> (Browser, TotpDevice) {
    gw.add_user("alice", PASSWORD);
    let mut device = TotpDevice::new(&gw.enroll_totp("alice"));
    let b = Browser::new(gw);
    b.login_trusted("alice", PASSWORD, &device.code()).await;
    (b, device)
}

fn public_key(gw: &Gw) -> String {
    let key = gw.new_key("attacker");
    std::fs::read_to_string(&key.public).expect("reading the public key").trim().to_string()
}

/// Makes every proof this gateway's sessions hold older than the five-minute window.
fn age_proofs(gw: &Gw) {
    gw.sql("UPDATE web_sessions SET password_at = password_at - 300, factor_at = factor_at - 300");
}

#[tokio::test]
async fn trusted_browser_cookie_cannot_replace_the_totp_seed() {
    let gw = started();
    let (b, mut device) = trusted_session(&gw).await;
    b.get("/account").await.assert_status(StatusCode::OK, "the trusted browser is logged in");
    let token = b.get("/account").await.csrf();
    b.post("/account/totp", &[("csrf", &token), ("seed", ATTACKER_SEED), ("code", &totp_now(ATTACKER_SEED))])
        .await
        .assert_redirect("/account/confirm?next=%2Faccount%2Ftotp", "replacing the seed is refused");
    b.get("/account/totp")
        .await
        .assert_redirect("/account/confirm?next=%2Faccount%2Ftotp", "the form asks for a fresh factor first");
    assert!(audit(&gw, "account.sudo_required").contains("/account/totp refused"), "the refusal is audited");

    // The stored seed is alice's still: her device passes the web login...
    Browser::new(&gw)
        .login_with_factor("alice", PASSWORD, "totp", &device.code())
        .await
        .assert_redirect("/account", "the old seed");
    // ...and the SSH gate refuses a code of the attacker's seed.
    let ssh = Ssh::new(gw.ssh_port, "alice")
        .arg("-v")
        .stdin("")
        .preferred("password,keyboard-interactive")
        .password(PASSWORD)
        .on_prompt("Authenticator code", &totp_now(ATTACKER_SEED));
    gw.assert_refused(&ssh.run(&[]), "SSH with the attacker's seed");
}

#[tokio::test]
async fn trusted_browser_cookie_cannot_mint_an_application_passcode() {
    let gw = started();
    let (b, _device) = trusted_session(&gw).await;
    let page = b.get("/account/passcodes").await;
    page.assert_status(StatusCode::OK, "the list is open to the session");
    b.post("/account/passcodes", &[("csrf", &page.csrf()), ("label", "exfil")])
        .await
        .assert_redirect("/account/confirm?next=%2Faccount%2Fpasscodes", "minting is refused");
    b.get("/account/passcodes").await.assert_contains("No passcodes", "nothing was minted");
    assert!(!audit(&gw, "passcode").contains("passcode.create"), "nothing was minted");
}

#[tokio::test]
async fn trusted_browser_cookie_cannot_add_an_ssh_key() {
    let gw = started();
    let (b, _device) = trusted_session(&gw).await;
    let line = public_key(&gw);
    b.submit("/account/keys", "/account/keys", &[("key", &line)])
        .await
        .assert_redirect("/account/confirm?next=%2Faccount%2Fkeys", "adding a key is refused");
    assert!(!gw.cli_ok(&["user", "show", "alice"]).contains("SHA256:"), "no key was added");
}

#[tokio::test]
async fn trusted_browser_cookie_cannot_set_a_keyword_to_remove_the_totp() {
    let gw = started();
    let (b, _device) = trusted_session(&gw).await;
    b.submit("/account", "/account/keyword", &[("keyword", "attacker knows"), ("confirm", "attacker knows")])
        .await
        .assert_redirect("/account/confirm?next=%2Faccount", "setting a keyword is refused");
    b.submit(
        "/account",
        "/account/factors/remove",
        &[("method", "totp"), ("proof_method", "keyword"), ("proof", "attacker knows")],
    )
    .await
    .assert_status(StatusCode::BAD_REQUEST, "the keyword is no proof: it was never set");
    let factors = gw.cli_ok(&["factor", "list", "alice"]);
    assert!(factors.contains("totp") && !factors.contains("keyword"), "{factors}");
}

#[tokio::test]
async fn a_fresh_factor_at_the_confirmation_allows_changes_for_five_minutes() {
    let gw = started();
    let (b, mut device) = trusted_session(&gw).await;
    let line = public_key(&gw);
    b.submit("/account/keys", "/account/keys", &[("key", &line)])
        .await
        .assert_redirect("/account/confirm", "refused at first");

    let page = b.get("/account/confirm?next=%2Faccount%2Fkeys").await;
    page.assert_status(StatusCode::OK, "confirmation page")
        .assert_contains("Confirm it is you", "title")
        .assert_contains("Enter your <strong>Authenticator code</strong>", "the last-used method")
        .assert_contains(r#"name="next" value="/account/keys""#, "where it returns");
    assert!(!page.body.contains("Trust this browser"), "a confirmation offers no trust");
    b.confirm("/account/keys", "totp", &device.code()).await.assert_redirect("/account/keys", "back to the form");
    b.submit("/account/keys", "/account/keys", &[("key", &line)])
        .await
        .assert_redirect("/account/keys?ok=key-added", "added once confirmed");
    assert!(audit(&gw, "account.sudo_confirmed").contains("totp via web"), "the confirmation is audited");

    // Past the window, the next change asks again.
    age_proofs(&gw);
    b.submit("/account/passcodes", "/account/passcodes", &[("label", "later")])
        .await
        .assert_redirect("/account/confirm", "the proof expired");
    // A login with the factor is fresh too, for five minutes.
    let c = Browser::new(&gw);
    c.login_with_factor("alice", PASSWORD, "totp", &device.code()).await.assert_redirect("/account", "factor login");
    c.submit("/account/passcodes", "/account/passcodes", &[("label", "job")])
        .await
        .assert_status(StatusCode::OK, "a fresh login");
    age_proofs(&gw);
    c.submit("/account/passcodes", "/account/passcodes", &[("label", "job2")])
        .await
        .assert_redirect("/account/confirm", "expired");
}

#[tokio::test]
async fn the_confirmation_returns_only_to_a_local_path() {
    let gw = started();
    let (b, mut device) = trusted_session(&gw).await;
    b.confirm("https://evil.example", "totp", &device.code()).await.assert_redirect("/account", "an absolute URL");
    let page = b.get("/account/confirm?next=%2F%2Fevil.example").await;
    assert_eq!((page.status, page.location.as_str()), (StatusCode::SEE_OTHER, "/account"), "a protocol-relative URL");
    let page = b.get("/account/confirm?next=https%3A%2F%2Fevil.example").await;
    assert_eq!(page.location, "/account", "an absolute URL");
    age_proofs(&gw);
    b.confirm("//evil.example", "totp", &device.code()).await.assert_redirect("/account", "a protocol-relative URL");
    assert_eq!(
        b.get("/account/confirm?next=%2Faccount%2Fkeys").await.location,
        "/account/keys",
        "a local path is followed"
    );
}

#[tokio::test]
async fn wrong_factor_answers_at_the_confirmation_count_towards_the_lockout() {
    let mut gw = Gw::with_config(
        Backend::Sqlite,
        "[lockout]\nuser_threshold = 3\nsource_threshold = 100\nwindow_secs = 600\nduration_secs = 600\n",
    );
    gw.start();
    let (b, mut device) = trusted_session(&gw).await;
    for _ in 0..3 {
        b.confirm("/account/keys", "totp", "000000").await.assert_status(StatusCode::UNAUTHORIZED, "wrong code");
    }
    b.confirm("/account/keys", "totp", &device.code())
        .await
        .assert_status(StatusCode::UNAUTHORIZED, "the right code while locked")
        .assert_contains("account is locked", "message");
    assert!(audit(&gw, "login.lockout").contains("account locked"), "the guesses locked the account");
    assert!(audit(&gw, "login.factor").contains("totp: wrong answer"), "each answer is audited");
    Browser::new(&gw)
        .password_step("alice", PASSWORD)
        .await
        .assert_status(StatusCode::TOO_MANY_REQUESTS, "the login is locked too");
}

#[tokio::test]
async fn a_user_without_a_factor_confirms_with_the_password() {
    let gw = started();
    gw.add_user("alice", PASSWORD);
    let b = Browser::new(&gw);
    b.login("alice", PASSWORD).await;
    let line = public_key(&gw);
    age_proofs(&gw);
    b.submit("/account/keys", "/account/keys", &[("key", &line)])
        .await
        .assert_redirect("/account/confirm", "the login's password is too old");
    b.get("/account/confirm?next=%2Faccount%2Fkeys").await.assert_contains(r#"name="password""#, "asks the password");
    b.confirm("/account/keys", "password", "not the password")
        .await
        .assert_status(StatusCode::UNAUTHORIZED, "wrong password");
    assert!(audit(&gw, "login.password").contains("wrong password via web"), "counted as a failed password");
    b.confirm("/account/keys", "password", PASSWORD).await.assert_redirect("/account/keys", "confirmed");
    b.submit("/account/keys", "/account/keys", &[("key", &line)])
        .await
        .assert_redirect("/account/keys?ok=key-added", "added");
}

#[tokio::test]
async fn every_change_of_credentials_is_mailed_to_the_user() {
    let smtp = SmtpSink::start();
    let mut gw = Gw::with_config(Backend::Sqlite, &smtp.config());
    gw.start();
    let out = gw.cli_stdin(&["user", "add", "alice", "--password-stdin", "--email", ALICE], &format!("{PASSWORD}\n"));
    gw.assert_success(&out, "user add");
    let b = Browser::new(&gw);
    b.login("alice", PASSWORD).await;
    b.submit("/account/keys", "/account/keys", &[("key", &public_key(&gw))])
        .await
        .assert_redirect("/account/keys?ok=key-added", "add");
    let mail = smtp.wait_for(ALICE, 1);
    assert_eq!(mail.header("Subject").as_deref(), Some("Gatehouse: your account changed"));
    let body = mail.body();
    assert!(body.contains("SSH key SHA256:") && body.contains("was added"), "what: {body}");
    assert!(body.contains("From: 127.0.0.1") && body.contains(" UTC"), "where and when: {body}");
    assert!(body.contains("If this was not you"), "what to do: {body}");

    let made = b.submit("/account/passcodes", "/account/passcodes", &[("label", "nightly")]).await;
    made.assert_status(StatusCode::OK, "passcode");
    let code = regex::Regex::new(r#"id="new-passcode">([a-z0-9-]+)<"#)
        .expect("regex")
        .captures(&made.body)
        .map(|c| c[1].to_string())
        .expect("the passcode");
    let body = smtp.wait_for(ALICE, 2).body();
    assert!(body.contains("application passcode \"nightly\" was created"), "{body}");
    assert!(!body.contains(&code), "the passcode itself is never mailed: {body}");
    assert_eq!(smtp.mails_to(ALICE).len(), 2, "one mail per change");
}

#[tokio::test]
async fn wrong_current_passwords_lock_the_account() {
    let mut gw = Gw::with_config(
        Backend::Sqlite,
        "[lockout]\nuser_threshold = 3\nsource_threshold = 100\nwindow_secs = 600\nduration_secs = 600\n",
    );
    gw.start();
    gw.add_user("alice", PASSWORD);
    let b = Browser::new(&gw);
    b.login("alice", PASSWORD).await;
    let token = b.get("/account/password").await.csrf();
    let change = |current: &'static str| {
        let token = token.clone();
        let b = &b;
        async move {
            b.post(
                "/account/password",
                &[("csrf", &token), ("current", current), ("new", "a new password 1"), ("confirm", "a new password 1")],
            )
            .await
        }
    };
    for _ in 0..3 {
        change("a wrong guess")
            .await
            .assert_status(StatusCode::BAD_REQUEST, "wrong current password")
            .assert_contains("not your current password", "message");
    }
    change(PASSWORD)
        .await
        .assert_status(StatusCode::TOO_MANY_REQUESTS, "locked: even the right password changes nothing")
        .assert_contains("account is locked", "the page says so");
    assert!(audit(&gw, "login.lockout").contains("account locked"), "the same lock as failed logins");
    assert!(!audit(&gw, "user.password").contains("changed via web"), "the password was not changed");
    Browser::new(&gw)
        .password_step("alice", PASSWORD)
        .await
        .assert_status(StatusCode::TOO_MANY_REQUESTS, "the login is locked too");
}
