//! Copies of every audit event for a SIEM: a JSON-lines file and RFC 5424 syslog (UDP or
//! a Unix datagram socket such as `/dev/log`). The database row is the record and is
//! written first; a copy that fails is logged and counted
//! (`gatehouse_audit_copy_errors_total`), never silently dropped and never a reason to
//! undo the action.

use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Mutex;

use super::AuditRecord;
use crate::config::AuditConfig;
use crate::{Error, Result, time};

/// Facility `authpriv` (10): security messages that may hold private details.
const FACILITY: u8 = 10;

enum Syslog {
    Udp(UdpSocket),
    Unix(UnixDatagram, PathBuf),
}

/// The configured copies.
#[derive(Default)]
pub struct Sinks {
    file: Option<(Mutex<std::fs::File>, PathBuf)>,
    syslog: Option<Syslog>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks").field("file", &self.file.as_ref().map(|(_, p)| p)).finish()
    }
}

impl Sinks {
    /// Opens the file (created 0640, appended to) and the syslog socket. A bad path or an
    /// unresolvable host stops start-up: a SIEM copy the operator asked for must not be
    /// missing unnoticed.
    pub fn open(config: &AuditConfig) -> Result<Sinks> {
        let file = match &config.file {
            Some(path) => {
                let f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o640)
                    .open(path)
                    .map_err(|e| Error::io(path, e))?;
                Some((Mutex::new(f), path.clone()))
            }
            None => None,
        };
        let syslog = match config.syslog.as_deref().and_then(|s| s.split_once("://")) {
            Some(("udp", addr)) => {
                let bind = if addr.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" };
                let socket = UdpSocket::bind(bind).map_err(|e| Error::Config(format!("audit.syslog: {e}")))?;
                socket.connect(addr).map_err(|e| Error::Config(format!("audit.syslog: {addr}: {e}")))?;
                socket.set_nonblocking(true).map_err(|e| Error::Config(format!("audit.syslog: {e}")))?;
                Some(Syslog::Udp(socket))
            }
            Some(("unix", path)) => {
                let socket = UnixDatagram::unbound().map_err(|e| Error::Config(format!("audit.syslog: {e}")))?;
                socket.set_nonblocking(true).map_err(|e| Error::Config(format!("audit.syslog: {e}")))?;
                Some(Syslog::Unix(socket, PathBuf::from(path)))
            }
            _ => None,
        };
        Ok(Sinks { file, syslog })
    }

    /// Whether any copy is configured.
    pub fn any(&self) -> bool {
        self.file.is_some() || self.syslog.is_some()
    }

    /// Sends `rec` to every copy; returns how many failed (each is logged).
    pub fn emit(&self, rec: &AuditRecord) -> usize {
        let mut failed = 0;
        if let Some((file, path)) = &self.file {
            let line = format!("{}\n", json_line(rec));
            let written = file.lock().map_err(|_| std::io::Error::other("lock poisoned")).and_then(|mut f| {
                // One write per line: with O_APPEND, lines of concurrent writers never interleave.
                f.write_all(line.as_bytes())
            });
            if let Err(e) = written {
                failed += 1;
                tracing::error!(path = %path.display(), error = %e, event = rec.id, "could not append to the audit file");
            }
        }
        if let Some(syslog) = &self.syslog {
            let msg = rfc5424(rec);
            let sent = match syslog {
                Syslog::Udp(s) => s.send(msg.as_bytes()).map(|_| ()),
                Syslog::Unix(s, path) => s.send_to(msg.as_bytes(), path).map(|_| ()),
            };
            if let Err(e) = sent {
                failed += 1;
                tracing::error!(error = %e, event = rec.id, "could not send the audit event to syslog");
            }
        }
        failed
    }
}

/// One event as a JSON object: the record's fields, `at` as RFC 3339 and `at_epoch`.
pub fn json_line(rec: &AuditRecord) -> String {
    serde_json::json!({
        "id": rec.id,
        "at": time::format_rfc3339(rec.at),
        "at_epoch": rec.at,
        "node": rec.node,
        "event": rec.event,
        "outcome": rec.outcome,
        "actor": rec.actor,
        "user": rec.user,
        "source": rec.source,
        "detail": rec.detail,
    })
    .to_string()
}

/// An RFC 5424 message: `<PRI>1 TIMESTAMP HOST gatehouse PROCID EVENT - JSON`. Failures
/// are warnings (4), everything else notices (5).
pub fn rfc5424(rec: &AuditRecord) -> String {
    let severity = if rec.outcome == "failure" { 4 } else { 5 };
    let pri = u16::from(FACILITY) * 8 + severity;
    // HOSTNAME and MSGID are printable US-ASCII without spaces, at most 255 and 32 chars.
    let token = |s: &str, max: usize| -> String {
        let t: String = s.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
        if t.is_empty() { "-".into() } else { t }
    };
    format!(
        "<{pri}>1 {} {} gatehouse {} {} - {}",
        time::format_rfc3339(rec.at),
        token(&rec.node, 255),
        std::process::id(),
        token(&rec.event, 32),
        json_line(rec)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> AuditRecord {
        AuditRecord {
            id: 7,
            at: 1_111_111_109,
            node: "gw a".into(),
            actor: None,
            user: Some("al\"ice".into()),
            event: "login.password".into(),
            outcome: "failure".into(),
            source: Some("192.0.2.1".into()),
            detail: "wrong password via ssh".into(),
        }
    }

    #[test]
    fn syslog_message_follows_rfc5424() {
        let m = rfc5424(&rec());
        let pid = std::process::id();
        assert!(m.starts_with(&format!("<84>1 2005-03-18T01:58:29Z gwa gatehouse {pid} login.password - {{")), "{m}");
        let json: serde_json::Value = serde_json::from_str(m.split_once(" - ").unwrap().1).unwrap();
        assert_eq!(json["user"], "al\"ice");
        assert_eq!(json["at_epoch"], 1_111_111_109);
    }
}
