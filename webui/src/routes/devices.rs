//! "My account": trusted browsers and application passcodes. Every query is scoped to
//! the logged-in user's id, so one user can never list or revoke another's.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};
use gatehouse_core::sudo::Change;
use gatehouse_core::{Gateway, app_passcodes, trusted_devices};

use super::account::Done;
use super::confirm;
use crate::error::WebResult;
use crate::form::{CsrfForm, Empty};
use crate::render::{Chrome, Notice, page, when};
use crate::session::Authed;

pub struct DeviceRow {
    pub id: i64,
    pub label: String,
    pub created: String,
    pub expires: String,
    pub used: String,
    pub current: bool,
}

#[derive(askama::Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    c: Chrome,
    sub: &'static str,
    n: Notice,
    devices: Vec<DeviceRow>,
}

async fn devices_page(gw: &Gateway, a: &Authed, status: StatusCode, n: Notice) -> WebResult {
    let devices = trusted_devices::of_user(&gw.db, a.user.id)
        .await?
        .into_iter()
        .map(|d| DeviceRow {
            current: a.trust_hash.as_deref() == Some(d.token_hash.as_str()),
            id: d.id,
            label: d.label,
            created: when(Some(d.created_at)),
            expires: when(Some(d.expires_at)),
            used: when(d.last_used_at),
        })
        .collect();
    Ok(page(status, &DevicesPage { c: a.chrome.clone().with_section("account"), sub: "devices", n, devices }))
}

/// `GET /account/devices`.
pub async fn devices(State(gw): State<Gateway>, a: Authed, Query(d): Query<Done>) -> WebResult {
    devices_page(&gw, &a, StatusCode::OK, Notice::from_code(d.ok.as_deref())).await
}

#[derive(serde::Deserialize)]
pub struct RevokeDevice {
    #[serde(default)]
    id: String,
}

/// `POST /account/devices/revoke`: one of the user's own trusted browsers.
pub async fn revoke_device(State(gw): State<Gateway>, a: Authed, CsrfForm(f): CsrfForm<RevokeDevice>) -> WebResult {
    let revoked = match f.id.parse::<i64>() {
        Ok(id) => trusted_devices::revoke(&gw.db, a.user.id, id).await?,
        Err(_) => false,
    };
    if !revoked {
        return devices_page(
            &gw,
            &a,
            StatusCode::BAD_REQUEST,
            Notice::error("form", "You have no trusted browser with that id."),
        )
        .await;
    }
    gw.audit(
        AuditEvent::new(AuditKind::WebUntrustBrowser, Outcome::Success)
            .actor(a.user.name.clone())
            .user(a.user.name.clone())
            .source(a.source.clone())
            .detail(format!("device {}", f.id)),
    )
    .await?;
    Ok(Redirect::to("/account/devices?ok=revoked").into_response())
}

/// `POST /account/devices/revoke-others`: every trusted browser but this one.
pub async fn revoke_other_devices(State(gw): State<Gateway>, a: Authed, CsrfForm(_): CsrfForm<Empty>) -> WebResult {
    let keep = a.trust_hash.clone().unwrap_or_default();
    let n = trusted_devices::revoke_others(&gw.db, a.user.id, &keep).await?;
    gw.audit(
        AuditEvent::new(AuditKind::WebUntrustBrowser, Outcome::Success)
            .actor(a.user.name.clone())
            .user(a.user.name.clone())
            .source(a.source.clone())
            .detail(format!("{n} other browsers")),
    )
    .await?;
    Ok(Redirect::to("/account/devices?ok=revoked").into_response())
}

pub struct PasscodeRow {
    pub label: String,
    pub created: String,
    pub used: String,
}

#[derive(askama::Template)]
#[template(path = "passcodes.html")]
struct PasscodesPage {
    c: Chrome,
    sub: &'static str,
    n: Notice,
    passcodes: Vec<PasscodeRow>,
    /// A passcode just created, shown once.
    created: String,
    created_label: String,
}

async fn passcodes_page(
    gw: &Gateway,
    a: &Authed,
    status: StatusCode,
    n: Notice,
    created: (String, String),
) -> WebResult {
    let passcodes = app_passcodes::list(&gw.db, a.user.id)
        .await?
        .into_iter()
        .map(|p| PasscodeRow { label: p.label, created: when(Some(p.created_at)), used: when(p.last_used_at) })
        .collect();
    let mut resp = page(
        status,
        &PasscodesPage {
            c: a.chrome.clone().with_section("account"),
            sub: "passcodes",
            n,
            passcodes,
            created: created.0,
            created_label: created.1,
        },
    );
    resp.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET /account/passcodes`.
pub async fn passcodes(State(gw): State<Gateway>, a: Authed, Query(d): Query<Done>) -> WebResult {
    passcodes_page(&gw, &a, StatusCode::OK, Notice::from_code(d.ok.as_deref()), Default::default()).await
}

#[derive(serde::Deserialize)]
pub struct LabelForm {
    #[serde(default)]
    label: String,
}

/// `POST /account/passcodes`: creates one and shows it once (no redirect, no cache).
/// An application passcode opens SSH commands without a second factor, so making one
/// needs a fresh proof like any other credential.
pub async fn create_passcode(State(gw): State<Gateway>, a: Authed, CsrfForm(f): CsrfForm<LabelForm>) -> WebResult {
    let grant = match confirm::grant(&gw, &a, "/account/passcodes", "/account/passcodes").await? {
        Ok(grant) => grant,
        Err(to_confirm) => return Ok(to_confirm),
    };
    let label = f.label.trim().to_string();
    match app_passcodes::create(&gw.db, a.user.id, &label).await {
        Ok(code) => {
            gw.audit(
                AuditEvent::new(AuditKind::PasscodeCreate, Outcome::Success)
                    .actor(a.user.name.clone())
                    .user(a.user.name.clone())
                    .source(a.source.clone())
                    .detail(format!("label {label}")),
            )
            .await?;
            grant.done(&gw, &Change::PasscodeCreated(label.clone())).await?;
            passcodes_page(&gw, &a, StatusCode::OK, Notice::none(), (code, label)).await
        }
        Err(gatehouse_core::Error::Invalid { reason, .. }) => {
            passcodes_page(
                &gw,
                &a,
                StatusCode::BAD_REQUEST,
                Notice::error("label", format!("The label {reason}.")),
                Default::default(),
            )
            .await
        }
        Err(gatehouse_core::Error::Duplicate { .. }) => {
            passcodes_page(
                &gw,
                &a,
                StatusCode::BAD_REQUEST,
                Notice::error("label", "You already have a passcode with that label."),
                Default::default(),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /account/passcodes/revoke`: one of the user's own passcodes, by label.
pub async fn revoke_passcode(State(gw): State<Gateway>, a: Authed, CsrfForm(f): CsrfForm<LabelForm>) -> WebResult {
    if !app_passcodes::revoke(&gw.db, a.user.id, &f.label).await? {
        return passcodes_page(
            &gw,
            &a,
            StatusCode::BAD_REQUEST,
            Notice::error("revoke", "You have no passcode with that label."),
            Default::default(),
        )
        .await;
    }
    gw.audit(
        AuditEvent::new(AuditKind::PasscodeRevoke, Outcome::Success)
            .actor(a.user.name.clone())
            .user(a.user.name.clone())
            .source(a.source.clone())
            .detail(format!("label {}", f.label)),
    )
    .await?;
    Ok(Redirect::to("/account/passcodes?ok=revoked").into_response())
}
