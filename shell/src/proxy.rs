//! The proxy loop: bytes both ways between the user's [`Terminal`] and a channel on the
//! target, plus window changes, signals, the recording, and the periodic check that an
//! administrator has not asked to end the session.
//!
//! Back-pressure is end to end: while the user's SSH window is full, sending to the
//! terminal waits, so the loop stops reading from the target and russh stops granting the
//! target window. Nothing is buffered without bound.

use std::time::Duration;

use gatehouse_core::{Gateway, live_sessions};
use russh::client::Msg;
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Sig};
use tokio::sync::mpsc;

use crate::recorder::{AfterFailure, Recorder};
use crate::{Input, Output, Terminal};
use gatehouse_core::metrics::Direction;

/// How often a running session refreshes its live-session row and checks for a
/// termination request.
pub const POLL: Duration = Duration::from_secs(3);

/// Why a proxied session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The remote command exited with this status.
    Exit(u32),
    /// The remote command was killed by this signal.
    Signal(String),
    /// The target closed the channel without an exit status.
    TargetClosed,
    /// The user's side went away.
    UserLeft,
    /// An administrator ended the session.
    Terminated,
    /// The recording could not be written, so the session was not allowed to go on.
    RecordingFailed,
}

impl Ending {
    /// The exit status to report to the user's client (128 + n for a signal, as shells do;
    /// 255 when the session ended abnormally, as `ssh` does).
    pub fn exit_status(&self) -> u32 {
        match self {
            Ending::Exit(n) => *n,
            Ending::Signal(name) => 128 + signal_number(name),
            Ending::TargetClosed | Ending::UserLeft => 0,
            Ending::Terminated | Ending::RecordingFailed => 255,
        }
    }

    /// A short description for the user and the audit log.
    pub fn describe(&self) -> String {
        match self {
            Ending::Exit(n) => format!("exit status {n}"),
            Ending::Signal(name) => format!("killed by signal {}", crate::sanitize::for_terminal(name)),
            Ending::TargetClosed => "closed by the target".into(),
            Ending::UserLeft => "closed by the user".into(),
            Ending::Terminated => "ended by an administrator".into(),
            Ending::RecordingFailed => "ended because the recording failed".into(),
        }
    }
}

fn signal_number(name: &str) -> u32 {
    match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => 127,
    }
}

/// The signal named by an SSH `signal` request (name without the `SIG` prefix).
pub fn signal(name: &str) -> Sig {
    match name.trim_start_matches("SIG") {
        "ABRT" => Sig::ABRT,
        "ALRM" => Sig::ALRM,
        "FPE" => Sig::FPE,
        "HUP" => Sig::HUP,
        "ILL" => Sig::ILL,
        "INT" => Sig::INT,
        "KILL" => Sig::KILL,
        "PIPE" => Sig::PIPE,
        "QUIT" => Sig::QUIT,
        "SEGV" => Sig::SEGV,
        "TERM" => Sig::TERM,
        "USR1" => Sig::USR1,
        other => Sig::Custom(other.to_string()),
    }
}

/// The name of `sig` without the `SIG` prefix, as SSH `signal` requests carry it.
pub fn sig_name(sig: &Sig) -> String {
    match sig {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(c) => c.as_str(),
    }
    .to_string()
}

/// What the loop needs besides the two ends.
pub struct Watch<'a> {
    pub gw: &'a Gateway,
    /// The live-session row to refresh and to check for termination.
    pub live_id: Option<i64>,
    pub recorder: Option<&'a Recorder>,
}

enum Flow {
    Continue,
    Stop(Ending),
}

/// Runs the session until the target closes the channel, the user leaves, or an
/// administrator ends it. `pending` are channel messages that arrived while the request
/// was being confirmed; they are handled first.
///
/// The two directions run independently: a target that writes a lot before it reads its
/// input (while the user uploads) must have its output drained while its input window is
/// full, or both ends wait for each other forever.
pub async fn run(term: &mut Terminal, channel: Channel<Msg>, pending: Vec<ChannelMsg>, watch: Watch<'_>) -> Ending {
    let (reader, writer) = channel.split();
    let Terminal { input, output, cols, rows, typeahead, .. } = term;
    let ending = tokio::select! {
        end = target_to_user(reader, pending, output, &watch) => end,
        end = user_to_target(&writer, input, (cols, rows), typeahead, &watch) => end,
        end = housekeeping(&watch) => end,
    };
    let _ = writer.close().await;
    ending
}

