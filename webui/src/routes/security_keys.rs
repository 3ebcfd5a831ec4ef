//! "My account → Security keys and passkeys": the user's keys (named, with their last
//! use), the registration of a new one, and the removal of one with proof of another
//! factor. Every check is `gatehouse_core::factors::webauthn`'s; this module carries the
//! browser's answers (`static/webauthn.js` asks `navigator.credentials`). Reachable while
//! the user must still enroll a factor.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use gatehouse_core::Gateway;
use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};
use gatehouse_core::factors::webauthn::{self, Registration};
use gatehouse_core::factors::{self, Method};
use gatehouse_core::policy::{self, Requirement};
use gatehouse_core::sudo::Change;

use super::account::{Done, allowed, prove_factor, security_keys_usable};
use super::confirm;
use crate::error::WebResult;
use crate::form::CsrfForm;
use crate::render::{Chrome, Notice, page, when};
use crate::session::{Authed, Enrolling};

const PAGE: &str = "/account/security-keys";

/// A key as listed.
struct KeyRow {
    id: i64,
    name: String,
    created: String,
    used: String,
}

#[derive(askama::Template)]
#[template(path = "security_keys.html")]
struct KeysPage {
    c: Chrome,
    sub: &'static str,
    n: Notice,
    forced: bool,
    /// Keys may be registered: allowed for the user and the gateway is a relying party.
    usable: bool,
    /// Why not, when the gateway cannot be a relying party.
    unavailable: String,
    keys: Vec<KeyRow>,
    /// The name typed, shown again after an error.
    name: String,
    /// The factors a removal can be confirmed with: (method, label).
    provable: Vec<(&'static str, &'static str)>,
}

#[derive(askama::Template)]
#[template(path = "security_key_register.html")]
struct RegisterPage {
    c: Chrome,
    name: String,
    ceremony: String,
    options: String,
}

async fn keys_page(gw: &Gateway, a: &Authed, status: StatusCode, n: Notice, name: &str) -> WebResult {
    let forced = matches!(policy::requirement(&gw.db, &a.user).await?, Requirement::MustEnroll { .. });
    let mut chrome = a.chrome.clone().with_section("account");
    chrome.nav = chrome.nav && !forced;
    let keys = webauthn::keys(gw, a.user.id)
        .await?
        .into_iter()
        .map(|k| KeyRow { id: k.id, name: k.name, created: when(Some(k.created_at)), used: when(k.last_used_at) })
        .collect();
    let provable = factors::enrolled(&gw.db, a.user.id)
        .await?
        .into_iter()
        .filter(|m| *m != Method::Webauthn)
        .map(|m| (m.as_str(), m.label()))
        .collect();
    Ok(page(
        status,
        &KeysPage {
            c: chrome,
            sub: "factors",
            n,
            forced,
            usable: security_keys_usable(gw, &allowed(a)),
            unavailable: webauthn::availability(&gw.config).err().unwrap_or_default(),
            keys,
            name: name.to_string(),
            provable,
        },
    ))
}

/// `GET /account/security-keys`: the user's keys and the form to register one.
pub async fn list(State(gw): State<Gateway>, Enrolling(a): Enrolling, Query(d): Query<Done>) -> WebResult {
    keys_page(&gw, &a, StatusCode::OK, Notice::from_code(d.ok.as_deref()), "").await
}

#[derive(serde::Deserialize)]
pub struct BeginForm {
    #[serde(default)]
    name: String,
}

/// `POST /account/security-keys/begin`: begins the registration of a key with the name
/// typed; the page that follows asks the browser for the new credential.
pub async fn begin(State(gw): State<Gateway>, Enrolling(a): Enrolling, CsrfForm(f): CsrfForm<BeginForm>) -> WebResult {
    // Nothing is changed yet (the finish asks for the grant), but nobody should touch a
    // key for a registration that would be refused.
    if let Some(to_confirm) = confirm::form_gate(&gw, &a, PAGE).await? {
        return Ok(to_confirm);
    }
    if !security_keys_usable(&gw, &allowed(&a)) {
        let n = Notice::error("name", "Security keys are not allowed for your account here.");
        return keys_page(&gw, &a, StatusCode::BAD_REQUEST, n, &f.name).await;
    }
    let ceremony = match webauthn::begin_registration(&gw, &a.user, &f.name).await {
        Ok(c) => c,
        Err(gatehouse_core::Error::Invalid { reason, .. }) => {
            let n = Notice::error("name", format!("The name: {reason}."));
            return keys_page(&gw, &a, StatusCode::BAD_REQUEST, n, &f.name).await;
        }
        Err(gatehouse_core::Error::Refused(why)) => {
            let n = Notice::error("name", format!("No key can be registered: {why}."));
            return keys_page(&gw, &a, StatusCode::BAD_REQUEST, n, &f.name).await;
        }
        Err(e) => return Err(e.into()),
    };
    Ok(page(
        StatusCode::OK,
        &RegisterPage {
            c: a.chrome.clone().with_section("account"),
            name: f.name.trim().to_string(),
            ceremony: ceremony.id,
            options: ceremony.options,
        },
    ))
}

