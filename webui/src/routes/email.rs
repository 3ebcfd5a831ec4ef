//! Email as a second factor on the web: enrolling an address (a code mailed to it must come
//! back first), and the page an "Authorize" link in a login mail opens. That page names the
//! login (user, source address, time, node) and approves it only on a POST, so a mail
//! scanner that fetches the link approves nothing. It needs no session: the link's token
//! is the proof of the mailbox.

use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, REFERRER_POLICY};
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};
use gatehouse_core::factors::email::{self, LinkState};
use gatehouse_core::factors::{Method, MethodSet};
use gatehouse_core::policy::{self, Requirement};
use gatehouse_core::sudo::Change;
use gatehouse_core::{Error as CoreError, Gateway, mail};

use super::confirm;
use crate::error::WebResult;
use crate::form::CsrfForm;
use crate::render::{Chrome, Notice, page, when};
use crate::session::{Authed, Enrolling, Visitor};

#[derive(askama::Template)]
#[template(path = "email.html")]
struct EmailPage {
    c: Chrome,
    sub: &'static str,
    forced: bool,
    /// The enrolled address, if any.
    current: String,
    /// The address a code was just sent to (the confirm step), if any.
    sent_to: String,
    address: String,
    n: Notice,
}

async fn email_page(
    gw: &Gateway,
    a: &Authed,
    status: StatusCode,
    sent_to: String,
    address: String,
    n: Notice,
) -> WebResult {
    let forced = matches!(policy::requirement(&gw.db, &a.user).await?, Requirement::MustEnroll { .. });
    let current = email::address(gw, a.user.id).await?.unwrap_or_default();
    let c = a.chrome.clone().with_section("account");
    Ok(page(status, &EmailPage { c, sub: "factors", forced, current, sent_to, address, n }))
}

/// Whether the user may enroll email, and the gateway can send mail; the reason otherwise.
async fn may_enroll(gw: &Gateway, a: &Authed) -> WebResult<Result<(), &'static str>> {
    let allowed = policy::resolve(&gw.db, &a.user).await?.allowed.unwrap_or_else(MethodSet::all);
    Ok(if !allowed.contains(Method::Email) {
        Err("Email is not an allowed second factor for your account.")
    } else if !gw.config.email.enabled() {
        Err("This gateway cannot send mail (no SMTP relay is configured). Ask an administrator.")
    } else {
        Ok(())
    })
}

/// `GET /account/email`.
pub async fn form(State(gw): State<Gateway>, Enrolling(a): Enrolling) -> WebResult {
    if let Some(to_confirm) = confirm::form_gate(&gw, &a, "/account/email").await? {
        return Ok(to_confirm);
    }
    let n = match may_enroll(&gw, &a).await? {
        Ok(()) => Notice::none(),
        Err(why) => Notice::error("form", why),
    };
    email_page(&gw, &a, StatusCode::OK, String::new(), String::new(), n).await
}

#[derive(serde::Deserialize)]
pub struct AddressForm {
    #[serde(default)]
    address: String,
}

