//! Login: password, then the second factor when the policy asks for one, then a new
//! session. Every decision (password check, factor check, lockout, audit) is made by
//! `gatehouse_core::login`, exactly as for the SSH gate; this module only carries the
//! answers between forms. The method passed here becomes the user's SSH default (recorded
//! by `login::answer`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};
use gatehouse_core::factors::Method;
use gatehouse_core::login::{self, Next, PasswordChallenge, Primary, PrimaryStep};
use gatehouse_core::policy::{self, Requirement};
use gatehouse_core::users::{self, User};
use gatehouse_core::web_sessions::{self, Proofs, Stage, WebSession};
use gatehouse_core::{Gateway, trusted_devices};

use super::factor_step::{self, Answer, Step};
use crate::error::{WebError, WebResult};
use crate::form::{CsrfForm, Empty};
use crate::render::{Chrome, Notice, page};
use crate::session::{self, Changing, TRUST_COOKIE, Visitor};
use gatehouse_core::login::slow_down;

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage {
    c: Chrome,
    csrf: String,
    username: String,
    n: Notice,
    /// The RADIUS server's further question after the password, when it asked one.
    question: Option<Question>,
}

/// A further question of the password step (RADIUS Access-Challenge).
struct Question {
    prompt: String,
    /// The server's State, hex; the server checks it with the answer.
    state: String,
}

/// `GET /login`: the form. Before the login nothing is stored: the form's CSRF token is
/// derived from the pre-login cookie, set here when the browser has none.
pub async fn form(State(gw): State<Gateway>, v: Visitor) -> WebResult {
    match (&v.session, &v.pre_login) {
        (Some(s), _) if s.stage == Stage::Full => Ok(Redirect::to("/account").into_response()),
        (Some(s), _) => Ok(login_page(StatusCode::OK, &s.csrf_token, "", Notice::none())),
        (None, Some(pre)) => Ok(login_page(StatusCode::OK, &session::login_form_token(&gw, pre), "", Notice::none())),
        (None, None) => {
            let pre = session::new_token();
            let cookie = session::set_cookie(&gw, session::PRE_LOGIN_COOKIE, &pre, None);
            let token = session::login_form_token(&gw, &pre);
            Ok(([(SET_COOKIE, cookie)], login_page(StatusCode::OK, &token, "", Notice::none())).into_response())
        }
    }
}

fn login_page(status: StatusCode, csrf: &str, username: &str, n: Notice) -> Response {
    page(
        status,
        &LoginPage {
            c: Chrome::anonymous(),
            csrf: csrf.to_string(),
            username: username.to_string(),
            n,
            question: None,
        },
    )
}

/// The password step's further question, in a session bound to the user.
async fn question_page(gw: &Gateway, v: &Visitor, ch: &PasswordChallenge, name: &str, n: Notice) -> WebResult {
    if let Some(old) = v.session.as_ref() {
        web_sessions::delete(&gw.db, &old.id_hash).await?;
    }
    let (cookie, session) =
        session::start(gw, Some(ch.user_id()), Stage::Password, &v.source, Proofs::default()).await?;
    let status = if n.error.is_empty() { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
    let body = page(
        status,
        &LoginPage {
            c: Chrome::anonymous(),
            csrf: session.csrf_token,
            username: name.to_string(),
            n,
            question: Some(Question { prompt: ch.prompt.clone(), state: ch.state_hex() }),
        },
    );
    Ok(([(SET_COOKIE, cookie)], body).into_response())
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
    let csrf = v.form_token(&gw).unwrap_or_default();
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
            let msg = login::lock_text(lock);
            return Ok(login_page(StatusCode::TOO_MANY_REQUESTS, &csrf, name, Notice::error("form", msg)));
        }
        Primary::Unavailable(text) => {
            return Ok(login_page(StatusCode::SERVICE_UNAVAILABLE, &csrf, name, Notice::error("form", text)));
        }
        Primary::Challenge(ch) => return question_page(&gw, &v, &ch, name, Notice::none()).await,
    };
    after_password(&gw, &v, &ctx, &user, started, &csrf, name).await
}

#[derive(serde::Deserialize)]
pub struct QuestionForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
}

