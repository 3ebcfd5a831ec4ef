//! "My account": SSH public keys and the password. A password change revokes every
//! application passcode and ends the user's other web sessions. Every change here needs a
//! fresh proof (`super::confirm`) and is mailed to the user; a wrong current password
//! counts towards the lockout like a failed login.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};
use gatehouse_core::login::{self, Primary};
use gatehouse_core::sudo::Change;
use gatehouse_core::{Gateway, ssh_keys, users, web_sessions};

use super::account::Done;
use super::confirm;
use crate::error::WebResult;
use crate::form::CsrfForm;
use crate::render::{Chrome, Notice, page, when};
use crate::session::{Authed, Changing};
use gatehouse_core::login::slow_down;

pub struct KeyRow {
    pub fingerprint: String,
    pub algorithm: String,
    pub comment: String,
    pub created: String,
    pub used: String,
}

#[derive(askama::Template)]
#[template(path = "keys.html")]
struct KeysPage {
    c: Chrome,
    sub: &'static str,
    n: Notice,
    keys: Vec<KeyRow>,
    /// What was typed, when it is shown again with an error.
    key: String,
}

async fn keys_page(gw: &Gateway, a: &Authed, status: StatusCode, n: Notice, key: &str) -> WebResult {
    let keys = ssh_keys::of_user(&gw.db, a.user.id)
        .await?
        .into_iter()
        .map(|k| KeyRow {
            fingerprint: k.fingerprint,
            algorithm: k.algorithm,
            comment: k.comment,
            created: when(Some(k.created_at)),
            used: when(k.last_used_at),
        })
        .collect();
    Ok(page(
        status,
        &KeysPage { c: a.chrome.clone().with_section("account"), sub: "keys", n, keys, key: key.to_string() },
    ))
}

/// `GET /account/keys`.
pub async fn keys(State(gw): State<Gateway>, a: Authed, Query(d): Query<Done>) -> WebResult {
    keys_page(&gw, &a, StatusCode::OK, Notice::from_code(d.ok.as_deref()), "").await
}

#[derive(serde::Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    key: String,
}

