//! Gatehouse web UI (axum + askama, server-rendered): served by `gatehouse serve` on the
//! same database as the SSH frontend.
//!
//! # Layout
//!
//! - [`session`]: browser sessions in the database (hashed ids, rotated at every login
//!   step) and the extractors that gate every page: forced password change, forced
//!   enrollment, administrator.
//! - [`form`]: form bodies with their CSRF check.
//! - [`render`], [`error`]: page rendering and the one error type.
//! - [`routes`]: one module per page or small group of pages; verification and SQL live in
//!   `gatehouse_core`, never here.

pub mod error;
pub mod form;
pub mod render;
pub mod routes;
pub mod session;

use std::net::SocketAddr;

use axum::Router;
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
    routes::router().with_state(gw)
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
