//! Login: password, then the second factor when the policy asks for one, then a new
//! session. Every decision (password check, factor check, lockout, audit) is made by
//! `gatehouse_core::login`, exactly as for the SSH gate; this module only carries the
//! answers between forms. The method passed here becomes the user's SSH default (recorded
//! by `login::answer`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_core::audit::{AuditEvent, Outcome};
use gatehouse_core::factors::{Challenge, Method, Verdict};
use gatehouse_core::login::{self, Primary};
use gatehouse_core::policy::{self, Requirement};
use gatehouse_core::users::{self, User};
use gatehouse_core::web_sessions::{self, Stage, WebSession};
use gatehouse_core::{Gateway, trusted_devices};

use crate::error::{WebError, WebResult};

/// The least time a failed password or code takes, as over SSH: a guesser gets no faster
/// answer than a person, and timing tells nothing.
const FAILURE_FLOOR: std::time::Duration = std::time::Duration::from_millis(800);

async fn slow_down(started: tokio::time::Instant) {
    tokio::time::sleep_until(started + FAILURE_FLOOR).await;
}
use crate::form::{CsrfForm, Empty};
use crate::render::{Chrome, Notice, page, when};
use crate::session::{self, Changing, TRUST_COOKIE, Visitor};

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage {
    c: Chrome,
    csrf: String,
    username: String,
    n: Notice,
}

#[derive(askama::Template)]
#[template(path = "factor.html")]
struct FactorPage {
    c: Chrome,
    csrf: String,
    user: String,
    method: &'static str,
    label: &'static str,
    numeric: bool,
    instructions: String,
    /// A follow-up round (RADIUS Access-Challenge): the server's State, hex, sent back
    /// with the next answer. Empty otherwise.
    state: String,
    /// Other enrolled methods: (name, label).
    others: Vec<(&'static str, &'static str)>,
    /// The method can be approved elsewhere (link in a mail, push): the page offers to
    /// wait for that, and the code field is optional.
    can_wait: bool,
    n: Notice,
}

/// `GET /login`: the form, with an anonymous session that carries its CSRF token.
pub async fn form(State(gw): State<Gateway>, v: Visitor) -> WebResult {
    match &v.session {
        Some(s) if s.stage == Stage::Full => Ok(Redirect::to("/account").into_response()),
        Some(s) => Ok(login_page(StatusCode::OK, &s.csrf_token, "", Notice::none())),
        None => {
            let (cookie, s) = session::start(&gw, None, Stage::Anonymous, &v.source).await?;
            Ok(([(SET_COOKIE, cookie)], login_page(StatusCode::OK, &s.csrf_token, "", Notice::none())).into_response())
        }
    }
}

