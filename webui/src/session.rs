//! Browser sessions and the request extractors built on them.
//!
//! The cookie holds a 256-bit random token; the database holds its SHA-256 (see
//! `gatehouse_core::web_sessions`). Each step of the login creates a new session and
//! deletes the old one, so the id is rotated at login. Every request re-reads the user,
//! so a lock, a lost admin flag or a new force-2FA rule applies at once.
//!
//! Extractors, from most to least gated:
//! - [`Admin`]: a fully logged-in administrator (403 otherwise);
//! - [`Authed`]: a fully logged-in user who has nothing left to do first;
//! - [`Enrolling`]: may still have to enroll a factor (the enrollment pages);
//! - [`Changing`]: may still have to choose a new password (that page and logout);
//! - [`Visitor`]: anyone, with the session if there is one (login pages).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use gatehouse_core::factors::{Frontend, LoginContext};
use gatehouse_core::policy::{self, Requirement, Resolution};
use gatehouse_core::users::User;
use gatehouse_core::web_sessions::{self, NewSession, Proofs, SignedIn, Stage, WebSession};
use gatehouse_core::{Gateway, vault};

use crate::error::WebError;
use crate::render::Chrome;

pub const SESSION_COOKIE: &str = "gh_session";
pub const TRUST_COOKIE: &str = "gh_trust";
/// The login form's cookie: a random value from which the form's CSRF token is derived
/// ([`login_form_token`]), so showing the form writes nothing to the database.
pub const PRE_LOGIN_COOKIE: &str = "gh_login";

/// Lifetime of an anonymous session (none are made any more; rows of older versions expire).
const ANONYMOUS_TTL: i64 = 30 * 60;
/// Time allowed between the password and the second factor.
const FACTOR_TTL: i64 = 10 * 60;
/// Idle lifetime of a logged-in session (extended on use).
pub const FULL_TTL: i64 = 8 * 3600;

