//! The YubiKey OTP factor in the web UI, against the loopback validation server: a user
//! binds their key on the account page with one touch, logs in with a fresh OTP, and is
//! refused a replayed OTP, another key's OTP, an answer with a bad signature and a service
//! that is down. A user forced to enroll while only YubiKeys are allowed can bind one, and
//! the health page names the validation servers.

mod common;
mod web_support;

use common::{Backend, Gw, SoftYubiKey, ValidationServer, backends};
use reqwest::StatusCode;
use web_support::{Browser, Page, audit};

const PASSWORD: &str = "correct horse battery";

fn started(backend: Backend, server: &ValidationServer) -> Gw {
    let mut gw = Gw::with_config(
        backend,
        &format!(
            "[yubikey]\nclient_id = \"{}\"\napi_urls = [\"{}\"]\ntimeout_secs = 2\n",
            server.client_id(),
            server.url()
        ),
    );
    gw.set_env("GATEHOUSE_YUBIKEY__SECRET_KEY", &server.secret_key());
    gw.start();
    gw
}

/// Answers the factor page of a browser that passed the password step with `otp`.
async fn answer(b: &Browser, otp: &str) -> Page {
    let page = b.get("/login/factor?method=yubikey").await;
    page.assert_status(StatusCode::OK, "factor page").assert_contains("Touch your YubiKey", "instructions");
    b.post("/login/factor", &[("csrf", &page.csrf()), ("method", "yubikey"), ("code", otp)]).await
}

#[tokio::test]
async fn bind_on_the_account_page_then_log_in_with_a_touch() {
    for backend in backends() {
        let mut server = ValidationServer::start();
        let gw = started(backend, &server);
        let mut yubikey = SoftYubiKey::new();
        let mut stranger = SoftYubiKey::new();
        server.register(&yubikey);
        server.register(&stranger);
        gw.add_user("alice", PASSWORD);

        // Self-service: no factor yet, the account page offers a YubiKey.
        let b = Browser::new(&gw);
        b.login("alice", PASSWORD).await;
        b.get("/account").await.assert_contains("href=\"/account/yubikey\"", "the account page offers a YubiKey");
        let form = b.get("/account/yubikey").await;
        form.assert_status(StatusCode::OK, "YubiKey page").assert_contains("Touch the key", "what to do");
        b.post("/account/yubikey", &[("csrf", &form.csrf()), ("otp", "123456")])
            .await
            .assert_status(StatusCode::BAD_REQUEST, "a typed code")
            .assert_contains("32 to 48 characters", "why");
        b.submit("/account/yubikey", "/account/yubikey", &[("otp", &stranger.otp()[..40])])
            .await
            .assert_status(StatusCode::BAD_REQUEST, "no 12-character public id")
            .assert_contains("public id", "why");
        assert!(!gw.cli_ok(&["factor", "list", "alice"]).contains("yubikey"), "{backend:?}: bad input binds nothing");
        let enrolling = yubikey.otp();
        b.submit("/account/yubikey", "/account/yubikey", &[("otp", &enrolling)])
            .await
            .assert_redirect("/account?ok=yubikey", "bound");
        b.get("/account?ok=yubikey")
            .await
            .assert_contains("Your YubiKey is bound.", "confirmation")
            .assert_contains(&format!("YubiKey {}", yubikey.public_id), "the key is listed")
            .assert_contains("Replace YubiKey", "offered again as a replacement");
        b.get("/account/yubikey").await.assert_contains(&yubikey.public_id, "the bound key is named");
        assert!(
            audit(&gw, "factor.enroll").contains(&format!("yubikey {} via web", yubikey.public_id)),
            "the enrollment is audited"
        );

        // The web login asks for the key; the enrolling OTP is spent, a fresh one passes.
        let c = Browser::new(&gw);
        c.login_to_factor("alice", PASSWORD).await;
        answer(&c, &enrolling)
            .await
            .assert_status(StatusCode::UNAUTHORIZED, "the enrolling OTP")
            .assert_contains("already used", "why");
        let otp = yubikey.otp();
        answer(&c, &otp).await.assert_redirect("/account", "a fresh OTP");
        c.get("/account").await.assert_status(StatusCode::OK, "logged in");

        // Elsewhere: the same OTP, another key's, a forged answer, the service down.
        let d = Browser::new(&gw);
        d.login_to_factor("alice", PASSWORD).await;
        answer(&d, &otp)
            .await
            .assert_status(StatusCode::UNAUTHORIZED, "replayed")
            .assert_contains("already used", "why");
        answer(&d, &stranger.otp())
            .await
            .assert_status(StatusCode::UNAUTHORIZED, "another key")
            .assert_contains("not right", "why");
        server.sign_with_wrong_key(true);
        answer(&d, &yubikey.otp())
            .await
            .assert_status(StatusCode::UNAUTHORIZED, "bad signature")
            .assert_contains("did not answer", "why");
        server.sign_with_wrong_key(false);
        server.stop();
        answer(&d, &yubikey.otp())
            .await
            .assert_status(StatusCode::UNAUTHORIZED, "service down")
            .assert_contains("did not answer", "why");
        d.get("/account").await.assert_redirect("/login", "never logged in");

        // Binding while the service is down changes nothing.
        b.submit("/account/yubikey", "/account/yubikey", &[("otp", &yubikey.otp())])
            .await
            .assert_status(StatusCode::SERVICE_UNAVAILABLE, "service down")
            .assert_contains("did not answer", "why");
        assert!(gw.cli_ok(&["factor", "list", "alice"]).contains(&yubikey.public_id), "the bound key stays");

        let factor = audit(&gw, "login.factor");
        for expected in
            ["yubikey via web", "yubikey: code already used", "yubikey: wrong answer", "yubikey: server unavailable"]
        {
            assert!(factor.contains(expected), "{backend:?}: {expected}:\n{factor}");
        }
        assert!(audit(&gw, "factor.enroll").contains("validation server unavailable"), "the failed binding is audited");
        assert!(!gw.log().contains(&otp), "no OTP in the log");
    }
}

