//! Channels after the gate, and the policy for each type.
//!
//! - session + shell: the restricted shell's menu (or enrollment mode);
//! - session + exec: `TARGET [command]` (or the command, when the user name named the
//!   target) runs on the target; nothing runs on the gateway;
//! - session + subsystem (sftp): passed through to the target named in the user name;
//! - direct-tcpip (`ssh -J`): only to a granted target's host and port (see `forward`);
//! - agent forwarding: only when `ssh.allow_agent_forwarding` is set, to the target
//!   sessions the channel starts (not to sftp);
//! - X11, remote forwarding, streamlocal: refused.
//!
//! Before the gate nothing opens: russh refuses channel requests until authentication has
//! succeeded, and every handler here checks `visitor` again. After it, every new channel
//! and every program started on one re-checks the login against the database first
//! ([`access::recheck`]): a connection is not a licence.
//!
//! A login by application passcode never gets a terminal: its PTY requests are refused,
//! and so are the menu and an interactive target session.

use std::sync::Arc;

use gatehouse_core::Gateway;
use gatehouse_core::access;
use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};
use gatehouse_shell::{AgentIo, AgentOpener, AgentOpening, Input, Output, Terminal, Visitor};
use russh::server::{ChannelOpenHandle, Handle, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure};
use tokio::sync::mpsc;

use crate::connection::{Connection, PtyRequest, SessionChannel};
use crate::input::InputFeed;

/// Output queued per channel before the shell waits (back-pressure).
const OUTPUT_QUEUE: usize = 64;
const INPUT_QUEUE: usize = 64;

/// What a session channel runs.
enum Program {
    Menu,
    Direct { target: String, command: Option<String> },
    Subsystem { target: String, name: String },
}

impl Connection {
    pub async fn open_session(&mut self, channel: Channel<Msg>, reply: ChannelOpenHandle) {
        if self.standing("session").await.is_none() {
            reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
            return;
        }
        self.channels.insert(channel.id(), SessionChannel::default());
        reply.accept().await;
    }

    pub async fn pty(&mut self, channel: ChannelId, term: &str, cols: u32, rows: u32, session: &mut Session) {
        if let Some(v) = self.visitor.clone()
            && let Some(label) = v.app_passcode()
        {
            let detail = format!("terminal refused: logged in with application passcode \"{label}\"");
            self.audit_channel(&v, AuditKind::SessionRefused, Outcome::Failure, detail).await;
            let _ = session.channel_failure(channel);
            return;
        }
        match self.channels.get_mut(&channel) {
            Some(c) if c.input.is_none() => {
                c.pty = Some(PtyRequest { term: term.to_string(), cols, rows });
                let _ = session.channel_success(channel);
            }
            _ => {
                let _ = session.channel_failure(channel);
            }
        }
    }

    pub fn resize(&mut self, channel: ChannelId, cols: u32, rows: u32) {
        if let Some(SessionChannel { input: Some(feed), .. }) = self.channels.get(&channel) {
            feed.send(Input::Resize { cols, rows });
        }
    }

    /// A signal for the program (RFC 4254 §6.9), passed on to the target.
    pub fn signal(&mut self, channel: ChannelId, name: String) {
        if let Some(SessionChannel { input: Some(feed), .. }) = self.channels.get(&channel) {
            feed.send(Input::Signal(name));
        }
    }

    pub async fn data(&mut self, channel: ChannelId, data: &[u8]) {
        if let Some(SessionChannel { input: Some(feed), .. }) = self.channels.get(&channel) {
            feed.data(data).await;
        }
    }

    pub async fn eof(&mut self, channel: ChannelId) {
        if let Some(SessionChannel { input: Some(feed), .. }) = self.channels.get(&channel) {
            feed.send(Input::Eof);
        }
    }

    pub fn closed(&mut self, channel: ChannelId) {
        self.channels.remove(&channel);
    }