/// `POST /login/question`: the answer to the RADIUS server's further question, in the
/// session the password step bound to the user.
pub async fn question_submit(State(gw): State<Gateway>, v: Visitor, CsrfForm(f): CsrfForm<QuestionForm>) -> WebResult {
    let session = v.session.clone().filter(|s| s.stage == Stage::Password);
    let user = match session.as_ref().and_then(|s| s.user_id) {
        Some(id) => users::by_id(&gw.db, id).await?,
        None => None,
    };
    let (Some(session), Some(user)) = (session, user) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let ctx = v.login_context(&user.name);
    let started = tokio::time::Instant::now();
    let Some(ch) = PasswordChallenge::resume(user.id, String::new(), &f.state) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let csrf = session.csrf_token.clone();
    match login::password_challenge(&gw, &ctx, &ch, &f.code).await? {
        Primary::Accepted(u) => after_password(&gw, &v, &ctx, &u, started, &csrf, &user.name).await,
        Primary::Challenge(next) => question_page(&gw, &v, &next, &user.name, Notice::none()).await,
        Primary::Rejected => {
            slow_down(started).await;
            web_sessions::delete(&gw.db, &session.id_hash).await?;
            let token = v.form_token(&gw).unwrap_or_default();
            Ok(login_page(
                StatusCode::UNAUTHORIZED,
                &token,
                &user.name,
                Notice::error("form", "Wrong user name or password."),
            ))
        }
        Primary::Locked(lock) => {
            web_sessions::delete(&gw.db, &session.id_hash).await?;
            let token = v.form_token(&gw).unwrap_or_default();
            Ok(login_page(
                StatusCode::TOO_MANY_REQUESTS,
                &token,
                &user.name,
                Notice::error("form", login::lock_text(lock)),
            ))
        }
        Primary::Unavailable(text) => {
            web_sessions::delete(&gw.db, &session.id_hash).await?;
            let token = v.form_token(&gw).unwrap_or_default();
            Ok(login_page(StatusCode::SERVICE_UNAVAILABLE, &token, &user.name, Notice::error("form", text)))
        }
    }
}

/// After the password step passed: a full session, the factor step, or a refusal.
async fn after_password(
    gw: &Gateway,
    v: &Visitor,
    ctx: &gatehouse_core::factors::LoginContext,
    user: &User,
    started: tokio::time::Instant,
    csrf: &str,
    name: &str,
) -> WebResult {
    let old = v.session.as_ref();
    let trusted = match &v.trust_hash {
        Some(h) => trusted_devices::check(&gw.db, user.id, h).await?,
        None => false,
    };
    match login::after_primary(gw, ctx, user, PrimaryStep::Password, trusted).await? {
        Next::Passed(_) => full(gw, old, user, &v.source).await,
        Next::SecondFactor(_) => {
            let cookie = session::rotate(gw, old, user.id, Stage::Factor, &v.source, Proofs::default()).await?;
            Ok(([(SET_COOKIE, cookie)], Redirect::to("/login/factor")).into_response())
        }
        Next::Refused(text) => {
            slow_down(started).await;
            Ok(login_page(StatusCode::FORBIDDEN, csrf, name, Notice::error("form", text)))
        }
    }
}

/// A full session after the password alone (no factor due, or a trusted browser): it has
/// seen the password, and no factor.
async fn full(gw: &Gateway, old: Option<&WebSession>, user: &User, source: &str) -> WebResult {
    let proofs = Proofs { password_at: Some(gatehouse_core::time::now()), factor_at: None };
    let cookie = session::rotate(gw, old, user.id, Stage::Full, source, proofs).await?;
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

impl Pending {
    /// The factor form of this login.
    fn step<'a>(&'a self, v: &Visitor) -> Step<'a> {
        Step {
            user: &self.user,
            methods: &self.methods,
            ctx: v.login_context(&self.user.name),
            csrf: &self.session.csrf_token,
            confirm: None,
        }
    }
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
        // A security key used as an SSH key signs only over SSH: the web asks for the
        // others; with none left the login cannot pass here, and says why.
        Requirement::Required { mut methods } => {
            methods.retain(|m| m.on_web());
            if methods.is_empty() {
                return Err(WebError::Forbidden(
                    "Your second factor is a security key for SSH, which works over SSH only. Log in over SSH, or ask an administrator for another method for the web.",
                ));
            }
            Ok(Pending { session, user, methods })
        }
        // The policy changed since the password step: start again.
        _ => Err(WebError::LoginRequired),
    }
}

