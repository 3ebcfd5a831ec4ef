//! Admin: groups — create, members, the per-group force-2FA switch, allowed methods,
//! delete.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use gatehouse_core::factors::{self, Method, MethodSet};
use gatehouse_core::groups::{self, Group};
use gatehouse_core::{Gateway, users};

use gatehouse_core::admin;

use super::{actor, switch};
use crate::error::{WebError, WebResult};
use crate::form::{CsrfForm, Empty};
use crate::render::{Chrome, Notice, page};
use crate::routes::account::Done;
use crate::session::{Admin, Authed};

/// One checkbox of an allowed-methods form.
pub struct MethodBox {
    pub name: &'static str,
    pub label: &'static str,
    pub checked: bool,
    /// This build has an implementation of the method.
    pub available: bool,
}

/// The checkboxes for `set`.
pub fn method_boxes(set: &MethodSet) -> Vec<MethodBox> {
    Method::ALL
        .iter()
        .map(|m| MethodBox {
            name: m.as_str(),
            label: m.label(),
            checked: set.contains(*m),
            available: factors::factor(*m).is_some(),
        })
        .collect()
}

/// The methods ticked in a form (`m_totp=on`, …); `None` when none is.
pub fn ticked(form: &HashMap<String, String>) -> Option<MethodSet> {
    let chosen: Vec<Method> =
        Method::ALL.into_iter().filter(|m| form.get(&format!("m_{}", m.as_str())).is_some_and(|v| v == "on")).collect();
    (!chosen.is_empty()).then(|| MethodSet::from(chosen.as_slice()))
}

pub struct GroupRow {
    pub name: String,
    pub force: bool,
    pub methods: String,
    pub members: usize,
}

#[derive(askama::Template)]
#[template(path = "admin_groups.html")]
struct GroupsPage {
    c: Chrome,
    n: Notice,
    groups: Vec<GroupRow>,
    form_name: String,
}

async fn groups_page(gw: &Gateway, a: &Authed, status: StatusCode, n: Notice, form_name: &str) -> WebResult {
    let mut rows = Vec::new();
    for g in groups::list(&gw.db).await? {
        rows.push(GroupRow {
            members: groups::members(&gw.db, &g.name).await?.len(),
            methods: g.allowed_methods.as_ref().map(|m| m.to_string()).unwrap_or_else(|| "global setting".into()),
            force: g.force_2fa,
            name: g.name,
        });
    }
    Ok(page(
        status,
        &GroupsPage { c: a.chrome.clone().with_section("groups"), n, groups: rows, form_name: form_name.to_string() },
    ))
}

/// `GET /admin/groups`.
pub async fn list(State(gw): State<Gateway>, Admin(a): Admin, Query(d): Query<Done>) -> WebResult {
    groups_page(&gw, &a, StatusCode::OK, Notice::from_code(d.ok.as_deref()), "").await
}

#[derive(serde::Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

