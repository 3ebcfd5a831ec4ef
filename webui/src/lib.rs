//! Gatehouse web UI (axum + askama, server-rendered): served by `gatehouse serve` on the
//! same database as the SSH frontend.
//!
//! # Layout
//!
//! - [`session`]: browser sessions in the database (hashed ids, rotated at every login
//!   step) and the extractors that gate every page: forced password change, forced
//!   enrollment, administrator. Before the login no row is written: the login form's
//!   CSRF token is derived from a cookie ([`session::PRE_LOGIN_COOKIE`]).
//! - [`form`]: form bodies with their CSRF check.
//! - [`render`], [`error`]: page rendering and the one error type.
//! - [`headers`]: the security headers of every response.
//! - [`metrics`]: the Prometheus exporter, on its own listener.
//! - [`tls`]: HTTPS by default (a configured or self-signed certificate, reloaded live).
//! - [`routes`]: one module per page or small group of pages; verification and SQL live in
//!   `gatehouse_core`, never here.

pub mod error;
pub mod form;
pub mod headers;
pub mod metrics;
pub mod render;
pub mod routes;
pub mod session;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use gatehouse_core::Gateway;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::tls::Certificates;

/// Time a client gets to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait to be accepted.
const MAX_HANDSHAKES: usize = 256;

/// The web listener, bound and ready to serve.
pub struct WebServer {
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<Certificates>>,
}

/// Why the web UI could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("binding the web listener: {0}")]
    Bind(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Binds `web_listen` from the config, with its certificate unless `web.tls` is off.
pub async fn bind(gw: Gateway) -> Result<WebServer, StartError> {
    let tls = if gw.config.web.tls_on() { Some(Certificates::load(&gw.config)?) } else { None };
    let listener = TcpListener::bind(gw.config.web_listen).await?;
    Ok(WebServer { listener, app: app(gw), tls })
}

/// The application's routes, with the security headers on every response.
pub fn app(gw: Gateway) -> Router {
    let on_tls = gw.config.web.tls_on();
    routes::router().layer(axum::middleware::map_response(move |r| headers::secure(r, on_tls))).with_state(gw)
}

impl WebServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The certificate served, when on TLS.
    pub fn certificates(&self) -> Option<&Arc<Certificates>> {
        self.tls.as_ref()
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let service = self.app.into_make_service_with_connect_info::<SocketAddr>();
        let stop = shutdown.clone();
        match self.tls {
            None => {
                axum::serve(self.listener, service).with_graceful_shutdown(async move { stop.cancelled().await }).await
            }
            Some(certs) => {
                tokio::spawn(certs.clone().watch(shutdown.clone()));
                let listener = TlsListener::start(self.listener, &certs, shutdown)?.tap_io(|_| {});
                axum::serve(listener, service).with_graceful_shutdown(async move { stop.cancelled().await }).await
            }
        }
    }
}

/// Accepts TCP connections and hands axum the ones whose TLS handshake completed. The
/// handshakes run in their own tasks, so a slow or silent client holds up nobody else.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn start(tcp: TcpListener, certs: &Arc<Certificates>, shutdown: CancellationToken) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(certs.server_config()));
        let (tx, ready) = mpsc::channel(MAX_HANDSHAKES);
        let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else { return };
                let (stream, peer) = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    accepted = tcp.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: wait rather than spin.
                            tracing::warn!(error = %e, "accepting a web connection failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    let _ = stream.set_nodelay(true);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The acceptor stopped (shutdown): nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
