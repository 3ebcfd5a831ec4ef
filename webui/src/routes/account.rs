//! "My account": the user's second factors — overview, backup codes, access keyword,
//! removal (confirmed by a current factor). The authenticator-app enrollment, which also
//! serves as the forced-enrollment page, is `super::totp`. Every change here needs a
//! fresh proof (`super::confirm`) and is mailed to the user.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};
use gatehouse_core::factors::{self, Method, MethodSet, Verdict, backup_codes, keyword, webauthn};
use gatehouse_core::policy::{self, Requirement};
use gatehouse_core::sudo::{self, Change};
use gatehouse_core::web_sessions::ProofKind;
use gatehouse_core::{Gateway, login};

use super::confirm;
use super::totp::totp_page;

use crate::error::WebResult;
use crate::form::{CsrfForm, Empty};
use crate::render::{Chrome, Notice, ok, page, when};
use crate::session::{Authed, Enrolling};

/// `?ok=` after a redirect.
#[derive(serde::Deserialize)]
pub struct Done {
    pub ok: Option<String>,
}

pub struct FactorRow {
    pub method: &'static str,
    pub label: &'static str,
    pub detail: String,
    pub created: String,
    pub used: String,
    pub default: bool,
}

#[derive(askama::Template)]
#[template(path = "account.html")]
struct AccountPage {
    c: Chrome,
    sub: &'static str,
    n: Notice,
    status: String,
    factors: Vec<FactorRow>,
    has_totp: bool,
    has_keyword: bool,
    backup_left: i64,
    totp_allowed: bool,
    backup_allowed: bool,
    keyword_allowed: bool,
    /// Email may be enrolled (allowed, and the gateway can send mail).
    email_allowed: bool,
    has_yubikey: bool,
    /// A YubiKey may be bound (allowed, and the gateway can check its OTPs).
    yubikey_allowed: bool,
    /// Security keys may be registered (allowed, and `public_url` can be a relying party).
    security_keys_allowed: bool,
    /// The factors a removal can be confirmed with (a code typed; not a security key).
    provable: Vec<FactorRow>,
}

#[derive(askama::Template)]
#[template(path = "codes.html")]
struct CodesPage {
    c: Chrome,
    sub: &'static str,
    codes: Vec<String>,
}

/// The methods this user may enroll (global set narrowed by their groups).
pub(super) fn allowed(a: &Authed) -> MethodSet {
    a.resolution.allowed.clone().unwrap_or_else(MethodSet::all)
}

async fn account_page(gw: &Gateway, a: &Authed, status: StatusCode, n: Notice) -> WebResult {
    let described = factors::describe(&gw.db, a.user.id).await?;
    let resolution = &a.resolution;
    let allowed = allowed(a);
    // One resolution gives both the sentence and the default method, as the login's.
    let why = resolution.reason(&a.user);
    let default = match resolution.requirement(&a.user) {
        Requirement::Required { methods } => methods.first().copied(),
        _ => None,
    };
    let rows: Vec<FactorRow> = described
        .iter()
        .map(|f| FactorRow {
            method: f.method.as_str(),
            label: f.method.label(),
            detail: f.label.clone(),
            created: when(Some(f.created_at)),
            used: when(f.last_used_at),
            default: Some(f.method) == default,
        })
        .collect();
    let provable = rows
        .iter()
        .filter(|r| r.method != Method::Webauthn.as_str())
        .map(|r| FactorRow {
            method: r.method,
            label: r.label,
            detail: String::new(),
            created: String::new(),
            used: String::new(),
            default: false,
        })
        .collect();
    Ok(page(
        status,
        &AccountPage {
            c: a.chrome.clone().with_section("account"),
            sub: "factors",
            n,
            status: why,
            has_totp: described.iter().any(|f| f.method == Method::Totp),
            has_keyword: described.iter().any(|f| f.method == Method::Keyword),
            backup_left: a.backup_codes_left,
            factors: rows,
            totp_allowed: allowed.contains(Method::Totp),
            backup_allowed: allowed.contains(Method::BackupCode),
            keyword_allowed: allowed.contains(Method::Keyword),
            email_allowed: allowed.contains(Method::Email) && gw.config.email.enabled(),
            has_yubikey: described.iter().any(|f| f.method == Method::Yubikey),
            yubikey_allowed: yubikey_usable(gw, &allowed),
            security_keys_allowed: security_keys_usable(gw, &allowed),
            provable,
        },
    ))
}

