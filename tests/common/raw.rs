//! An SSH client in the harness that does what OpenSSH will not: any bytes as the user
//! name, keyboard-interactive answers of the test's choosing, many logins held at one
//! prompt and released at once, channels opened on a connection the test keeps, and
//! thousands of logins from one process (`benches/load/`). Built on russh's client;
//! every step returns what the server said, never panics on a refusal. The `try_` steps
//! also return transport errors instead of panicking, for callers that count them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use russh::client::{self, AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, MethodKind};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

/// Accepts any host key: the gateway under test is on loopback.
pub struct AnyHost;

impl client::Handler for AnyHost {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// What the server answered to one authentication step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Logged in.
    Success,
    /// Refused; `partial` when the step passed but more is required, `kbd` when
    /// keyboard-interactive is offered next.
    Failure { partial: bool, kbd: bool },
    /// A keyboard-interactive round: the instructions and the prompts.
    Info { instructions: String, prompts: Vec<String> },
}

impl Step {
    fn from_kbd(r: KeyboardInteractiveAuthResponse) -> Step {
        match r {
            KeyboardInteractiveAuthResponse::Success => Step::Success,
            KeyboardInteractiveAuthResponse::Failure { remaining_methods, partial_success } => Step::Failure {
                partial: partial_success,
                kbd: remaining_methods.contains(&MethodKind::KeyboardInteractive),
            },
            KeyboardInteractiveAuthResponse::InfoRequest { instructions, prompts, .. } => {
                Step::Info { instructions, prompts: prompts.into_iter().map(|p| p.prompt).collect() }
            }
        }
    }

    fn from_auth(r: AuthResult) -> Step {
        match r {
            AuthResult::Success => Step::Success,
            AuthResult::Failure { remaining_methods, partial_success } => Step::Failure {
                partial: partial_success,
                kbd: remaining_methods.contains(&MethodKind::KeyboardInteractive),
            },
        }
    }

    /// The first prompt of a keyboard-interactive round, if this is one.
    pub fn prompt(&self) -> Option<&str> {
        match self {
            Step::Info { prompts, .. } => prompts.first().map(String::as_str),
            _ => None,
        }
    }
}

/// Why [`RawClient::try_connect`] got no SSH session.
#[derive(Debug)]
pub enum ConnectError {
    /// The server accepted the TCP connection and closed it without sending its version
    /// line: what the gateway does to a connection over its cap on pending logins, and
    /// OpenSSH's sshd over `MaxStartups`. Holds what the server wrote instead (sshd:
    /// "Exceeded MaxStartups"), or when it wrote nothing, how the connection ended.
    NoBanner(String),
    /// Anything else: no TCP connection, a reset, a failed key exchange.
    Failed(String),
}

/// One raw connection to the gateway.
pub struct RawClient {
    pub handle: Handle<AnyHost>,
    user: String,
}

impl RawClient {
    /// Connects to `127.0.0.1:port` as `user` (any string, control characters included).
    pub async fn connect(port: u16, user: &str) -> RawClient {
        let config =
            Arc::new(client::Config { inactivity_timeout: Some(Duration::from_secs(120)), ..Default::default() });
        tokio::time::timeout(Duration::from_secs(20), RawClient::try_connect(port, user, None, config))
            .await
            .expect("SSH handshake timed out")
            .unwrap_or_else(|e| panic!("SSH handshake failed: {e:?}"))
    }

