//! Administration pages. Every handler takes the [`crate::session::Admin`] extractor,
//! which re-reads the user's administrator flag from the database on each request, and
//! every change is audited with the administrator as actor.

pub mod audit;
pub mod groups;
pub mod health;
pub mod policy;
pub mod sessions;
pub mod targets;
pub mod users;

use gatehouse_core::Gateway;
use gatehouse_core::admin::Actor;
use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};

use crate::error::WebResult;
use crate::session::Authed;

/// The logged-in administrator as the actor of an administrative action in core.
pub fn actor(admin: &Authed) -> Actor {
    Actor::Admin { name: admin.user.name.clone(), source: admin.source.clone() }
}

/// Records a check an administrator ran from the health page (a test request, a test
/// mail): not a change, so not one of `core::admin`'s actions.
pub async fn audit_check(gw: &Gateway, admin: &Authed, kind: AuditKind, detail: String) -> WebResult<()> {
    let ev =
        AuditEvent::new(kind, Outcome::Info).actor(admin.user.name.clone()).source(admin.source.clone()).detail(detail);
    Ok(gw.audit(ev).await?)
}

/// `on` / `off` from a toggle form.
pub fn switch(value: &str) -> WebResult<bool> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(crate::error::WebError::BadRequest("on must be 'on' or 'off'.".into())),
    }
}