/// `POST /account/email`: mails a confirmation code to the address.
pub async fn send_code(
    State(gw): State<Gateway>,
    Enrolling(a): Enrolling,
    CsrfForm(f): CsrfForm<AddressForm>,
) -> WebResult {
    // Enrolling starts here; the grant is reported when the code comes back (`confirm`).
    if let Err(to_confirm) = confirm::grant(&gw, &a, "/account/email", "/account/email").await? {
        return Ok(to_confirm);
    }
    let address = f.address.trim().to_string();
    if let Err(why) = may_enroll(&gw, &a).await? {
        return email_page(&gw, &a, StatusCode::BAD_REQUEST, String::new(), address, Notice::error("form", why)).await;
    }
    match email::start_enrollment(&gw, &a.user, &address, &a.session.id_hash).await {
        Ok(normalised) => {
            gw.audit(
                AuditEvent::new(AuditKind::FactorEmailCode, Outcome::Info)
                    .actor(a.user.name.clone())
                    .user(a.user.name.clone())
                    .source(a.source.clone())
                    .detail(format!("confirmation code mailed to {} via web", mail::mask(&normalised))),
            )
            .await?;
            email_page(&gw, &a, StatusCode::OK, normalised, String::new(), Notice::none()).await
        }
        Err(CoreError::Invalid { reason, .. }) => {
            email_page(&gw, &a, StatusCode::BAD_REQUEST, String::new(), address, Notice::error("address", reason)).await
        }
        Err(CoreError::Unavailable(why) | CoreError::TooMany(why)) => {
            email_page(&gw, &a, StatusCode::SERVICE_UNAVAILABLE, String::new(), address, Notice::error("address", why))
                .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    sent_to: String,
}

/// `POST /account/email/confirm`: the mailed code makes the address the email factor.
pub async fn confirm(
    State(gw): State<Gateway>,
    Enrolling(a): Enrolling,
    CsrfForm(f): CsrfForm<ConfirmForm>,
) -> WebResult {
    let grant = match confirm::grant(&gw, &a, "/account/email/confirm", "/account/email").await? {
        Ok(grant) => grant,
        Err(to_confirm) => return Ok(to_confirm),
    };
    if let Err(why) = may_enroll(&gw, &a).await? {
        return email_page(&gw, &a, StatusCode::BAD_REQUEST, String::new(), String::new(), Notice::error("form", why))
            .await;
    }
    match email::confirm_enrollment(&gw, &a.user, &a.session.id_hash, &f.code).await? {
        Some(address) => {
            gw.audit(
                AuditEvent::new(AuditKind::FactorEnroll, Outcome::Success)
                    .actor(a.user.name.clone())
                    .user(a.user.name.clone())
                    .source(a.source.clone())
                    .detail(format!("email {} via web", mail::mask(&address))),
            )
            .await?;
            grant.done(&gw, &Change::Email(address)).await?;
            Ok(Redirect::to("/account?ok=email").into_response())
        }
        None => {
            let n = Notice::error("code", "That code is not right, or it expired. Check the mail, or send a new code.");
            email_page(&gw, &a, StatusCode::UNAUTHORIZED, f.sent_to.trim().to_string(), String::new(), n).await
        }
    }
}

#[derive(askama::Template)]
#[template(path = "authorize.html")]
struct AuthorizePage {
    c: Chrome,
    /// `open`, `approved`, `denied`, `used`, `expired`, `invalid`, `foreign`.
    state: &'static str,
    token: String,
    user: String,
    source: String,
    frontend: String,
    node: String,
    created: String,
    expires: String,
    /// What this visit just did, if anything.
    done: &'static str,
}

/// The page for a link; never cached, never leaks the token to another site.
fn authorize_page(status: StatusCode, p: AuthorizePage) -> Response {
    let mut resp = page(status, &p);
    resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut().insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

fn view(link: Option<&email::Link>, token: &str, state: &'static str, done: &'static str) -> AuthorizePage {
    AuthorizePage {
        c: Chrome::anonymous(),
        state,
        token: if state == "open" { token.to_string() } else { String::new() },
        user: link.map(|l| l.user_name.clone()).unwrap_or_default(),
        source: link.map(|l| l.source.clone()).unwrap_or_default(),
        frontend: link
            .map(|l| if l.frontend == "ssh" { "SSH".to_string() } else { l.frontend.clone() })
            .unwrap_or_default(),
        node: link.map(|l| l.node.clone()).unwrap_or_default(),
        created: link.map(|l| when(Some(l.created_at))).unwrap_or_default(),
        expires: link.map(|l| when(Some(l.expires_at))).unwrap_or_default(),
        done,
    }
}

fn state_name(s: LinkState) -> &'static str {
    match s {
        LinkState::Open => "open",
        LinkState::Expired => "expired",
        LinkState::Approved => "approved",
        LinkState::Denied => "denied",
        LinkState::Used => "used",
    }
}

fn status_for(state: &str) -> StatusCode {
    match state {
        "open" | "approved" | "denied" => StatusCode::OK,
        "invalid" => StatusCode::NOT_FOUND,
        "foreign" => StatusCode::FORBIDDEN,
        _ => StatusCode::GONE,
    }
}

/// The link as this browser may see it: a browser logged in as someone else is told the
/// link is not theirs (and is shown nothing of the login).
async fn lookup(gw: &Gateway, v: &Visitor, token: &str) -> WebResult<(Option<email::Link>, &'static str)> {
    let Some(link) = email::find_link(gw, token).await? else { return Ok((None, "invalid")) };
    if let Some(uid) = v.session.as_ref().and_then(|s| s.user_id)
        && uid != link.user_id
    {
        return Ok((None, "foreign"));
    }
    let state = state_name(link.state);
    Ok((Some(link), state))
}

/// `GET /authorize/{token}`: names the login and offers Authorize and Deny.
pub async fn show(State(gw): State<Gateway>, v: Visitor, Path(token): Path<String>) -> WebResult {
    let (link, state) = lookup(&gw, &v, &token).await?;
    Ok(authorize_page(status_for(state), view(link.as_ref(), &token, state, "")))
}

#[derive(serde::Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    action: String,
}

/// `POST /authorize/{token}`: Authorize (or Deny) the login, once.
pub async fn decide(
    State(gw): State<Gateway>,
    v: Visitor,
    Path(token): Path<String>,
    axum::Form(f): axum::Form<DecideForm>,
) -> WebResult {
    let approve = match f.action.as_str() {
        "authorize" => true,
        "deny" => false,
        _ => return Err(crate::error::WebError::BadRequest("Choose Authorize or Deny.".into())),
    };
    let (link, state) = lookup(&gw, &v, &token).await?;
    let Some(link) = link.filter(|_| state == "open") else {
        return Ok(authorize_page(status_for(state), view(None, &token, state, "")));
    };
    if !email::decide(&gw, &token, approve, &v.source).await? {
        // Decided, used or expired between the two reads: say what it is now.
        let (link, state) = lookup(&gw, &v, &token).await?;
        return Ok(authorize_page(status_for(state), view(link.as_ref(), &token, state, "")));
    }
    let (name, outcome) = if approve {
        (AuditKind::LoginEmailAuthorized, Outcome::Success)
    } else {
        (AuditKind::LoginEmailDenied, Outcome::Failure)
    };
    gw.audit(AuditEvent::new(name, outcome).user(link.user_name.clone()).source(v.source.clone()).detail(format!(
        "link for the {} login from {} (started on {}), clicked from {}",
        link.frontend, link.source, link.node, v.source
    )))
    .await?;
    let state = if approve { "approved" } else { "denied" };
    Ok(authorize_page(StatusCode::OK, view(Some(&link), &token, state, state)))
}
