//! Gatehouse web UI (axum): served by `gatehouse serve` on the same database as the SSH
//! frontend.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use gatehouse_core::Gateway;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The web listener, bound and ready to serve.
pub struct WebServer {
    listener: TcpListener,
    app: Router,
}

/// Binds `web_listen` from the config.
pub async fn bind(gw: Gateway) -> std::io::Result<WebServer> {
    let listener = TcpListener::bind(gw.config.web_listen).await?;
    Ok(WebServer { listener, app: app(gw) })
}

/// The application's routes.
pub fn app(gw: Gateway) -> Router {
    Router::new().route("/healthz", get(|| async { "ok\n" })).with_state(gw)
}

impl WebServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        axum::serve(self.listener, self.app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }
}
