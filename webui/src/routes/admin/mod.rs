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
use gatehouse_core::audit::{AuditEvent, Outcome};

use crate::error::WebResult;
use crate::session::Authed;

/// Records an administrator's change.
pub async fn audit_change(
    gw: &Gateway,
    admin: &Authed,
    event: &str,
    user: Option<&str>,
    detail: String,
) -> WebResult<()> {
    let mut ev = AuditEvent::new(event, Outcome::Success)
        .actor(admin.user.name.clone())
        .source(admin.source.clone())
        .detail(detail);
    if let Some(u) = user {
        ev = ev.user(u.to_string());
    }
    tracing::info!(admin = %admin.user.name, event, "administrative change");
    Ok(gw.audit(ev).await?)
}

/// `on` / `off` from a toggle form.
pub fn switch(value: &str) -> Option<bool> {
    match value {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}
