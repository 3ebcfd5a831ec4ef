//! "Approve in the browser": the page an SSH login's link opens. It names the waiting login
//! (its code, source address, node and time) to the user signed in here, and only to the
//! user whose login it is, and approves it only on a POST that carries a WebAuthn
//! assertion begun for that login. Every check is
//! `gatehouse_core::factors::webauthn::approval`'s.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use gatehouse_core::factors::webauthn::approval::{self, Approval, NotApproved, State as ApprovalState};
use gatehouse_core::{Error as CoreError, Gateway};

use crate::error::{WebError, WebResult};
use crate::form::CsrfForm;
use crate::render::{Chrome, Notice, page, when};
use crate::session::Authed;

#[derive(askama::Template)]
#[template(path = "approve.html")]
struct ApprovePage {
    c: Chrome,
    n: Notice,
    state: &'static str,
    code: String,
    source: String,
    node: String,
    created: String,
    expires: String,
    action: String,
    ceremony: String,
    options: String,
}

#[derive(serde::Deserialize)]
pub struct ApproveForm {
    ceremony: String,
    response: String,
}

/// The approval `token` names, if it is this user's: anyone else (another user signed in,
/// a wrong token) gets the same "not found".
async fn mine(gw: &Gateway, a: &Authed, token: &str) -> WebResult<Approval> {
    match approval::find(gw, token).await? {
        Some(found) if found.user_id == a.user.id => Ok(found),
        _ => Err(WebError::NotFound("No SSH login of yours waits for this link.".into())),
    }
}

async fn render(
    gw: &Gateway,
    a: &Authed,
    token: &str,
    found: &Approval,
    status: StatusCode,
    mut n: Notice,
) -> WebResult {
    let state = match found.state {
        ApprovalState::Open => "open",
        ApprovalState::Approved => "approved",
        ApprovalState::Used => "used",
        ApprovalState::Expired => "expired",
    };
    // A fresh assertion for each showing of an open approval, bound to it.
    let (ceremony, options) = if found.state == ApprovalState::Open {
        match approval::begin(gw, &a.user, found).await {
            Ok(c) => (c.id, c.options),
            Err(CoreError::Refused(why)) => {
                n = Notice::error("form", why);
                (String::new(), String::new())
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        (String::new(), String::new())
    };
    Ok(page(
        status,
        &ApprovePage {
            c: a.chrome.clone(),
            n,
            state,
            code: found.code.clone(),
            source: found.source.clone(),
            node: found.node.clone(),
            created: when(Some(found.created_at)),
            expires: when(Some(found.expires_at)),
            action: format!("{}{token}", approval::PATH),
            ceremony,
            options,
        },
    ))
}

/// `GET /approve/{token}`: what the login is, and the button that asks for the key.
pub async fn show(State(gw): State<Gateway>, a: Authed, Path(token): Path<String>) -> WebResult {
    let found = mine(&gw, &a, &token).await?;
    render(&gw, &a, &token, &found, StatusCode::OK, Notice::none()).await
}

/// `POST /approve/{token}`: the browser's assertion; approves the login when it holds.
pub async fn decide(
    State(gw): State<Gateway>,
    a: Authed,
    Path(token): Path<String>,
    CsrfForm(f): CsrfForm<ApproveForm>,
) -> WebResult {
    let Some(found) = approval::find(&gw, &token).await? else {
        return Err(WebError::NotFound("No SSH login of yours waits for this link.".into()));
    };
    let outcome = approval::approve(&gw, &a.user, &found, &f.ceremony, &f.response, &a.source).await?;
    let mut found = mine(&gw, &a, &token).await?;
    match outcome {
        Ok(()) => {
            // The waiting login may have taken it already: this answer approved it.
            found.state = ApprovalState::Approved;
            render(&gw, &a, &token, &found, StatusCode::OK, Notice::none()).await
        }
        Err(NotApproved::NotYours) => Err(WebError::NotFound("No SSH login of yours waits for this link.".into())),
        Err(NotApproved::NotOpen) => render(&gw, &a, &token, &found, StatusCode::CONFLICT, Notice::none()).await,
        Err(NotApproved::Refused(why)) => {
            let n = Notice::error("response", format!("Your key's answer was refused: {why}."));
            render(&gw, &a, &token, &found, StatusCode::FORBIDDEN, n).await
        }
    }
}
