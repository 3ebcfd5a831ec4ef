//! Admin: which second factors this gateway can check, warnings for forced scopes that
//! could never be passed, a RADIUS test request and a Duo `/check`.

use axum::extract::State;
use axum::http::StatusCode;
use gatehouse_core::Gateway;
use gatehouse_core::health::{self, State as Health};

use super::audit_change;
use crate::error::WebResult;
use crate::form::{CsrfForm, Empty};
use crate::render::{Chrome, Notice, page};
use crate::session::{Admin, Authed};

pub struct MethodRow {
    pub label: &'static str,
    pub status: &'static str,
    pub detail: String,
}

#[derive(askama::Template)]
#[template(path = "admin_health.html")]
struct HealthPage {
    c: Chrome,
    warnings: Vec<String>,
    methods: Vec<MethodRow>,
    user: String,
    result: String,
    /// What the last Duo `/check` answered (empty when none was asked).
    duo_result: String,
    n: Notice,
}

async fn health_page(gw: &Gateway, a: &Authed, status: StatusCode, user: String, result: String, n: Notice) -> WebResult {
    health_page_with(gw, a, status, user, result, String::new(), n).await
}

async fn health_page_with(gw: &Gateway, a: &Authed, status: StatusCode, user: String, result: String, duo_result: String, n: Notice) -> WebResult {
    let methods = health::methods(gw)
        .into_iter()
        .map(|m| MethodRow {
            label: m.method.label(),
            status: match m.state {
                Health::Ready => "ready",
                Health::NotConfigured => "not configured",
                Health::NotBuilt => "not available",
            },
            detail: m.detail,
        })
        .collect();
    let warnings = health::warnings(gw).await?;
    let c = a.chrome.clone().with_section("health");
    Ok(page(status, &HealthPage { c, warnings, methods, user, result, duo_result, n }))
}

/// `GET /admin/health`.
pub async fn show(State(gw): State<Gateway>, Admin(a): Admin) -> WebResult {
    health_page(&gw, &a, StatusCode::OK, String::new(), String::new(), Notice::none()).await
}

#[derive(serde::Deserialize)]
pub struct RadiusTestForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

/// `POST /admin/health/radius`: one Access-Request; the answer is shown, not stored.
pub async fn radius_test(State(gw): State<Gateway>, Admin(a): Admin, CsrfForm(f): CsrfForm<RadiusTestForm>) -> WebResult {
    let user = f.user.trim().to_string();
    if user.is_empty() || user.len() > 253 || user.chars().any(char::is_control) {
        let n = Notice::error("user", "Enter the user name the RADIUS server knows (1-253 bytes).");
        return health_page(&gw, &a, StatusCode::BAD_REQUEST, user, String::new(), n).await;
    }
    let result = health::test_radius(&gw, &user, &f.password).await;
    audit_change(&gw, &a, "radius.test", None, format!("test request for RADIUS user {user}: {result}")).await?;
    health_page(&gw, &a, StatusCode::OK, user, result, Notice::none()).await
}

/// `POST /admin/health/duo`: one signed `/auth/v2/check`; the answer is shown and audited.
pub async fn duo_check(State(gw): State<Gateway>, Admin(a): Admin, CsrfForm(_): CsrfForm<Empty>) -> WebResult {
    let result = health::test_duo(&gw).await;
    audit_change(&gw, &a, "duo.check", None, format!("Duo /check: {result}")).await?;
    health_page_with(&gw, &a, StatusCode::OK, String::new(), String::new(), result, Notice::none()).await
}
