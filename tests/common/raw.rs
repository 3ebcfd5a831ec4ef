//! An SSH client in the harness that does what OpenSSH will not: any bytes as the user
//! name, keyboard-interactive answers of the test's choosing, many logins held at one
//! prompt and released at once, channels opened on a connection the test keeps. Built on
//! russh's client; every step returns what the server said, never panics on a refusal.

use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::PublicKeyOrCertificate;
use russh::{ChannelMsg, MethodKind};

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

    /// The first prompt of a keyboard-interactive round, if this is one.
    pub fn prompt(&self) -> Option<&str> {
        match self {
            Step::Info { prompts, .. } => prompts.first().map(String::as_str),
            _ => None,
        }
    }
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
        let handle =
            tokio::time::timeout(Duration::from_secs(20), client::connect(config, ("127.0.0.1", port), AnyHost))
                .await
                .expect("SSH handshake timed out")
                .expect("SSH handshake failed");
        RawClient { handle, user: user.to_string() }
    }

    /// The `password` method.
    pub async fn password(&mut self, password: &str) -> Step {
        match self.handle.authenticate_password(self.user.clone(), password).await.expect("password request") {
            AuthResult::Success => Step::Success,
            AuthResult::Failure { remaining_methods, partial_success } => Step::Failure {
                partial: partial_success,
                kbd: remaining_methods.contains(&MethodKind::KeyboardInteractive),
            },
        }
    }

    /// Starts a keyboard-interactive exchange.
    pub async fn kbd_start(&mut self) -> Step {
        Step::from_kbd(
            self.handle
                .authenticate_keyboard_interactive_start(self.user.clone(), None::<String>)
                .await
                .expect("kbd-int start"),
        )
    }

    /// Answers the current keyboard-interactive round.
    pub async fn kbd_answer(&mut self, answers: &[&str]) -> Step {
        let answers = answers.iter().map(|s| s.to_string()).collect();
        Step::from_kbd(self.handle.authenticate_keyboard_interactive_respond(answers).await.expect("kbd-int answer"))
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

    /// Whether the gateway has closed this connection.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }
}