    /// Connects to `127.0.0.1:port` as `user` from the local address `from` (any address of
    /// 127.0.0.0/8; `None`: 127.0.0.1) with `config`, up to the end of the key exchange.
    /// Sends its version line at once, as OpenSSH's client does, and watches the first
    /// bytes the server sends, so a connection that ends before the server's version line
    /// is told apart from any other failure. No timeout of its own.
    pub async fn try_connect(
        port: u16,
        user: &str,
        from: Option<IpAddr>,
        config: Arc<client::Config>,
    ) -> Result<RawClient, ConnectError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| ConnectError::Failed(format!("{what}: {e}"));
        let socket = TcpSocket::new_v4().map_err(|e| failed("socket", &e))?;
        if let Some(ip) = from {
            socket.bind(SocketAddr::new(ip, 0)).map_err(|e| failed("bind", &e))?;
        }
        let stream = socket
            .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await
            .map_err(|e| failed("TCP connect", &e))?;
        stream.set_nodelay(config.nodelay).map_err(|e| failed("TCP_NODELAY", &e))?;
        let first = Arc::new(Mutex::new(Vec::new()));
        let stream = Watched { inner: stream, first: first.clone(), done: false };
        match client::connect_stream(config, stream, AnyHost).await {
            Ok(handle) => Ok(RawClient { handle, user: user.to_string() }),
            Err(e) => {
                let first = first.lock().map(|f| f.clone()).unwrap_or_default();
                let text = String::from_utf8_lossy(&first);
                if text.contains("SSH-") {
                    Err(failed("handshake", &e))
                } else {
                    // Closed or reset without a version line; sshd says why first.
                    let said = text.trim();
                    Err(ConnectError::NoBanner(if said.is_empty() { e.to_string() } else { said.to_string() }))
                }
            }
        }
    }

    /// The `password` method.
    pub async fn password(&mut self, password: &str) -> Step {
        Step::from_auth(self.handle.authenticate_password(self.user.clone(), password).await.expect("password request"))
    }

    /// The `publickey` method with `key` (signed, not only offered).
    pub async fn try_publickey(&mut self, key: Arc<PrivateKey>) -> Result<Step, russh::Error> {
        let key = PrivateKeyWithHashAlg::new(key, None);
        Ok(Step::from_auth(self.handle.authenticate_publickey(self.user.clone(), key).await?))
    }

    /// Starts a keyboard-interactive exchange.
    pub async fn kbd_start(&mut self) -> Step {
        self.try_kbd_start().await.expect("kbd-int start")
    }

    /// Like [`RawClient::kbd_start`], with transport errors returned.
    pub async fn try_kbd_start(&mut self) -> Result<Step, russh::Error> {
        Ok(Step::from_kbd(
            self.handle.authenticate_keyboard_interactive_start(self.user.clone(), None::<String>).await?,
        ))
    }

    /// Answers the current keyboard-interactive round.
    pub async fn kbd_answer(&mut self, answers: &[&str]) -> Step {
        self.try_kbd_answer(answers).await.expect("kbd-int answer")
    }

    /// Like [`RawClient::kbd_answer`], with transport errors returned.
    pub async fn try_kbd_answer(&mut self, answers: &[&str]) -> Result<Step, russh::Error> {
        let answers = answers.iter().map(|s| s.to_string()).collect();
        Ok(Step::from_kbd(self.handle.authenticate_keyboard_interactive_respond(answers).await?))
    }

    /// Password, then keyboard-interactive up to the first second-factor prompt.
    pub async fn reach_gate(&mut self, password: &str) -> Step {
        let first = self.password(password).await;
        assert_eq!(first, Step::Failure { partial: true, kbd: true }, "the password should lead to the gate");
        self.kbd_start().await
    }

    /// Opens a session channel and runs `command`; returns (exit status, stdout) or `None`
    /// when the gateway refused the channel or the request.
    pub async fn exec(&self, command: &str) -> Option<(Option<u32>, String)> {
        let mut channel = self.handle.channel_open_session().await.ok()?;
        channel.exec(true, command.as_bytes()).await.ok()?;
        let mut out = Vec::new();
        let mut status = None;
        let mut confirmed = false;
        let read = async {
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Success => confirmed = true,
                    ChannelMsg::Failure => return false,
                    ChannelMsg::Data { data } => out.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                    _ => {}
                }
            }
            true
        };
        let finished = tokio::time::timeout(Duration::from_secs(60), read).await.unwrap_or(false);
        if !finished || !confirmed {
            return None;
        }
        Some((status, String::from_utf8_lossy(&out).into_owned()))
    }

    /// Opens a session channel, asks for a shell (no PTY) and returns the first bytes it
    /// prints (the gateway's menu; `None`: the channel or the shell was refused, or the
    /// channel closed before printing anything). Then sends EOF, which ends the menu, and
    /// waits for the channel to close.
    pub async fn shell_greeting(&self) -> Option<Vec<u8>> {
        let mut channel = self.handle.channel_open_session().await.ok()?;
        channel.request_shell(true).await.ok()?;
        let mut first = None;
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Failure => return None,
                ChannelMsg::Data { data } if !data.is_empty() => {
                    first = Some(data.to_vec());
                    break;
                }
                _ => {}
            }
        }
        let first = first?;
        let _ = channel.eof().await;
        while channel.wait().await.is_some() {}
        Some(first)
    }

    /// Opens a session channel with a terminal (80x24) and a shell, waits for the first
    /// output (the gateway's menu) and returns the channel, still open: an idle session
    /// sitting at the menu for as long as the caller keeps it.
    pub async fn idle_shell(&self) -> Option<russh::Channel<client::Msg>> {
        let mut channel = self.handle.channel_open_session().await.ok()?;
        channel.request_pty(true, "xterm", 80, 24, 0, 0, &[]).await.ok()?;
        channel.request_shell(true).await.ok()?;
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Failure => return None,
                ChannelMsg::Data { data } if !data.is_empty() => return Some(channel),
                _ => {}
            }
        }
        None
    }

    /// Opens a session channel with the `sftp` subsystem, sends SSH_FXP_INIT and returns
    /// the protocol version of the server's SSH_FXP_VERSION (`None`: refused, or no such
    /// answer), then closes the channel. A session that starts no shell: OpenSSH's
    /// `internal-sftp` runs inside sshd.
    pub async fn sftp_version(&self) -> Option<u32> {
        let mut channel = self.handle.channel_open_session().await.ok()?;
        channel.request_subsystem(true, "sftp").await.ok()?;
        // uint32 length 5, byte SSH_FXP_INIT (1), uint32 version 3.
        channel.data(&[0u8, 0, 0, 5, 1, 0, 0, 0, 3][..]).await.ok()?;
        let mut got = Vec::new();
        while got.len() < 9 {
            match channel.wait().await? {
                ChannelMsg::Failure => return None,
                ChannelMsg::Data { data } => got.extend_from_slice(&data),
                _ => {}
            }
        }
        let _ = channel.eof().await;
        while channel.wait().await.is_some() {}
        // uint32 length, byte SSH_FXP_VERSION (2), uint32 version.
        (got[4] == 2).then(|| u32::from_be_bytes([got[5], got[6], got[7], got[8]]))
    }

    /// Ends the connection with an SSH disconnect message.
    pub async fn disconnect(&self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }

    /// Whether the gateway has closed this connection.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }
}

/// How many of the server's first bytes [`Watched`] keeps: enough for sshd's "Exceeded
/// MaxStartups" and any version line.
const WATCHED_BYTES: usize = 256;

/// A TCP stream that keeps a copy of the first bytes read from it.
struct Watched {
    inner: TcpStream,
    first: Arc<Mutex<Vec<u8>>>,
    /// Set once [`WATCHED_BYTES`] are kept: no lock after that.
    done: bool,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if !self.done && buf.filled().len() > before {
            let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
            let room = WATCHED_BYTES.saturating_sub(first.len());
            let new = &buf.filled()[before..];
            first.extend_from_slice(&new[..new.len().min(room)]);
            let full = first.len() >= WATCHED_BYTES;
            drop(first);
            self.done = full;
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
