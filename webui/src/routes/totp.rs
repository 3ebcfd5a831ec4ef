//! The authenticator-app (TOTP) enrollment: a new seed with its QR code, manual key and
//! URI, confirmed by a code from the app. The same page is the forced-enrollment page
//! (`/enroll`) for a user who must enroll a second factor before anything else. Every
//! change here needs a fresh proof (`super::confirm`) and is mailed to the user.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use gatehouse_core::Gateway;
use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};
use gatehouse_core::factors::{Method, totp};
use gatehouse_core::policy::{self, Requirement};
use gatehouse_core::sudo::Change;

use super::account::{allowed, security_keys_usable, yubikey_usable};
use super::confirm;

use crate::error::WebResult;
use crate::form::CsrfForm;
use crate::render::{Chrome, Notice, page};
use crate::session::{Authed, Enrolling};

#[derive(askama::Template)]
#[template(path = "totp.html")]
struct TotpPage {
    c: Chrome,
    sub: &'static str,
    n: Notice,
    forced: bool,
    totp_allowed: bool,
    keyword_allowed: bool,
    /// A YubiKey may be bound (allowed, and the gateway can check its OTPs).
    yubikey_allowed: bool,
    /// Security keys may be registered (allowed, and the gateway is a relying party).
    security_keys_allowed: bool,
    qr_svg: String,
    key: String,
    uri: String,
}

/// The authenticator-app enrollment page with a new seed; `forced` when the user must
/// enroll before anything else (no navigation then).
pub(super) async fn totp_page(gw: &Gateway, a: &Authed, forced: bool, status: StatusCode, n: Notice) -> WebResult {
    let allowed = allowed(a);
    let seed = totp::NewSeed::generate();
    let uri = seed.uri(&a.user.name);
    let qr_svg = qr_svg(&uri);
    let mut chrome = a.chrome.clone().with_section("account");
    chrome.nav = chrome.nav && !forced;
    let mut resp = page(
        status,
        &TotpPage {
            c: chrome,
            sub: "factors",
            n,
            forced,
            totp_allowed: allowed.contains(Method::Totp),
            keyword_allowed: allowed.contains(Method::Keyword),
            yubikey_allowed: yubikey_usable(gw, &allowed),
            security_keys_allowed: security_keys_usable(gw, &allowed),
            qr_svg,
            key: seed.base32(),
            uri,
        },
    );
    resp.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The QR code of `text` as inline SVG (no script, no image request).
fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code.render::<qrcode::render::svg::Color>().min_dimensions(220, 220).quiet_zone(true).build(),
        Err(e) => {
            tracing::error!(error = %e, "QR code could not be built");
            String::new()
        }
    }
}

/// `GET /enroll`: the forced-enrollment page (plain account page once nothing is due).
pub async fn enroll(State(gw): State<Gateway>, Enrolling(a): Enrolling) -> WebResult {
    let forced = matches!(policy::requirement(&gw.db, &a.user).await?, Requirement::MustEnroll { .. });
    if !forced {
        return Ok(Redirect::to("/account").into_response());
    }
    if let Some(to_confirm) = confirm::form_gate(&gw, &a, "/enroll").await? {
        return Ok(to_confirm);
    }
    totp_page(&gw, &a, true, StatusCode::OK, Notice::none()).await
}

/// `GET /account/totp`: a new seed, its QR code, manual key and URI.
pub async fn totp_form(State(gw): State<Gateway>, Enrolling(a): Enrolling) -> WebResult {
    if let Some(to_confirm) = confirm::form_gate(&gw, &a, "/account/totp").await? {
        return Ok(to_confirm);
    }
    let forced = matches!(policy::requirement(&gw.db, &a.user).await?, Requirement::MustEnroll { .. });
    totp_page(&gw, &a, forced, StatusCode::OK, Notice::none()).await
}

#[derive(serde::Deserialize)]
pub struct TotpForm {
    #[serde(default)]
    seed: String,
    #[serde(default)]
    code: String,
}

/// `POST /account/totp`: stores the seed once a code from it is confirmed; that code's
/// step is recorded so it cannot be used again to log in.
pub async fn totp_confirm(
    State(gw): State<Gateway>,
    Enrolling(a): Enrolling,
    CsrfForm(f): CsrfForm<TotpForm>,
) -> WebResult {
    let forced = matches!(policy::requirement(&gw.db, &a.user).await?, Requirement::MustEnroll { .. });
    let grant = match confirm::grant(&gw, &a, "/account/totp", if forced { "/enroll" } else { "/account/totp" }).await?
    {
        Ok(grant) => grant,
        Err(to_confirm) => return Ok(to_confirm),
    };
    if !allowed(&a).contains(Method::Totp) {
        return totp_page(
            &gw,
            &a,
            forced,
            StatusCode::BAD_REQUEST,
            Notice::error("code", "Authenticator apps are not allowed for your account."),
        )
        .await;
    }
    let Ok(seed) = totp::NewSeed::from_base32(&f.seed) else {
        return totp_page(
            &gw,
            &a,
            forced,
            StatusCode::BAD_REQUEST,
            Notice::error("code", "The form lost its key; scan the new code and try again."),
        )
        .await;
    };
    if f.code.trim().is_empty() {
        return totp_again(&gw, &a, forced, &seed, "Enter the 6-digit code from the app.").await;
    }
    let Some(step) = seed.check(&f.code) else {
        return totp_again(
            &gw,
            &a,
            forced,
            &seed,
            "That code does not match. Check the time on your phone and enter the current code.",
        )
        .await;
    };
    totp::enroll(&gw, a.user.id, &seed, Some(step)).await?;
    gw.audit(
        AuditEvent::new(AuditKind::FactorEnroll, Outcome::Success)
            .actor(a.user.name.clone())
            .user(a.user.name.clone())
            .source(a.source.clone())
            .detail("totp via web"),
    )
    .await?;
    grant.done(&gw, &Change::Totp).await?;
    Ok(Redirect::to("/account?ok=totp").into_response())
}

/// The enrollment page again with the same seed (the user already scanned it).
async fn totp_again(gw: &Gateway, a: &Authed, forced: bool, seed: &totp::NewSeed, msg: &str) -> WebResult {
    let allowed = allowed(a);
    let uri = seed.uri(&a.user.name);
    let mut chrome = a.chrome.clone().with_section("account");
    chrome.nav = chrome.nav && !forced;
    Ok(page(
        StatusCode::BAD_REQUEST,
        &TotpPage {
            c: chrome,
            sub: "factors",
            n: Notice::error("code", msg),
            forced,
            totp_allowed: true,
            keyword_allowed: allowed.contains(Method::Keyword),
            yubikey_allowed: yubikey_usable(gw, &allowed),
            security_keys_allowed: security_keys_usable(gw, &allowed),
            qr_svg: qr_svg(&uri),
            key: seed.base32(),
            uri,
        },
    ))
}
