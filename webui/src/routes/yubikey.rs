//! "My account → YubiKey": the user binds their own YubiKey by touching it once. The OTP
//! it types is checked with the validation server (and so spent), then the key's public
//! id is bound. Reachable while the user must still enroll a factor.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use gatehouse_core::Gateway;
use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};
use gatehouse_core::factors::yubikey::{self, EnrollError};
use gatehouse_core::factors::{Method, MethodSet};
use gatehouse_core::policy::{self, Requirement};
use gatehouse_core::sudo::Change;

use super::confirm;
use crate::error::WebResult;
use crate::form::CsrfForm;
use crate::render::{Notice, page};
use crate::session::{Authed, Enrolling};

#[derive(askama::Template)]
#[template(path = "yubikey.html")]
struct YubikeyPage {
    c: crate::render::Chrome,
    sub: &'static str,
    n: Notice,
    forced: bool,
    /// The gateway can check YubiKey OTPs (the `[yubikey]` table is set).
    configured: bool,
    allowed: bool,
    /// The public id of the key bound now; empty when none.
    bound: String,
}

async fn yubikey_page(gw: &Gateway, a: &Authed, status: StatusCode, n: Notice) -> WebResult {
    let forced = matches!(policy::requirement(&gw.db, &a.user).await?, Requirement::MustEnroll { .. });
    let allowed =
        policy::resolve(&gw.db, &a.user).await?.allowed.unwrap_or_else(MethodSet::all).contains(Method::Yubikey);
    let mut chrome = a.chrome.clone().with_section("account");
    chrome.nav = chrome.nav && !forced;
    Ok(page(
        status,
        &YubikeyPage {
            c: chrome,
            sub: "factors",
            n,
            forced,
            configured: gw.config.yubikey.enabled(),
            allowed,
            bound: yubikey::public_id(gw, a.user.id).await?.unwrap_or_default(),
        },
    ))
}

/// `GET /account/yubikey`: the form to bind a key.
pub async fn form(State(gw): State<Gateway>, Enrolling(a): Enrolling) -> WebResult {
    if let Some(to_confirm) = confirm::form_gate(&gw, &a, "/account/yubikey").await? {
        return Ok(to_confirm);
    }
    yubikey_page(&gw, &a, StatusCode::OK, Notice::none()).await
}

#[derive(serde::Deserialize)]
pub struct BindForm {
    #[serde(default)]
    otp: String,
}

/// `POST /account/yubikey`: checks the OTP with the validation server and binds the key
/// that typed it, replacing any key bound before.
pub async fn bind(State(gw): State<Gateway>, Enrolling(a): Enrolling, CsrfForm(f): CsrfForm<BindForm>) -> WebResult {
    let grant = match confirm::grant(&gw, &a, "/account/yubikey", "/account/yubikey").await? {
        Ok(grant) => grant,
        Err(to_confirm) => return Ok(to_confirm),
    };
    let again = |status, msg: String| yubikey_page(&gw, &a, status, Notice::error("otp", msg));
    if !policy::resolve(&gw.db, &a.user).await?.allowed.unwrap_or_else(MethodSet::all).contains(Method::Yubikey) {
        return again(StatusCode::BAD_REQUEST, "YubiKeys are not allowed for your account.".into()).await;
    }
    if f.otp.trim().is_empty() {
        return again(StatusCode::BAD_REQUEST, "Click in the field, then touch your YubiKey.".into()).await;
    }
    let public_id = match yubikey::enroll(&gw, &a.user, &f.otp).await {
        Ok(id) => id,
        Err(EnrollError::Core(e)) => return Err(e.into()),
        Err(e) => {
            let status = match e {
                EnrollError::Unavailable(_) | EnrollError::NotConfigured => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            let msg = match &e {
                // The servers' names and answers are for the administrator (health page).
                EnrollError::Unavailable(_) => {
                    "The YubiKey validation service did not answer, so the key was not bound. Try again later."
                        .to_string()
                }
                other => format!("The key was not bound: {other}."),
            };
            gw.audit(event(&a, Outcome::Failure, format!("yubikey via web: {}", short(&e)))).await?;
            return again(status, msg).await;
        }
    };
    gw.audit(event(&a, Outcome::Success, format!("yubikey {public_id} via web"))).await?;
    grant.done(&gw, &Change::Yubikey(public_id)).await?;
    Ok(Redirect::to("/account?ok=yubikey").into_response())
}

fn event(a: &Authed, outcome: Outcome, detail: String) -> AuditEvent {
    AuditEvent::new(AuditKind::FactorEnroll, outcome)
        .actor(a.user.name.clone())
        .user(a.user.name.clone())
        .source(a.source.clone())
        .detail(detail)
}

/// A few words on why an enrollment failed, for the audit log.
fn short(e: &EnrollError) -> &'static str {
    match e {
        EnrollError::NotConfigured => "not configured",
        EnrollError::Format(_) | EnrollError::NoPublicId => "not an OTP",
        EnrollError::Rejected => "OTP refused by the validation server",
        EnrollError::Replayed => "OTP already used",
        EnrollError::Unavailable(_) => "validation server unavailable",
        EnrollError::Core(_) => "internal error",
    }
}
