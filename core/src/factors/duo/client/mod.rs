//! A client for Duo's Auth API v2: signed HTTPS requests and Duo's JSON answers.
//!
//! Every request is signed as Duo documents it (signature v2): the canonical request is
//! the `Date` header, the method in upper case, the API host in lower case, the path and
//! the parameters (RFC 3986 encoded, sorted by key, joined with `&`), one per line; its
//! HMAC-SHA512 keyed with the secret key, in hex, goes with the integration key in
//! `Authorization: Basic`. The parameter string that was signed is byte for byte the
//! query (GET) or the form body (POST) that is sent.
//!
//! Answers come in Duo's envelope, `{"stat":"OK","response":…}` or
//! `{"stat":"FAIL","code":…,"message":…}`. [`DuoError::is_outage`] tells an outage (no
//! answer, a server error, something that is not Duo's JSON) from a refusal by Duo (a bad
//! signature, a bad request): only an outage may ever be let through (`fail_open`).
//!
//! Layout: `signature` signs a request, `answers` reads Duo's JSON; this module sends
//! the requests and says why one failed ([`DuoError`]).

mod answers;
mod signature;

use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;

use crate::config::{DuoConfig, DuoEndpoint};
use answers::parse;
pub use answers::{Decision, Device, Outcome, Preauth, interpret, parse_decision, parse_preauth, parse_txid};
pub use signature::{authorization, canonical_request, encode_params, percent_encode, sign};

/// The longest answer read from Duo; theirs are a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

/// Waits before asking again after HTTP 429 (too many requests), as Duo asks clients to
/// back off; then the request counts as failed.
const BACKOFF: [Duration; 2] = [Duration::from_millis(500), Duration::from_secs(1)];

/// Why Duo gave no usable answer. The messages hold no secret (no key, no passcode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DuoError {
    #[error("Duo could not be reached: {0}")]
    Unreachable(String),
    #[error("Duo did not answer in time")]
    TimedOut,
    #[error("Duo answered HTTP {0}")]
    ServerError(u16),
    #[error("Duo's answer (HTTP {0}) is not Duo's JSON")]
    NotJson(u16),
    #[error("Duo refused the request: {message} (code {code}, HTTP {status})")]
    Refused { status: u16, code: u32, message: String },
    #[error("Duo's answer was not understood: {0}")]
    Unexpected(String),
}

impl DuoError {
    /// Whether Duo could not be asked at all (no connection, no answer in time, a server
    /// error, an answer that is not Duo's): the only failures `fail_open` may let through.
    /// A refusal (bad signature, bad integration key, bad request) is Duo answering: it
    /// is a configuration or input error, and lets no one through.
    pub fn is_outage(&self) -> bool {
        matches!(self, DuoError::Unreachable(_) | DuoError::TimedOut | DuoError::ServerError(_) | DuoError::NotJson(_))
    }
}

/// A client for one configured Auth API application.
pub struct Client<'a> {
    config: &'a DuoConfig,
    endpoint: DuoEndpoint,
}

/// The HTTP client shared by every request (connection reuse, TLS roots loaded once).
static HTTP: OnceLock<reqwest::Client> = OnceLock::new();

fn http() -> Result<&'static reqwest::Client, DuoError> {
    if let Some(client) = HTTP.get() {
        return Ok(client);
    }
    let client = reqwest::Client::builder()
        .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
        // A signed request goes to the configured host and nowhere else.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| DuoError::Unreachable(format!("no HTTP client: {}", error_chain(&e))))?;
    Ok(HTTP.get_or_init(|| client))
}

impl<'a> Client<'a> {
    /// A client for `config`, which must be [`DuoConfig::enabled`].
    pub fn new(config: &'a DuoConfig) -> Result<Client<'a>, DuoError> {
        if !config.enabled() {
            return Err(DuoError::Unreachable("Duo is not configured".into()));
        }
        let endpoint = config.endpoint().map_err(|e| DuoError::Unreachable(e.to_string()))?;
        Ok(Client { config, endpoint })
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.timeout_secs.max(1))
    }

    /// `GET /auth/v2/check`: whether Duo accepts the keys; Duo's clock (epoch seconds).
    pub async fn check(&self) -> Result<i64, DuoError> {
        #[derive(Deserialize)]
        struct Check {
            time: i64,
        }
        let v = self.call(Verb::Get, "/auth/v2/check", &[], self.timeout()).await?;
        let check: Check = parse(v)?;
        Ok(check.time)
    }

