//! Periodic upkeep of the shared database. Every node runs it; a round is safe to run on
//! several nodes at once, and never holds a row a login is waiting on.

use std::time::Duration;

use crate::{Gateway, directory, lockout, recordings};

/// How often a node runs a round.
pub const EVERY: Duration = Duration::from_secs(60);

/// One round: removes lockout rows of no further use, moves finished recordings still on
/// this node's disk to the bucket (when there is one) and applies the recordings'
/// retention limits; when its interval has passed, one node syncs the directory users
/// (`[ldap] sync_interval_secs`). A failure is logged and left for the next round; nothing here
/// decides a login.
pub async fn round(gw: &Gateway) {
    match lockout::sweep(&gw.db, &gw.config.lockout).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(rows = n, "removed old lockout rows"),
        Err(e) => tracing::warn!(error = %e, "removing old lockout rows failed"),
    }
    match recordings::upload_pending(gw).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(recordings = n, "recordings moved to the bucket"),
        Err(e) => tracing::warn!(error = %e, "moving recordings to the bucket failed; trying again next round"),
    }
    if let Err(e) = recordings::retention::prune(gw).await {
        tracing::warn!(error = %e, "applying the recordings' retention failed");
    }
    match directory::sync_if_due(gw).await {
        Ok(None) => {}
        Ok(Some(r)) => {
            tracing::info!(checked = r.checked, disabled = r.disabled, enabled = r.enabled, "directory synced")
        }
        Err(e) => tracing::warn!(error = %e, "the directory sync failed; trying again next interval"),
    }
}
