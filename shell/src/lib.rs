//! Gatehouse restricted backend shell: what a user gets after the gate. It is Rust code in
//! the gateway process (there is no OS shell to escape to): a menu of the targets the user
//! is granted, connections to those targets as an SSH client with the gateway's
//! credentials, and a recording of every proxied terminal session.
//!
//! The SSH frontend (`server`) owns the user's channel and talks to the shell through a
//! [`Terminal`]: bytes and window changes in, bytes and an exit status out. The shell never
//! sees russh server types, so it can be driven in tests without sockets.

use gatehouse_core::users::User;
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

/// One user channel as the shell sees it.
pub struct Terminal {
    pub input: mpsc::Receiver<Input>,
    /// Bounded: sending waits while the user's SSH window is full (back-pressure).
    pub output: mpsc::Sender<Output>,
    /// `TERM` from the pty request, if a pty was requested.
    pub term: Option<String>,
    pub cols: u32,
    pub rows: u32,
}

/// Who is on the other end of a terminal, and how they got in.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub user: User,
    /// The client's address, for audit.
    pub source: String,
    /// Forced to use 2FA with nothing enrolled: only enrollment is offered.
    pub enrollment_only: bool,
    /// How the second factor was passed ("totp", "exempt", "not required"), for the greeting.
    pub passed_with: String,
}

impl Terminal {
    /// Sends text to the user, translating `\n` to `\r\n` for a raw terminal.
    pub async fn print(&self, text: &str) -> bool {
        let bytes = text.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes();
        self.output.send(Output::Data(bytes)).await.is_ok()
    }
}
