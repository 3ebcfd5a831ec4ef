//! Admin: the global two-factor policy — force 2FA for everyone, for every administrator,
//! allowed methods, the size of a backup-code set — and the lists of users with their own
//! force-2FA setting and of exempt users.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use gatehouse_core::{Gateway, policy, users};

use super::groups::{MethodBox, method_boxes, ticked};
use gatehouse_core::admin;

use super::{actor, switch};
use crate::error::WebResult;
use crate::form::CsrfForm;
use crate::render::{Chrome, Notice, page};
use crate::routes::account::Done;
use crate::session::{Admin, Authed};

#[derive(askama::Template)]
#[template(path = "admin_policy.html")]
struct PolicyPage {
    c: Chrome,
    n: Notice,
    force: bool,
    force_admins: bool,
    /// Users with their own override: name and `on` / `off`.
    overrides: Vec<(String, &'static str)>,
    methods: Vec<MethodBox>,
    backup_count: String,
    exempt: String,
}

async fn policy_page(gw: &Gateway, a: &Authed, status: StatusCode, n: Notice) -> WebResult {
    let p = policy::load(&gw.db).await?;
    let all = users::list(&gw.db).await?;
    let exempt: Vec<String> = all.iter().filter(|u| u.exempt_2fa).map(|u| u.name.clone()).collect();
    let overrides = all
        .iter()
        .filter(|u| u.force_2fa.is_some())
        .map(|u| (u.name.clone(), admin::users::override_word(u.force_2fa)))
        .collect();
    Ok(page(
        status,
        &PolicyPage {
            c: a.chrome.clone().with_section("policy"),
            n,
            force: p.force_2fa,
            force_admins: p.force_2fa_admins,
            overrides,
            methods: method_boxes(&p.allowed_methods),
            backup_count: p.backup_code_count.to_string(),
            exempt: exempt.join(", "),
        },
    ))
}

/// `GET /admin/policy`.
pub async fn show(State(gw): State<Gateway>, Admin(a): Admin, Query(d): Query<Done>) -> WebResult {
    policy_page(&gw, &a, StatusCode::OK, Notice::from_code(d.ok.as_deref())).await
}

#[derive(serde::Deserialize)]
pub struct Toggle {
    #[serde(default)]
    on: String,
}

/// `POST /admin/policy/force`: the global force-2FA switch.
pub async fn force(State(gw): State<Gateway>, Admin(a): Admin, CsrfForm(f): CsrfForm<Toggle>) -> WebResult {
    let on = switch(&f.on)?;
    admin::policy::set_force_2fa(&gw, &actor(&a), on).await?;
    Ok(Redirect::to("/admin/policy?ok=saved").into_response())
}

/// `POST /admin/policy/force-admins`: the administrators' scope.
pub async fn force_admins(State(gw): State<Gateway>, Admin(a): Admin, CsrfForm(f): CsrfForm<Toggle>) -> WebResult {
    let on = switch(&f.on)?;
    admin::policy::set_force_2fa_admins(&gw, &actor(&a), on).await?;
    Ok(Redirect::to("/admin/policy?ok=saved").into_response())
}

/// `POST /admin/policy/methods`.
pub async fn methods(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    CsrfForm(f): CsrfForm<HashMap<String, String>>,
) -> WebResult {
    let Some(set) = ticked(&f) else {
        return policy_page(&gw, &a, StatusCode::BAD_REQUEST, Notice::error("methods", "Tick at least one method."))
            .await;
    };
    admin::policy::set_allowed_methods(&gw, &actor(&a), &set).await?;
    Ok(Redirect::to("/admin/policy?ok=saved").into_response())
}

#[derive(serde::Deserialize)]
pub struct CountForm {
    #[serde(default)]
    count: String,
}

/// `POST /admin/policy/backup-codes`.
pub async fn backup_codes(State(gw): State<Gateway>, Admin(a): Admin, CsrfForm(f): CsrfForm<CountForm>) -> WebResult {
    let n = match f.count.trim().parse::<u32>() {
        Ok(n) if (1..=50).contains(&n) => n,
        _ => {
            return policy_page(
                &gw,
                &a,
                StatusCode::BAD_REQUEST,
                Notice::error("count", "Enter a whole number from 1 to 50."),
            )
            .await;
        }
    };
    admin::policy::set_backup_code_count(&gw, &actor(&a), n).await?;
    Ok(Redirect::to("/admin/policy?ok=saved").into_response())
}