fn login_page(status: StatusCode, csrf: &str, username: &str, n: Notice) -> Response {
    page(status, &LoginPage { c: Chrome::anonymous(), csrf: csrf.to_string(), username: username.to_string(), n })
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`: checks the password, then moves the browser to a new session at the
/// factor step, or straight to a full session when no factor is due.
pub async fn submit(State(gw): State<Gateway>, v: Visitor, CsrfForm(f): CsrfForm<LoginForm>) -> WebResult {
    let csrf = v.session.as_ref().map(|s| s.csrf_token.clone()).unwrap_or_default();
    let name = f.username.trim();
    if name.is_empty() {
        return Ok(login_page(
            StatusCode::BAD_REQUEST,
            &csrf,
            name,
            Notice::error("username", "Enter your user name."),
        ));
    }
    if f.password.is_empty() {
        return Ok(login_page(StatusCode::BAD_REQUEST, &csrf, name, Notice::error("password", "Enter your password.")));
    }
    let ctx = v.login_context(name);
    let started = tokio::time::Instant::now();
    let user = match login::password(&gw, &ctx, &f.password).await? {
        Primary::Accepted(u) => u,
        Primary::Rejected => {
            slow_down(started).await;
            return Ok(login_page(
                StatusCode::UNAUTHORIZED,
                &csrf,
                name,
                Notice::error("form", "Wrong user name or password."),
            ));
        }
        Primary::Locked(lock) => {
            let msg = format!("Too many failed attempts. Try again after {}.", when(Some(lock.until())));
            return Ok(login_page(StatusCode::TOO_MANY_REQUESTS, &csrf, name, Notice::error("form", msg)));
        }
    };
    let old = v.session.as_ref();
    match policy::requirement(&gw.db, &user).await? {
        Requirement::Required { .. } => {
            let trusted = match &v.trust_hash {
                Some(h) => trusted_devices::check(&gw.db, user.id, h).await?,
                None => false,
            };
            if trusted {
                login::completed(&gw, &ctx, "password and trusted browser").await?;
                return full(&gw, old, &user, &v.source).await;
            }
            let cookie = session::rotate(&gw, old, user.id, Stage::Factor, &v.source).await?;
            Ok(([(SET_COOKIE, cookie)], Redirect::to("/login/factor")).into_response())
        }
        Requirement::Exempt => {
            gw.audit(
                AuditEvent::new("login.exempt", Outcome::Info)
                    .user(user.name.clone())
                    .source(v.source.clone())
                    .detail("second factor skipped: user is exempt"),
            )
            .await?;
            login::completed(&gw, &ctx, "password (exempt from 2FA)").await?;
            full(&gw, old, &user, &v.source).await
        }
        Requirement::MustEnroll { .. } => {
            login::completed(&gw, &ctx, "password (must enroll a factor)").await?;
            full(&gw, old, &user, &v.source).await
        }
        Requirement::EnrollmentClosed => {
            login::enrollment_closed(&gw, &ctx).await?;
            slow_down(started).await;
            Ok(login_page(StatusCode::FORBIDDEN, &csrf, name, Notice::error("form", login::ENROLLMENT_CLOSED)))
        }
        Requirement::NotRequired => {
            login::completed(&gw, &ctx, "password").await?;
            full(&gw, old, &user, &v.source).await
        }
    }
}

async fn full(gw: &Gateway, old: Option<&WebSession>, user: &User, source: &str) -> WebResult {
    let cookie = session::rotate(gw, old, user.id, Stage::Full, source).await?;
    tracing::info!(user = %user.name, peer = %source, "web login");
    Ok(([(SET_COOKIE, cookie)], Redirect::to("/account")).into_response())
}

/// A login between the password and the second factor.
struct Pending {
    session: WebSession,
    user: User,
    /// The methods the user may pass, the default first.
    methods: Vec<Method>,
}

/// The pending login of a session at the factor step.
async fn pending(gw: &Gateway, v: &Visitor) -> Result<Pending, WebError> {
    let Some(session) = v.session.clone().filter(|s| s.stage == Stage::Factor) else {
        return Err(WebError::LoginRequired);
    };
    let Some(user) = users::by_id(&gw.db, session.user_id.unwrap_or(-1)).await? else {
        return Err(WebError::LoginRequired);
    };
    match policy::requirement(&gw.db, &user).await? {
        Requirement::Required { methods } => Ok(Pending { session, user, methods }),
        // The policy changed since the password step: start again.
        _ => Err(WebError::LoginRequired),
    }
}

#[derive(serde::Deserialize)]
pub struct MethodQuery {
    method: Option<String>,
}

async fn factor_page(
    gw: &Gateway,
    v: &Visitor,
    p: &Pending,
    chosen: Method,
    status: StatusCode,
    n: Notice,
) -> WebResult {
    let ctx = v.login_context(&p.user.name);
    let (instructions, can_wait) = match login::challenge(gw, &ctx, &p.user, chosen).await? {
        Some(ch) => (ch.instructions, ch.can_wait),
        None => (format!("{} is not available on this gateway. Use another method.", chosen.label()), false),
    };
    factor_page_with(p, chosen, status, n, instructions, String::new(), can_wait)
}

/// The follow-up round of a method that asked another question: its question above the
/// form, its State carried in the form.
fn follow_up_page(p: &Pending, challenge: &Challenge) -> WebResult {
    let question = challenge.prompt.trim().trim_end_matches(':').to_string();
    let state = challenge.state.as_deref().map(hex::encode).unwrap_or_default();
    factor_page_with(p, challenge.method, StatusCode::OK, Notice::none(), question, state, false)
}

fn factor_page_with(
    p: &Pending,
    chosen: Method,
    status: StatusCode,
    n: Notice,
    instructions: String,
    state: String,
    can_wait: bool,
) -> WebResult {
    Ok(page(
        status,
        &FactorPage {
            c: Chrome::anonymous(),
            csrf: p.session.csrf_token.clone(),
            user: p.user.name.clone(),
            method: chosen.as_str(),
            label: chosen.label(),
            numeric: matches!(chosen, Method::Totp | Method::Email),
            instructions,
            state,
            others: p.methods.iter().filter(|m| **m != chosen).map(|m| (m.as_str(), m.label())).collect(),
            can_wait,
            n,
        },
    ))
}

/// `GET /login/factor`: asks for the default (last-used) method, or the one picked.
pub async fn factor_form(State(gw): State<Gateway>, v: Visitor, Query(q): Query<MethodQuery>) -> WebResult {
    let p = pending(&gw, &v).await?;
    // `Required` always names at least one method.
    let Some(default) = p.methods.first().copied() else {
        return Err(WebError::LoginRequired);
    };
    let chosen = q.method.and_then(|m| m.parse::<Method>().ok()).filter(|m| p.methods.contains(m)).unwrap_or(default);
    factor_page(&gw, &v, &p, chosen, StatusCode::OK, Notice::none()).await
}

#[derive(serde::Deserialize)]
pub struct FactorForm {
    #[serde(default)]
    method: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    trust: String,
    #[serde(default)]
    trust_days: String,
    /// The State of a follow-up round, as [`FactorPage::state`] put it in the form.
    #[serde(default)]
    state: String,
    /// `wait`: wait for the approval given elsewhere instead of checking a code.
    #[serde(default)]
    action: String,
}

/// How long one web request waits for an approval before the page asks again.
const WEB_WAIT: std::time::Duration = std::time::Duration::from_secs(25);

/// `POST /login/factor`: checks the answer; on success the session becomes a full one
/// (new id) and, if asked, the browser is trusted.
pub async fn factor_submit(State(gw): State<Gateway>, v: Visitor, CsrfForm(f): CsrfForm<FactorForm>) -> WebResult {
    let p = pending(&gw, &v).await?;
    let Some(method) = f.method.parse::<Method>().ok().filter(|m| p.methods.contains(m)) else {
        return Err(WebError::BadRequest("That method is not one of yours.".into()));
    };
    let again = |status, n| factor_page(&gw, &v, &p, method, status, n);
    let (s, user) = (&p.session, &p.user);
    let waiting = f.action == "wait";
    if f.code.trim().is_empty() && !waiting {
        return again(StatusCode::BAD_REQUEST, Notice::error("code", "Enter the code.")).await;
    }
    let trust_days = if f.trust == "on" {
        match f.trust_days.parse::<i64>() {
            Ok(d) if (1..=trusted_devices::MAX_DAYS).contains(&d) => Some(d),
            _ => {
                return again(
                    StatusCode::BAD_REQUEST,
                    Notice::error("trust_days", format!("Choose 1 to {} days.", trusted_devices::MAX_DAYS)),
                )
                .await;
            }
        }
    } else {
        None
    };
    let ctx = v.login_context(&user.name);
    let Some(mut challenge) = login::challenge(&gw, &ctx, user, method).await? else {
        return Err(WebError::BadRequest("That method is not available.".into()));
    };
    // Only a State the server can check (its own, at most one attribute long) is sent back.
    if method == Method::Radius && !f.state.is_empty() {
        challenge.state = hex::decode(f.state.trim()).ok().filter(|st| !st.is_empty() && st.len() <= 253);
    }
    let started = tokio::time::Instant::now();
    let verdict = if waiting {
        if !challenge.can_wait {
            return Err(WebError::BadRequest("That method has nothing to wait for.".into()));
        }
        login::wait(&gw, &ctx, user, &mut challenge, WEB_WAIT).await?
    } else {
        login::answer(&gw, &ctx, user, &mut challenge, &f.code).await?
    };
    match verdict {
        Verdict::Accepted => {}
        Verdict::Pending if waiting => {
            return again(
                StatusCode::ACCEPTED,
                Notice::error("code", "Not approved yet. Wait again, or enter the code."),
            )
            .await;
        }
        // Denied where it is approved ("this was not me"): this login ends.
        Verdict::Rejected if waiting => {
            web_sessions::delete(&gw.db, &s.id_hash).await?;
            let clear = session::set_cookie(&gw, session::SESSION_COOKIE, "", Some(0));
            return Ok(([(SET_COOKIE, clear)], Redirect::to("/login")).into_response());
        }
        Verdict::Continue => return follow_up_page(&p, &challenge),
        verdict => {
            slow_down(started).await;
            let msg = if login::lock_in_force(&gw, &ctx).await?.is_some() {
                "Too many failed attempts: the account is locked for a while.".to_string()
            } else if verdict == Verdict::Replayed {
                "That code was already used. Wait for the next one.".to_string()
            } else if verdict == Verdict::Unavailable {
                "The server that checks this method did not answer, so the code was not accepted. Try again later or use another method.".to_string()
            } else if verdict == Verdict::Expired {
                "That request has expired. A new one was started.".to_string()
            } else if waiting {
                "The login was not approved.".to_string()
            } else {
                "That code is not right.".to_string()
            };
            return again(StatusCode::UNAUTHORIZED, Notice::error("code", msg)).await;
        }
    }
    login::completed(&gw, &ctx, &format!("password and {method}")).await?;
    let cookie = session::rotate(&gw, Some(s), user.id, Stage::Full, &v.source).await?;
    let mut headers = vec![(SET_COOKIE, cookie)];
    if let Some(days) = trust_days {
        let token = session::new_token();
        let label = browser_label(&v.user_agent);
        trusted_devices::trust(&gw.db, user.id, &session::hash_token(&token), &label, days).await?;
        gw.audit(
            AuditEvent::new("web.trust_browser", Outcome::Success)
                .actor(user.name.clone())
                .user(user.name.clone())
                .source(v.source.clone())
                .detail(format!("{label} for {days} days")),
        )
        .await?;
        headers.push((SET_COOKIE, session::set_cookie(&gw, TRUST_COOKIE, &token, Some(days * 86_400))));
    }
    tracing::info!(user = %user.name, peer = %v.source, method = %method, "web login");
    let mut resp = Redirect::to("/account").into_response();
    for (k, val) in headers {
        resp.headers_mut().append(k, val);
    }
    Ok(resp)
}

/// A short name for a browser from its User-Agent ("Chrome on Linux").
pub fn browser_label(ua: &str) -> String {
    let browser = ["Firefox", "Edg", "Chrome", "Safari", "curl"]
        .into_iter()
        .find(|b| ua.contains(b))
        .map(|b| if b == "Edg" { "Edge" } else { b });
    let os = ["Android", "iPhone", "Windows", "Mac OS", "Linux"].into_iter().find(|o| ua.contains(o));
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_string(),
        _ => "Unknown browser".to_string(),
    }
}

/// `POST /logout`: ends this session.
pub async fn logout(State(gw): State<Gateway>, Changing(a): Changing, CsrfForm(_): CsrfForm<Empty>) -> WebResult {
    web_sessions::delete(&gw.db, &a.session.id_hash).await?;
    let clear = session::set_cookie(&gw, session::SESSION_COOKIE, "", Some(0));
    Ok(([(SET_COOKIE, clear)], Redirect::to("/login")).into_response())
}