/// A fresh 256-bit token, hex.
pub fn new_token() -> String {
    hex::encode(vault::random_bytes(32))
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The CSRF token of the login form shown with pre-login cookie value `pre`: a MAC under
/// the secrets key, so any node can check it and nothing is stored.
pub fn login_form_token(gw: &Gateway, pre: &str) -> String {
    gw.vault.mac("login-form-csrf", pre.as_bytes())
}

/// A cookie value this gateway could have made: 64 hex digits.
fn well_formed_token(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure when served over https.
/// `max_age` of `None` makes a browser-session cookie; `Some(0)` deletes it.
pub fn set_cookie(gw: &Gateway, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if gw.config.web.tls_on() || gw.config.public_url().starts_with("https://") {
        c.push_str("; Secure");
    }
    // Only hex tokens and fixed names go in: always a valid header value.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("gh_invalid=; Max-Age=0"))
}

/// The client's address, as audit events and lockout counters record it: the TCP peer,
/// or, when the peer is one of `web.trusted_proxies`, the last address in
/// `X-Forwarded-For` that is not a trusted proxy (the ones before it are the client's
/// own claims).
pub fn source_of(parts: &Parts, gw: &Gateway) -> String {
    let Some(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| a.ip()) else {
        return "unknown".to_string();
    };
    let proxies = gw.config.web.proxies();
    if !proxies.contains(&peer) {
        return peer.to_string();
    }
    let forwarded: Vec<std::net::IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|a| a.trim().parse())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    forwarded.into_iter().rev().find(|a| !proxies.contains(a)).unwrap_or(peer).to_string()
}

/// Starts a session at `stage` that saw `proofs`, and returns its `Set-Cookie` header.
pub async fn start(
    gw: &Gateway,
    user_id: Option<i64>,
    stage: Stage,
    source: &str,
    proofs: Proofs,
) -> Result<(HeaderValue, WebSession), WebError> {
    let token = new_token();
    let id_hash = vault::token_hash(&token);
    let csrf = new_token();
    let ttl = match stage {
        Stage::Anonymous => ANONYMOUS_TTL,
        Stage::Password | Stage::Factor => FACTOR_TTL,
        Stage::Full => FULL_TTL,
    };
    web_sessions::create(
        &gw.db,
        NewSession { id_hash: &id_hash, user_id, stage, csrf_token: &csrf, source, ttl_secs: ttl, proofs },
    )
    .await?;
    let session = WebSession {
        id_hash,
        user_id,
        stage,
        csrf_token: csrf,
        source: source.to_string(),
        created_at: gatehouse_core::time::now(),
        expires_at: gatehouse_core::time::now() + ttl,
        proofs,
    };
    Ok((set_cookie(gw, SESSION_COOKIE, &token, None), session))
}

/// Replaces `old` (if any) by a new session at `stage` that saw `proofs`: the id changes
/// at every step.
pub async fn rotate(
    gw: &Gateway,
    old: Option<&WebSession>,
    user_id: i64,
    stage: Stage,
    source: &str,
    proofs: Proofs,
) -> Result<HeaderValue, WebError> {
    if let Some(old) = old {
        web_sessions::delete(&gw.db, &old.id_hash).await?;
    }
    Ok(start(gw, Some(user_id), stage, source, proofs).await?.0)
}

/// Anyone: the session, if the browser has a valid one.
pub struct Visitor {
    pub session: Option<WebSession>,
    /// The pre-login cookie's value, when the browser has a well-formed one.
    pub pre_login: Option<String>,
    pub source: String,
    /// The trusted-browser cookie, hashed.
    pub trust_hash: Option<String>,
    pub user_agent: String,
}

impl Visitor {
    pub fn login_context(&self, user_name: &str) -> LoginContext {
        LoginContext {
            user_name: user_name.to_string(),
            source: self.source.clone(),
            frontend: Frontend::Web,
            attempt: match (&self.session, &self.pre_login) {
                (Some(s), _) => s.id_hash.clone(),
                (None, Some(pre)) => vault::token_hash(pre),
                (None, None) => String::new(),
            },
        }
    }

    /// The CSRF token the forms shown to this visitor carry: the session's, or before any
    /// session the one derived from the pre-login cookie.
    pub fn form_token(&self, gw: &Gateway) -> Option<String> {
        match (&self.session, &self.pre_login) {
            (Some(s), _) => Some(s.csrf_token.clone()),
            (None, Some(pre)) => Some(login_form_token(gw, pre)),
            (None, None) => None,
        }
    }
}

impl FromRequestParts<Gateway> for Visitor {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, gw: &Gateway) -> Result<Self, Self::Rejection> {
        let session = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(token) => web_sessions::find(&gw.db, &vault::token_hash(&token)).await?,
            None => None,
        };
        Ok(visitor(parts, gw, session))
    }
}

/// The visitor of a request whose session (if any) was read: also tells the CSRF check of
/// a form which token to expect.
fn visitor(parts: &mut Parts, gw: &Gateway, session: Option<WebSession>) -> Visitor {
    let pre_login = cookie(&parts.headers, PRE_LOGIN_COOKIE).filter(|v| well_formed_token(v));
    let user_agent =
        parts.headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let visitor = Visitor {
        session,
        pre_login,
        source: source_of(parts, gw),
        trust_hash: cookie(&parts.headers, TRUST_COOKIE).map(|t| vault::token_hash(&t)),
        user_agent,
    };
    if let Some(expected) = visitor.form_token(gw) {
        parts.extensions.insert(FormToken { expected, source: visitor.source.clone() });
    }
    visitor
}

/// The CSRF token a form posted by this request must carry.
#[derive(Clone)]
pub struct FormToken {
    pub expected: String,
    pub source: String,
}

/// A fully logged-in user and their session.
pub struct Authed {
    pub user: User,
    pub session: WebSession,
    /// The inputs of the user's two-factor decision, as of this request.
    pub resolution: Resolution,
    /// Unused backup codes, as of this request.
    pub backup_codes_left: i64,
    pub source: String,
    pub trust_hash: Option<String>,
    /// The layout data for this user.
    pub chrome: Chrome,
}

