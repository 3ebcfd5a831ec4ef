//! Admin: users — list, create, lock/unlock, administrator flag, 2FA exemption (with a
//! visible warning), reset of factors, one-time password, delete.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use gatehouse_core::factors;
use gatehouse_core::policy::{self, Requirement};
use gatehouse_core::users::{self, NewUser, User};
use gatehouse_core::{Gateway, groups, lockout, ssh_keys, trusted_devices, web_sessions};

use super::{audit_change, switch};
use crate::error::{WebError, WebResult};
use crate::form::{CsrfForm, Empty};
use crate::render::{Chrome, Notice, page, when};
use crate::routes::account::Done;
use crate::session::{Admin, Authed};

pub struct UserRow {
    pub name: String,
    pub is_admin: bool,
    pub locked: bool,
    pub exempt: bool,
    pub factors: String,
    pub groups: String,
    pub created: String,
}

#[derive(askama::Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    c: Chrome,
    n: Notice,
    users: Vec<UserRow>,
    form_name: String,
    form_email: String,
}

fn join_or(items: Vec<String>, none: &str) -> String {
    if items.is_empty() { none.to_string() } else { items.join(", ") }
}

async fn users_page(gw: &Gateway, a: &Authed, status: StatusCode, n: Notice, form: (&str, &str)) -> WebResult {
    let mut rows = Vec::new();
    for u in users::list(&gw.db).await? {
        let enrolled: Vec<String> =
            factors::enrolled(&gw.db, u.id).await?.iter().map(|m| m.label().to_string()).collect();
        let groups: Vec<String> = groups::of_user(&gw.db, u.id).await?.into_iter().map(|g| g.name).collect();
        rows.push(UserRow {
            factors: join_or(enrolled, "none"),
            groups: join_or(groups, "—"),
            created: when(Some(u.created_at)),
            name: u.name,
            is_admin: u.is_admin,
            locked: u.locked,
            exempt: u.exempt_2fa,
        });
    }
    Ok(page(
        status,
        &UsersPage {
            c: a.chrome.clone().with_section("users"),
            n,
            users: rows,
            form_name: form.0.to_string(),
            form_email: form.1.to_string(),
        },
    ))
}

/// `GET /admin/users`.
pub async fn list(State(gw): State<Gateway>, Admin(a): Admin, Query(d): Query<Done>) -> WebResult {
    users_page(&gw, &a, StatusCode::OK, Notice::from_code(d.ok.as_deref()), ("", "")).await
}

#[derive(serde::Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    is_admin: String,
}

/// `POST /admin/users`: the new user must change the password at first login.
pub async fn create(State(gw): State<Gateway>, Admin(a): Admin, CsrfForm(f): CsrfForm<CreateForm>) -> WebResult {
    let name = f.name.trim();
    let email = f.email.trim();
    let bad = |field: &str, msg: String| {
        users_page(&gw, &a, StatusCode::BAD_REQUEST, Notice::error(field, msg), (name, email))
    };
    if let Err(gatehouse_core::Error::Invalid { reason, .. }) = users::validate_name("user name", name) {
        return bad("name", format!("The name {reason}.")).await;
    }
    if let Err(gatehouse_core::Error::Invalid { reason, .. }) = users::validate_password(&f.password) {
        return bad("password", format!("The password {reason}.")).await;
    }
    let new = NewUser {
        name,
        password: Some(&f.password),
        email: (!email.is_empty()).then_some(email),
        is_admin: f.is_admin == "on",
    };
    let user = match users::create(&gw.db, new).await {
        Ok(u) => u,
        Err(gatehouse_core::Error::Duplicate { .. }) => {
            return bad("name", format!("A user named {name} already exists.")).await;
        }
        Err(gatehouse_core::Error::Invalid { field: "email", reason }) => {
            return bad("email", format!("The email {reason}.")).await;
        }
        Err(e) => return Err(e.into()),
    };
    users::set_must_change_password(&gw.db, user.id, true).await?;
    audit_change(&gw, &a, "user.create", Some(name), format!("admin={} via web", user.is_admin)).await?;
    Ok(Redirect::to(&format!("/admin/users/{name}?ok=created")).into_response())
}

