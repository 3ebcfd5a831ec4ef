//! [`Duo`]: a loopback stand-in for Duo's Auth API v2, for the `duo` second factor.
//!
//! It checks every request as Duo documents it, with its own implementation (not the
//! gateway's): the `Date` header (RFC 2822, within five minutes of now), `Authorization:
//! Basic base64(ikey:signature)` with the known integration key, and the signature itself,
//! HMAC-SHA1 (40 hex digits) or HMAC-SHA512 (128) keyed with [`Duo::SECRET_KEY`] over
//! the date, the method, the lower-case `Host`, the path and the parameters (from the query
//! of a GET, the form body of a POST) decoded, then re-encoded RFC 3986 style and sorted.
//! A bad signature gets Duo's own refusal: HTTP 401
//! `{"stat":"FAIL","code":40103,"message":"Invalid signature in request credentials"}`.
//!
//! It answers `/auth/v2/check`, `/auth/v2/preauth`, `/auth/v2/auth` (a passcode, or a push
//! with `async=1`) and `/auth/v2/auth_status` with Duo's JSON shapes, following a script
//! per user ([`Duo::user`]): what preauth says ([`Preauth`]) and what becomes of a push
//! ([`Push`]). Users without a script are not enrolled at Duo (`enroll`). Every request is
//! kept ([`Duo::requests`]) so tests can assert what the gateway sent.
//!
//! The server runs on its own thread and runtime, so sync and async tests use it alike.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};

use super::gateway::Gw;
use super::postgres::Backend;
use super::process::{describe, run_with_timeout, stdout};

/// What preauth answers for a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preauth {
    /// `auth`, with a phone that takes pushes and passcodes.
    Auth,
    /// `auth`, with a hardware token only (passcodes, no push).
    TokenOnly,
    /// `allow`: Duo lets the user through (bypass).
    Allow,
    /// `deny`, with [`Duo::DENY_MESSAGE`].
    Deny,
    /// `enroll`, with [`Duo::ENROLL_URL`].
    Enroll,
}

/// What happens to a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// `waiting` for this many `auth_status` requests, then `allow`.
    ApproveAfter(u32),
    /// `deny` at the first `auth_status`.
    Deny,
    /// `waiting` for ever (the phone is in a drawer).
    Never,
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Decoded parameters, in the order sent.
    pub params: Vec<(String, String)>,
    /// `sha1` or `sha512` for a valid signature; why it was refused otherwise.
    pub signature: Result<&'static str, String>,
}

impl Seen {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    users: HashMap<String, (Preauth, Push)>,
    /// txid → (user, auth_status requests so far)
    pushes: HashMap<String, (String, u32)>,
    seen: Vec<Seen>,
    /// Answer every request with this HTTP status (a Duo outage behind a load balancer).
    broken: Option<u16>,
}

/// A running stand-in; dropping it stops the server.
pub struct Duo {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Duo {
    pub const INTEGRATION_KEY: &'static str = "DIGATEHOUSETEST00001";
    pub const SECRET_KEY: &'static str = "gatehouseTestSecretKey0123456789abcdefgh";
    /// The passcode Duo accepts from every user.
    pub const PASSCODE: &'static str = "246810";
    pub const DENY_MESSAGE: &'static str = "Your account is disabled by your Duo administrator";
    pub const ENROLL_URL: &'static str =
        "https://api-xxxxxxxx.duosecurity.com/portal?code=48bac5d9393fb2c2&akey=DAKXXXXXXXXXXXXXXXXX";
    pub const DEVICE: &'static str = "iOS (XXX-XXX-0100)";

