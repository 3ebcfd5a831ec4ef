//! The gateway as an SSH client of a target: connect, check the host key against the pin
//! (or pin it on first use), and log in with the credential the gateway holds.
//!
//! The russh handler only observes the presented key and applies [`host_key::verify`];
//! recording a first-use key happens after the handshake and before authentication, so a
//! credential is never sent to a host whose key contradicts the pin.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_core::Gateway;
use gatehouse_core::access::Granted;
use gatehouse_core::targets::{self, CredentialKind, Target};
use russh::client::{self, ChannelOpenHandle, KeyboardInteractiveAuthResponse, Msg};
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelOpenFailure, Disconnect, MethodKind, Preferred, cipher};

use crate::AgentOpener;
use crate::error::ShellError;
use crate::host_key::{self, Verdict};

/// How long reaching a target and finishing the handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// What the handler saw during the handshake.
#[derive(Debug, Default)]
struct Seen {
    key: Option<PublicKey>,
    certificate: bool,
}

/// The russh client handler: compares the presented host key with the pin.
pub struct Pinning {
    pinned: Option<String>,
    seen: Arc<Mutex<Seen>>,
    /// The user's agent, if this connection forwards it.
    agent: Option<Arc<dyn AgentOpener>>,
}

impl client::Handler for Pinning {
    type Error = russh::Error;

    async fn check_server_key(&mut self, presented: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let mut seen = match self.seen.lock() {
            Ok(seen) => seen,
            Err(poisoned) => poisoned.into_inner(),
        };
        match presented {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                seen.key = Some(key.clone());
                Ok(!matches!(host_key::verify(self.pinned.as_deref(), key), Verdict::Mismatch { .. }))
            }
            PublicKeyOrCertificate::Certificate(_) => {
                seen.certificate = true;
                Ok(false)
            }
        }
    }

    // A target may not open channels towards the gateway: russh would accept them by
    // default. The gateway asks for no forwarding, agent or X11, so any such request is
    // refused (and a compromised target gains nothing by trying).

    async fn server_channel_open_session(
        &mut self,
        _: Channel<Msg>,
        reply: ChannelOpenHandle,
        _: &mut client::Session,
    ) -> Result<(), Self::Error> {
        refuse(reply, "session").await
    }

    /// The target's side of agent forwarding: allowed only when the user forwards their
    /// agent to this session; bridged to a new agent channel on the user's connection.
    async fn server_channel_open_agent_forward(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let Some(agent) = self.agent.clone() else {
            return refuse(reply, "agent").await;
        };
        reply.accept().await;
        tokio::spawn(async move {
            let Some(mut user_side) = agent.open().await else {
                return;
            };
            let mut target_side = channel.into_stream();
            let _ = tokio::io::copy_bidirectional(&mut target_side, &mut user_side).await;
        });
        Ok(())
    }

    async fn server_channel_open_x11(
        &mut self,
        _: Channel<Msg>,
        _: &str,
        _: u32,
        reply: ChannelOpenHandle,
        _: &mut client::Session,
    ) -> Result<(), Self::Error> {
        refuse(reply, "x11").await
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        _: Channel<Msg>,
        _: &str,
        _: u32,
        _: &str,
        _: u32,
        reply: ChannelOpenHandle,
        _: &mut client::Session,
    ) -> Result<(), Self::Error> {
        refuse(reply, "forwarded-tcpip").await
    }

    async fn server_channel_open_direct_tcpip(
        &mut self,
        _: Channel<Msg>,
        _: &str,
        _: u32,
        _: &str,
        _: u32,
        reply: ChannelOpenHandle,
        _: &mut client::Session,
    ) -> Result<(), Self::Error> {
        refuse(reply, "direct-tcpip").await
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        _: Channel<Msg>,
        _: &str,
        reply: ChannelOpenHandle,
        _: &mut client::Session,
    ) -> Result<(), Self::Error> {
        refuse(reply, "forwarded-streamlocal").await
    }

    async fn server_channel_open_direct_streamlocal(
        &mut self,
        _: Channel<Msg>,
        _: &str,
        reply: ChannelOpenHandle,
        _: &mut client::Session,
    ) -> Result<(), Self::Error> {
        refuse(reply, "direct-streamlocal").await
    }
}

async fn refuse(reply: ChannelOpenHandle, kind: &str) -> Result<(), russh::Error> {
    tracing::warn!(channel = kind, "a target tried to open a channel to the gateway; refused");
    reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
    Ok(())
}

/// An authenticated connection to a target.
pub struct Connection {
    pub handle: client::Handle<Pinning>,
    /// Fingerprint of the key pinned by this connection (trust on first use), if any.
    pub pinned_now: Option<String>,
}

impl Connection {
    /// Ends the SSH connection politely.
    pub async fn close(self) {
        let _ = self.handle.disconnect(Disconnect::ByApplication, "session ended", "en").await;
    }
}

/// The ciphers the gateway asks targets for, in its order of preference (as the client of
/// this leg, its first choice the target supports is used). AES-256-GCM first: as strong
/// as ChaCha20-Poly1305, and with AES-NI several times cheaper per byte for the gateway
/// and the target's sshd alike, which is most of the cost of a file copy. The user's leg
/// keeps the user's client's choice.
const TARGET_CIPHERS: &[cipher::Name] = &[
    cipher::AES_256_GCM,
    cipher::AES_128_GCM,
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_CTR,
    cipher::AES_192_CTR,
    cipher::AES_128_CTR,
];