/// The target's output to the user (and the recording), until the target closes the
/// channel or the user's side goes away.
async fn target_to_user(
    mut reader: ChannelReadHalf,
    pending: Vec<ChannelMsg>,
    output: &mpsc::Sender<Output>,
    watch: &Watch<'_>,
) -> Ending {
    let mut status: Option<Ending> = None;
    for msg in pending {
        if let Flow::Stop(end) = from_target(output, watch, msg, &mut status).await {
            return end;
        }
    }
    loop {
        let Some(msg) = reader.wait().await else { return status.take().unwrap_or(Ending::TargetClosed) };
        if let Flow::Stop(end) = from_target(output, watch, msg, &mut status).await {
            return end;
        }
    }
}

/// The user's input to the target: first what they typed ahead, then keystrokes, window
/// changes (kept in `size`) and signals. Ends only when the user leaves or the recording
/// fails; once the target stops taking input, the other side reports how the session
/// ended.
async fn user_to_target(
    writer: &ChannelWriteHalf<Msg>,
    input: &mut mpsc::Receiver<Input>,
    size: (&mut u32, &mut u32),
    typeahead: &mut Vec<u8>,
    watch: &Watch<'_>,
) -> Ending {
    let (cols, rows) = size;
    let typed = std::mem::take(typeahead);
    if !typed.is_empty() && writer.data_bytes(typed).await.is_err() {
        // The target is going away: its side reports how.
        return std::future::pending().await;
    }
    loop {
        match input.recv().await {
            None => return Ending::UserLeft,
            Some(Input::Data(bytes)) => {
                watch.gw.metrics.proxied(Direction::ToTarget, bytes.len());
                if writer.data_bytes(bytes).await.is_err() {
                    return std::future::pending().await;
                }
            }
            Some(Input::Resize { cols: c, rows: r }) => {
                (*cols, *rows) = (c, r);
                let _ = writer.window_change(c, r, 0, 0).await;
                if let Some(rec) = watch.recorder
                    && !rec.resize(c, r).await
                    && rec.write_failed(watch.gw).await == AfterFailure::End
                {
                    return Ending::RecordingFailed;
                }
            }
            Some(Input::Signal(name)) => {
                let _ = writer.signal(signal(&name)).await;
            }
            Some(Input::Eof) => {
                let _ = writer.eof().await;
                // Nothing more comes from the user; the target decides when it ends.
                return std::future::pending().await;
            }
        }
    }
}

/// Every [`POLL`]: the recording's index is brought up to date, the live-session row
/// refreshed, and a termination request ends the session.
async fn housekeeping(watch: &Watch<'_>) -> Ending {
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if let Some(rec) = watch.recorder {
            rec.update_index().await;
        }
        if let Some(id) = watch.live_id {
            if let Err(e) = live_sessions::heartbeat(&watch.gw.db, id).await {
                tracing::warn!(session = id, error = %e, "live session heartbeat failed");
            }
            match live_sessions::terminate_requested(&watch.gw.db, id).await {
                Ok(true) => return Ending::Terminated,
                Ok(false) => {}
                Err(e) => tracing::warn!(session = id, error = %e, "could not check for a termination request"),
            }
        }
    }
}

async fn from_target(
    output: &mpsc::Sender<Output>,
    watch: &Watch<'_>,
    msg: ChannelMsg,
    status: &mut Option<Ending>,
) -> Flow {
    let (bytes, stderr) = match msg {
        ChannelMsg::Data { data } => (data, false),
        ChannelMsg::ExtendedData { data, .. } => (data, true),
        ChannelMsg::ExitStatus { exit_status } => {
            *status = Some(Ending::Exit(exit_status));
            return Flow::Continue;
        }
        ChannelMsg::ExitSignal { signal_name, .. } => {
            *status = Some(Ending::Signal(sig_name(&signal_name)));
            return Flow::Continue;
        }
        ChannelMsg::Close => return Flow::Stop(status.take().unwrap_or(Ending::TargetClosed)),
        _ => return Flow::Continue,
    };
    if let Some(rec) = watch.recorder
        && !rec.output(&bytes).await
        && rec.write_failed(watch.gw).await == AfterFailure::End
    {
        return Flow::Stop(Ending::RecordingFailed);
    }
    watch.gw.metrics.proxied(Direction::ToUser, bytes.len());
    let out = if stderr { Output::Stderr(bytes.to_vec()) } else { Output::Data(bytes.to_vec()) };
    if output.send(out).await.is_err() {
        return Flow::Stop(Ending::UserLeft);
    }
    Flow::Continue
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses() {
        assert_eq!(Ending::Exit(3).exit_status(), 3);
        assert_eq!(Ending::Signal("KILL".into()).exit_status(), 137);
        assert_eq!(Ending::Terminated.exit_status(), 255);
        assert_eq!(sig_name(&signal("SIGINT")), "INT");
        assert_eq!(sig_name(&signal("WINCH")), "WINCH");
    }
}