/// `POST /admin/groups`.
pub async fn create(State(gw): State<Gateway>, Admin(a): Admin, CsrfForm(f): CsrfForm<NameForm>) -> WebResult {
    let name = f.name.trim();
    match admin::groups::create(&gw, &actor(&a), name).await {
        Ok(_) => Ok(Redirect::to(&format!("/admin/groups/{name}?ok=created")).into_response()),
        Err(gatehouse_core::Error::Invalid { reason, .. }) => {
            groups_page(&gw, &a, StatusCode::BAD_REQUEST, Notice::error("name", format!("The name {reason}.")), name)
                .await
        }
        Err(gatehouse_core::Error::Duplicate { .. }) => {
            groups_page(
                &gw,
                &a,
                StatusCode::BAD_REQUEST,
                Notice::error("name", format!("A group named {name} already exists.")),
                name,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(askama::Template)]
#[template(path = "admin_group.html")]
struct GroupPage {
    c: Chrome,
    n: Notice,
    name: String,
    force: bool,
    inherit: bool,
    methods: Vec<MethodBox>,
    members: Vec<String>,
    candidates: Vec<String>,
}

async fn the_group(gw: &Gateway, name: &str) -> WebResult<Group> {
    groups::find(&gw.db, name).await?.ok_or_else(|| WebError::NotFound(format!("There is no group named {name}.")))
}

async fn group_page(gw: &Gateway, a: &Authed, name: &str, status: StatusCode, n: Notice) -> WebResult {
    let g = the_group(gw, name).await?;
    let members = groups::members(&gw.db, name).await?;
    let candidates = users::list(&gw.db).await?.into_iter().map(|u| u.name).filter(|u| !members.contains(u)).collect();
    let shown = g.allowed_methods.clone().unwrap_or_else(MethodSet::all);
    Ok(page(
        status,
        &GroupPage {
            c: a.chrome.clone().with_section("groups"),
            n,
            force: g.force_2fa,
            inherit: g.allowed_methods.is_none(),
            methods: method_boxes(&shown),
            members,
            candidates,
            name: g.name,
        },
    ))
}

/// `GET /admin/groups/{name}`.
pub async fn show(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    Query(d): Query<Done>,
) -> WebResult {
    group_page(&gw, &a, &name, StatusCode::OK, Notice::from_code(d.ok.as_deref())).await
}

fn back(name: &str) -> WebResult {
    Ok(Redirect::to(&format!("/admin/groups/{name}?ok=saved")).into_response())
}

#[derive(serde::Deserialize)]
pub struct Toggle {
    #[serde(default)]
    on: String,
}

/// `POST /admin/groups/{name}/force`: the per-group force-2FA switch.
pub async fn force(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<Toggle>,
) -> WebResult {
    let on = switch(&f.on)?;
    the_group(&gw, &name).await?;
    admin::groups::set_force_2fa(&gw, &actor(&a), &name, on).await?;
    back(&name)
}

/// `POST /admin/groups/{name}/methods`.
pub async fn methods(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<HashMap<String, String>>,
) -> WebResult {
    the_group(&gw, &name).await?;
    let set = if f.get("inherit").is_some_and(|v| v == "on") {
        None
    } else {
        match ticked(&f) {
            Some(set) => Some(set),
            None => {
                return group_page(
                    &gw,
                    &a,
                    &name,
                    StatusCode::BAD_REQUEST,
                    Notice::error("methods", "Tick at least one method, or use the global setting."),
                )
                .await;
            }
        }
    };
    admin::groups::set_allowed_methods(&gw, &actor(&a), &name, set.as_ref()).await?;
    back(&name)
}

#[derive(serde::Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    user: String,
}

/// `POST /admin/groups/{name}/members`.
pub async fn add_member(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<MemberForm>,
) -> WebResult {
    the_group(&gw, &name).await?;
    match admin::groups::add_member(&gw, &actor(&a), &name, &f.user).await {
        Ok(()) => back(&name),
        Err(gatehouse_core::Error::NotFound { .. }) => {
            group_page(&gw, &a, &name, StatusCode::BAD_REQUEST, Notice::error("user", "There is no such user.")).await
        }
        Err(gatehouse_core::Error::Duplicate { .. }) => {
            group_page(&gw, &a, &name, StatusCode::BAD_REQUEST, Notice::error("user", "That user is already a member."))
                .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/groups/{name}/members/remove`.
pub async fn remove_member(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<MemberForm>,
) -> WebResult {
    the_group(&gw, &name).await?;
    match admin::groups::remove_member(&gw, &actor(&a), &name, &f.user).await {
        Ok(()) => back(&name),
        Err(gatehouse_core::Error::NotFound { .. }) => {
            group_page(&gw, &a, &name, StatusCode::BAD_REQUEST, Notice::error("form", "That user is not a member."))
                .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/groups/{name}/delete`.
pub async fn delete(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult {
    the_group(&gw, &name).await?;
    admin::groups::delete(&gw, &actor(&a), &name).await?;
    Ok(Redirect::to("/admin/groups?ok=deleted").into_response())
}