    pub async fn shell(&mut self, channel: ChannelId, session: &mut Session) {
        let program = match &self.target_in_name {
            Some(t) => Program::Direct { target: t.clone(), command: None },
            None => Program::Menu,
        };
        self.start(channel, program, session).await;
    }

    pub async fn exec(&mut self, channel: ChannelId, command: &[u8], session: &mut Session) {
        let command = String::from_utf8_lossy(command).trim().to_string();
        let program = match &self.target_in_name {
            Some(t) => Program::Direct { target: t.clone(), command: Some(command).filter(|c| !c.is_empty()) },
            None => {
                let mut words = command.splitn(2, char::is_whitespace);
                match words.next().filter(|w| !w.is_empty()) {
                    Some(target) => Program::Direct {
                        target: target.to_string(),
                        command: words.next().map(str::trim).filter(|c| !c.is_empty()).map(str::to_string),
                    },
                    None => Program::Menu,
                }
            }
        };
        self.start(channel, program, session).await;
    }

    pub async fn subsystem(&mut self, channel: ChannelId, name: &str, session: &mut Session) {
        match &self.target_in_name {
            Some(t) => {
                let program = Program::Subsystem { target: t.clone(), name: name.to_string() };
                self.start(channel, program, session).await;
            }
            None => {
                // Without a target there is nothing to run the subsystem on.
                tracing::info!(peer = %self.peer, subsystem = name, "subsystem refused: no target in the user name");
                let _ = session.channel_failure(channel);
            }
        }
    }

    /// Starts `program` on a session channel: the shell gets a [`Terminal`], and a pump
    /// task carries its output back to the client.
    async fn start(&mut self, channel: ChannelId, program: Program, session: &mut Session) {
        let Some(visitor) = self.standing("program").await else {
            let _ = session.channel_failure(channel);
            return;
        };
        let Some(slot) = self.channels.get_mut(&channel) else {
            let _ = session.channel_failure(channel);
            return;
        };
        if slot.input.is_some() {
            // One program per channel.
            let _ = session.channel_failure(channel);
            return;
        }
        if let Some(label) = visitor.app_passcode() {
            // A passcode login never gets a terminal: no PTY (see `pty`), no menu, no
            // interactive target.
            let interactive = match &program {
                Program::Menu => Some("the menu"),
                Program::Direct { command: None, .. } => Some("an interactive session"),
                _ if slot.pty.is_some() => Some("a terminal"),
                _ => None,
            };
            if let Some(what) = interactive {
                let detail = format!("{what} refused: logged in with application passcode \"{label}\"");
                let (gw, v) = (self.gw.clone(), visitor.clone());
                tokio::spawn(async move { audit(&gw, &v, AuditKind::SessionRefused, Outcome::Failure, detail).await });
                let _ = session.channel_failure(channel);
                return;
            }
        }
        let (in_tx, in_rx) = mpsc::channel(INPUT_QUEUE);
        let (out_tx, out_rx) = mpsc::channel(OUTPUT_QUEUE);
        slot.input = Some(InputFeed::new(in_tx));
        let pty = slot.pty.clone();
        let term = Terminal {
            input: in_rx,
            output: out_tx,
            term: pty.as_ref().map(|p| p.term.clone()),
            cols: pty.as_ref().map(|p| p.cols).unwrap_or(80),
            rows: pty.as_ref().map(|p| p.rows).unwrap_or(24),
            typeahead: Vec::new(),
            agent: slot.agent.then(|| Arc::new(UserAgent { handle: session.handle() }) as Arc<dyn AgentOpener>),
        };
        let _ = session.channel_success(channel);
        tokio::spawn(pump(session.handle(), channel, out_rx));
        let gw = self.gw.clone();
        // One task per kind of program, each as large as its own future: an idle menu
        // does not carry the state of a target session.
        match program {
            Program::Menu => tokio::spawn(gatehouse_shell::run_interactive(gw, visitor, term)),
            Program::Direct { target, command } => {
                tokio::spawn(gatehouse_shell::run_direct(gw, visitor, target, command, term))
            }
            Program::Subsystem { target, name } => {
                tokio::spawn(gatehouse_shell::run_subsystem(gw, visitor, target, name, term))
            }
        };
    }

