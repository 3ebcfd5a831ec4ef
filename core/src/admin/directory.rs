//! The directory (`[ldap]`): an administrator's test bind and a sync on demand.

use super::{Actor, record};
use crate::audit::AuditKind;
use crate::directory::{self, SyncReport};
use crate::{Error, Gateway, Result};

/// Binds as the search account and reads the user base; the answer is shown, recorded for
/// the health page, and audited.
pub async fn test(gw: &Gateway, by: &Actor) -> Result<String> {
    let result = directory::test(gw).await;
    record(gw, by, AuditKind::HealthDirectoryTest, None, format!("directory test bind: {result}")).await?;
    Ok(result)
}

/// Asks the directory about every directory user now (the scheduled sync, at once). The
/// sync audits what it did; this records who asked.
pub async fn sync(gw: &Gateway, by: &Actor) -> Result<SyncReport> {
    if gw.directory.is_none() {
        return Err(Error::Refused("no directory is configured ([ldap] urls)".into()));
    }
    if !gw.config.ldap.searches() {
        return Err(Error::Refused("the sync needs a search account (ldap.bind_dn)".into()));
    }
    tracing::info!(actor = %by.name(), "directory sync asked for");
    directory::sync(gw).await
}