#[derive(askama::Template)]
#[template(path = "admin_user.html")]
struct UserPage {
    c: Chrome,
    n: Notice,
    name: String,
    email: String,
    is_admin: bool,
    locked: bool,
    exempt: bool,
    requirement: String,
    factors: String,
    groups: String,
    keys: String,
    created: String,
}

async fn target_user(gw: &Gateway, name: &str) -> WebResult<User> {
    users::find(&gw.db, name).await?.ok_or_else(|| WebError::NotFound(format!("There is no user named {name}.")))
}

async fn user_page(gw: &Gateway, a: &Authed, name: &str, status: StatusCode, n: Notice) -> WebResult {
    let u = target_user(gw, name).await?;
    let requirement = match policy::requirement(&gw.db, &u).await? {
        Requirement::NotRequired => "not required".to_string(),
        Requirement::Exempt => "exempt (never asked)".to_string(),
        Requirement::Required { methods } => {
            format!("required; asked first for: {}", methods.first().map(|m| m.label()).unwrap_or("—"))
        }
        Requirement::MustEnroll { .. } => {
            "required, nothing enrolled yet: the user must enroll at next login".to_string()
        }
    };
    let enrolled: Vec<String> = factors::describe(&gw.db, u.id)
        .await?
        .into_iter()
        .map(|f| format!("{} ({})", f.method.label(), f.label))
        .collect();
    let groups: Vec<String> = groups::of_user(&gw.db, u.id).await?.into_iter().map(|g| g.name).collect();
    let keys: Vec<String> = ssh_keys::of_user(&gw.db, u.id).await?.into_iter().map(|k| k.fingerprint).collect();
    Ok(page(
        status,
        &UserPage {
            c: a.chrome.clone().with_section("users"),
            n,
            email: u.email.clone().unwrap_or_else(|| "—".into()),
            is_admin: u.is_admin,
            locked: u.locked,
            exempt: u.exempt_2fa,
            requirement,
            factors: join_or(enrolled, "none"),
            groups: join_or(groups, "none"),
            keys: join_or(keys, "none"),
            created: when(Some(u.created_at)),
            name: u.name,
        },
    ))
}

/// `GET /admin/users/{name}`.
pub async fn show(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    Query(d): Query<Done>,
) -> WebResult {
    user_page(&gw, &a, &name, StatusCode::OK, Notice::from_code(d.ok.as_deref())).await
}

#[derive(serde::Deserialize)]
pub struct Toggle {
    #[serde(default)]
    on: String,
}

fn back(name: &str) -> WebResult {
    Ok(Redirect::to(&format!("/admin/users/{name}?ok=saved")).into_response())
}

/// `POST /admin/users/{name}/lock`: unlocking also lifts a failure lockout.
pub async fn lock(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<Toggle>,
) -> WebResult {
    let Some(on) = switch(&f.on) else { return Err(WebError::BadRequest("on must be 'on' or 'off'.".into())) };
    let u = target_user(&gw, &name).await?;
    if on && u.id == a.user.id {
        return user_page(
            &gw,
            &a,
            &name,
            StatusCode::BAD_REQUEST,
            Notice::error("form", "You cannot lock your own account."),
        )
        .await;
    }
    users::set_locked(&gw.db, &name, on).await?;
    if on {
        let ended = web_sessions::delete_others(&gw.db, u.id, "").await?;
        audit_change(&gw, &a, "user.lock", Some(&name), format!("locked; {ended} web sessions ended")).await?;
    } else {
        lockout::clear_user(&gw.db, &name).await?;
        audit_change(&gw, &a, "user.unlock", Some(&name), "unlocked".into()).await?;
    }
    back(&name)
}

