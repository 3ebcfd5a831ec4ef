//! Security keys and passkeys (WebAuthn) in a real headless Chromium with a virtual
//! authenticator (the WebDriver WebAuthn extension: a CTAP2 USB key that says yes to every
//! touch): a user registers a named key and logs in with it; a copy of the key with a lower
//! signature counter is refused and audited as a clone; removing a key needs a code of
//! another factor; a key registered at one address (relying party) is not accepted at
//! another, nor is an answer the browser made for another origin; a group limited to
//! security keys can pass only with one. Every gateway here has a host name in
//! `public_url` (`localhost`, `other.localhost`): WebAuthn refuses an IP address.

mod common;
mod web_support;

use common::{Backend, Gw, backends};
use fantoccini::Client;
use web_support::admin_browser;
use web_support::chrome::{
    add_credential, add_virtual_authenticator, authenticator_credentials, body, browser, click, fill, login, logout,
    path, remove_virtual_authenticator, shot, start_driver, wait_path, wait_text,
};

const PASSWORD: &str = "correct horse battery";
const KEYWORD: &str = "purple elephant";

/// A gateway whose `public_url` is `http://HOST:PORT`, started, with alice.
fn gateway(backend: Backend, host: &str) -> Gw {
    let mut gw = Gw::new(backend);
    gw.set_public_host(host);
    gw.start();
    gw.add_user("alice", PASSWORD);
    gw
}

/// On the security-keys page of a fresh session: registers a key named `name` with the
/// browser's authenticator.
async fn register_key(c: &Client, gw: &Gw, name: &str, shots: Option<&str>) {
    c.goto(&format!("{}/account/security-keys", gw.web_url())).await.expect("goto keys");
    if let Some(prefix) = shots {
        shot(c, &format!("{prefix}-01-security-keys")).await;
    }
    fill(c, "#name", name).await;
    click(c, "form[action='/account/security-keys/begin'] button[type=submit]").await;
    wait_path(c, "/account/security-keys/begin").await;
    if let Some(prefix) = shots {
        shot(c, &format!("{prefix}-02-register")).await;
    }
    click(c, "#register-key").await;
    wait_path(c, "/account/security-keys").await;
    wait_text(c, "Your security key is registered").await;
    if let Some(prefix) = shots {
        shot(c, &format!("{prefix}-03-registered")).await;
    }
}

/// Sets the access keyword on the account page (a second factor to prove removals with).
async fn set_keyword(c: &Client, gw: &Gw) {
    c.goto(&format!("{}/account", gw.web_url())).await.expect("goto account");
    fill(c, "#keyword", KEYWORD).await;
    fill(c, "#confirm", KEYWORD).await;
    click(c, "form[action='/account/keyword'] button[type=submit]").await;
    wait_text(c, "Your access keyword was saved").await;
}

