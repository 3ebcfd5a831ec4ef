//! One visit to a target, from the permission check to the audit of its end. Every way of
//! reaching a target (menu, direct exec, subsystem) goes through [`visit`], so the rules
//! hold everywhere:
//!
//! 1. nothing is reachable in enrollment mode;
//! 2. the target must be granted to the user *now* (checked on every connect, so a grant
//!    revoked while the menu is open takes effect at once);
//! 3. the host key is verified or pinned on first use, and the credential comes from the
//!    vault;
//! 4. terminal sessions are recorded, every session is registered as live, and every
//!    connect, refusal and disconnect is an audit event.

use std::time::{Duration, Instant};

use gatehouse_core::Gateway;
use gatehouse_core::access::{self, Granted, Refusal, Wanted};
use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};
use gatehouse_core::live_sessions::{self, NewLiveSession};
use gatehouse_core::recordings;
use gatehouse_core::targets::Target;
use russh::ChannelMsg;
use russh::client::Msg;

use crate::error::ShellError;
use crate::proxy::{self, Ending, Watch};
use crate::recorder::{self, AfterFailure, Recorder};
use crate::sanitize::for_terminal;
use crate::target_client;
use crate::{Terminal, Visitor};

/// How long the target may take to confirm a shell, exec or subsystem request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// What the target is asked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// An interactive shell.
    Shell,
    /// One command.
    Exec(String),
    /// A subsystem such as `sftp`.
    Subsystem(String),
}

impl Request {
    fn kind(&self) -> String {
        match self {
            Request::Shell => "shell".into(),
            Request::Exec(_) => "exec".into(),
            Request::Subsystem(name) => format!("subsystem:{}", for_terminal(name)),
        }
    }
}

fn event(visitor: &Visitor, kind: AuditKind, outcome: Outcome) -> AuditEvent {
    AuditEvent::new(kind, outcome)
        .actor(visitor.user.name.clone())
        .user(visitor.user.name.clone())
        .source(visitor.source.clone())
}

/// Writes an audit event; a failure is logged, never fatal to the session.
pub(crate) async fn audit(gw: &Gateway, ev: AuditEvent) {
    let kind = ev.kind;
    if let Err(e) = gw.audit(ev).await {
        tracing::error!(event = %kind, error = %e, "could not write an audit event");
    }
}

/// The granted target called `name`, checked against the database now together with the
/// login itself (the account still there, not locked, the policy still satisfied).
async fn granted(gw: &Gateway, visitor: &Visitor, name: &str) -> Result<Granted, ShellError> {
    match access::granted(&gw.db, &visitor.login, Wanted::Name(name)).await? {
        Ok(g) => Ok(g),
        Err(Refusal::Withdrawn(why)) => Err(ShellError::Withdrawn(why)),
        Err(Refusal::EnrollmentOnly) => Err(ShellError::EnrollmentRequired),
        Err(Refusal::NotGranted) => Err(ShellError::NotGranted(for_terminal(name))),
    }
}