fn client_config() -> client::Config {
    client::Config {
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 3,
        nodelay: true,
        preferred: Preferred { cipher: Cow::Borrowed(TARGET_CIPHERS), ..Preferred::DEFAULT },
        ..Default::default()
    }
}

/// Connects to `target`, verifies or pins its host key, and authenticates. `agent` is the
/// user's forwarded agent, offered to the target when it asks.
///
/// Takes the proof that the target is granted to a login that still stands: no path to a
/// target can skip that check.
pub async fn connect(
    gw: &Gateway,
    granted: &Granted,
    agent: Option<Arc<dyn AgentOpener>>,
) -> Result<Connection, ShellError> {
    let target = granted.target();
    let address = format!("{}:{}", target.host, target.port);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let handler = Pinning { pinned: target.host_key.clone(), seen: seen.clone(), agent };
    let host = target.host.trim_start_matches('[').trim_end_matches(']').to_string();
    let attempt = tokio::time::timeout(
        CONNECT_TIMEOUT,
        client::connect(Arc::new(client_config()), (host.as_str(), target.port), handler),
    )
    .await;
    let (seen_key, certificate) = {
        let s = match seen.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        (s.key.clone(), s.certificate)
    };
    let mut handle = match attempt {
        Err(_) => {
            return Err(ShellError::Unreachable { address, reason: "timed out".into() });
        }
        Ok(Err(e)) => {
            if let Some(key) = &seen_key
                && let Verdict::Mismatch { pinned, presented } = host_key::verify(target.host_key.as_deref(), key)
            {
                return Err(ShellError::HostKeyMismatch { target: target.name.clone(), pinned, presented });
            }
            if certificate {
                return Err(ShellError::HostCertificate { target: target.name.clone() });
            }
            return Err(ShellError::Unreachable { address, reason: e.to_string() });
        }
        Ok(Ok(handle)) => handle,
    };

    let mut pinned_now = None;
    if target.host_key.is_none() {
        let Some(key) = seen_key else {
            return Err(ShellError::Unreachable { address, reason: "no host key was presented".into() });
        };
        let line = host_key::to_line(&key).ok_or_else(|| ShellError::Unreachable {
            address: address.clone(),
            reason: "unreadable host key".into(),
        })?;
        if targets::pin_first_use(&gw.db, target.id, &line).await? {
            pinned_now = Some(host_key::fingerprint(&key));
        } else {
            // Another session pinned a key in the meantime: it must be this one.
            let fresh = targets::get(&gw.db, &target.name).await?;
            if let Verdict::Mismatch { pinned, presented } = host_key::verify(fresh.host_key.as_deref(), &key) {
                let _ = handle.disconnect(Disconnect::HostKeyNotVerifiable, "", "en").await;
                return Err(ShellError::HostKeyMismatch { target: target.name.clone(), pinned, presented });
            }
        }
    }

    if let Err(e) = authenticate(&mut handle, gw, target).await {
        let _ = handle.disconnect(Disconnect::ByApplication, "", "en").await;
        return Err(e);
    }
    Ok(Connection { handle, pinned_now })
}

async fn authenticate(handle: &mut client::Handle<Pinning>, gw: &Gateway, target: &Target) -> Result<(), ShellError> {
    let ssh = |source| ShellError::Ssh { target: target.name.clone(), source };
    let rejected = || ShellError::AuthRejected { target: target.name.clone(), user: target.username.clone() };
    let credential = target
        .credential(&gw.vault)
        .map_err(|e| ShellError::Credential { target: target.name.clone(), reason: e.to_string() })?;
    match target.credential_kind {
        CredentialKind::Key => {
            let key = russh::keys::decode_secret_key(&credential, None)
                .map_err(|e| ShellError::Credential { target: target.name.clone(), reason: e.to_string() })?;
            let hash = handle.best_supported_rsa_hash().await.map_err(ssh)?.flatten();
            let result = handle
                .authenticate_publickey(target.username.clone(), PrivateKeyWithHashAlg::new(Arc::new(key), hash))
                .await
                .map_err(ssh)?;
            if result.success() { Ok(()) } else { Err(rejected()) }
        }
        CredentialKind::Password => {
            let result =
                handle.authenticate_password(target.username.clone(), credential.as_str()).await.map_err(ssh)?;
            let remaining = match result {
                russh::client::AuthResult::Success => return Ok(()),
                russh::client::AuthResult::Failure { remaining_methods, .. } => remaining_methods,
            };
            if !remaining.contains(&MethodKind::KeyboardInteractive) {
                return Err(rejected());
            }
            // Servers that take passwords only through keyboard-interactive (PAM): answer
            // every hidden prompt with the password, a bounded number of rounds.
            let mut reply = handle
                .authenticate_keyboard_interactive_start(target.username.clone(), None::<String>)
                .await
                .map_err(ssh)?;
            for _ in 0..4 {
                match reply {
                    KeyboardInteractiveAuthResponse::Success => return Ok(()),
                    KeyboardInteractiveAuthResponse::Failure { .. } => return Err(rejected()),
                    KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                        let answers = prompts
                            .iter()
                            .map(|p| if p.echo { String::new() } else { credential.to_string() })
                            .collect();
                        reply = handle.authenticate_keyboard_interactive_respond(answers).await.map_err(ssh)?;
                    }
                }
            }
            Err(rejected())
        }
    }
}
