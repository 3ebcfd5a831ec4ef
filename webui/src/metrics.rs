//! The Prometheus exporter: `GET /metrics` on its own listener (`[metrics] listen`), in the
//! OpenMetrics text format. Separate from the web UI so that it can stay on loopback or a
//! monitoring network while the web UI faces users.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use gatehouse_core::Gateway;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exporter, bound.
pub struct MetricsServer {
    listener: TcpListener,
    app: Router,
}

/// Binds `[metrics] listen`, or returns `None` when the exporter is off.
pub async fn bind(gw: Gateway) -> std::io::Result<Option<MetricsServer>> {
    let Some(addr) = gw.config.metrics.listen else { return Ok(None) };
    let listener = TcpListener::bind(addr).await?;
    let app = Router::new().route("/metrics", get(scrape)).with_state(gw);
    Ok(Some(MetricsServer { listener, app }))
}

async fn scrape(State(gw): State<Gateway>) -> impl IntoResponse {
    ([(CONTENT_TYPE, OPENMETRICS)], gw.scrape().await)
}

impl MetricsServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        axum::serve(self.listener, self.app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
    }
}
