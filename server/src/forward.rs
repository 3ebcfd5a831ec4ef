//! `ssh -J`: direct-tcpip channels to a granted target's address. The grant and the
//! login are checked when the channel opens; the tunnel is a live session like any other,
//! listed on every node and ended by an administrator or a lock through its row.

use gatehouse_core::Gateway;
use gatehouse_core::access::{self, Refusal, Wanted};
use gatehouse_core::audit::{AuditKind, Outcome};
use gatehouse_core::live_sessions::{self, NewLiveSession};
use russh::server::{ChannelOpenHandle, Msg};
use russh::{Channel, ChannelOpenFailure};

use crate::channels::audit;
use crate::connection::Connection;

/// Copy buffer per direction of a `-J` tunnel.
const FORWARD_BUFFER: usize = 64 * 1024;

impl Connection {
    /// `ssh -J`: a TCP connection from the gateway to a granted target's address.
    pub async fn direct_tcpip(&mut self, channel: Channel<Msg>, host: &str, port: u32, reply: ChannelOpenHandle) {
        let Some(visitor) = self.visitor.clone() else {
            reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
            return;
        };
        let detail = format!("{host}:{port}");
        let refused = match access::granted(&self.gw.db, &visitor.login, Wanted::Address { host, port }).await {
            Ok(Ok(granted)) => Ok(granted),
            Ok(Err(Refusal::Withdrawn(why))) => Err(format!("{detail}: login no longer stands ({why})")),
            Ok(Err(_)) => Err(format!("{detail} not granted")),
            Err(e) => {
                tracing::error!(error = %e, "grant lookup failed; refusing forwarding");
                Err(format!("{detail}: grant lookup failed"))
            }
        };
        let target = match refused {
            Ok(granted) => granted.target().clone(),
            Err(why) => {
                self.audit_channel(&visitor, AuditKind::ForwardDirect, Outcome::Failure, why).await;
                reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
                return;
            }
        };
        let stream = match tokio::net::TcpStream::connect((target.host.as_str(), target.port)).await {
            Ok(s) => s,
            Err(e) => {
                self.audit_channel(&visitor, AuditKind::ForwardDirect, Outcome::Failure, format!("{detail}: {e}"))
                    .await;
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        self.audit_channel(&visitor, AuditKind::ForwardDirect, Outcome::Success, format!("{} ({detail})", target.name))
            .await;
        // A live session like any other: listed on every node, and ended by an
        // administrator (or a lock) through its row.
        let live = NewLiveSession {
            node: &self.gw.config.node_name(),
            user_name: &visitor.user.name,
            target_name: &target.name,
            source: &visitor.source,
            kind: "forward",
            recording_id: None,
        };
        let live_id = match live_sessions::register(&self.gw.db, &live).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "could not register the forward; refusing it");
                reply.reject(ChannelOpenFailure::ResourceShortage).await;
                return;
            }
        };
        reply.accept().await;
        let (gw, target_name) = (self.gw.clone(), target.name.clone());
        tokio::spawn(async move {
            let ended = tunnel(&gw, live_id, channel, stream).await;
            if let Err(e) = live_sessions::end(&gw.db, live_id).await {
                tracing::warn!(session = live_id, error = %e, "could not remove the live session");
            }
            let outcome = if ended == "ended by an administrator" { Outcome::Info } else { Outcome::Success };
            audit(&gw, &visitor, AuditKind::TargetDisconnect, outcome, format!("{target_name}: forward {ended}")).await;
        });
    }
}

/// Copies a `-J` tunnel both ways until either side closes or an administrator ends its
/// live session (polled like the target sessions of the shell). Says how it ended.
async fn tunnel(gw: &Gateway, live_id: i64, channel: Channel<Msg>, stream: tokio::net::TcpStream) -> &'static str {
    let mut ssh_side = channel.into_stream();
    let mut tcp_side = stream;
    // Buffers of at least one full SSH packet (32 KiB): the default 8 KiB would cut every
    // packet of the tunnelled connection into four.
    let copy = tokio::io::copy_bidirectional_with_sizes(&mut ssh_side, &mut tcp_side, FORWARD_BUFFER, FORWARD_BUFFER);
    tokio::pin!(copy);
    let mut tick = tokio::time::interval(gatehouse_shell::proxy::POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut copy => return "closed",
            _ = tick.tick() => {
                if let Err(e) = live_sessions::heartbeat(&gw.db, live_id).await {
                    tracing::warn!(session = live_id, error = %e, "live session heartbeat failed");
                }
                if let Ok(true) = live_sessions::terminate_requested(&gw.db, live_id).await {
                    return "ended by an administrator";
                }
            }
        }
    }
}