/// `POST /account/keys`: adds a key to the logged-in user (never anyone else).
pub async fn add_key(State(gw): State<Gateway>, a: Authed, CsrfForm(f): CsrfForm<KeyForm>) -> WebResult {
    let grant = match confirm::grant(&gw, &a, "/account/keys", "/account/keys").await? {
        Ok(grant) => grant,
        Err(to_confirm) => return Ok(to_confirm),
    };
    match ssh_keys::add(&gw.db, &a.user.name, &f.key).await {
        Ok(k) => {
            gw.audit(
                AuditEvent::new(AuditKind::KeyAdd, Outcome::Success)
                    .actor(a.user.name.clone())
                    .user(a.user.name.clone())
                    .source(a.source.clone())
                    .detail(k.fingerprint.clone()),
            )
            .await?;
            grant.done(&gw, &Change::KeyAdded(k.fingerprint)).await?;
            Ok(Redirect::to("/account/keys?ok=key-added").into_response())
        }
        Err(gatehouse_core::Error::Invalid { reason, .. }) => {
            keys_page(&gw, &a, StatusCode::BAD_REQUEST, Notice::error("key", format!("This is {reason}")), &f.key).await
        }
        Err(gatehouse_core::Error::Duplicate { .. }) => {
            keys_page(&gw, &a, StatusCode::BAD_REQUEST, Notice::error("key", "You already added this key."), &f.key)
                .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Deserialize)]
pub struct RemoveKeyForm {
    #[serde(default)]
    fingerprint: String,
}

/// `POST /account/keys/remove`: removes one of the user's own keys; a fingerprint of
/// another user's key is simply not found.
pub async fn remove_key(State(gw): State<Gateway>, a: Authed, CsrfForm(f): CsrfForm<RemoveKeyForm>) -> WebResult {
    let grant = match confirm::grant(&gw, &a, "/account/keys/remove", "/account/keys").await? {
        Ok(grant) => grant,
        Err(to_confirm) => return Ok(to_confirm),
    };
    match ssh_keys::remove(&gw.db, a.user.id, &f.fingerprint).await {
        Ok(()) => {
            gw.audit(
                AuditEvent::new(AuditKind::KeyRemove, Outcome::Success)
                    .actor(a.user.name.clone())
                    .user(a.user.name.clone())
                    .source(a.source.clone())
                    .detail(f.fingerprint.clone()),
            )
            .await?;
            grant.done(&gw, &Change::KeyRemoved(f.fingerprint)).await?;
            Ok(Redirect::to("/account/keys?ok=key-removed").into_response())
        }
        Err(gatehouse_core::Error::NotFound { .. }) => {
            keys_page(
                &gw,
                &a,
                StatusCode::BAD_REQUEST,
                Notice::error("fingerprint", "You have no key with that fingerprint."),
                "",
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(askama::Template)]
#[template(path = "password.html")]
struct PasswordPage {
    c: Chrome,
    sub: &'static str,
    n: Notice,
    forced: bool,
    /// The password is the directory's: nothing to change here.
    directory: bool,
}

async fn password_page(gw: &Gateway, a: &Authed, status: StatusCode, n: Notice) -> WebResult {
    let forced = users::must_change_password(&gw.db, a.user.id).await?;
    let mut c = a.chrome.clone().with_section("account");
    c.nav = c.nav && !forced;
    let directory = a.user.store == users::Store::Ldap;
    Ok(page(status, &PasswordPage { c, sub: "password", n, forced, directory }))
}

/// `GET /account/password` (also the forced-change page after a one-time password).
pub async fn password(State(gw): State<Gateway>, Changing(a): Changing, Query(d): Query<Done>) -> WebResult {
    if let Some(to_confirm) = confirm::form_gate(&gw, &a, "/account/password").await? {
        return Ok(to_confirm);
    }
    password_page(&gw, &a, StatusCode::OK, Notice::from_code(d.ok.as_deref())).await
}

#[derive(serde::Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /account/password`. The current password is checked by the login's own check,
/// so a wrong one counts towards the same per-user and per-source lock as a failed login,
/// and a locked account changes nothing.
pub async fn change_password(
    State(gw): State<Gateway>,
    Changing(a): Changing,
    CsrfForm(f): CsrfForm<PasswordForm>,
) -> WebResult {
    let grant = match confirm::grant(&gw, &a, "/account/password", "/account/password").await? {
        Ok(grant) => grant,
        Err(to_confirm) => return Ok(to_confirm),
    };
    let bad = |field: &str, msg: String| password_page(&gw, &a, StatusCode::BAD_REQUEST, Notice::error(field, msg));
    if a.user.store == users::Store::Ldap {
        return bad("current", "Your password is kept by the directory: change it there.".into()).await;
    }
    if f.current.is_empty() {
        return bad("current", "Enter your current password.".into()).await;
    }
    if let Err(gatehouse_core::Error::Invalid { reason, .. }) = users::validate_password(&f.new) {
        return bad("new", format!("The new password {reason}.")).await;
    }
    if f.new != f.confirm {
        return bad("confirm", "The two entries differ.".into()).await;
    }
    if f.new == f.current {
        return bad("new", "Choose a password different from the current one.".into()).await;
    }
    let started = tokio::time::Instant::now();
    match login::password(&gw, &a.login_context(), &f.current).await? {
        Primary::Accepted(u) if u.id == a.user.id => {}
        Primary::Locked(lock) => {
            let msg = format!("{}\nYour password was not changed.", login::lock_text(lock));
            return password_page(&gw, &a, StatusCode::TOO_MANY_REQUESTS, Notice::error("current", msg)).await;
        }
        _ => {
            gw.audit(
                AuditEvent::new(AuditKind::UserPassword, Outcome::Failure)
                    .actor(a.user.name.clone())
                    .user(a.user.name.clone())
                    .source(a.source.clone())
                    .detail("wrong current password via web"),
            )
            .await?;
            slow_down(started).await;
            return bad("current", "That is not your current password.".into()).await;
        }
    }
    let forced = users::must_change_password(&gw.db, a.user.id).await?;
    let passcodes = users::set_password(&gw.db, &a.user.name, &f.new).await?;
    users::set_must_change_password(&gw.db, a.user.id, false).await?;
    let sessions = web_sessions::delete_others(&gw.db, a.user.id, &a.session.id_hash).await?;
    gw.audit(
        AuditEvent::new(AuditKind::UserPassword, Outcome::Success)
            .actor(a.user.name.clone())
            .user(a.user.name.clone())
            .source(a.source.clone())
            .detail(format!(
                "changed via web; {passcodes} application passcodes revoked, {sessions} other sessions ended"
            )),
    )
    .await?;
    grant.done(&gw, &Change::Password).await?;
    // After a forced change, on to whatever is due next (enrollment, or the account).
    Ok(Redirect::to(if forced { "/account?ok=password" } else { "/account/password?ok=password" }).into_response())
}