impl Authed {
    pub fn login_context(&self) -> LoginContext {
        LoginContext {
            user_name: self.user.name.clone(),
            source: self.source.clone(),
            frontend: Frontend::Web,
            attempt: self.session.id_hash.clone(),
        }
    }
}

/// How much of the post-login to-do list a page tolerates.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Nothing pending.
    Clear,
    /// Enrollment may be pending (not a password change).
    Enrolling,
    /// Anything may be pending.
    Changing,
}

/// One query reads the session, its user, their factors and the access revision; the
/// policy and the user's groups come from the node's cache for that revision. So a lock,
/// a lost admin flag or a policy change made on any node applies to the next request.
async fn authed(parts: &mut Parts, gw: &Gateway, level: Level) -> Result<Authed, WebError> {
    let signed_in = match cookie(&parts.headers, SESSION_COOKIE) {
        Some(token) => web_sessions::signed_in(&gw.db, &vault::token_hash(&token)).await?,
        None => None,
    };
    let Some(signed_in) = signed_in.filter(|s| s.session.stage == Stage::Full) else {
        return Err(WebError::LoginRequired);
    };
    let SignedIn { session, user, must_change_password: must_change, enrolled, backup_codes_left, revision } =
        signed_in;
    if user.disabled() {
        web_sessions::delete(&gw.db, &session.id_hash).await?;
        return Err(WebError::LoginRequired);
    }
    // Sliding expiry, written at most once a minute: most requests write nothing (on
    // SQLite every write, even one that changes no row, waits for the database's one
    // writer).
    if session.expires_at < gatehouse_core::time::now() + FULL_TTL - 60 {
        web_sessions::touch(&gw.db, &session.id_hash, FULL_TTL).await?;
    }
    let resolution = policy::resolve_at(&gw.db, &gw.policy_cache, &user, enrolled, revision).await?;
    let must_enroll = matches!(resolution.requirement(&user), Requirement::MustEnroll { .. });
    if must_change && level != Level::Changing {
        return Err(WebError::Redirect("/account/password"));
    }
    if must_enroll && level == Level::Clear {
        return Err(WebError::Redirect("/enroll"));
    }
    let chrome = Chrome {
        user: user.name.clone(),
        is_admin: user.is_admin,
        csrf: session.csrf_token.clone(),
        exempt: user.exempt_2fa,
        nav: !must_change && !must_enroll,
        section: "",
        health_warnings: 0,
    };
    let Visitor { session: Some(session), source, trust_hash, .. } = visitor(parts, gw, Some(session)) else {
        return Err(WebError::LoginRequired);
    };
    Ok(Authed { user, session, resolution, backup_codes_left, source, trust_hash, chrome })
}

impl FromRequestParts<Gateway> for Authed {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, gw: &Gateway) -> Result<Self, Self::Rejection> {
        authed(parts, gw, Level::Clear).await
    }
}

/// A logged-in user who may still have to enroll a factor.
pub struct Enrolling(pub Authed);

impl FromRequestParts<Gateway> for Enrolling {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, gw: &Gateway) -> Result<Self, Self::Rejection> {
        authed(parts, gw, Level::Enrolling).await.map(Enrolling)
    }
}

/// A logged-in user who may still have to choose a new password.
pub struct Changing(pub Authed);

impl FromRequestParts<Gateway> for Changing {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, gw: &Gateway) -> Result<Self, Self::Rejection> {
        authed(parts, gw, Level::Changing).await.map(Changing)
    }
}

/// A fully logged-in administrator; anyone else gets 403. Checked against the database on
/// every request.
pub struct Admin(pub Authed);

impl FromRequestParts<Gateway> for Admin {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, gw: &Gateway) -> Result<Self, Self::Rejection> {
        let mut a = authed(parts, gw, Level::Clear).await?;
        if !a.user.is_admin {
            tracing::warn!(user = %a.user.name, path = %parts.uri.path(), "non-administrator refused an admin page");
            return Err(WebError::Forbidden("This page is for administrators."));
        }
        a.chrome.health_warnings = gatehouse_core::health::warnings(gw).await?.len();
        Ok(Admin(a))
    }
}
