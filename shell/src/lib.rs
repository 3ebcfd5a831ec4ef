//! Gatehouse restricted backend shell: what a user gets after the gate. It is Rust code in
//! the gateway process (there is no OS shell to escape to): a menu of the targets the user
//! is granted, connections to those targets as an SSH client with the gateway's
//! credentials, and a recording of every proxied terminal session.
//!
//! The SSH frontend (`server`) owns the user's channel and talks to the shell through a
//! [`Terminal`]: bytes and window changes in, bytes and an exit status out. The shell never
//! sees russh server types, so it can be driven in tests without sockets.
//!
//! # Layout
//!
//! - [`interactive`]: the target menu loop; [`menu`] (what is listed, how a line picks a
//!   target, how a screen looks), [`line_editor`] (keys to a line), [`prompt`], [`sanitize`].
//! - [`enrollment`]: the only thing a user forced to 2FA without a factor gets; [`qr`].
//! - [`direct`]: sessions that name their target (exec, user:target, subsystems).
//! - [`visit`]: one connection to a target from grant check to audit; [`target_client`]
//!   (russh client, credential) with [`host_key`] (pinning), [`proxy`] (the byte pump),
//!   [`recorder`] with [`asciicast`] (the recording).
//!
//! The entry points the SSH frontend calls are [`run_interactive`], [`run_direct`] and
//! [`run_subsystem`]. Each owns the [`Terminal`] until it returns and always ends with
//! [`Output::ExitStatus`] then [`Output::Close`].

pub mod asciicast;
pub mod direct;
pub mod enrollment;
pub mod error;
pub mod host_key;
pub mod interactive;
pub mod line_editor;
pub mod menu;
pub mod prompt;
pub mod proxy;
pub mod qr;
pub mod recorder;
pub mod sanitize;
pub mod target_client;
pub mod visit;

pub use error::ShellError;
pub use visit::Request;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use gatehouse_core::Gateway;
use gatehouse_core::access::{self, Passage};

use gatehouse_core::users::User;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// Events from the user's channel to the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Bytes the user typed (or piped).
    Data(Vec<u8>),
    /// The user's terminal changed size.
    Resize { cols: u32, rows: u32 },
    /// The user closed their side of the channel.
    Eof,
    /// A `signal` request from the user's client (name without `SIG`, e.g. `INT`);
    /// forwarded to the target while proxying, ignored by the menu.
    Signal(String),
}

/// What the shell sends back to the user's channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Bytes for the user's terminal (stdout).
    Data(Vec<u8>),
    /// Bytes for the user's stderr.
    Stderr(Vec<u8>),
    /// The exit status to report before closing.
    ExitStatus(u32),
    /// Close the channel; nothing follows.
    Close,
}

/// A byte stream to the user's SSH agent.
pub trait AgentIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AgentIo for T {}

/// Opens a connection to the agent of the user's client (`ssh -A`), once per request a
/// target makes. Given to a [`Terminal`] only when the user asked for agent forwarding and
/// the gateway allows it.
pub trait AgentOpener: Send + Sync {
    fn open(&self) -> AgentOpening<'_>;
}

/// The pending result of [`AgentOpener::open`]: `None` when the client refused.
pub type AgentOpening<'a> = Pin<Box<dyn Future<Output = Option<Box<dyn AgentIo>>> + Send + 'a>>;

/// One user channel as the shell sees it.
pub struct Terminal {
    pub input: mpsc::Receiver<Input>,
    /// Bounded: sending waits while the user's SSH window is full (back-pressure).
    pub output: mpsc::Sender<Output>,
    /// `TERM` from the pty request, if a pty was requested.
    pub term: Option<String>,
    pub cols: u32,
    pub rows: u32,
    /// Bytes the user typed after choosing a target and before its session started; the
    /// session sends them to the target first.
    pub typeahead: Vec<u8>,
    /// The user's agent, when they forward it and the gateway allows it: offered to the
    /// target sessions (shell and command) started from this channel.
    pub agent: Option<Arc<dyn AgentOpener>>,
}

/// Who is on the other end of a terminal, and how they got in.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The user as they were at login; [`access::recheck`] gives them as they are now.
    pub user: User,
    /// The client's address, for audit.
    pub source: String,
    /// How the second factor was passed ("totp", "exempt", "not required"), for the greeting.
    pub passed_with: String,
    /// What the login proved, re-checked before every target session.
    pub login: access::Admitted,
}

impl Visitor {
    /// Forced to use 2FA with nothing enrolled: only enrollment is offered.
    pub fn enrollment_only(&self) -> bool {
        self.login.passage == Passage::Enrollment
    }

    /// The label of the application passcode the login used instead of password and
    /// second factor: only non-interactive work on a granted target (a command, sftp,
    /// scp, `-J`), never a terminal.
    pub fn app_passcode(&self) -> Option<&str> {
        match &self.login.passage {
            Passage::Passcode(label) => Some(label),
            _ => None,
        }
    }
}

impl Terminal {
    /// Sends text to the user, translating `\n` to `\r\n` for a raw terminal.
    pub async fn print(&self, text: &str) -> bool {
        let bytes = text.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes();
        self.output.send(Output::Data(bytes)).await.is_ok()
    }
}

/// Sends the exit status and closes the channel: the last thing every entry point does.
async fn finish(term: Terminal, status: u32) {
    let _ = term.output.send(Output::ExitStatus(status)).await;
    let _ = term.output.send(Output::Close).await;
}

/// A session with no command (PTY or not): the target menu, or enrollment mode when the
/// visitor must enroll a second factor first.
pub async fn run_interactive(gw: Gateway, visitor: Visitor, mut term: Terminal) {
    let status = if visitor.enrollment_only() {
        // Boxed: enrollment's state would otherwise size every menu task.
        Box::pin(enrollment::run(&gw, &visitor, &mut term)).await
    } else {
        interactive::run(&gw, &visitor, &mut term).await
    };
    finish(term, status).await;
}

/// `ssh user@gw TARGET [command…]` or `ssh user:TARGET@gw [command…]`: connects straight to
/// the target and runs `command` there (`None`: an interactive shell, with the PTY if one
/// was requested), proxies both ways, reports the target's exit status and closes.
pub async fn run_direct(gw: Gateway, visitor: Visitor, target: String, command: Option<String>, mut term: Terminal) {
    let request = match command {
        Some(cmd) => Request::Exec(cmd),
        None => Request::Shell,
    };
    let status = direct::run(&gw, &visitor, &target, request, &mut term).await;
    finish(term, status).await;
}

/// `sftp user:TARGET@gw`, `scp … user:TARGET@gw:…`: opens `subsystem` (e.g. `sftp`) on the
/// target and proxies its bytes unchanged.
pub async fn run_subsystem(gw: Gateway, visitor: Visitor, target: String, subsystem: String, mut term: Terminal) {
    let status = direct::run(&gw, &visitor, &target, Request::Subsystem(subsystem), &mut term).await;
    finish(term, status).await;
}
