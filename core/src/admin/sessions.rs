//! Live target sessions an administrator ends.

use super::{Actor, record};
use crate::audit::AuditKind;
use crate::{Gateway, Result, live_sessions};

/// Asks the node running live session `id` to end it. False when no such session is live.
pub async fn terminate(gw: &Gateway, by: &Actor, id: i64) -> Result<bool> {
    if !live_sessions::request_terminate(&gw.db, id).await? {
        return Ok(false);
    }
    record(gw, by, AuditKind::SessionTerminate, None, format!("live session {id}: termination requested")).await?;
    Ok(true)
}