/// `POST /admin/users/{name}/admin`.
pub async fn admin_flag(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<Toggle>,
) -> WebResult {
    let Some(on) = switch(&f.on) else { return Err(WebError::BadRequest("on must be 'on' or 'off'.".into())) };
    let u = target_user(&gw, &name).await?;
    if !on && u.id == a.user.id {
        return user_page(
            &gw,
            &a,
            &name,
            StatusCode::BAD_REQUEST,
            Notice::error("form", "You cannot remove your own administrator flag; ask another administrator."),
        )
        .await;
    }
    users::set_admin(&gw.db, &name, on).await?;
    audit_change(&gw, &a, "user.admin", Some(&name), format!("administrator={on}")).await?;
    back(&name)
}

/// `POST /admin/users/{name}/exempt`: audited as a warning-worthy change.
pub async fn exempt(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<Toggle>,
) -> WebResult {
    let Some(on) = switch(&f.on) else { return Err(WebError::BadRequest("on must be 'on' or 'off'.".into())) };
    target_user(&gw, &name).await?;
    users::set_exempt(&gw.db, &name, on).await?;
    audit_change(
        &gw,
        &a,
        "user.exempt_2fa",
        Some(&name),
        if on { "EXEMPTED from the second factor".into() } else { "exemption ended".into() },
    )
    .await?;
    back(&name)
}

/// `POST /admin/users/{name}/reset-factors`: every factor, backup code and trusted browser.
pub async fn reset_factors(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult {
    let u = target_user(&gw, &name).await?;
    let methods = factors::enrolled(&gw.db, u.id).await?;
    for m in &methods {
        factors::remove(&gw.db, u.id, *m).await?;
    }
    let browsers = trusted_devices::revoke_others(&gw.db, u.id, "").await?;
    let names: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
    audit_change(
        &gw,
        &a,
        "factor.reset",
        Some(&name),
        format!("removed [{}], {browsers} trusted browsers", names.join(", ")),
    )
    .await?;
    back(&name)
}

#[derive(serde::Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
}

/// `POST /admin/users/{name}/password`: a one-time password the user must replace.
pub async fn set_password(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<PasswordForm>,
) -> WebResult {
    let u = target_user(&gw, &name).await?;
    if let Err(gatehouse_core::Error::Invalid { reason, .. }) = users::validate_password(&f.password) {
        return user_page(
            &gw,
            &a,
            &name,
            StatusCode::BAD_REQUEST,
            Notice::error("password", format!("The password {reason}.")),
        )
        .await;
    }
    let passcodes = users::set_password(&gw.db, &name, &f.password).await?;
    users::set_must_change_password(&gw.db, u.id, true).await?;
    audit_change(
        &gw,
        &a,
        "user.password",
        Some(&name),
        format!("one-time password set by administrator; {passcodes} application passcodes revoked"),
    )
    .await?;
    back(&name)
}

#[derive(serde::Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /admin/users/{name}/delete`: needs the name typed again.
pub async fn delete(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<DeleteForm>,
) -> WebResult {
    let u = target_user(&gw, &name).await?;
    if f.confirm.trim() != name {
        return user_page(
            &gw,
            &a,
            &name,
            StatusCode::BAD_REQUEST,
            Notice::error("confirm", "Type the user name exactly to confirm."),
        )
        .await;
    }
    if u.id == a.user.id {
        return user_page(
            &gw,
            &a,
            &name,
            StatusCode::BAD_REQUEST,
            Notice::error("confirm", "You cannot delete your own account."),
        )
        .await;
    }
    users::delete(&gw.db, &name).await?;
    audit_change(&gw, &a, "user.delete", Some(&name), "deleted via web".into()).await?;
    Ok(Redirect::to("/admin/users?ok=deleted").into_response())
}
