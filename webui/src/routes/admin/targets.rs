//! Admin: targets — add, edit the connection, host key shown with its fingerprint and a
//! re-pin action, grants to users and groups, delete. Credentials are sealed by core and
//! never shown again.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use gatehouse_core::targets::{self, CredentialKind, Grantee, NewTarget, Target};
use gatehouse_core::{Gateway, ssh_keys};

use gatehouse_core::admin;

use super::actor;
use crate::error::{WebError, WebResult};
use crate::form::{CsrfForm, Empty};
use crate::render::{Chrome, Notice, page};
use crate::routes::account::Done;
use crate::session::{Admin, Authed};

pub struct TargetRow {
    pub name: String,
    pub address: String,
    pub username: String,
    pub pinned: bool,
    pub grantees: String,
}

/// The add form as typed (shown again after an error; the credential never is).
#[derive(serde::Deserialize, Default)]
pub struct TargetForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub credential_kind: String,
    #[serde(default)]
    pub credential: String,
    #[serde(default)]
    pub host_key: String,
}

#[derive(askama::Template)]
#[template(path = "admin_targets.html")]
struct TargetsPage {
    c: Chrome,
    n: Notice,
    targets: Vec<TargetRow>,
    f: TargetForm,
}

async fn grantee_list(gw: &Gateway, t: &Target) -> WebResult<Vec<(&'static str, String)>> {
    let (users, groups) = targets::grantees(&gw.db, t.id).await?;
    Ok(users.into_iter().map(|u| ("user", u)).chain(groups.into_iter().map(|g| ("group", g))).collect())
}

async fn targets_page(gw: &Gateway, a: &Authed, status: StatusCode, n: Notice, f: TargetForm) -> WebResult {
    let mut rows = Vec::new();
    for t in targets::list(&gw.db).await? {
        let grantees: Vec<String> = grantee_list(gw, &t).await?.into_iter().map(|(k, n)| format!("{k} {n}")).collect();
        rows.push(TargetRow {
            address: format!("{}:{}", t.host, t.port),
            username: t.username.clone(),
            pinned: t.host_key.is_some(),
            grantees: if grantees.is_empty() { "nobody".into() } else { grantees.join(", ") },
            name: t.name,
        });
    }
    let f = TargetForm { credential: String::new(), port: if f.port.is_empty() { "22".into() } else { f.port }, ..f };
    Ok(page(status, &TargetsPage { c: a.chrome.clone().with_section("targets"), n, targets: rows, f }))
}

/// `GET /admin/targets`.
pub async fn list(State(gw): State<Gateway>, Admin(a): Admin, Query(d): Query<Done>) -> WebResult {
    targets_page(&gw, &a, StatusCode::OK, Notice::from_code(d.ok.as_deref()), TargetForm::default()).await
}

fn parse_port(s: &str) -> Option<u16> {
    s.trim().parse::<u16>().ok().filter(|p| *p > 0)
}

