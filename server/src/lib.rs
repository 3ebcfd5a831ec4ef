//! Gatehouse SSH frontend.
//!
//! # Layout
//!
//! - [`gate`]: the two-factor gate as a state machine (no sockets, unit-tested).
//! - `connection`: the per-connection state; `auth` (primary credential, then the gate)
//!   and `channels` (what may open after the gate) add its behaviour.
//! - `handler`: the russh `Handler` impl, which only forwards russh callbacks to the
//!   connection.
//! - `host_keys`: the installation's host keys, shared by every node through the database,
//!   the next ones of a rotation included; [`OpenSshKeys`] makes and reads keys for
//!   `gatehouse hostkey rotate`.
//! - `pending`: the cap on connections that have not logged in yet, per source address
//!   and in total.
//! - [`Server`]: the accept loop, which closes connections over that cap before the SSH
//!   banner, with a deadline for the client's version line and a login deadline for
//!   unauthenticated connections, graceful shutdown, and the watch on the database's
//!   access revision that ends a connection whose login no longer stands (the user
//!   locked, deleted, or no longer satisfying the policy), whichever node made the change.
//!
//! Invariant: before the gate is passed no channel of any kind opens; after it, each
//! channel type is allowed only by explicit policy (`channels`).

mod auth;
mod channels;
mod connection;
mod forward;
pub mod gate;
mod handler;
mod host_keys;
mod input;
mod pending;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::Gateway;
use gatehouse_core::access;
use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};
use russh::server::Config;
use russh::{MethodKind, MethodSet, Preferred};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use connection::Connection;
use pending::{PendingLimits, PendingSlot};

#[doc(hidden)]
pub use connection::split_user;
pub use host_keys::OpenSshKeys;