#[tokio::test]
async fn a_forced_user_binds_a_yubikey_and_the_health_page_names_the_servers() {
    let server = ValidationServer::start();
    let gw = started(Backend::Sqlite, &server);
    let mut yubikey = SoftYubiKey::new();
    server.register(&yubikey);
    let admin = web_support::admin_browser(&gw).await;
    gw.cli_ok(&["user", "exempt", "admin", "on"]);
    admin
        .get("/admin/health")
        .await
        .assert_contains(&format!("validation servers, in order: {}", server.url()), "where YubiKey OTPs are checked");

    // Only YubiKeys are allowed, and a factor is required of everyone.
    gw.cli_ok(&["policy", "methods", "yubikey"]);
    gw.cli_ok(&["policy", "force-2fa", "on"]);
    assert!(!admin.get("/admin/health").await.body.contains("Cannot work"), "YubiKey can be checked: no warning");
    gw.add_user("frank", PASSWORD);
    let b = Browser::new(&gw);
    b.login("frank", PASSWORD).await;
    b.get("/account").await.assert_redirect("/enroll", "enrollment first");
    let enroll = b.get("/enroll").await;
    enroll.assert_contains("href=\"/account/yubikey\"", "the forced-enrollment page offers a YubiKey");
    b.get("/account/yubikey")
        .await
        .assert_status(StatusCode::OK, "reachable while enrolling")
        .assert_contains("requires a second factor", "banner");
    b.submit("/account/yubikey", "/account/yubikey", &[("otp", &yubikey.otp())])
        .await
        .assert_redirect("/account?ok=yubikey", "bound");
    b.get("/account").await.assert_status(StatusCode::OK, "nothing due any more");

    // Without the [yubikey] table the page says the method cannot be checked.
    let mut plain = Gw::new(Backend::Sqlite);
    plain.start();
    plain.add_user("gina", PASSWORD);
    let p = Browser::new(&plain);
    p.login("gina", PASSWORD).await;
    assert!(!p.get("/account").await.body.contains("/account/yubikey"), "not offered when not configured");
    p.get("/account/yubikey").await.assert_contains("cannot be checked on this gateway", "explained");
    p.submit("/account/yubikey", "/account/yubikey", &[("otp", &yubikey.otp())])
        .await
        .assert_status(StatusCode::SERVICE_UNAVAILABLE, "not configured")
        .assert_contains("not configured", "why");
}