    /// `POST /auth/v2/preauth`: what `username` must do to log in from `ipaddr`.
    pub async fn preauth(&self, username: &str, ipaddr: Option<&str>) -> Result<Preauth, DuoError> {
        let mut params = vec![("username", username)];
        params.extend(ipaddr.map(|ip| ("ipaddr", ip)));
        parse_preauth(self.call(Verb::Post, "/auth/v2/preauth", &params, self.timeout()).await?)
    }

    /// `POST /auth/v2/auth` with `factor=passcode`: Duo checks the passcode (Duo Mobile,
    /// a hardware token, an SMS or a bypass code) and answers at once.
    pub async fn auth_passcode(
        &self,
        username: &str,
        passcode: &str,
        ipaddr: Option<&str>,
    ) -> Result<Decision, DuoError> {
        let mut params = vec![("factor", "passcode"), ("username", username), ("passcode", passcode)];
        params.extend(ipaddr.map(|ip| ("ipaddr", ip)));
        match parse_decision(self.call(Verb::Post, "/auth/v2/auth", &params, self.timeout()).await?)? {
            Decision { outcome: Outcome::Waiting, .. } => {
                Err(DuoError::Unexpected("a passcode is still waiting".into()))
            }
            decision => Ok(decision),
        }
    }

    /// `POST /auth/v2/auth` with `factor=push` and `async=1`: sends a push to the user's
    /// first capable device and returns its transaction id at once, for
    /// [`Client::auth_status`]. `pushinfo` is shown on the phone: a list of
    /// `(label, value)` that names the login.
    pub async fn auth_push(
        &self,
        username: &str,
        ipaddr: Option<&str>,
        pushinfo: &[(&str, &str)],
    ) -> Result<String, DuoError> {
        let info = encode_params(pushinfo);
        let mut params = vec![("factor", "push"), ("username", username), ("device", "auto"), ("async", "1")];
        params.extend(ipaddr.map(|ip| ("ipaddr", ip)));
        if !info.is_empty() {
            params.push(("pushinfo", &info));
        }
        parse_txid(self.call(Verb::Post, "/auth/v2/auth", &params, self.timeout()).await?)
    }

    /// `GET /auth/v2/auth_status`: the state of the push `txid`. Duo may hold the request
    /// open until the state changes; it waits at most `timeout` (and at most the
    /// configured request timeout).
    pub async fn auth_status(&self, txid: &str, timeout: Duration) -> Result<Decision, DuoError> {
        let timeout = timeout.clamp(Duration::from_secs(1), self.timeout());
        parse_decision(self.call(Verb::Get, "/auth/v2/auth_status", &[("txid", txid)], timeout).await?)
    }

    /// One signed request; the `response` of Duo's envelope. HTTP 429 is retried after
    /// the [`BACKOFF`] waits.
    async fn call(
        &self,
        verb: Verb,
        path: &str,
        params: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<serde_json::Value, DuoError> {
        let http = http()?;
        let encoded = encode_params(params);
        let mut backoff = BACKOFF.iter();
        loop {
            let date = crate::time::format_rfc2822(crate::time::now());
            let canonical = canonical_request(&date, verb.as_str(), &self.endpoint.host, path, &encoded);
            let auth = authorization(&self.config.integration_key, &sign(&self.config.secret_key, &canonical));
            let request = match verb {
                Verb::Get if encoded.is_empty() => http.get(self.endpoint.url(path)),
                Verb::Get => http.get(format!("{}?{encoded}", self.endpoint.url(path))),
                Verb::Post => http
                    .post(self.endpoint.url(path))
                    .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(encoded.clone()),
            };
            let sent = request
                .header(reqwest::header::DATE, &date)
                .header(reqwest::header::AUTHORIZATION, auth)
                .timeout(timeout)
                .send()
                .await;
            let mut response = sent.map_err(transport_error)?;
            let status = response.status().as_u16();
            if status == 429
                && let Some(wait) = backoff.next()
            {
                tracing::warn!(path, "Duo asked to slow down (HTTP 429); retrying");
                tokio::time::sleep(*wait).await;
                continue;
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(DuoError::NotJson(status));
                }
                body.extend_from_slice(&chunk);
            }
            return interpret(status, &body);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Verb {
    Get,
    Post,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
        }
    }
}

fn transport_error(e: reqwest::Error) -> DuoError {
    if e.is_timeout() { DuoError::TimedOut } else { DuoError::Unreachable(error_chain(&e.without_url())) }
}

/// An error with its causes, `a: b: c` (reqwest's own message alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