/// Errors of the SSH frontend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("host key: {0}")]
    HostKey(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error(transparent)]
    Core(#[from] gatehouse_core::Error),
    #[error("ssh: {0}")]
    Ssh(#[from] russh::Error),
}

/// How long shutdown waits for open sessions to close after telling them to.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// At most one log line per this interval about connections closed for the pending cap,
/// so a flood cannot flood the log too.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How often the node reads the access revision (one small query per node, whatever the
/// number of connections): the longest a withdrawn login keeps its connection.
const REVISION_POLL: Duration = Duration::from_secs(1);

/// The SSH listener, bound and ready to run.
pub struct Server {
    gw: Gateway,
    listener: TcpListener,
    config: Arc<Config>,
}

impl Server {
    /// Binds `ssh_listen` and loads (or generates) the host keys.
    pub async fn bind(gw: Gateway) -> Result<Server, Error> {
        let keys = host_keys::load(&gw).await?;
        for k in &keys {
            tracing::info!(algorithm = %k.algorithm(), fingerprint = %k.public_key().fingerprint(Default::default()), "SSH host key");
        }
        let listener = listen(gw.config.ssh_listen)
            .await
            .map_err(|e| Error::Io(format!("binding {}", gw.config.ssh_listen), e))?;
        let config = Config {
            server_id: russh::SshId::Standard(format!("SSH-2.0-Gatehouse_{}", env!("CARGO_PKG_VERSION")).into()),
            methods: MethodSet::from(
                &[MethodKind::PublicKey, MethodKind::Password, MethodKind::KeyboardInteractive][..],
            ),
            // Failures are made to cost the same time by the connection itself (it
            // knows a real failure from a partial success, russh does not).
            auth_rejection_time: Duration::ZERO,
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys,
            preferred: Preferred::DEFAULT,
            max_auth_attempts: 10,
            inactivity_timeout: match gw.config.ssh.idle_timeout_secs {
                0 => None,
                s => Some(Duration::from_secs(s)),
            },
            keepalive_interval: Some(Duration::from_secs(60)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        };
        Ok(Server { gw, listener, config: Arc::new(config) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Accepts connections until `shutdown` is cancelled, then asks every session to
    /// close and waits a few seconds for them.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let tracker = TaskTracker::new();
        let revisions = watch_revision(self.gw.clone(), shutdown.clone());
        // At most `ssh.max_connections` at once, logged in or not; further ones wait in the
        // kernel backlog. Unauthenticated ones are capped far lower (`ssh.max_pending`).
        let slots = Arc::new(tokio::sync::Semaphore::new(self.gw.config.ssh.max_connections as usize));
        let ssh = &self.gw.config.ssh;
        let pending = PendingLimits::new(ssh.max_pending_per_source, ssh.max_pending);
        let mut refusals = RefusalLog::default();
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (socket, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: wait and go on.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            // Decided here, before anything is written: a connection over the cap is closed
            // without a banner and never costs a task.
            let slot = match pending.admit(peer.ip()) {
                Ok(slot) => slot,
                Err(full) => {
                    refusals.note(full, peer);
                    drop(socket);
                    continue;
                }
            };
            let gw = self.gw.clone();
            let config = self.config.clone();
            let stop = shutdown.child_token();
            let revisions = revisions.clone();
            tracker.spawn(async move {
                serve_connection(gw, config, socket, peer, slot, stop, revisions).await;
                drop(permit);
            });
        }
        tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
            tracing::warn!(open = tracker.len(), "sessions still open at shutdown");
        }
        Ok(())
    }
}

/// Connections closed for the pending cap since the last log line about them.
#[derive(Default)]
struct RefusalLog {
    since_last: u64,
    last: Option<tokio::time::Instant>,
}

impl RefusalLog {
    /// Counts a refusal and logs the count at most once per [`REFUSAL_LOG_INTERVAL`].
    fn note(&mut self, full: pending::Full, peer: SocketAddr) {
        self.since_last += 1;
        tracing::debug!(%peer, cap = full.describe(), "too many pending connections; closed");
        let now = tokio::time::Instant::now();
        if self.last.is_none_or(|t| now.duration_since(t) >= REFUSAL_LOG_INTERVAL) {
            tracing::warn!(
                %peer,
                cap = full.describe(),
                closed = self.since_last,
                "too many connections logging in at once; new ones are closed before the banner"
            );
            self.since_last = 0;
            self.last = Some(now);
        }
    }
}

/// Connections the kernel queues before the accept loop takes them (std's default, 128,
/// overflows in a burst of logins: each overflowed client waits a second or more for a
/// retransmitted SYN-ACK).
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` with [`LISTEN_BACKLOG`].
async fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Reads the access revision every [`REVISION_POLL`] and publishes it to the connections.
/// A read that fails is logged and retried; the connections' own channel checks fail
/// closed meanwhile.
fn watch_revision(gw: Gateway, shutdown: CancellationToken) -> tokio::sync::watch::Receiver<i64> {
    let (tx, rx) = tokio::sync::watch::channel(0);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REVISION_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match access::revision(&gw.db).await {
                Ok(r) => {
                    tx.send_if_modified(|seen| std::mem::replace(seen, r) != r);
                }
                Err(e) => tracing::warn!(error = %e, "reading the access revision failed"),
            }
        }
    });
    rx
}

/// Whether the login of a connection still stands; audits and explains when it does not.
/// `None` when the check itself failed (the connection stays; its channels fail closed).
async fn withdrawn(gw: &Gateway, login: &access::Admitted, peer: SocketAddr) -> Option<String> {
    match access::recheck(&gw.db, login).await {
        Ok(Ok(_)) => None,
        Ok(Err(why)) => {
            let ev = AuditEvent::new(AuditKind::SessionEnded, Outcome::Info)
                .actor("gateway")
                .user(login.user_name.clone())
                .source(peer.ip().to_string())
                .detail(format!("SSH connection ended: {why}"));
            if let Err(e) = gw.audit(ev).await {
                tracing::error!(error = %e, "audit write failed");
            }
            tracing::info!(user = %login.user_name, %peer, reason = %why, "login withdrawn; disconnecting");
            Some(format!("Your access was withdrawn ({why})."))
        }
        Err(e) => {
            tracing::warn!(error = %e, "re-checking a live login failed");
            None
        }
    }
}

/// Runs one connection: the SSH session, a deadline for authentication, the re-check of
/// the login whenever access may have been withdrawn, and shutdown.
async fn serve_connection(
    gw: Gateway,
    config: Arc<Config>,
    socket: TcpStream,
    peer: SocketAddr,
    pending: PendingSlot,
    stop: CancellationToken,
    mut revisions: tokio::sync::watch::Receiver<i64>,
) {
    let login_deadline = Duration::from_secs(gw.config.ssh.login_timeout_secs);
    let version_deadline = Duration::from_secs(gw.config.ssh.version_timeout_secs).min(login_deadline);
    // The connection holds the pending slot: it gives it up when the login completes, and
    // it is dropped (slot and all) when the connection ends or runs out of time.
    let conn = Connection::new(gw.clone(), peer, pending);
    let admitted = conn.admitted();
    // russh sets TCP_NODELAY only on sockets it accepts itself; without it every small
    // reply of a login waits for the client's delayed ACK (about 40 ms, three times).
    if let Err(e) = socket.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "could not set TCP_NODELAY");
    }
    revisions.mark_unchanged();
    // `run_stream` returns once the client's version line is read: it is the step a
    // silent connection never finishes.
    // Boxed, like the re-check below: this task lives as long as the connection, and
    // its size is that of the largest future it awaits.
    let setup = Box::pin(russh::server::run_stream(config, socket, conn));
    let session = match tokio::time::timeout(version_deadline, setup).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "connection setup failed");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "no SSH version line in time; closed");
            return;
        }
    };
    let handle = session.handle();
    let mut session = std::pin::pin!(session);
    let deadline = tokio::time::sleep(login_deadline);
    let mut deadline = std::pin::pin!(deadline);
    let mut deadline_armed = true;
    loop {
        tokio::select! {
            r = &mut session => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = &mut deadline, if deadline_armed => {
                deadline_armed = false;
                if admitted.get().is_none() {
                    tracing::info!(%peer, "login not completed in time; disconnecting");
                    let _ = handle
                        .disconnect(russh::Disconnect::ByApplication, "Login timed out.".into(), "en".into())
                        .await;
                }
            }
            // Not guarded by "authenticated": a guard is read only when the select starts,
            // and the login completes while it waits. A change before the login completes
            // needs no re-check (the login itself reads the state after it).
            Ok(()) = revisions.changed() => {
                let Some(login) = admitted.get() else { continue };
                if let Some(message) = Box::pin(withdrawn(&gw, login, peer)).await {
                    let _ = handle.disconnect(russh::Disconnect::ByApplication, message, "en".into()).await;
                    let _ = tokio::time::timeout(Duration::from_secs(2), &mut session).await;
                    return;
                }
            }
            _ = stop.cancelled() => {
                let _ = handle
                    .disconnect(russh::Disconnect::ByApplication, "The gateway is shutting down.".into(), "en".into())
                    .await;
                // Give the session a moment to flush, then drop it.
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut session).await;
                return;
            }
        }
    }
}