/// Whether the user may bind a YubiKey here: allowed for them and configured.
pub(super) fn yubikey_usable(gw: &Gateway, allowed: &MethodSet) -> bool {
    allowed.contains(Method::Yubikey) && gw.config.yubikey.enabled()
}

/// Whether the user may register security keys here: allowed for them, and the gateway
/// can be a relying party.
pub(super) fn security_keys_usable(gw: &Gateway, allowed: &MethodSet) -> bool {
    allowed.contains(Method::Webauthn) && webauthn::availability(&gw.config).is_ok()
}

/// `GET /account`.
pub async fn overview(State(gw): State<Gateway>, a: Authed, Query(d): Query<Done>) -> WebResult {
    account_page(&gw, &a, StatusCode::OK, Notice::from_code(d.ok.as_deref())).await
}

/// `POST /account/backup-codes`: a new set, shown once.
pub async fn backup_codes(State(gw): State<Gateway>, a: Authed, CsrfForm(_): CsrfForm<Empty>) -> WebResult {
    let grant = match confirm::grant(&gw, &a, "/account/backup-codes", "/account").await? {
        Ok(grant) => grant,
        Err(to_confirm) => return Ok(to_confirm),
    };
    if !allowed(&a).contains(Method::BackupCode) {
        return account_page(
            &gw,
            &a,
            StatusCode::BAD_REQUEST,
            Notice::error("form", "Backup codes are not allowed for your account."),
        )
        .await;
    }
    let count = policy::load(&gw.db).await?.backup_code_count;
    let codes = backup_codes::regenerate(&gw.db, a.user.id, count).await?;
    gw.audit(
        AuditEvent::new(AuditKind::FactorBackupCodes, Outcome::Success)
            .actor(a.user.name.clone())
            .user(a.user.name.clone())
            .source(a.source.clone())
            .detail(format!("{count} new codes via web")),
    )
    .await?;
    grant.done(&gw, &Change::BackupCodes).await?;
    let mut resp = ok(&CodesPage { c: a.chrome.clone().with_section("account"), sub: "factors", codes });
    resp.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[derive(serde::Deserialize)]
pub struct KeywordForm {
    #[serde(default)]
    keyword: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /account/keyword`: sets or replaces the access keyword (also allowed while the
/// user must enroll).
pub async fn set_keyword(
    State(gw): State<Gateway>,
    Enrolling(a): Enrolling,
    CsrfForm(f): CsrfForm<KeywordForm>,
) -> WebResult {
    let forced = matches!(policy::requirement(&gw.db, &a.user).await?, Requirement::MustEnroll { .. });
    let grant = match confirm::grant(&gw, &a, "/account/keyword", if forced { "/enroll" } else { "/account" }).await? {
        Ok(grant) => grant,
        Err(to_confirm) => return Ok(to_confirm),
    };
    let fail = |msg: String| keyword_failed(&gw, &a, forced, msg);
    if !allowed(&a).contains(Method::Keyword) {
        return fail("The access keyword is not allowed for your account.".into()).await;
    }
    if f.keyword != f.confirm {
        return fail("The two entries differ.".into()).await;
    }
    if let Err(e) = keyword::set(&gw, a.user.id, &f.keyword).await {
        return match e {
            gatehouse_core::Error::Invalid { reason, .. } => fail(format!("The keyword {reason}.")).await,
            other => Err(other.into()),
        };
    }
    gw.audit(
        AuditEvent::new(AuditKind::FactorEnroll, Outcome::Success)
            .actor(a.user.name.clone())
            .user(a.user.name.clone())
            .source(a.source.clone())
            .detail("keyword via web"),
    )
    .await?;
    grant.done(&gw, &Change::Keyword).await?;
    Ok(Redirect::to("/account?ok=keyword").into_response())
}

/// The page the keyword form came from, with the error next to the field.
async fn keyword_failed(gw: &Gateway, a: &Authed, forced: bool, msg: String) -> WebResult {
    let n = Notice::error("keyword", msg);
    if forced {
        totp_page(gw, a, true, StatusCode::BAD_REQUEST, n).await
    } else {
        account_page(gw, a, StatusCode::BAD_REQUEST, n).await
    }
}

/// Checks the proof a removal gives: a code (or keyword, or a push approved) of
/// `proof_method`, one of the `enrolled` factors a code can be typed for, counted and
/// audited like a login answer. On success the session is stamped as fresh (the proof a
/// change needs), recorded as a confirmation "to remove `what`"; else the status and
/// notice of the page to show again, nothing removed.
pub(super) async fn prove_factor(
    gw: &Gateway,
    a: &mut Authed,
    enrolled: &[Method],
    proof_method: &str,
    proof: &str,
    what: &str,
) -> WebResult<Result<(), (StatusCode, Notice)>> {
    // A security key answers in the browser, not with a typed code.
    let Some(proof_method) =
        proof_method.parse::<Method>().ok().filter(|m| enrolled.contains(m) && *m != Method::Webauthn)
    else {
        return Ok(Err((StatusCode::BAD_REQUEST, Notice::error("proof", "Confirm with one of your factors."))));
    };
    let ctx = a.login_context();
    let Some(mut challenge) = login::challenge(gw, &ctx, &a.user, proof_method).await? else {
        return Ok(Err((
            StatusCode::BAD_REQUEST,
            Notice::error("proof", "That method is not available on this gateway."),
        )));
    };
    let verdict = if !proof.trim().is_empty() {
        login::answer(gw, &ctx, &a.user, &mut challenge, proof).await?
    } else if challenge.can_wait {
        // Nothing typed for a method approved elsewhere (the link in the mail, a push):
        // wait for that, as the login does.
        match login::wait(gw, &ctx, &a.user, &mut challenge, PROOF_WAIT).await? {
            Verdict::Pending => {
                let msg = format!("{} Then press Remove again.", challenge.instructions);
                return Ok(Err((StatusCode::ACCEPTED, Notice::error("proof", msg))));
            }
            v => v,
        }
    } else {
        return Ok(Err((StatusCode::BAD_REQUEST, Notice::error("proof", "Enter a code or your keyword."))));
    };
    if verdict != Verdict::Accepted {
        return Ok(Err((
            StatusCode::UNAUTHORIZED,
            Notice::error("proof", "That code is not right; nothing was removed."),
        )));
    }
    sudo::confirmed(
        gw,
        &mut a.session,
        &a.user,
        &a.source,
        ProofKind::Factor,
        &format!("{proof_method}, to remove {what}"),
    )
    .await?;
    Ok(Ok(()))
}

/// How long removing a factor waits for a proof approved elsewhere.
const PROOF_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(serde::Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    method: String,
    #[serde(default)]
    proof_method: String,
    #[serde(default)]
    proof: String,
}

/// `POST /account/factors/remove`: removes one of the user's own factors after checking
/// a current factor (counted and audited like a login answer). That factor is the fresh
/// proof the removal needs, so it is recorded as a confirmation first.
pub async fn remove_factor(State(gw): State<Gateway>, a: Authed, CsrfForm(f): CsrfForm<RemoveForm>) -> WebResult {
    let enrolled = factors::enrolled(&gw.db, a.user.id).await?;
    let Some(method) = f.method.parse::<Method>().ok().filter(|m| enrolled.contains(m)) else {
        return account_page(&gw, &a, StatusCode::BAD_REQUEST, Notice::error("method", "Choose one of your factors."))
            .await;
    };
    let mut a = a;
    if let Err((status, n)) = prove_factor(&gw, &mut a, &enrolled, &f.proof_method, &f.proof, method.as_str()).await? {
        return account_page(&gw, &a, status, n).await;
    }
    let grant = match confirm::grant(&gw, &a, "/account/factors/remove", "/account").await? {
        Ok(grant) => grant,
        Err(to_confirm) => return Ok(to_confirm),
    };
    factors::remove(&gw.db, a.user.id, method).await?;
    gw.audit(
        AuditEvent::new(AuditKind::FactorRemove, Outcome::Success)
            .actor(a.user.name.clone())
            .user(a.user.name.clone())
            .source(a.source.clone())
            .detail(format!("{method} via web")),
    )
    .await?;
    grant.done(&gw, &Change::FactorRemoved(method)).await?;
    Ok(Redirect::to("/account?ok=removed").into_response())
}