/// Connects `visitor` to target `name`, runs `request` there and proxies it through `term`
/// until it ends. Refusals are returned as errors (already audited).
pub async fn visit(
    gw: &Gateway,
    visitor: &Visitor,
    name: &str,
    request: Request,
    term: &mut Terminal,
) -> Result<Ending, ShellError> {
    let refuse = |e: ShellError| async move {
        tracing::info!(user = %visitor.user.name, target = %for_terminal(name), error = %e, "target connection refused");
        audit(
            gw,
            event(visitor, AuditKind::TargetConnect, Outcome::Failure).detail(format!("{}: {}", for_terminal(name), e)),
        )
        .await;
        Err(e)
    };
    let granted = match granted(gw, visitor, name).await {
        Ok(g) => g,
        Err(e) => return refuse(e).await,
    };
    let target = granted.target().clone();
    // The user's agent goes only to sessions they can drive (not to file transfer).
    let agent = term.agent.clone().filter(|_| !matches!(request, Request::Subsystem(_)));
    let forwards_agent = agent.is_some();
    let conn = match target_client::connect(gw, &granted, agent).await {
        Ok(c) => c,
        Err(e) => return refuse(e).await,
    };
    if let Some(fp) = &conn.pinned_now {
        audit(
            gw,
            event(visitor, AuditKind::TargetHostKeyPin, Outcome::Info)
                .detail(format!("{}: host key {fp} pinned on first use", target.name)),
        )
        .await;
    }
    let (channel, pending) = match open(&conn, &target, &request, term, forwards_agent).await {
        Ok(opened) => opened,
        Err(e) => {
            conn.close().await;
            return refuse(e).await;
        }
    };

    let recorder = match start_recording(gw, visitor, &target, &request, term).await {
        Ok(r) => r,
        Err(e) => {
            conn.close().await;
            return refuse(e).await;
        }
    };
    let kind = request.kind();
    let live_id = register(gw, visitor, &target, &kind, recorder.as_ref()).await;
    audit_started(gw, visitor, &target, &kind, recorder.as_ref()).await;
    let started = Instant::now();
    let ending = proxy::run(term, channel, pending, Watch { gw, live_id, recorder: recorder.as_ref() }).await;

    wind_down(gw, recorder, live_id).await;
    conn.close().await;
    audit_ended(gw, visitor, &target, &ending, started.elapsed().as_secs()).await;
    Ok(ending)
}

/// Starts the recording of a terminal session (a PTY, or an interactive shell); other
/// sessions (a command without a PTY, file transfer) are not recorded.
async fn start_recording(
    gw: &Gateway,
    visitor: &Visitor,
    target: &Target,
    request: &Request,
    term: &Terminal,
) -> Result<Option<Recorder>, ShellError> {
    let pty = term.term.is_some() && !matches!(request, Request::Subsystem(_));
    if !(pty || *request == Request::Shell) {
        return Ok(None);
    }
    let (w, h) = if term.cols == 0 || term.rows == 0 { (80, 24) } else { (term.cols, term.rows) };
    // With a bucket, a recording that could never leave this node is a failure too.
    if let Some(bucket) = &gw.recording_bucket
        && let Err(e) = bucket.ready().await
    {
        let what = "the recordings bucket is not reachable";
        return match recorder::failed(gw, &visitor.user.name, &target.name, what, &e.to_string()).await {
            AfterFailure::End => Err(ShellError::Recording(e.to_string())),
            AfterFailure::Continue => Ok(None),
        };
    }
    match Recorder::start(gw, &visitor.user.name, &target.name, w, h, term.term.as_deref()).await {
        Ok(r) => Ok(Some(r)),
        Err(e) => match recorder::failed(
            gw,
            &visitor.user.name,
            &target.name,
            "the recording could not start",
            &e.to_string(),
        )
        .await
        {
            AfterFailure::End => Err(e),
            AfterFailure::Continue => Ok(None),
        },
    }
}

/// Audits and logs a session that has just started.
async fn audit_started(gw: &Gateway, visitor: &Visitor, target: &Target, kind: &str, recorder: Option<&Recorder>) {
    let recording = recorder.map(|r| format!(", recording {}", r.id())).unwrap_or_default();
    audit(
        gw,
        event(visitor, AuditKind::TargetConnect, Outcome::Success)
            .detail(format!("{} ({}@{}:{}) {kind}{recording}", target.name, target.username, target.host, target.port)),
    )
    .await;
    tracing::info!(user = %visitor.user.name, target = %target.name, kind = %kind, "target session started");
}

