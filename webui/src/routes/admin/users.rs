//! Admin: users — list, create, lock/unlock, administrator flag, 2FA exemption (with a
//! visible warning), the user's own force-2FA override and why 2FA is or is not required
//! of them, reset of factors, one-time password, delete.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use gatehouse_core::factors;
use gatehouse_core::policy::{self, Requirement};
use gatehouse_core::users::{self, User};
use gatehouse_core::{Gateway, groups, ssh_keys};

use gatehouse_core::admin::{self, users::NewAccount};

use super::{actor, switch};
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
    /// A directory user (and whether the directory disabled them).
    pub directory: bool,
    pub directory_disabled: bool,
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
            directory: u.store == users::Store::Ldap,
            directory_disabled: u.directory_disabled,
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
    let new = NewAccount {
        name,
        password: Some(&f.password),
        email: (!email.is_empty()).then_some(email),
        is_admin: f.is_admin == "on",
        one_time_password: true,
    };
    match admin::users::create(&gw, &actor(&a), new).await {
        Ok(_) => Ok(Redirect::to(&format!("/admin/users/{name}?ok=created")).into_response()),
        Err(gatehouse_core::Error::Duplicate { .. }) => {
            bad("name", format!("A user named {name} already exists.")).await
        }
        Err(gatehouse_core::Error::Invalid { field: "email", reason }) => {
            bad("email", format!("The email {reason}.")).await
        }
        Err(e) => Err(e.into()),
    }
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
    /// Where the password is checked, and for a directory user their entry.
    store: String,
    directory: bool,
    directory_disabled: bool,
    requirement: String,
    /// Why 2FA is or is not required of this user, one sentence from the policy's own
    /// resolution ([`policy::Resolution::reason_for_admin`]).
    why: String,
    /// The user's override: `inherit`, `on` or `off`.
    force: &'static str,
    /// The administrators' scope applies to this user (their override does not count).
    admin_scope: bool,
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
    let resolution = policy::resolve(&gw.db, &u).await?;
    let requirement = match resolution.requirement(&u) {
        Requirement::NotRequired => "not required".to_string(),
        Requirement::Exempt => "exempt (never asked)".to_string(),
        Requirement::Required { methods } => format!("required; asked first for: {}", methods.first().map(|m| m.label()).unwrap_or("—")),
        Requirement::MustEnroll { .. } => {
            let days = policy::load(&gw.db).await?.enrollment_window_days;
            let end = u.enrollment_window_end(days, gatehouse_core::time::now()).map(gatehouse_core::time::format_utc).unwrap_or_default();
            format!("required, nothing enrolled yet: the user may enroll one with the password alone until {end}")
        }
        Requirement::EnrollmentClosed => {
            "required, nothing usable enrolled, and the first-login enrollment window is over: the user is refused until an administrator resets the factors".to_string()
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
            store: match &u.directory_dn {
                Some(dn) if u.store == users::Store::Ldap => format!("{} — {dn}", u.store.describe()),
                _ => u.store.describe().to_string(),
            },
            directory: u.store == users::Store::Ldap,
            directory_disabled: u.directory_disabled,
            requirement,
            why: resolution.reason_for_admin(&u),
            force: admin::users::override_word(u.force_2fa),
            admin_scope: resolution.forced_as_admin,
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
    let on = switch(&f.on)?;
    target_user(&gw, &name).await?;
    let done = if on {
        admin::users::lock(&gw, &actor(&a), &name).await.map(|_| ())
    } else {
        admin::users::unlock(&gw, &actor(&a), &name).await
    };
    refused_or_back(&gw, &a, &name, "form", done).await
}

/// `POST /admin/users/{name}/admin`.
pub async fn admin_flag(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<Toggle>,
) -> WebResult {
    let on = switch(&f.on)?;
    target_user(&gw, &name).await?;
    let done = admin::users::set_admin(&gw, &actor(&a), &name, on).await;
    refused_or_back(&gw, &a, &name, "form", done).await
}

/// `POST /admin/users/{name}/exempt`: audited as a warning-worthy change.
pub async fn exempt(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<Toggle>,
) -> WebResult {
    let on = switch(&f.on)?;
    target_user(&gw, &name).await?;
    admin::users::set_exempt(&gw, &actor(&a), &name, on).await?;
    back(&name)
}

#[derive(serde::Deserialize)]
pub struct ForceForm {
    #[serde(default)]
    force: String,
}

/// `POST /admin/users/{name}/force`: the user's own force-2FA override (`inherit`, `on`,
/// `off`). Forcing it on ends the user's live logins that did not pass a second factor.
pub async fn force(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<ForceForm>,
) -> WebResult {
    let force = match f.force.as_str() {
        "inherit" => None,
        "on" => Some(true),
        "off" => Some(false),
        _ => return Err(WebError::BadRequest("force must be 'inherit', 'on' or 'off'.".into())),
    };
    target_user(&gw, &name).await?;
    admin::users::set_force_2fa(&gw, &actor(&a), &name, force).await?;
    back(&name)
}

/// `POST /admin/users/{name}/reset-factors`: every factor, backup code and trusted browser.
pub async fn reset_factors(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(name): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult {
    target_user(&gw, &name).await?;
    admin::users::reset_factors(&gw, &actor(&a), &name).await?;
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
    target_user(&gw, &name).await?;
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
    admin::users::set_password(&gw, &actor(&a), &name, &f.password, true).await?;
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
    target_user(&gw, &name).await?;
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
    match admin::users::delete(&gw, &actor(&a), &name).await {
        Ok(()) => Ok(Redirect::to("/admin/users?ok=deleted").into_response()),
        Err(e) => refused_or_back(&gw, &a, &name, "confirm", Err(e)).await,
    }
}

/// Back to the user's page after an action; a refusal by core (e.g. locking your own
/// account) is shown on the page at `field`.
async fn refused_or_back(
    gw: &Gateway,
    a: &Authed,
    name: &str,
    field: &str,
    done: gatehouse_core::Result<()>,
) -> WebResult {
    match done {
        Ok(()) => back(name),
        Err(gatehouse_core::Error::Invalid { reason, .. }) => {
            let mut text = reason;
            if let Some(first) = text.get(..1) {
                text = format!("{}{}.", first.to_uppercase(), &text[1..]);
            }
            user_page(gw, a, name, StatusCode::BAD_REQUEST, Notice::error(field, text)).await
        }
        Err(e) => Err(e.into()),
    }
}