/// `POST /admin/targets`.
pub async fn create(State(gw): State<Gateway>, Admin(a): Admin, CsrfForm(f): CsrfForm<TargetForm>) -> WebResult {
    let Some(port) = parse_port(&f.port) else {
        return targets_page(
            &gw,
            &a,
            StatusCode::BAD_REQUEST,
            Notice::error("port", "The port must be a number from 1 to 65535."),
            f,
        )
        .await;
    };
    let kind = match f.credential_kind.as_str() {
        "key" => CredentialKind::Key,
        "password" => CredentialKind::Password,
        _ => {
            return targets_page(
                &gw,
                &a,
                StatusCode::BAD_REQUEST,
                Notice::error("credential", "Choose a private key or a password."),
                f,
            )
            .await;
        }
    };
    let host_key = f.host_key.trim();
    let name = f.name.trim().to_string();
    let result = admin::targets::create(
        &gw,
        &actor(&a),
        NewTarget {
            name: &name,
            host: f.host.trim(),
            port,
            username: f.username.trim(),
            credential_kind: kind,
            credential: &f.credential,
            host_key: (!host_key.is_empty()).then_some(host_key),
        },
    )
    .await;
    match result {
        Ok(t) => Ok(Redirect::to(&format!("/admin/targets/{}?ok=created", t.name)).into_response()),
        Err(gatehouse_core::Error::Invalid { field, reason }) => {
            let at = match field {
                "target name" => "name",
                "host" => "host",
                "port" => "port",
                "target user" => "username",
                "host key" => "host_key",
                _ => "credential",
            };
            targets_page(&gw, &a, StatusCode::BAD_REQUEST, Notice::error(at, format!("Invalid {field}: {reason}.")), f)
                .await
        }
        Err(gatehouse_core::Error::Duplicate { .. }) => {
            targets_page(
                &gw,
                &a,
                StatusCode::BAD_REQUEST,
                Notice::error("name", format!("A target named {name} already exists.")),
                f,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(askama::Template)]
#[template(path = "admin_target.html")]
struct TargetPage {
    c: Chrome,
    n: Notice,
    name: String,
    host: String,
    port: u16,
    username: String,
    credential_kind: &'static str,
    host_key: String,
    host_key_fp: String,
    grants: Vec<(&'static str, String)>,
}

async fn the_target(gw: &Gateway, name: &str) -> WebResult<Target> {
    targets::find(&gw.db, name).await?.ok_or_else(|| WebError::NotFound(format!("There is no target named {name}.")))
}

async fn target_page(gw: &Gateway, a: &Authed, name: &str, status: StatusCode, n: Notice) -> WebResult {
    let t = the_target(gw, name).await?;
    let host_key = t.host_key.clone().unwrap_or_default();
    let host_key_fp = ssh_keys::parse(&host_key).map(|k| ssh_keys::fingerprint(&k)).unwrap_or_default();
    Ok(page(
        status,
        &TargetPage {
            c: a.chrome.clone().with_section("targets"),
            n,
            grants: grantee_list(gw, &t).await?,
            host: t.host,
            port: t.port,
            username: t.username,
            credential_kind: match t.credential_kind {
                CredentialKind::Key => "private key",
                CredentialKind::Password => "password",
            },
            host_key,
            host_key_fp,
            name: t.name,
        },
    ))
}

/// `GET /admin/targets/{name}`.
pub async fn show(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    Query(d): Query<Done>,
) -> WebResult {
    target_page(&gw, &a, &name, StatusCode::OK, Notice::from_code(d.ok.as_deref())).await
}

fn back(name: &str) -> WebResult {
    Ok(Redirect::to(&format!("/admin/targets/{name}?ok=saved")).into_response())
}

#[derive(serde::Deserialize)]
pub struct EditForm {
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    username: String,
}

/// `POST /admin/targets/{name}/edit`.
pub async fn edit(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<EditForm>,
) -> WebResult {
    the_target(&gw, &name).await?;
    let Some(port) = parse_port(&f.port) else {
        return target_page(
            &gw,
            &a,
            &name,
            StatusCode::BAD_REQUEST,
            Notice::error("edit", "The port must be a number from 1 to 65535."),
        )
        .await;
    };
    match admin::targets::edit(&gw, &actor(&a), &name, f.host.trim(), port, f.username.trim()).await {
        Ok(()) => back(&name),
        Err(gatehouse_core::Error::Invalid { field, reason }) => {
            target_page(
                &gw,
                &a,
                &name,
                StatusCode::BAD_REQUEST,
                Notice::error("edit", format!("Invalid {field}: {reason}.")),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    key: String,
}

/// `POST /admin/targets/{name}/host-key`: pins the pasted key.
pub async fn pin(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<KeyForm>,
) -> WebResult {
    the_target(&gw, &name).await?;
    match admin::targets::pin_host_key(&gw, &actor(&a), &name, &f.key).await {
        Ok(()) => back(&name),
        Err(gatehouse_core::Error::Invalid { reason, .. }) => {
            target_page(&gw, &a, &name, StatusCode::BAD_REQUEST, Notice::error("key", format!("This is {reason}.")))
                .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/targets/{name}/forget-host-key`: the next connection pins what it sees.
pub async fn forget(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult {
    the_target(&gw, &name).await?;
    admin::targets::forget_host_key(&gw, &actor(&a), &name).await?;
    back(&name)
}

#[derive(serde::Deserialize)]
pub struct GrantForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    who: String,
}

fn grantee<'a>(kind: &str, who: &'a str) -> Option<Grantee<'a>> {
    match kind {
        "user" => Some(Grantee::User(who)),
        "group" => Some(Grantee::Group(who)),
        _ => None,
    }
}

/// `POST /admin/targets/{name}/grant`.
pub async fn grant(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<GrantForm>,
) -> WebResult {
    the_target(&gw, &name).await?;
    let who = f.who.trim();
    let Some(g) = grantee(&f.kind, who) else {
        return target_page(
            &gw,
            &a,
            &name,
            StatusCode::BAD_REQUEST,
            Notice::error("who", "Grant to a user or a group."),
        )
        .await;
    };
    match admin::targets::grant(&gw, &actor(&a), &name, g).await {
        Ok(()) => back(&name),
        Err(gatehouse_core::Error::NotFound { .. }) => {
            target_page(
                &gw,
                &a,
                &name,
                StatusCode::BAD_REQUEST,
                Notice::error("who", format!("There is no {} named {who}.", f.kind)),
            )
            .await
        }
        Err(gatehouse_core::Error::Duplicate { .. }) => {
            target_page(&gw, &a, &name, StatusCode::BAD_REQUEST, Notice::error("who", "That grant exists already."))
                .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/targets/{name}/revoke`.
pub async fn revoke(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<GrantForm>,
) -> WebResult {
    the_target(&gw, &name).await?;
    let who = f.who.trim();
    let Some(g) = grantee(&f.kind, who) else {
        return target_page(
            &gw,
            &a,
            &name,
            StatusCode::BAD_REQUEST,
            Notice::error("who", "Revoke from a user or a group."),
        )
        .await;
    };
    match admin::targets::revoke(&gw, &actor(&a), &name, g).await {
        Ok(()) => back(&name),
        Err(gatehouse_core::Error::NotFound { .. }) => {
            target_page(&gw, &a, &name, StatusCode::BAD_REQUEST, Notice::error("who", "There is no such grant.")).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/targets/{name}/delete`.
pub async fn delete(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult {
    the_target(&gw, &name).await?;
    admin::targets::delete(&gw, &actor(&a), &name).await?;
    Ok(Redirect::to("/admin/targets?ok=deleted").into_response())
}
