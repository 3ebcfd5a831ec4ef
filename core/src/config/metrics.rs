//! The `[metrics]` table: the Prometheus exporter.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The Prometheus exporter: off unless `listen` is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the `/metrics` endpoint (plain HTTP, no login: keep it on loopback or a
    /// monitoring network), e.g. `127.0.0.1:9187`. None: no exporter.
    pub listen: Option<SocketAddr>,
}