    pub async fn refuse_channel(&mut self, kind: AuditKind, reply: ChannelOpenHandle) {
        if let Some(v) = self.visitor.clone() {
            self.audit_channel(&v, kind, Outcome::Failure, "refused by policy".into()).await;
        }
        reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
    }

    /// `ssh -A`: remembered on the channel, so the target sessions it starts can reach the
    /// user's agent. Only when the gateway allows it, and never in enrollment mode.
    pub async fn agent(&mut self, channel: ChannelId) -> bool {
        let Some(v) = self.visitor.clone() else {
            return false;
        };
        let allowed = self.gw.config.ssh.allow_agent_forwarding && !v.enrollment_only();
        match self.channels.get_mut(&channel) {
            Some(slot) if allowed && slot.input.is_none() => {
                slot.agent = true;
                self.audit_channel(&v, AuditKind::ForwardAgent, Outcome::Success, "agent forwarding requested".into())
                    .await;
                true
            }
            _ => self.refuse_request(AuditKind::ForwardAgent).await,
        }
    }

    /// Global and channel requests that policy refuses (agent, X11, remote forwarding).
    pub async fn refuse_request(&mut self, kind: AuditKind) -> bool {
        if let Some(v) = self.visitor.clone() {
            self.audit_channel(&v, kind, Outcome::Failure, "refused by policy".into()).await;
        }
        false
    }

    pub(crate) async fn audit_channel(&self, v: &Visitor, event: AuditKind, outcome: Outcome, detail: String) {
        audit(&self.gw, v, event, outcome, detail).await;
    }

    /// The visitor, if the login still stands now (re-checked against the database);
    /// `None` refuses what was asked. A login that no longer stands is audited, and the
    /// accept loop ends the connection.
    async fn standing(&mut self, what: &str) -> Option<Visitor> {
        let mut visitor = self.visitor.clone()?;
        match access::recheck(&self.gw.db, &visitor.login).await {
            Ok(Ok(user)) => {
                visitor.user = user;
                Some(visitor)
            }
            Ok(Err(why)) => {
                let detail = format!("{what} refused: login no longer stands ({why})");
                self.audit_channel(&visitor, AuditKind::SessionRefused, Outcome::Failure, detail).await;
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "re-checking the login failed; refusing");
                None
            }
        }
    }
}

pub(crate) async fn audit(gw: &Gateway, v: &Visitor, event: AuditKind, outcome: Outcome, detail: String) {
    let ev = AuditEvent::new(event, outcome).user(&v.user.name).source(v.source.clone()).detail(detail);
    if let Err(e) = gw.audit(ev).await {
        tracing::error!(error = %e, "audit write failed");
    }
}

/// The user's agent, reached by opening an `auth-agent@openssh.com` channel to their client.
struct UserAgent {
    handle: Handle,
}

impl AgentOpener for UserAgent {
    fn open(&self) -> AgentOpening<'_> {
        Box::pin(async move {
            match self.handle.channel_open_agent().await {
                Ok(channel) => Some(Box::new(channel.into_stream()) as Box<dyn AgentIo>),
                Err(e) => {
                    tracing::info!(error = %e, "the client refused an agent channel");
                    None
                }
            }
        })
    }
}

/// Carries the shell's output to the client until the shell closes the channel.
async fn pump(handle: Handle, channel: ChannelId, mut output: mpsc::Receiver<Output>) {
    while let Some(out) = output.recv().await {
        let ok = match out {
            Output::Data(bytes) => handle.data(channel, bytes).await.is_ok(),
            Output::Stderr(bytes) => handle.extended_data(channel, 1, bytes).await.is_ok(),
            Output::ExitStatus(code) => handle.exit_status_request(channel, code).await.is_ok(),
            Output::Close => break,
        };
        if !ok {
            return;
        }
    }
    let _ = handle.eof(channel).await;
    let _ = handle.close(channel).await;
}