#[derive(serde::Deserialize)]
pub struct MethodQuery {
    method: Option<String>,
}

/// `GET /login/factor`: asks for the default (last-used) method, or the one picked.
pub async fn factor_form(State(gw): State<Gateway>, v: Visitor, Query(q): Query<MethodQuery>) -> WebResult {
    let p = pending(&gw, &v).await?;
    let step = p.step(&v);
    // `Required` always names at least one method.
    let Some(chosen) = step.choose(q.method.as_deref()) else { return Err(WebError::LoginRequired) };
    step.ask(&gw, chosen, StatusCode::OK, Notice::none()).await
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
    /// The State of a follow-up round, as the page put it in the form.
    #[serde(default)]
    state: String,
    /// `wait`: wait for the approval given elsewhere instead of checking a code.
    #[serde(default)]
    action: String,
    /// For a security key: the ceremony the page began.
    #[serde(default)]
    ceremony: String,
}

/// `POST /login/factor`: checks the answer; on success the session becomes a full one
/// (new id) that has seen the password and a factor, and, if asked, the browser is
/// trusted.
pub async fn factor_submit(State(gw): State<Gateway>, v: Visitor, CsrfForm(f): CsrfForm<FactorForm>) -> WebResult {
    let p = pending(&gw, &v).await?;
    let step = p.step(&v);
    let (s, user) = (&p.session, &p.user);
    let trust_days = if f.trust == "on" {
        match f.trust_days.parse::<i64>() {
            Ok(d) if (1..=trusted_devices::MAX_DAYS).contains(&d) => Some(d),
            _ => {
                let method = step.choose(Some(&f.method)).ok_or(WebError::LoginRequired)?;
                let n = Notice::error("trust_days", format!("Choose 1 to {} days.", trusted_devices::MAX_DAYS));
                return step.ask(&gw, method, StatusCode::BAD_REQUEST, n).await;
            }
        }
    } else {
        None
    };
    let answer =
        Answer { method: &f.method, code: &f.code, state: &f.state, wait: f.action == "wait", ceremony: &f.ceremony };
    let method = match step.check(&gw, answer).await? {
        factor_step::Outcome::Passed(method) => method,
        factor_step::Outcome::Page(page) => return Ok(page),
        // Denied where it is approved ("this was not me"): this login ends.
        factor_step::Outcome::Denied => {
            web_sessions::delete(&gw.db, &s.id_hash).await?;
            let clear = session::set_cookie(&gw, session::SESSION_COOKIE, "", Some(0));
            return Ok(([(SET_COOKIE, clear)], Redirect::to("/login")).into_response());
        }
    };
    let ctx = v.login_context(&user.name);
    match login::completed(&gw, &ctx, user, &format!("password and {method}")).await {
        Ok(()) => {}
        // The account was locked or removed while this login waited: it ends here.
        Err(gatehouse_core::Error::Refused(_)) => {
            web_sessions::delete(&gw.db, &s.id_hash).await?;
            return Err(WebError::Forbidden("This account cannot log in now. Ask an administrator."));
        }
        Err(e) => return Err(e.into()),
    }
    // The password was checked when this factor-step session began.
    let proofs = Proofs { password_at: Some(s.created_at), factor_at: Some(gatehouse_core::time::now()) };
    let cookie = session::rotate(&gw, Some(s), user.id, Stage::Full, &v.source, proofs).await?;
    let mut headers = vec![(SET_COOKIE, cookie)];
    if let Some(days) = trust_days {
        let token = session::new_token();
        let label = browser_label(&v.user_agent);
        trusted_devices::trust(&gw.db, user.id, &gatehouse_core::vault::token_hash(&token), &label, days).await?;
        gw.audit(
            AuditEvent::new(AuditKind::WebTrustBrowser, Outcome::Success)
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
