//! The `[audit]` table: copies of the audit log for a SIEM, besides the database.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Where else every audit event goes. The database stays the record; a copy that cannot
/// be written is logged (and counted), it never stops the action it describes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// A file that every event is appended to as one JSON object per line.
    pub file: Option<PathBuf>,
    /// A syslog receiver for RFC 5424 messages: `udp://HOST:PORT` or `unix:///dev/log`
    /// (a datagram socket).
    pub syslog: Option<String>,
}

impl AuditConfig {
    pub(super) fn validate(&self) -> Result<()> {
        if let Some(s) = &self.syslog {
            let ok = match s.split_once("://") {
                Some(("udp", addr)) => !addr.is_empty(),
                Some(("unix", path)) => path.starts_with('/'),
                _ => false,
            };
            if !ok {
                return Err(Error::Config(format!("audit.syslog: {s:?} is neither udp://HOST:PORT nor unix:///PATH")));
            }
        }
        Ok(())
    }
}
