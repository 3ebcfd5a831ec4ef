//! Headless Chromium through chromedriver and fantoccini, for the browser tests: started
//! with the flags that keep it off the network, a fresh profile, and small helpers that
//! wait for the navigation a form submit starts.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::common::free_port;

/// chromedriver on a free port, killed on drop.
pub struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_driver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver must be installed (apt-get install chromium chromium-driver)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !crate::common::gateway::port_open(port) {
        assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver { child, port, _profile: tempfile::tempdir().expect("profile dir") }
}

pub async fn browser(driver: &Driver) -> Client {
    browser_with(driver, &[]).await
}

/// A browser that trusts the certificate of `gw`'s web UI (HTTPS, the product's default)
/// by its public key, the way an administrator accepts a self-signed certificate after
/// comparing the fingerprint `serve` printed.
pub async fn browser_trusting(driver: &Driver, gw: &crate::common::Gw) -> Client {
    let cert = gw.data_dir().join("web-tls-cert.pem");
    let script = format!(
        "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform der \
         | openssl dgst -sha256 -binary | base64",
        cert.display()
    );
    let out = Command::new("sh").arg("-c").arg(script).output().expect("running openssl");
    let spki = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success() && !spki.is_empty(), "the certificate's key hash: {out:?}");
    browser_with(driver, &[format!("--ignore-certificate-errors-spki-list={spki}")]).await
}

async fn browser_with(driver: &Driver, extra: &[String]) -> Client {
    let profile = driver._profile.path().display().to_string();
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,900",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.push(format!("--user-data-dir={profile}"));
    args.extend(extra.iter().cloned());
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": args
        }
    });
    let caps = caps.as_object().cloned().unwrap_or_default();
    ClientBuilder::rustls()
        .expect("TLS setup")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("connecting to chromedriver")
}

pub fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("screenshots");
    std::fs::create_dir_all(&dir).expect("creating tests/screenshots");
    dir
}

pub async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).expect("writing a screenshot");
}

/// A screenshot of the whole page, not only the 1200x900 window: the window grows until
/// its viewport holds the page (at most 6000 pixels) for the shot, and shrinks back after.
pub async fn full_page_shot(c: &Client, name: &str) {
    let height = c
        .execute("return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight;", vec![])
        .await
        .ok()
        .and_then(|h| h.as_u64())
        .unwrap_or(900)
        .clamp(900, 6000);
    c.set_window_size(1200, u32::try_from(height).unwrap_or(900)).await.expect("growing the window");
    shot(c, name).await;
    c.set_window_size(1200, 900).await.expect("restoring the window");
}

pub async fn path(c: &Client) -> String {
    c.current_url().await.expect("current url").path().to_string()
}

/// Waits (up to 15 s) until the browser is at `expected` (a form submit navigates
/// asynchronously), then asserts it.
pub async fn wait_path(c: &Client, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = path(c).await;
        if now == expected {
            return;
        }
        assert!(Instant::now() < deadline, "expected to be at {expected}, still at {now}:\n{}", body(c).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (up to 15 s) until the page contains `text`.
pub async fn wait_text(c: &Client, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !body(c).await.contains(text) {
        assert!(Instant::now() < deadline, "the page never showed {text:?}:\n{}", body(c).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn fill(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}"));
    e.clear().await.ok();
    e.send_keys(text).await.unwrap_or_else(|e| panic!("typing into {css}: {e}"));
}

pub async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

pub async fn body(c: &Client) -> String {
    c.source().await.expect("page source")
}

/// Logs in at the login form of `gw` as `user` (the next page is the caller's to wait for).
pub async fn login(c: &Client, gw: &crate::common::Gw, user: &str, password: &str) {
    c.goto(&format!("{}/login", gw.web_url())).await.expect("goto login");
    fill(c, "#username", user).await;
    fill(c, "#password", password).await;
    click(c, "form[action='/login'] button[type=submit]").await;
}

/// Logs out with the navigation's button and waits for the login page.
pub async fn logout(c: &Client) {
    click(c, "form[action='/logout'] button").await;
    wait_path(c, "/login").await;
}

/// On the TOTP enrollment page: reads the manual key as a person would type it into an app,
/// answers with the app's code, and waits for the account page. Returns the app.
pub async fn enroll_totp(c: &Client) -> crate::common::TotpDevice {
    let key = c.find(Locator::Css("#manual-key")).await.expect("manual key").text().await.expect("key text");
    let mut device = crate::common::TotpDevice::new(key.trim());
    fill(c, "#code", &device.code()).await;
    click(c, "form[action='/account/totp'] button[type=submit]").await;
    wait_path(c, "/account").await;
    wait_text(c, "Your authenticator app is set up").await;
    device
}

/// A command of the WebDriver WebAuthn extension (chromedriver implements it): `method` on
/// `path` under the session (`webauthn/authenticator…`), with a JSON body.
#[derive(Debug)]
struct WebAuthnCommand {
    method: http::Method,
    path: String,
    body: Option<serde_json::Value>,
}

impl fantoccini::wd::WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/{}", session.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        (self.method.clone(), self.body.as_ref().map(|b| b.to_string()))
    }
}

async fn webauthn_cmd(
    c: &Client,
    method: http::Method,
    path: String,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let what = format!("{method} {path}");
    c.issue_cmd(WebAuthnCommand { method, path, body }).await.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Adds a virtual authenticator to the browser: a USB security key speaking CTAP2, with
/// resident keys and user verification, that says yes to every request (the touch and the
/// PIN of a person). Returns its id.
pub async fn add_virtual_authenticator(c: &Client) -> String {
    let options = serde_json::json!({
        "protocol": "ctap2",
        "transport": "usb",
        "hasResidentKey": true,
        "hasUserVerification": true,
        "isUserConsenting": true,
        "isUserVerified": true,
    });
    let id = webauthn_cmd(c, http::Method::POST, "webauthn/authenticator".into(), Some(options)).await;
    id.as_str().expect("the authenticator's id").to_string()
}

/// Removes a virtual authenticator (the key unplugged).
pub async fn remove_virtual_authenticator(c: &Client, authenticator: &str) {
    webauthn_cmd(c, http::Method::DELETE, format!("webauthn/authenticator/{authenticator}"), None).await;
}

/// The credentials a virtual authenticator holds, as the extension gives them:
/// `credentialId`, `rpId`, `privateKey` (PKCS#8, base64url), `userHandle`, `signCount`.
pub async fn authenticator_credentials(c: &Client, authenticator: &str) -> Vec<serde_json::Value> {
    let list =
        webauthn_cmd(c, http::Method::GET, format!("webauthn/authenticator/{authenticator}/credentials"), None).await;
    list.as_array().cloned().unwrap_or_default()
}

/// Puts `credential` (as [`authenticator_credentials`] gives it, e.g. with another
/// `signCount`) into a virtual authenticator: a copy of a key.
pub async fn add_credential(c: &Client, authenticator: &str, credential: serde_json::Value) {
    let path = format!("webauthn/authenticator/{authenticator}/credential");
    webauthn_cmd(c, http::Method::POST, path, Some(credential)).await;
}