/// Logs in with the password and answers the factor page with the security key; returns
/// the path the browser ends at (`/account` when the key passed).
async fn log_in_with_key(c: &Client, gw: &Gw, shot_name: Option<&str>) -> String {
    login(c, gw, "alice", PASSWORD).await;
    wait_path(c, "/login/factor").await;
    c.goto(&format!("{}/login/factor?method=webauthn", gw.web_url())).await.expect("goto factor");
    wait_text(c, "Use security key").await;
    if let Some(name) = shot_name {
        shot(c, name).await;
    }
    click(c, "#use-key").await;
    // The script asks the authenticator, then submits: wait until the answer is back.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let now = path(c).await;
        let page = body(c).await;
        if now != "/login/factor" || page.contains("class=\"field-error\" role=\"alert\" data-webauthn-error=\"\">") {
            return now;
        }
        assert!(std::time::Instant::now() < deadline, "the factor page never answered:\n{page}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The number of audit events of `kind` whose line contains `text`.
fn audited(gw: &Gw, kind: &str, text: &str) -> usize {
    gw.audit(kind).lines().filter(|l| l.contains(text)).count()
}

#[tokio::test]
async fn register_a_key_log_in_with_it_and_a_copy_with_a_lower_counter_is_refused() {
    let driver = start_driver();
    for backend in backends() {
        let gw = gateway(backend, "localhost");
        let c = browser(&driver).await;
        let key = add_virtual_authenticator(&c).await;
        let shots = (backend == Backend::Sqlite).then_some("webauthn");

        // Registration: no factor yet, so the password of this login is the fresh proof.
        login(&c, &gw, "alice", PASSWORD).await;
        wait_path(&c, "/account").await;
        assert!(body(&c).await.contains("href=\"/account/security-keys\""), "the account page offers keys");
        register_key(&c, &gw, "Blue key", shots).await;
        let page = body(&c).await;
        assert!(page.contains("<td>Blue key</td>"), "the key is listed by name:\n{page}");
        assert!(page.contains("never"), "not used yet:\n{page}");
        assert_eq!(audited(&gw, "factor.enroll", "webauthn key \"Blue key\" via web"), 1);
        c.goto(&format!("{}/account", gw.web_url())).await.expect("goto account");
        let page = body(&c).await;
        assert!(page.contains("Security key or passkey") && page.contains("1 key"), "factor overview:\n{page}");
        if backend == Backend::Sqlite {
            shot(&c, "webauthn-04-account").await;
        }
        set_keyword(&c, &gw).await;
        logout(&c).await;

        // The web login with the key.
        let shot_name = (backend == Backend::Sqlite).then_some("webauthn-05-factor");
        assert_eq!(log_in_with_key(&c, &gw, shot_name).await, "/account", "the key passes the login");
        assert!(gw.audit("login.success").contains("password and webauthn via web"), "{}", gw.audit("login.success"));
        c.goto(&format!("{}/account/security-keys", gw.web_url())).await.expect("goto keys");
        assert!(!body(&c).await.contains("<td>never</td>"), "the key's last use is shown");
        // A change of credentials later in the session asks for a fresh proof: the key
        // gives it at the confirmation page.
        gw.sql("UPDATE web_sessions SET password_at = password_at - 300, factor_at = factor_at - 300");
        fill(&c, "#name", "Spare key").await;
        click(&c, "form[action='/account/security-keys/begin'] button[type=submit]").await;
        wait_path(&c, "/account/confirm").await;
        wait_text(&c, "Use security key").await;
        if backend == Backend::Sqlite {
            shot(&c, "webauthn-05b-confirm").await;
        }
        click(&c, "#use-key").await;
        wait_path(&c, "/account/security-keys").await;
        assert!(gw.audit("account.sudo_confirmed").contains("webauthn"), "{}", gw.audit("account.sudo_confirmed"));
        let creds = authenticator_credentials(&c, &key).await;
        assert_eq!(creds.len(), 1, "one credential: {creds:?}");
        let count = creds[0]["signCount"].as_u64().expect("signCount");
        assert!(count >= 1, "the key counts its signatures: {creds:?}");
        logout(&c).await;

        // A copy of the key whose counter is behind the original's: refused, audited.
        remove_virtual_authenticator(&c, &key).await;
        let copy = add_virtual_authenticator(&c).await;
        let mut cloned = creds[0].clone();
        cloned["signCount"] = serde_json::json!(0);
        add_credential(&c, &copy, cloned).await;
        assert_eq!(log_in_with_key(&c, &gw, None).await, "/login/factor", "the copy does not pass");
        let page = body(&c).await;
        assert!(page.contains("not right") || page.contains("not approved"), "an error is shown:\n{page}");
        if backend == Backend::Sqlite {
            shot(&c, "webauthn-06-clone-refused").await;
        }
        let clone_events = gw.audit("webauthn.clone_suspected");
        assert!(clone_events.contains("Blue key") && clone_events.contains("cloned"), "{clone_events}");
        assert_eq!(audited(&gw, "login.factor", "webauthn: wrong answer"), 1, "{}", gw.audit("login.factor"));

        // The same login goes on with the keyword; then the key is removed, which needs a
        // right code of another factor.
        c.goto(&format!("{}/login/factor?method=keyword", gw.web_url())).await.expect("goto keyword");
        fill(&c, "#code", KEYWORD).await;
        click(&c, "form[action='/login/factor'] button[type=submit]").await;
        wait_path(&c, "/account").await;
        c.goto(&format!("{}/account/security-keys", gw.web_url())).await.expect("goto keys");
        fill(&c, "#proof", "wrong keyword").await;
        click(&c, "form[action='/account/security-keys/remove'] button[type=submit]").await;
        wait_text(&c, "nothing was removed").await;
        assert!(body(&c).await.contains("<td>Blue key</td>"), "still there");
        fill(&c, "#proof", KEYWORD).await;
        click(&c, "form[action='/account/security-keys/remove'] button[type=submit]").await;
        wait_text(&c, "The security key was removed").await;
        if backend == Backend::Sqlite {
            shot(&c, "webauthn-07-removed").await;
        }
        assert!(!body(&c).await.contains("<td>Blue key</td>"), "removed");
        assert_eq!(audited(&gw, "factor.remove", "webauthn key \"Blue key\" via web"), 1);
        c.close().await.ok();
    }
}

/// Run in the factor page: the page's own script asks the authenticator as usual, but
/// its `submit` keeps the answer in `window.answers` instead of sending it.
const CAPTURE: &str = "window.send = HTMLFormElement.prototype.submit; window.answers = []; \
    HTMLFormElement.prototype.submit = function () { \
      window.answers.push(this.querySelector('[data-webauthn-response]').value); };";

/// Run in the factor page: sends `arguments[0]` as the answer to the ceremony
/// `arguments[1]`.
const SEND: &str = "const f = document.querySelector('form[data-webauthn]'); \
    f.querySelector('input[name=ceremony]').value = arguments[1]; \
    f.querySelector('[data-webauthn-response]').value = arguments[0]; \
    (window.send || HTMLFormElement.prototype.submit).call(f);";

/// Reads an attribute of an element of the page.
async fn form_value(c: &Client, css: &str, attribute: &str) -> String {
    let script = format!("return document.querySelector(\"{css}\").getAttribute(\"{attribute}\");");
    c.execute(&script, vec![]).await.expect("reading the form").as_str().unwrap_or_default().to_string()
}

/// Waits (up to 15 s) until an audit event of `kind` contains `text`.
fn wait_audit(gw: &Gw, kind: &str, text: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !gw.audit(kind).contains(text) {
        assert!(std::time::Instant::now() < deadline, "no {kind} event with {text:?}:\n{}", gw.audit(kind));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Touches the key on the factor page and returns the browser's answer, unsent.
async fn captured_answer(c: &Client) -> serde_json::Value {
    c.execute(CAPTURE, vec![]).await.expect("capturing");
    click(c, "#use-key").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let got = c.execute("return window.answers.length ? window.answers[0] : null;", vec![]).await.expect("reading");
        if let Some(text) = got.as_str() {
            return serde_json::from_str(text).expect("the answer is JSON");
        }
        assert!(std::time::Instant::now() < deadline, "the authenticator never answered");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `answer` with its client data rewritten to name `origin`: what the browser would have
/// signed on a page of that origin (a site relaying this gateway's challenge).
fn from_origin(answer: &serde_json::Value, here: &str, origin: &str) -> serde_json::Value {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let field = answer["response"]["clientDataJSON"].as_str().expect("clientDataJSON");
    let client_data = String::from_utf8(b64.decode(field).expect("base64url")).expect("UTF-8");
    assert!(client_data.contains(&format!("\"origin\":\"{here}\"")), "{client_data}");
    let mut out = answer.clone();
    out["response"]["clientDataJSON"] = b64.encode(client_data.replace(here, origin)).into();
    out
}

#[tokio::test]
async fn a_key_is_accepted_only_where_it_was_registered() {
    let driver = start_driver();
    for backend in backends() {
        // Two nodes of one installation, one database, two addresses: another relying party.
        let mut here = Gw::new(backend);
        here.set_public_host("localhost");
        here.start();
        here.add_user("alice", PASSWORD);
        let mut elsewhere = here.join();
        elsewhere.set_public_host("other.localhost");
        elsewhere.start();
        let c = browser(&driver).await;
        add_virtual_authenticator(&c).await;
        login(&c, &here, "alice", PASSWORD).await;
        wait_path(&c, "/account").await;
        register_key(&c, &here, "Blue key", None).await;
        set_keyword(&c, &here).await;
        logout(&c).await;

        // At the other address the key is not asked for: it was registered for localhost.
        login(&c, &elsewhere, "alice", PASSWORD).await;
        wait_path(&c, "/login/factor").await;
        c.goto(&format!("{}/login/factor?method=webauthn", elsewhere.web_url())).await.expect("goto factor");
        wait_text(&c, "None of your security keys was registered at this address (other.localhost)").await;
        if backend == Backend::Sqlite {
            shot(&c, "webauthn-08-other-address").await;
        }
        assert!(!body(&c).await.contains("data-webauthn=\"get\""), "no ceremony begins there");

        // Browsers refuse to ask a key for this relying party from a page of the other
        // origin. An answer naming that origin (a relaying site's) is refused here, by the
        // gateway's own check, and so is the genuine answer once its ceremony was spent.
        login(&c, &here, "alice", PASSWORD).await;
        wait_path(&c, "/login/factor").await;
        c.goto(&format!("{}/login/factor?method=webauthn", here.web_url())).await.expect("goto factor");
        wait_text(&c, "Use security key").await;
        let ceremony = form_value(&c, "input[name=ceremony]", "value").await;
        let answer = captured_answer(&c).await;
        let relayed = from_origin(&answer, &here.web_url(), &elsewhere.web_url());
        c.execute(SEND, vec![relayed.to_string().into(), ceremony.clone().into()]).await.expect("posting");
        wait_audit(&here, "webauthn.refused", "made for another origin");
        wait_text(&c, "data-webauthn-error=\"\">").await;
        assert_eq!(path(&c).await, "/login/factor", "refused");
        // The page now holds a new ceremony; the genuine answer belongs to the spent one.
        c.execute(SEND, vec![answer.to_string().into(), ceremony.into()]).await.expect("posting again");
        wait_audit(&here, "webauthn.refused", "the ceremony was already used");
        wait_text(&c, "data-webauthn-error=\"\">").await;
        assert_eq!(path(&c).await, "/login/factor", "refused");

        // The key itself still works here, for a ceremony of this login.
        c.goto(&format!("{}/login/factor?method=webauthn", here.web_url())).await.expect("goto factor");
        click(&c, "#use-key").await;
        wait_path(&c, "/account").await;
        c.close().await.ok();
    }
}

#[tokio::test]
async fn a_group_limited_to_security_keys_passes_only_with_one() {
    let driver = start_driver();
    for backend in backends() {
        let gw = gateway(backend, "localhost");
        // The administrator limits alice's group to security keys and forces 2FA there.
        gw.cli_ok(&["group", "add", "ops"]);
        gw.cli_ok(&["group", "add-member", "ops", "alice"]);
        gw.cli_ok(&["policy", "methods", "webauthn", "--group", "ops"]);
        gw.cli_ok(&["policy", "force-2fa", "on", "--group", "ops"]);
        let groups = gw.cli_ok(&["group", "list"]);
        assert!(groups.contains("webauthn"), "{groups}");
        assert!(gw.audit("policy.methods").contains("webauthn"), "{}", gw.audit("policy.methods"));

        // alice has no factor yet: she must enroll, and the enrollment page offers a key.
        let c = browser(&driver).await;
        add_virtual_authenticator(&c).await;
        login(&c, &gw, "alice", PASSWORD).await;
        wait_path(&c, "/enroll").await;
        let page = body(&c).await;
        assert!(page.contains("href=\"/account/security-keys\""), "enrollment offers a key:\n{page}");
        if backend == Backend::Sqlite {
            shot(&c, "webauthn-09-enroll-keys-only").await;
        }
        register_key(&c, &gw, "Only key", None).await;
        logout(&c).await;
        // An administrator gives her a keyword too; her group does not allow it.
        gw.cli_stdin(&["factor", "keyword", "alice", "--stdin"], &format!("{KEYWORD}\n"));
        assert!(gw.cli_ok(&["factor", "list", "alice"]).contains("keyword"), "the keyword is enrolled");

        // At the login the key is the only method; the keyword is refused.
        login(&c, &gw, "alice", PASSWORD).await;
        wait_path(&c, "/login/factor").await;
        let page = body(&c).await;
        assert!(page.contains("Use security key") && !page.contains("method=keyword"), "only the key:\n{page}");
        let status = c
            .execute_async(
                "const [done] = arguments; const f = document.querySelector('form'); \
                 const d = new URLSearchParams({ csrf: f.querySelector('[name=csrf]').value, method: 'keyword', \
                 code: 'purple elephant' }); \
                 fetch('/login/factor', { method: 'POST', body: d }).then((r) => done(r.status));",
                vec![],
            )
            .await
            .expect("posting the keyword");
        assert_eq!(status.as_u64(), Some(400), "the keyword is not one of her methods");
        assert_eq!(path(&c).await, "/login/factor");
        click(&c, "#use-key").await;
        wait_path(&c, "/account").await;
        assert!(gw.audit("login.success").contains("password and webauthn via web"));
        c.close().await.ok();
    }
}

#[tokio::test]
async fn administrators_allow_security_keys_per_group_and_the_health_page_says_where_they_work() {
    for backend in backends() {
        let gw = gateway(backend, "localhost");
        let admin = admin_browser(&gw).await;
        admin
            .submit("/admin/groups", "/admin/groups", &[("name", "ops")])
            .await
            .assert_redirect("/admin/groups/ops", "group");
        let group = admin.get("/admin/groups/ops").await;
        group.assert_contains("name=\"m_webauthn\"", "the method can be ticked");
        admin
            .submit("/admin/groups/ops", "/admin/groups/ops/methods", &[("m_webauthn", "on")])
            .await
            .assert_redirect("/admin/groups/ops", "group methods");
        let shown = gw.cli_ok(&["policy", "show"]);
        assert!(shown.lines().any(|l| l.contains("ops") && l.contains("methods: webauthn")), "{shown}");
        admin
            .get("/admin/health")
            .await
            .assert_contains("Security key or passkey", "the method")
            .assert_contains("relying party localhost, origin http://localhost:", "where keys work");

        // With an IP address in public_url the method cannot work, and the page says why.
        let mut by_ip = Gw::new(backend);
        by_ip.start();
        let admin = admin_browser(&by_ip).await;
        admin.get("/admin/health").await.assert_contains("names no DNS host", "why not");
        admin
            .get("/account/security-keys")
            .await
            .assert_contains("Security keys cannot be used on this gateway", "the account page says so");
    }
}
