//! The `[recordings]` table: how long recordings are kept, and what happens when one
//! cannot be written.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What a session does when its recording cannot be written (disk full, folder gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// No new session starts, and a running one ends (the default): no unrecorded session.
    Refuse,
    /// The session goes on unrecorded; the failure is audited (`recording.failed`).
    Continue,
}

/// Recording retention and failure policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingsConfig {
    /// Finished recordings older than this many days are deleted (0: kept forever).
    pub max_age_days: u64,
    /// The oldest finished recordings of this node are deleted while all of them together
    /// take more than this many gigabytes (0: no limit; fractions allowed).
    pub max_total_gb: f64,
    /// `refuse` (default) or `continue`.
    pub on_failure: OnFailure,
    /// Finished recordings are gzipped (`.cast.gz`; the web player reads them as they are,
    /// `asciinema play` after `gunzip`).
    pub compress: bool,
}

impl Default for RecordingsConfig {
    fn default() -> Self {
        RecordingsConfig { max_age_days: 0, max_total_gb: 0.0, on_failure: OnFailure::Refuse, compress: true }
    }
}

impl RecordingsConfig {
    pub(super) fn validate(&self) -> Result<()> {
        if !self.max_total_gb.is_finite() || self.max_total_gb < 0.0 {
            return Err(Error::Config("recordings.max_total_gb: must be 0 (no limit) or more".into()));
        }
        Ok(())
    }

    /// The total size limit in bytes, if any.
    pub fn max_total_bytes(&self) -> Option<u64> {
        (self.max_total_gb > 0.0).then_some((self.max_total_gb * 1e9) as u64)
    }
}
