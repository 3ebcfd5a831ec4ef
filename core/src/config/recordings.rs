//! The `[recordings]` table: how long recordings are kept, what happens when one cannot
//! be written, and (`[recordings.s3]`) the S3-compatible bucket finished ones move to.

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
    /// Finished recordings are uploaded to this bucket and removed from the node's disk.
    pub s3: Option<S3Config>,
}

/// An S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Garage, ...) for finished recordings.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket's name (it must exist).
    pub bucket: String,
    /// The service's URL for a non-AWS store, e.g. `https://minio.example.net:9000`
    /// (path-style requests). `http://` only for a loopback host. Empty: AWS S3.
    #[serde(default)]
    pub endpoint: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Prepended to every object name.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    pub access_key_id: String,
    /// Better set through `GATEHOUSE_RECORDINGS__S3__SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// Seconds one request to the store may take.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_prefix() -> String {
    "recordings/".into()
}

fn default_timeout() -> u64 {
    30
}

impl std::fmt::Debug for S3Config {
    /// Never shows the secret key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &if self.secret_access_key.is_empty() { "" } else { "(set)" })
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

impl S3Config {
    fn validate(&self) -> Result<()> {
        let bad = |key: &str, why: &str| Err(Error::Config(format!("recordings.s3.{key}: {why}")));
        let b = &self.bucket;
        if b.len() < 3
            || b.len() > 63
            || !b.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
        {
            return bad("bucket", "must be a bucket name (3 to 63 of a-z, 0-9, '-', '.')");
        }
        if !self.endpoint.is_empty() {
            let Ok(url) = reqwest::Url::parse(&self.endpoint) else {
                return bad("endpoint", "must be a URL, https://HOST[:PORT]");
            };
            let host = url.host_str().unwrap_or_default();
            if host.is_empty() || url.path() != "/" || url.query().is_some() {
                return bad("endpoint", "must be https://HOST[:PORT], with no path");
            }
            match url.scheme() {
                "https" => {}
                "http" if super::is_loopback_host(host) => {}
                "http" => return bad("endpoint", "http:// is only accepted for a loopback host; use https://"),
                _ => return bad("endpoint", "must start with https://"),
            }
        }
        if self.region.trim().is_empty() {
            return bad("region", "must not be empty");
        }
        if self.prefix.starts_with('/') || self.prefix.split('/').any(|part| part == "." || part == "..") {
            return bad("prefix", "must be a relative object name prefix, without '.' or '..' parts");
        }
        if self.access_key_id.is_empty() || self.secret_access_key.is_empty() {
            return bad("access_key_id", "the access key id and the secret access key must both be set");
        }
        if self.timeout_secs == 0 || self.timeout_secs > 3600 {
            return bad("timeout_secs", "must be from 1 to 3600");
        }
        Ok(())
    }
}

impl Default for RecordingsConfig {
    fn default() -> Self {
        RecordingsConfig { max_age_days: 0, max_total_gb: 0.0, on_failure: OnFailure::Refuse, compress: true, s3: None }
    }
}

impl RecordingsConfig {
    pub(super) fn validate(&self) -> Result<()> {
        if !self.max_total_gb.is_finite() || self.max_total_gb < 0.0 {
            return Err(Error::Config("recordings.max_total_gb: must be 0 (no limit) or more".into()));
        }
        match &self.s3 {
            Some(s3) => s3.validate(),
            None => Ok(()),
        }
    }

    /// The total size limit in bytes, if any.
    pub fn max_total_bytes(&self) -> Option<u64> {
        (self.max_total_gb > 0.0).then_some((self.max_total_gb * 1e9) as u64)
    }
}
