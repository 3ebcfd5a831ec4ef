//! Admin: which second factors this gateway can check, warnings for forced scopes that
//! could never be passed, and a RADIUS test request.

use axum::extract::State;
use axum::http::StatusCode;
use gatehouse_core::Gateway;
use gatehouse_core::health::{self, State as Health};

use gatehouse_core::audit::AuditKind;

use super::audit_check;
use crate::error::WebResult;
use crate::form::{CsrfForm, Empty};
use crate::render::{Chrome, Notice, page, when};
use crate::session::{Admin, Authed};

pub struct MethodRow {
    pub label: &'static str,
    pub status: &'static str,
    pub detail: String,
    /// When its service last answered (any node), or "never".
    pub last_ok: String,
    /// The last error talking to its service, with when and where, or empty.
    pub last_error: String,
}

#[derive(askama::Template)]
#[template(path = "admin_health.html")]
struct HealthPage {
    c: Chrome,
    warnings: Vec<String>,
    advisories: Vec<String>,
    methods: Vec<MethodRow>,
    user: String,
    result: String,
    /// The email test: the address filled in, and what happened.
    mail_to: String,
    mail_result: String,
    /// What the last Duo `/check` answered (empty when none was asked).
    duo_result: String,
    /// The directory (`[ldap]`), when one is configured.
    directory: Option<DirectoryRow>,
    directory_result: String,
    n: Notice,
}

/// The directory's line: where it is, and what it last answered.
pub struct DirectoryRow {
    pub servers: String,
    pub last_ok: String,
    pub last_error: String,
    pub users: usize,
    pub disabled: usize,
}

/// What a test left on the page.
#[derive(Default)]
struct Tested {
    user: String,
    result: String,
    mail_to: String,
    mail_result: String,
    duo_result: String,
    directory_result: String,
}

async fn health_page(gw: &Gateway, a: &Authed, status: StatusCode, t: Tested, n: Notice) -> WebResult {
    let mut methods = Vec::new();
    for m in health::methods(gw) {
        let seen = health::last_seen(gw, m.method).await?;
        let last_error = match (&seen.last_error, seen.last_error_at) {
            (Some(e), at) => format!("{e} ({}, node {})", when(at), seen.last_error_node.as_deref().unwrap_or("?")),
            _ => String::new(),
        };
        methods.push(MethodRow {
            label: m.method.label(),
            status: match m.state {
                Health::Ready => "ready",
                Health::NotConfigured => "not configured",
                Health::NotBuilt => "not available",
            },
            detail: m.detail,
            last_ok: if seen.last_ok_at.is_some() { when(seen.last_ok_at) } else { String::new() },
            last_error,
        });
    }
    let directory = match &gw.directory {
        Some(_) => {
            let seen = health::last_seen_of(gw, gatehouse_core::directory::HEALTH_KEY).await?;
            let users: Vec<_> = gatehouse_core::users::list(&gw.db)
                .await?
                .into_iter()
                .filter(|u| u.store == gatehouse_core::users::Store::Ldap)
                .collect();
            Some(DirectoryRow {
                servers: gw.config.ldap.urls.join(", "),
                last_ok: if seen.last_ok_at.is_some() { when(seen.last_ok_at) } else { "never".into() },
                last_error: match (&seen.last_error, seen.last_error_at) {
                    (Some(e), at) => {
                        format!("{e} ({}, node {})", when(at), seen.last_error_node.as_deref().unwrap_or("?"))
                    }
                    _ => String::new(),
                },
                disabled: users.iter().filter(|u| u.directory_disabled).count(),
                users: users.len(),
            })
        }
        None => None,
    };
    let warnings = health::warnings(gw).await?;
    let advisories = health::advisories(gw);
    let mail_to = if t.mail_to.is_empty() {
        gatehouse_core::factors::email::address(gw, a.user.id).await?.unwrap_or_default()
    } else {
        t.mail_to
    };
    let c = a.chrome.clone().with_section("health");
    Ok(page(
        status,
        &HealthPage {
            c,
            warnings,
            advisories,
            methods,
            user: t.user,
            result: t.result,
            mail_to,
            mail_result: t.mail_result,
            duo_result: t.duo_result,
            directory,
            directory_result: t.directory_result,
            n,
        },
    ))
}