#[derive(serde::Deserialize)]
pub struct FinishForm {
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    response: String,
}

/// `POST /account/security-keys/finish`: the browser's new credential; the key is stored
/// when the relying party's checks pass.
pub async fn finish(
    State(gw): State<Gateway>,
    Enrolling(a): Enrolling,
    CsrfForm(f): CsrfForm<FinishForm>,
) -> WebResult {
    let grant = match confirm::grant(&gw, &a, "/account/security-keys/finish", PAGE).await? {
        Ok(grant) => grant,
        Err(to_confirm) => return Ok(to_confirm),
    };
    if !security_keys_usable(&gw, &allowed(&a)) {
        let n = Notice::error("name", "Security keys are not allowed for your account here.");
        return keys_page(&gw, &a, StatusCode::BAD_REQUEST, n, "").await;
    }
    match webauthn::finish_registration(&gw, &a.user, &f.ceremony, &f.response).await? {
        Registration::Registered(key) => {
            gw.audit(event(
                &a,
                AuditKind::FactorEnroll,
                Outcome::Success,
                format!("webauthn key \"{}\" via web", key.name),
            ))
            .await?;
            grant.done(&gw, &Change::SecurityKeyAdded(key.name)).await?;
            Ok(Redirect::to("/account/security-keys?ok=security-key").into_response())
        }
        Registration::Refused(refusal) => {
            gw.audit(event(&a, AuditKind::FactorEnroll, Outcome::Failure, format!("webauthn via web: {refusal}")))
                .await?;
            let n = Notice::error("name", format!("The key was not registered: {refusal}."));
            keys_page(&gw, &a, StatusCode::BAD_REQUEST, n, "").await
        }
    }
}

#[derive(serde::Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    proof_method: String,
    #[serde(default)]
    proof: String,
}

/// `POST /account/security-keys/remove`: removes one key after checking a code of
/// another of the user's factors, as removing any factor does.
pub async fn remove(State(gw): State<Gateway>, a: Authed, CsrfForm(f): CsrfForm<RemoveForm>) -> WebResult {
    let keys = webauthn::keys(&gw, a.user.id).await?;
    let Some(key) = f.key.parse::<i64>().ok().and_then(|id| keys.into_iter().find(|k| k.id == id)) else {
        return keys_page(&gw, &a, StatusCode::BAD_REQUEST, Notice::error("remove", "Choose one of your keys."), "")
            .await;
    };
    let enrolled = factors::enrolled(&gw.db, a.user.id).await?;
    let mut a = a;
    let what = format!("security key \"{}\"", key.name);
    if let Err((status, mut n)) = prove_factor(&gw, &mut a, &enrolled, &f.proof_method, &f.proof, &what).await? {
        n.field = "remove".into();
        return keys_page(&gw, &a, status, n, "").await;
    }
    let grant = match confirm::grant(&gw, &a, "/account/security-keys/remove", PAGE).await? {
        Ok(grant) => grant,
        Err(to_confirm) => return Ok(to_confirm),
    };
    let Some(name) = webauthn::remove(&gw, a.user.id, key.id).await? else {
        return Ok(Redirect::to(PAGE).into_response());
    };
    gw.audit(event(&a, AuditKind::FactorRemove, Outcome::Success, format!("webauthn key \"{name}\" via web"))).await?;
    grant.done(&gw, &Change::SecurityKeyRemoved(name)).await?;
    Ok(Redirect::to("/account/security-keys?ok=security-key-removed").into_response())
}

fn event(a: &Authed, kind: AuditKind, outcome: Outcome, detail: String) -> AuditEvent {
    AuditEvent::new(kind, outcome)
        .actor(a.user.name.clone())
        .user(a.user.name.clone())
        .source(a.source.clone())
        .detail(detail)
}