    /// Starts the stand-in on a free loopback port.
    pub fn start() -> Duo {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the Duo stand-in");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the Duo stand-in");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let app =
                    axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                        let state = shared.clone();
                        async move { answer(&state, &method, &uri, &headers, &body) }
                    });
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stopped => {}
                }
            });
        });
        Duo { port, state, stop: Some(stop) }
    }

    /// The gateway's `api_host` for this stand-in (plain HTTP: a loopback host).
    pub fn api_host(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Scripts what Duo says about `user`.
    pub fn user(&self, user: &str, preauth: Preauth, push: Push) {
        self.state.lock().unwrap().users.insert(user.to_string(), (preauth, push));
    }

    /// From now on answers every request with HTTP `status` (`None`: works again).
    pub fn break_with(&self, status: Option<u16>) {
        self.state.lock().unwrap().broken = status;
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The requests to `path` (e.g. `/auth/v2/auth`).
    pub fn requests_to(&self, path: &str) -> Vec<Seen> {
        self.requests().into_iter().filter(|r| r.path == path).collect()
    }

    /// Forgets the requests seen so far.
    pub fn clear(&self) {
        self.state.lock().unwrap().seen.clear();
    }
}

impl Drop for Duo {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A `[duo]` table for a gateway using `api_host`, a short request timeout, and `extra`
/// lines (e.g. `push_timeout_secs = 2`). The secret key is not in it: tests pass it as
/// `GATEHOUSE_DUO__SECRET_KEY`.
pub fn duo_table(api_host: &str, extra: &str) -> String {
    format!(
        "[duo]\nintegration_key = \"{}\"\napi_host = \"{api_host}\"\ntimeout_secs = 2\n{extra}",
        Duo::INTEGRATION_KEY
    )
}

/// The last error the gateway recorded for Duo's service (the health page's "last error"),
/// read from its database; empty when none.
pub fn last_duo_error(gw: &Gw) -> String {
    let sql = "SELECT last_error FROM factor_health WHERE method = 'duo'";
    let out = match gw.backend {
        Backend::Sqlite => {
            let db = gw.database_url.trim_start_matches("sqlite://").split('?').next().unwrap_or_default().to_string();
            run_with_timeout(
                std::process::Command::new("sqlite3").arg(db).arg(sql),
                None,
                std::time::Duration::from_secs(20),
            )
        }
        Backend::Postgres => run_with_timeout(
            std::process::Command::new("psql").args(["-X", "-A", "-t", "-d", &gw.database_url, "-c", sql]),
            None,
            std::time::Duration::from_secs(20),
        ),
    };
    assert!(out.status.success(), "reading factor_health:\n{}", describe(&out));
    stdout(&out).trim().to_string()
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

fn ok(response: serde_json::Value) -> Response {
    json(StatusCode::OK, serde_json::json!({"stat": "OK", "response": response}))
}

fn fail(status: StatusCode, code: u32, message: &str) -> Response {
    json(status, serde_json::json!({"stat": "FAIL", "code": code, "message": message}))
}

fn answer(state: &Mutex<State>, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    let path = uri.path().to_string();
    let raw_params = if *method == Method::GET { uri.query().unwrap_or("").as_bytes().to_vec() } else { body.to_vec() };
    let params = decode_form(&String::from_utf8_lossy(&raw_params));
    let signature = check_signature(method.as_str(), &path, headers, &params);
    let mut st = state.lock().unwrap();
    st.seen.push(Seen {
        method: method.to_string(),
        path: path.clone(),
        params: params.clone(),
        signature: signature.clone(),
    });
    if let Some(status) = st.broken {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return (status, "<html><body>upstream unavailable</body></html>").into_response();
    }
    if let Err(why) = signature {
        return match why.as_str() {
            "ikey" => fail(StatusCode::UNAUTHORIZED, 40102, "Invalid integration key in request credentials"),
            "missing" => fail(StatusCode::UNAUTHORIZED, 40101, "Missing request credentials"),
            _ => fail(StatusCode::UNAUTHORIZED, 40103, "Invalid signature in request credentials"),
        };
    }
    if *method == Method::POST
        && headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/x-www-form-urlencoded")
    {
        return fail(StatusCode::BAD_REQUEST, 40002, "Invalid request parameters");
    }
    let param = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    match (method.as_str(), path.as_str()) {
        ("GET", "/auth/v2/check") => ok(serde_json::json!({"time": now()})),
        ("POST", "/auth/v2/preauth") => {
            let Some(user) = param("username") else {
                return fail(StatusCode::BAD_REQUEST, 40001, "Missing required request parameters");
            };
            let script = st.users.get(&user).map(|(p, _)| *p).unwrap_or(Preauth::Enroll);
            ok(preauth(script))
        }
        ("POST", "/auth/v2/auth") => {
            let Some(user) = param("username") else {
                return fail(StatusCode::BAD_REQUEST, 40001, "Missing required request parameters");
            };
            match (param("factor").as_deref(), param("async").as_deref()) {
                (Some("passcode"), _) => {
                    if param("passcode").as_deref() == Some(Duo::PASSCODE) {
                        ok(
                            serde_json::json!({"result": "allow", "status": "allow", "status_msg": "Success. Logging you in..."}),
                        )
                    } else {
                        ok(
                            serde_json::json!({"result": "deny", "status": "deny", "status_msg": "Incorrect passcode. Please try again."}),
                        )
                    }
                }
                (Some("push"), Some("1")) => {
                    let txid = format!("45f7c92b-f45f-4862-8545-{:012x}", st.pushes.len() + 1);
                    st.pushes.insert(txid.clone(), (user, 0));
                    ok(serde_json::json!({"txid": txid}))
                }
                _ => fail(StatusCode::BAD_REQUEST, 40002, "Invalid request parameters"),
            }
        }
        ("GET", "/auth/v2/auth_status") => {
            let txid = param("txid").unwrap_or_default();
            let Some((user, polls)) = st.pushes.get_mut(&txid) else {
                return fail(StatusCode::BAD_REQUEST, 40002, "Invalid request parameters");
            };
            *polls += 1;
            let (user, polls) = (user.clone(), *polls);
            let push = st.users.get(&user).map(|(_, p)| *p).unwrap_or(Push::Never);
            let waiting = serde_json::json!({"result": "waiting", "status": "pushed", "status_msg": "Pushed a login request to your device..."});
            match push {
                Push::ApproveAfter(n) if polls > n => ok(
                    serde_json::json!({"result": "allow", "status": "allow", "status_msg": "Success. Logging you in..."}),
                ),
                Push::Deny => {
                    ok(serde_json::json!({"result": "deny", "status": "deny", "status_msg": "Login request denied."}))
                }
                _ => ok(waiting),
            }
        }
        _ => fail(StatusCode::NOT_FOUND, 40401, "Resource not found"),
    }
}

fn preauth(script: Preauth) -> serde_json::Value {
    match script {
        Preauth::Auth => serde_json::json!({
            "result": "auth",
            "status_msg": "Account is active",
            "devices": [{
                "device": "DPFZRS9FB0D46QFTM891",
                "type": "phone",
                "number": "XXX-XXX-0100",
                "name": "",
                "display_name": Duo::DEVICE,
                "capabilities": ["auto", "push", "sms", "phone", "mobile_otp"]
            }]
        }),
        Preauth::TokenOnly => serde_json::json!({
            "result": "auth",
            "status_msg": "Account is active",
            "devices": [{"device": "DHEKH0JJIYC1LX3AZWO4", "type": "token", "name": "", "capabilities": []}]
        }),
        Preauth::Allow => serde_json::json!({"result": "allow", "status_msg": "Allowing unknown user"}),
        Preauth::Deny => serde_json::json!({"result": "deny", "status_msg": Duo::DENY_MESSAGE}),
        Preauth::Enroll => serde_json::json!({
            "result": "enroll",
            "status_msg": "Enroll an authentication device to proceed",
            "enroll_portal_url": Duo::ENROLL_URL
        }),
    }
}

/// Checks the request's credentials as Duo does; `Ok("sha1" | "sha512")` when valid,
/// `Err("missing" | "ikey" | "date" | "signature")` otherwise.
fn check_signature(
    method: &str,
    path: &str,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<&'static str, String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (Some(date), Some(auth), Some(host)) = (header("date"), header("authorization"), header("host")) else {
        return Err("missing".into());
    };
    match parse_rfc2822(&date) {
        Some(t) if (t - now()).abs() <= 300 => {}
        _ => return Err("date".into()),
    }
    let decoded = auth
        .strip_prefix("Basic ")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| "missing".to_string())?;
    let (ikey, signature) = decoded.split_once(':').ok_or_else(|| "missing".to_string())?;
    if ikey != Duo::INTEGRATION_KEY {
        return Err("ikey".into());
    }
    let mut encoded: Vec<(String, String)> = params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    encoded.sort();
    let joined = encoded.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let canonical = format!("{date}\n{}\n{}\n{path}\n{joined}", method.to_uppercase(), host.to_lowercase());
    let Ok(given) = hex::decode(signature) else { return Err("signature".into()) };
    let key = Duo::SECRET_KEY.as_bytes();
    // Constant-time comparisons, as a real service makes them.
    let valid = match signature.len() {
        40 => {
            let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).expect("any key length");
            mac.update(canonical.as_bytes());
            mac.verify_slice(&given).is_ok().then_some("sha1")
        }
        128 => {
            let mut mac = <Hmac<sha2::Sha512> as KeyInit>::new_from_slice(key).expect("any key length");
            mac.update(canonical.as_bytes());
            mac.verify_slice(&given).is_ok().then_some("sha512")
        }
        _ => None,
    };
    valid.ok_or_else(|| "signature".into())
}

/// RFC 3986 percent-encoding: unreserved characters kept, the rest `%XX`.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `a=1&b=x%20y` (with `+` as a space, as forms allow) into decoded pairs.
fn decode_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `Tue, 21 Aug 2012 17:29:18 -0000` into epoch seconds.
fn parse_rfc2822(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_weekday, day, month, year, clock, zone] = parts.as_slice() else { return None };
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let m = months.iter().position(|x| x == month)? as i64 + 1;
    let (d, y): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = clock.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, min, s] = hms.as_slice() else { return None };
    if zone.len() != 5 || !(zone.starts_with('+') || zone.starts_with('-')) {
        return None;
    }
    let offset: i64 = zone[1..3].parse::<i64>().ok()? * 3600 + zone[3..5].parse::<i64>().ok()? * 60;
    let offset = if zone.starts_with('-') { -offset } else { offset };
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + min * 60 + s - offset)
}
