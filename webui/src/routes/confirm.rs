//! Sudo mode on the web: the confirmation a change of credentials asks for when this
//! session has no fresh proof (`gatehouse_core::sudo` decides which proof, and when), and
//! the two calls the routes of those changes make: [`form_gate`] on the page with the
//! form, [`grant`] before the change itself.
//!
//! The confirmation asks the user's second factor (the last-used method first, with the
//! login's form and checks, so answers count towards the lockout), or the password when
//! they have no factor. On success the session is stamped and the browser returns to the
//! page it came from, which is only ever a path on this site.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_core::Gateway;
use gatehouse_core::login::{self, Primary};
use gatehouse_core::sudo::{self, Access, Grant, Proof};

use super::factor_step::{self, Answer, Step};
use crate::error::WebResult;
use crate::form::CsrfForm;
use crate::render::{Chrome, Notice, page};
use crate::session::{Authed, Changing};
use gatehouse_core::login::slow_down;

/// Where a confirmation returns when it was given no usable `next`.
const HOME: &str = "/account";

/// `next` if it is a path on this site, else [`HOME`]. A scheme, a host (`//evil`, and
/// `/\evil`, which browsers read the same way) or a control character never passes, so
/// the confirmation cannot send anyone elsewhere.
pub fn local_path(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control() || c.is_whitespace());
    if local { next } else { HOME }
}

/// The redirect (303) to the confirmation page, returning to `next` afterwards.
fn to_confirm(next: &str) -> Response {
    let query = serde_urlencoded::to_string([("next", local_path(next))]).unwrap_or_default();
    Redirect::to(&format!("/account/confirm?{query}")).into_response()
}

/// For the page that shows a change's form (`page`, its own path): the redirect to the
/// confirmation when the session is not fresh, so nobody fills in a form that would be
/// refused.
pub async fn form_gate(gw: &Gateway, a: &Authed, page: &str) -> WebResult<Option<Response>> {
    Ok(sudo::missing(gw, &a.session, &a.user).await?.map(|_| to_confirm(page)))
}

/// For the request that makes a change (`what`, its path, for the audit log): the grant,
/// or the redirect to the confirmation that returns to `back_to`, the page with the form.
/// Nothing may be changed before this is called.
pub async fn grant(gw: &Gateway, a: &Authed, what: &str, back_to: &str) -> WebResult<Result<Grant, Response>> {
    Ok(match sudo::check(gw, &a.session, &a.user, &a.source, what).await? {
        Access::Granted(grant) => Ok(grant),
        Access::Refused(_) => Err(to_confirm(back_to)),
    })
}

#[derive(askama::Template)]
#[template(path = "confirm_password.html")]
struct PasswordPage {
    c: Chrome,
    next: String,
    n: Notice,
}

fn password_page(a: &Authed, next: &str, status: StatusCode, n: Notice) -> Response {
    page(status, &PasswordPage { c: a.chrome.clone().with_section("account"), next: next.to_string(), n })
}

/// The factor form of a confirmation.
fn step<'a>(a: &'a Authed, methods: &'a [gatehouse_core::factors::Method], next: &'a str) -> Step<'a> {
    Step {
        user: &a.user,
        methods,
        ctx: a.login_context(),
        csrf: &a.session.csrf_token,
        confirm: Some((a.chrome.clone().with_section("account"), next)),
    }
}

#[derive(serde::Deserialize)]
pub struct ConfirmQuery {
    #[serde(default)]
    next: String,
    method: Option<String>,
}

/// `GET /account/confirm?next=…`: asks the proof, or returns at once when the session is
/// fresh already.
pub async fn form(State(gw): State<Gateway>, Changing(a): Changing, Query(q): Query<ConfirmQuery>) -> WebResult {
    let next = local_path(&q.next);
    let Some(proof) = sudo::missing(&gw, &a.session, &a.user).await? else {
        return Ok(Redirect::to(next).into_response());
    };
    match proof {
        Proof::Password => Ok(password_page(&a, next, StatusCode::OK, Notice::none())),
        Proof::Factor(methods) => {
            let step = step(&a, &methods, next);
            let Some(chosen) = step.choose(q.method.as_deref()) else {
                return Ok(Redirect::to(HOME).into_response());
            };
            step.ask(&gw, chosen, StatusCode::OK, Notice::none()).await
        }
    }
}

#[derive(serde::Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    next: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    action: String,
    /// For a security key: the ceremony the page began.
    #[serde(default)]
    ceremony: String,
}

/// `POST /account/confirm`: checks the proof through `gatehouse_core::login` (counted,
/// audited, refused while locked), stamps the session and returns to `next`.
pub async fn submit(
    State(gw): State<Gateway>,
    Changing(mut a): Changing,
    CsrfForm(f): CsrfForm<ConfirmForm>,
) -> WebResult {
    let next = local_path(&f.next);
    let proof = sudo::proof_for(&gw, &a.user).await?;
    let how = match &proof {
        Proof::Password => match check_password(&gw, &a, &f.password).await? {
            Ok(()) => "password".to_string(),
            Err(refused) => {
                return Ok(password_page(&a, next, refused.0, Notice::error("password", refused.1)));
            }
        },
        Proof::Factor(methods) => {
            let step = step(&a, methods, next);
            let answer = Answer {
                method: &f.method,
                code: &f.code,
                state: &f.state,
                wait: f.action == "wait",
                ceremony: &f.ceremony,
            };
            match step.check(&gw, answer).await? {
                factor_step::Outcome::Passed(method) => method.to_string(),
                factor_step::Outcome::Page(page) => return Ok(page),
                factor_step::Outcome::Denied => {
                    let Some(method) = step.choose(Some(&f.method)) else {
                        return Ok(Redirect::to(HOME).into_response());
                    };
                    return step
                        .ask(&gw, method, StatusCode::UNAUTHORIZED, Notice::error("code", "The request was denied."))
                        .await;
                }
            }
        }
    };
    sudo::confirmed(&gw, &mut a.session, &a.user, &a.source, proof.kind(), &how).await?;
    Ok(Redirect::to(next).into_response())
}

/// Checks the account password as the login does. The error is the status and message
/// of the page to show.
async fn check_password(gw: &Gateway, a: &Authed, password: &str) -> WebResult<Result<(), (StatusCode, String)>> {
    if password.is_empty() {
        return Ok(Err((StatusCode::BAD_REQUEST, "Enter your password.".into())));
    }
    let started = tokio::time::Instant::now();
    Ok(match login::password(gw, &a.login_context(), password).await? {
        Primary::Accepted(u) if u.id == a.user.id => Ok(()),
        Primary::Locked(lock) => Err((StatusCode::TOO_MANY_REQUESTS, login::lock_text(lock))),
        Primary::Unavailable(text) => Err((StatusCode::SERVICE_UNAVAILABLE, text.to_string())),
        _ => {
            slow_down(started).await;
            Err((StatusCode::UNAUTHORIZED, "That is not your password.".into()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_paths_on_this_site_are_followed() {
        for ok in ["/account", "/account/totp", "/account/keys?ok=1"] {
            assert_eq!(local_path(ok), ok);
        }
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "evil",
            "",
            "/a\r\nb",
            "/ /x",
            "javascript:alert(1)",
        ] {
            assert_eq!(local_path(bad), "/account", "{bad:?}");
        }
    }
}
