//! "My account": security keys used as SSH keys for the second factor
//! (`gatehouse_core::factors::ssh_sk`). The user pastes a key's `.pub` line; keys are
//! listed with their last use and removed one by one. Every change needs a fresh proof
//! (`super::confirm`), is audited and mailed to the user, as for the other factors.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use gatehouse_core::admin::users::ssh_sk_detail;
use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};
use gatehouse_core::factors::{Method, ssh_sk};
use gatehouse_core::sudo::Change;
use gatehouse_core::{Gateway, time};

use super::account::{Done, allowed};
use super::confirm;
use crate::error::WebResult;
use crate::form::CsrfForm;
use crate::render::{Chrome, Notice, page, when};
use crate::session::Authed;

pub struct SkRow {
    pub id: i64,
    pub name: String,
    pub algorithm: String,
    pub fingerprint: String,
    pub verify_required: bool,
    pub created: String,
    pub used: String,
}

#[derive(askama::Template)]
#[template(path = "ssh_security_keys.html")]
struct SecurityKeysPage {
    c: Chrome,
    sub: &'static str,
    n: Notice,
    keys: Vec<SkRow>,
    /// Whether the policy lets this user use the method.
    allowed: bool,
    /// What was typed, when it is shown again with an error.
    key: String,
    name: String,
}

async fn keys_page(gw: &Gateway, a: &Authed, status: StatusCode, n: Notice, key: &str, name: &str) -> WebResult {
    let keys = ssh_sk::of_user(&gw.db, a.user.id)
        .await?
        .into_iter()
        .map(|k| SkRow {
            id: k.id,
            name: k.name,
            algorithm: k.algorithm,
            fingerprint: k.fingerprint,
            verify_required: k.verify_required,
            created: when(Some(k.created_at)),
            used: when(k.last_used_at),
        })
        .collect();
    let allowed = allowed(a).contains(Method::SshSk);
    let c = a.chrome.clone().with_section("account");
    let p = SecurityKeysPage {
        c,
        sub: "ssh-security-keys",
        n,
        keys,
        allowed,
        key: key.to_string(),
        name: name.to_string(),
    };
    Ok(page(status, &p))
}

/// `GET /account/ssh-security-keys`.
pub async fn list(State(gw): State<Gateway>, a: Authed, Query(d): Query<Done>) -> WebResult {
    keys_page(&gw, &a, StatusCode::OK, Notice::from_code(d.ok.as_deref()), "", "").await
}

#[derive(serde::Deserialize)]
pub struct AddForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    name: String,
    /// `on` when the box is ticked.
    #[serde(default)]
    verify_required: String,
}

/// `POST /account/ssh-security-keys`: registers a security key for the logged-in user.
pub async fn add(State(gw): State<Gateway>, a: Authed, CsrfForm(f): CsrfForm<AddForm>) -> WebResult {
    let grant = match confirm::grant(&gw, &a, "/account/ssh-security-keys", "/account/ssh-security-keys").await? {
        Ok(grant) => grant,
        Err(to_confirm) => return Ok(to_confirm),
    };
    let fail = |status, msg: String| keys_page(&gw, &a, status, Notice::error("key", msg), &f.key, &f.name);
    if !allowed(&a).contains(Method::SshSk) {
        return fail(StatusCode::FORBIDDEN, "Security keys are not allowed for your account.".into()).await;
    }
    match ssh_sk::add(&gw.db, a.user.id, &f.key, &f.name, f.verify_required == "on").await {
        Ok(k) => {
            gw.audit(
                AuditEvent::new(AuditKind::FactorEnroll, Outcome::Success)
                    .actor(a.user.name.clone())
                    .user(a.user.name.clone())
                    .source(a.source.clone())
                    .detail(format!("{} via web", ssh_sk_detail(&k))),
            )
            .await?;
            grant.done(&gw, &Change::SshSecurityKeyAdded(k.fingerprint)).await?;
            Ok(Redirect::to("/account/ssh-security-keys?ok=ssh-security-key-added").into_response())
        }
        Err(gatehouse_core::Error::Invalid { reason, .. }) => {
            fail(StatusCode::BAD_REQUEST, format!("This key cannot be used: {reason}.")).await
        }
        Err(gatehouse_core::Error::Duplicate { .. }) => {
            fail(StatusCode::BAD_REQUEST, "You already registered this key.".into()).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    id: String,
}

/// `POST /account/ssh-security-keys/remove`: removes one of the user's own security keys; an
/// id of another user's key is simply not found.
pub async fn remove(State(gw): State<Gateway>, a: Authed, CsrfForm(f): CsrfForm<RemoveForm>) -> WebResult {
    let grant = match confirm::grant(&gw, &a, "/account/ssh-security-keys/remove", "/account/ssh-security-keys").await?
    {
        Ok(grant) => grant,
        Err(to_confirm) => return Ok(to_confirm),
    };
    let removed = match f.id.trim().parse::<i64>() {
        Ok(id) => ssh_sk::remove(&gw.db, a.user.id, id).await?,
        Err(_) => None,
    };
    let Some(k) = removed else {
        let n = Notice::error("id", "You have no such security key.");
        return keys_page(&gw, &a, StatusCode::BAD_REQUEST, n, "", "").await;
    };
    gw.audit(
        AuditEvent::new(AuditKind::FactorRemove, Outcome::Success)
            .actor(a.user.name.clone())
            .user(a.user.name.clone())
            .source(a.source.clone())
            .detail(format!(
                "{} via web, last used {}",
                ssh_sk_detail(&k),
                k.last_used_at.map(time::format_utc).unwrap_or_else(|| "never".into())
            )),
    )
    .await?;
    grant.done(&gw, &Change::SshSecurityKeyRemoved(k.fingerprint)).await?;
    Ok(Redirect::to("/account/ssh-security-keys?ok=ssh-security-key-removed").into_response())
}