/// Audits and logs how a session ended, after `secs` seconds.
async fn audit_ended(gw: &Gateway, visitor: &Visitor, target: &Target, ending: &Ending, secs: u64) {
    let outcome = if *ending == Ending::Terminated { Outcome::Info } else { Outcome::Success };
    audit(
        gw,
        event(visitor, AuditKind::TargetDisconnect, outcome).detail(format!(
            "{}: {} after {secs} s",
            target.name,
            ending.describe()
        )),
    )
    .await;
    tracing::info!(user = %visitor.user.name, target = %target.name, ending = %ending.describe(), secs, "target session ended");
}

/// Registers a session that has just connected as live (on every node's list); a
/// failure is logged and the session goes on unlisted.
async fn register(
    gw: &Gateway,
    visitor: &Visitor,
    target: &Target,
    kind: &str,
    recorder: Option<&Recorder>,
) -> Option<i64> {
    let node = gw.config.node_name();
    let new = NewLiveSession {
        node: &node,
        user_name: &visitor.user.name,
        target_name: &target.name,
        source: &visitor.source,
        kind,
        recording_id: recorder.map(Recorder::id),
    };
    live_sessions::register(&gw.db, &new)
        .await
        .map_err(|e| tracing::warn!(error = %e, "could not register the live session"))
        .ok()
}

/// After a session: the recording is closed and indexed, and the live row removed. The
/// recording is compressed (and moved to the bucket) in the background: the user's client
/// is told the session ended without waiting for that.
async fn wind_down(gw: &Gateway, recorder: Option<Recorder>, live_id: Option<i64>) {
    if let Some(rec) = recorder {
        match rec.finish().await {
            Ok(finished) => {
                let gw = gw.clone();
                tokio::spawn(async move {
                    let id = finished.id();
                    if gw.config.recordings.compress {
                        finished.compress(&gw.db).await;
                    }
                    if gw.recording_bucket.is_some() {
                        recordings::upload_finished(&gw, id).await;
                    }
                });
            }
            Err(e) => tracing::error!(error = %e, "recording did not finish cleanly"),
        }
    }
    if let Some(id) = live_id
        && let Err(e) = live_sessions::end(&gw.db, id).await
    {
        tracing::warn!(session = id, error = %e, "could not remove the live session");
    }
}

/// Opens the session channel and starts `request` on it (with a PTY when the user has
/// one), waiting for the target to confirm.
async fn open(
    conn: &target_client::Connection,
    target: &Target,
    request: &Request,
    term: &Terminal,
    forwards_agent: bool,
) -> Result<(russh::Channel<Msg>, Vec<ChannelMsg>), ShellError> {
    let ssh = |source| ShellError::Ssh { target: target.name.clone(), source };
    let mut channel = conn.handle.channel_open_session().await.map_err(ssh)?;
    if forwards_agent {
        channel.agent_forward(false).await.map_err(ssh)?;
    }
    if let (Some(term_name), false) = (&term.term, matches!(request, Request::Subsystem(_))) {
        let (cols, rows) = if term.cols == 0 || term.rows == 0 { (80, 24) } else { (term.cols, term.rows) };
        channel.request_pty(false, term_name, cols, rows, 0, 0, &[]).await.map_err(ssh)?;
    }
    let what = match request {
        Request::Shell => {
            channel.request_shell(true).await.map_err(ssh)?;
            "shell".to_string()
        }
        Request::Exec(cmd) => {
            channel.exec(true, cmd.as_bytes()).await.map_err(ssh)?;
            "command".to_string()
        }
        Request::Subsystem(name) => {
            channel.request_subsystem(true, name.as_str()).await.map_err(ssh)?;
            format!("{} subsystem", for_terminal(name))
        }
    };
    let refused = || ShellError::RequestRefused { target: target.name.clone(), what: what.clone() };
    let mut pending = Vec::new();
    let confirm = async {
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => return Ok(()),
                Some(ChannelMsg::Failure) | Some(ChannelMsg::Close) | None => return Err(refused()),
                Some(other) => pending.push(other),
            }
        }
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, confirm).await {
        Ok(Ok(())) => Ok((channel, pending)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(refused()),
    }
}
