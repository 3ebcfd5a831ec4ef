//! Helpers for the web UI tests: a cookie-keeping HTTP client that does not follow
//! redirects (so tests see every 303), CSRF tokens scraped from the pages, and the
//! bootstrap administrator's one-time password from the `serve` log.

#![allow(dead_code)]

pub mod chrome;

use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::{StatusCode, Url};

use crate::common::Gw;

/// A new password for the bootstrap administrator.
pub const ADMIN_PASSWORD: &str = "admin password 42";

/// One browser: its own cookie jar.
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
    pub base: String,
}

/// A page as the browser got it.
pub struct Page {
    pub status: StatusCode,
    pub location: String,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Page {
    /// The first CSRF token on the page.
    pub fn csrf(&self) -> String {
        field_value(&self.body, "csrf").unwrap_or_else(|| panic!("no csrf field on the page:\n{}", self.body))
    }

    pub fn assert_status(&self, expected: StatusCode, what: &str) -> &Page {
        assert_eq!(self.status, expected, "{what}: location={:?}\n{}", self.location, self.body);
        self
    }

    pub fn assert_redirect(&self, to: &str, what: &str) -> &Page {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{what}: body:\n{}", self.body);
        assert!(self.location.starts_with(to), "{what}: redirected to {} instead of {to}", self.location);
        self
    }

    pub fn assert_contains(&self, text: &str, what: &str) -> &Page {
        assert!(self.body.contains(text), "{what}: page lacks {text:?}:\n{}", self.body);
        self
    }
}

/// The self-signed certificate the gateway made in its data dir (HTTPS, the default).
pub fn gateway_certificate(gw: &Gw) -> reqwest::Certificate {
    let pem = std::fs::read(gw.data_dir().join("web-tls-cert.pem")).expect("the gateway's certificate");
    reqwest::Certificate::from_pem(&pem).expect("a PEM certificate")
}

/// The `value` of the first `<input name="NAME" value="…">` in `html`.
pub fn field_value(html: &str, name: &str) -> Option<String> {
    let re = regex::Regex::new(&format!(r#"name="{}" value="([^"]*)""#, regex::escape(name))).ok()?;
    re.captures(html).map(|c| c[1].to_string())
}

impl Browser {
    pub fn new(gw: &Gw) -> Browser {
        let jar = Arc::new(Jar::default());
        let mut builder = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Mozilla/5.0 (X11; Linux x86_64) Chrome/120 gatehouse-test");
        if gw.web_tls() {
            // The gateway's own self-signed certificate, and nothing else, is trusted.
            builder = builder.tls_certs_only([gateway_certificate(gw)]);
        }
        let client = builder.build().expect("building the HTTP client");
        Browser { client, jar, base: gw.web_url() }
    }

    async fn finish(resp: reqwest::Response) -> Page {
        let status = resp.status();
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let set_cookies =
            resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect();
        let body = resp.text().await.expect("reading the response body");
        Page { status, location, set_cookies, body }
    }

    pub async fn get(&self, path: &str) -> Page {
        let resp =
            self.client.get(format!("{}{path}", self.base)).send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        Self::finish(resp).await
    }

    /// POSTs a form as given (the caller includes `csrf` or deliberately not).
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        Self::finish(resp).await
    }

    /// GETs `page` for its CSRF token, then POSTs `form` plus that token to `path`.
    pub async fn submit(&self, page: &str, path: &str, form: &[(&str, &str)]) -> Page {
        let token = self.get(page).await.csrf();
        let mut full: Vec<(&str, &str)> = form.to_vec();
        full.push(("csrf", &token));
        self.post(path, &full).await
    }

    /// The session cookie's value, if the jar has one.
    pub fn session_id(&self) -> Option<String> {
        let url: Url = self.base.parse().expect("base URL");
        let header = self.jar.cookies(&url)?;
        let text = header.to_str().ok()?.to_string();
        text.split(';')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| *k == "gh_session")
            .map(|(_, v)| v.to_string())
    }

    /// Password step of a login, from a fresh login page.
    pub async fn password_step(&self, user: &str, password: &str) -> Page {
        self.submit("/login", "/login", &[("username", user), ("password", password)]).await
    }

    /// Password step that must be followed by the factor page.
    pub async fn login_to_factor(&self, user: &str, password: &str) {
        self.password_step(user, password).await.assert_redirect("/login/factor", "password step");
    }

    /// A full login with a second factor answer for `method`.
    pub async fn login_with_factor(&self, user: &str, password: &str, method: &str, code: &str) -> Page {
        self.login_to_factor(user, password).await;
        let page = self.get(&format!("/login/factor?method={method}")).await;
        page.assert_status(StatusCode::OK, "factor page");
        self.post("/login/factor", &[("csrf", &page.csrf()), ("method", method), ("code", code)]).await
    }

    /// A login with the password only (nothing else due).
    pub async fn login(&self, user: &str, password: &str) {
        self.password_step(user, password).await.assert_redirect("/account", "password-only login");
    }

    /// Answers the confirmation a change of credentials asks for with `method` and `code`
    /// (`password` for the password), returning to `next`.
    pub async fn confirm(&self, next: &str, method: &str, code: &str) -> Page {
        let query = format!("/account/confirm?next={}&method={method}", next.replace('/', "%2F"));
        let page = self.get(&query).await;
        page.assert_status(StatusCode::OK, "confirmation page")
            .assert_contains("Confirm it is you", "confirmation page");
        let field = if method == "password" { "password" } else { "code" };
        self.post("/account/confirm", &[("csrf", &page.csrf()), ("next", next), ("method", method), (field, code)])
            .await
    }

    /// Logs in with a TOTP code and trusts this browser, logs out, then logs in again with
    /// the password alone, as the trusted browser allows: the session of someone who has
    /// the password and the browser's cookie, but not the factor.
    pub async fn login_trusted(&self, user: &str, password: &str, totp_code: &str) {
        self.login_to_factor(user, password).await;
        let page = self.get("/login/factor?method=totp").await;
        self.post(
            "/login/factor",
            &[("csrf", &page.csrf()), ("method", "totp"), ("code", totp_code), ("trust", "on"), ("trust_days", "30")],
        )
        .await
        .assert_redirect("/account", "factor with trust");
        let token = self.get("/account").await.csrf();
        self.post("/logout", &[("csrf", &token)]).await.assert_redirect("/login", "logout");
        self.login(user, password).await;
    }
}

/// The one-time password `serve` printed for `admin` on first start.
pub fn bootstrap_password(gw: &Gw) -> String {
    let log = gw.log();
    let line = log
        .lines()
        .find(|l| l.contains("One-time password:"))
        .unwrap_or_else(|| panic!("no bootstrap password in the log:\n{log}"));
    line.split("One-time password:").nth(1).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Logs in the bootstrap administrator and replaces the one-time password with
/// [`ADMIN_PASSWORD`]; returns the browser, logged in.
///
/// The first start turned on the administrators' force-2FA scope; this turns it off
/// first (`policy force-2fa off --admins`), so the tests that are not about the scope get
/// an administrator who logs in with the password alone. `tests/web_force_scopes.rs`
/// tells the first start with the scope on.
pub async fn admin_browser(gw: &Gw) -> Browser {
    gw.cli_ok(&["policy", "force-2fa", "off", "--admins"]);
    let b = Browser::new(gw);
    let once = bootstrap_password(gw);
    b.login("admin", &once).await;
    b.get("/account").await.assert_redirect("/account/password", "one-time password forces a change");
    b.submit(
        "/account/password",
        "/account/password",
        &[("current", &once), ("new", ADMIN_PASSWORD), ("confirm", ADMIN_PASSWORD)],
    )
    .await
    .assert_redirect("/account?ok=password", "password change");
    b.get("/account").await.assert_status(StatusCode::OK, "account after the change");
    b
}

/// The audit log as the CLI prints it, for `event` (prefix).
pub fn audit(gw: &Gw, event: &str) -> String {
    gw.audit(event)
}