/// `GET /admin/health`.
pub async fn show(State(gw): State<Gateway>, Admin(a): Admin) -> WebResult {
    health_page(&gw, &a, StatusCode::OK, Tested::default(), Notice::none()).await
}

#[derive(serde::Deserialize)]
pub struct RadiusTestForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

/// `POST /admin/health/radius`: one Access-Request; the answer is shown, not stored.
pub async fn radius_test(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    CsrfForm(f): CsrfForm<RadiusTestForm>,
) -> WebResult {
    let user = f.user.trim().to_string();
    if user.is_empty() || user.len() > 253 || user.chars().any(char::is_control) {
        let n = Notice::error("user", "Enter the user name the RADIUS server knows (1-253 bytes).");
        return health_page(&gw, &a, StatusCode::BAD_REQUEST, Tested { user, ..Tested::default() }, n).await;
    }
    let result = health::test_radius(&gw, &user, &f.password).await;
    audit_check(&gw, &a, AuditKind::HealthRadiusTest, format!("test request for RADIUS user {user}: {result}")).await?;
    health_page(&gw, &a, StatusCode::OK, Tested { user, result, ..Tested::default() }, Notice::none()).await
}

#[derive(serde::Deserialize)]
pub struct EmailTestForm {
    #[serde(default)]
    to: String,
}

/// `POST /admin/health/email`: one test mail through the relay; the outcome is shown and
/// recorded as the method's last answer or error.
pub async fn email_test(State(gw): State<Gateway>, Admin(a): Admin, CsrfForm(f): CsrfForm<EmailTestForm>) -> WebResult {
    let to = f.to.trim().to_string();
    if let Err(why) = gatehouse_core::mail::parse_address(&to) {
        let n = Notice::error("to", why);
        return health_page(&gw, &a, StatusCode::BAD_REQUEST, Tested { mail_to: to, ..Tested::default() }, n).await;
    }
    let result = health::test_email(&gw, &to).await;
    audit_check(
        &gw,
        &a,
        AuditKind::HealthEmailTest,
        format!("test mail to {}: {result}", gatehouse_core::mail::mask(&to)),
    )
    .await?;
    health_page(
        &gw,
        &a,
        StatusCode::OK,
        Tested { mail_to: to, mail_result: result, ..Tested::default() },
        Notice::none(),
    )
    .await
}

/// `POST /admin/health/duo`: one signed `/auth/v2/check`; the answer is shown and audited.
pub async fn duo_check(State(gw): State<Gateway>, Admin(a): Admin, CsrfForm(_): CsrfForm<Empty>) -> WebResult {
    let result = health::test_duo(&gw).await;
    audit_check(&gw, &a, AuditKind::HealthDuoCheck, format!("Duo /check: {result}")).await?;
    health_page(&gw, &a, StatusCode::OK, Tested { duo_result: result, ..Tested::default() }, Notice::none()).await
}

/// `POST /admin/health/directory`: the directory's test bind; the answer is shown, recorded
/// for this page and audited.
pub async fn directory_test(State(gw): State<Gateway>, Admin(a): Admin, CsrfForm(_): CsrfForm<Empty>) -> WebResult {
    let by = gatehouse_core::admin::Actor::Admin { name: a.user.name.clone(), source: a.source.clone() };
    let result = gatehouse_core::admin::directory::test(&gw, &by).await?;
    health_page(&gw, &a, StatusCode::OK, Tested { directory_result: result, ..Tested::default() }, Notice::none()).await
}
