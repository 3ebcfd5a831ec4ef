//! Every administrative action, once. The command line and the admin pages call these
//! and nothing else: each function checks what must be checked, applies every side effect
//! (a lock also ends the user's web sessions, live connections and target sessions, on
//! every node), and writes exactly one audit event, of a typed kind, with the acting
//! administrator. A front end only turns input into a call and the result into output.
//!
//! One module per aggregate: [`users`], [`groups`], [`policy`], [`targets`],
//! [`sessions`], [`host_keys`], and [`directory`].

pub mod directory;
pub mod groups;
pub mod host_keys;
pub mod policy;
pub mod sessions;
pub mod targets;
pub mod users;

use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::{Gateway, Result};

/// Who carries out an administrative action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An administrator logged in to the web UI, from this address.
    Admin { name: String, source: String },
    /// The command line on the gateway host (whoever can read the data directory).
    Cli,
    /// The first start of an empty installation.
    Bootstrap,
}

impl Actor {
    /// The actor's name in the audit log.
    pub fn name(&self) -> &str {
        match self {
            Actor::Admin { name, .. } => name,
            Actor::Cli => "cli",
            Actor::Bootstrap => "bootstrap",
        }
    }

    /// Whether the actor is the user called `user` (an administrator acting on their own
    /// account, which some actions forbid).
    pub fn is(&self, user: &str) -> bool {
        matches!(self, Actor::Admin { name, .. } if name == user)
    }
}

/// Writes the one audit event of an administrative action.
pub(crate) async fn record(
    gw: &Gateway,
    by: &Actor,
    kind: AuditKind,
    user: Option<&str>,
    detail: String,
) -> Result<()> {
    let mut ev = AuditEvent::new(kind, Outcome::Success).actor(by.name()).detail(detail);
    if let Actor::Admin { source, .. } = by {
        ev = ev.source(source.clone());
    }
    if let Some(u) = user {
        ev = ev.user(u);
    }
    tracing::info!(actor = %by.name(), event = %kind, "administrative change");
    gw.audit(ev).await
}

/// `on` or `off`, as the audit detail of a switch says it.
pub(crate) fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}
