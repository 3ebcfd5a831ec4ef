//! In-process harness for the web UI's route tests: a [`Gateway`] on a fresh SQLite
//! database in a temp dir, the real router from [`gatehouse_webui::app`], and a [`Client`]
//! that keeps cookies like a browser and sends each request through
//! `tower::ServiceExt::oneshot` (no socket, no redirect following, so every 303 is seen).
//!
//! The end-to-end tests in the workspace's `tests/` drive the real binary; these drive the
//! same router in a few milliseconds per request.

#![allow(dead_code)]

#[path = "../../../tests/common/smtp.rs"]
pub mod smtp;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{Method, Request, StatusCode};
use gatehouse_core::users::{self, NewUser, User};
use gatehouse_core::{Config, Gateway};
use scraper::{Html, Selector};
use tempfile::TempDir;
use tower::ServiceExt;

/// The web UI on a fresh database; the temp dir (data dir, SQLite file, secrets key) lives
/// as long as this value.
pub struct Web {
    pub gw: Gateway,
    pub app: Router,
    _dir: TempDir,
}

/// Opens the web UI on a fresh SQLite database with default settings.
pub async fn open() -> Web {
    open_with(|_| {}).await
}

/// Opens the web UI on a fresh SQLite database, after `adjust` changed the config.
pub async fn open_with(adjust: impl FnOnce(&mut Config)) -> Web {
    let dir = tempfile::tempdir().expect("creating a temp dir");
    let mut config = Config {
        data_dir: dir.path().join("data"),
        database_url: format!("sqlite://{}?mode=rwc", dir.path().join("data/gatehouse.db").display()),
        node_name: "test-node".into(),
        ..Config::default()
    };
    adjust(&mut config);
    let gw = Gateway::open(config).await.unwrap_or_else(|e| panic!("opening the gateway: {e}"));
    let app = gatehouse_webui::app(gw.clone());
    Web { gw, app, _dir: dir }
}

impl Web {
    /// A new browser with no cookies, connecting from 127.0.0.1.
    pub fn client(&self) -> Client {
        Client {
            app: self.app.clone(),
            cookies: Mutex::new(BTreeMap::new()),
            peer: SocketAddr::from(([127, 0, 0, 1], 50_000)),
            headers: Vec::new(),
        }
    }

    /// Creates a user with a password and nothing else to do at the first login.
    pub async fn user(&self, name: &str, password: &str, is_admin: bool) -> User {
        users::create(&self.gw.db, NewUser { name, password: Some(password), email: None, is_admin })
            .await
            .unwrap_or_else(|e| panic!("creating user {name}: {e}"))
    }

    /// A browser logged in as `name` with the password alone (no factor may be due).
    pub async fn login(&self, name: &str, password: &str) -> Client {
        let c = self.client();
        c.password_step(name, password).await.assert_redirect("/account", "password-only login");
        c
    }
}

/// One answer, as the browser got it.
pub struct Reply {
    pub status: StatusCode,
    /// The `Location` header, empty when there is none.
    pub location: String,
    pub set_cookies: Vec<String>,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Reply {
    /// The value of the first `csrf` hidden field on the page.
    pub fn csrf(&self) -> String {
        let html = Html::parse_document(&self.body);
        let field = Selector::parse("input[name=csrf]").expect("a valid selector");
        html.select(&field)
            .find_map(|e| e.value().attr("value"))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no csrf field on the page:\n{}", self.body))
    }

    pub fn assert_status(&self, expected: StatusCode, what: &str) -> &Reply {
        assert_eq!(self.status, expected, "{what}: location={:?}\n{}", self.location, self.body);
        self
    }

    pub fn assert_redirect(&self, to: &str, what: &str) -> &Reply {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{what}: body:\n{}", self.body);
        assert!(self.location.starts_with(to), "{what}: redirected to {} instead of {to}", self.location);
        self
    }

    pub fn assert_contains(&self, text: &str, what: &str) -> &Reply {
        assert!(self.body.contains(text), "{what}: page lacks {text:?}:\n{}", self.body);
        self
    }
}

/// One browser: its cookies and its address. Requests go straight into the router.
pub struct Client {
    app: Router,
    cookies: Mutex<BTreeMap<String, String>>,
    pub peer: SocketAddr,
    /// Headers sent with every request (e.g. `X-Forwarded-For`).
    pub headers: Vec<(String, String)>,
}

impl Client {
    /// Sends one request with this browser's cookies and keeps the cookies it sets.
    pub async fn send(&self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Reply {
        let cookie_header =
            self.cookies.lock().expect("cookie jar").iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>();
        let mut req = Request::builder().method(method.clone()).uri(path);
        if !cookie_header.is_empty() {
            req = req.header(COOKIE, cookie_header.join("; "));
        }
        for (name, value) in &self.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let body = match form {
            Some(fields) => {
                req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(serde_urlencoded::to_string(fields).expect("encoding a form"))
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).expect("building a request");
        // What `into_make_service_with_connect_info` adds when the server accepts a socket.
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let resp = self.app.clone().oneshot(req).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status();
        let location = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let set_cookies: Vec<String> =
            resp.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect();
        for c in &set_cookies {
            self.keep_cookie(c);
        }
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("reading the body");
        Reply { status, location, set_cookies, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    fn keep_cookie(&self, set_cookie: &str) {
        let Some((name, rest)) = set_cookie.split_once('=') else { return };
        let value = rest.split(';').next().unwrap_or("").to_string();
        let deleted = rest.split(';').any(|a| a.trim().eq_ignore_ascii_case("Max-Age=0"));
        let mut jar = self.cookies.lock().expect("cookie jar");
        if deleted {
            jar.remove(name.trim());
        } else {
            jar.insert(name.trim().to_string(), value);
        }
    }

    /// The value of cookie `name`, if the browser has it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().expect("cookie jar").get(name).cloned()
    }

    /// Sets (or replaces) a cookie, as a forger would.
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies.lock().expect("cookie jar").insert(name.to_string(), value.to_string());
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    /// POSTs a form as given (the caller includes `csrf`, or deliberately not).
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.send(Method::POST, path, Some(form)).await
    }

    /// GETs `page` for its CSRF token, then POSTs `form` plus that token to `path`.
    pub async fn submit(&self, page: &str, path: &str, form: &[(&str, &str)]) -> Reply {
        let token = self.get(page).await.csrf();
        let mut full = form.to_vec();
        full.push(("csrf", &token));
        self.post(path, &full).await
    }

    /// The password step of a login, from a fresh login page.
    pub async fn password_step(&self, user: &str, password: &str) -> Reply {
        self.submit("/login", "/login", &[("username", user), ("password", password)]).await
    }
}
