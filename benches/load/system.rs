//! What the bench reads from and sets on the machine: the open-file limit, CPU time of a
//! process, and the kernel's TCP counters that tell a full listen queue.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::{describe, run_with_timeout, stdout};

/// The soft and hard `RLIMIT_NOFILE` of `pid`.
fn open_files_limit(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or_default();
    let mut words = line.get("Max open files".len()..).unwrap_or_default().split_whitespace();
    let mut next = || words.next().map(|w| w.parse().unwrap_or(u64::MAX)).unwrap_or(0);
    (next(), next())
}

/// Raises this process's open-file limit to at least `need` (with `prlimit`: the bench has
/// no libc binding), so that the gateway and sshd started after it inherit it too.
pub fn raise_open_files(need: u64) {
    let me = std::process::id();
    let (soft, hard) = open_files_limit(me);
    if soft >= need {
        return;
    }
    let limit = format!("--nofile={}:{}", need, need.max(hard));
    let out = run_with_timeout(
        Command::new("prlimit").args(["--pid", &me.to_string(), &limit]),
        None,
        Duration::from_secs(10),
    );
    let (now, _) = open_files_limit(me);
    assert!(
        now >= need,
        "{need} open files needed, the limit is {soft} and prlimit could not raise it \
         (raise `ulimit -n` before running the bench):\n{}",
        describe(&out)
    );
    eprintln!("open-file limit raised from {soft} to {now}");
}

/// Clock ticks per second of `/proc/PID/stat`.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        let out = run_with_timeout(Command::new("getconf").arg("CLK_TCK"), None, Duration::from_secs(10));
        stdout(&out).trim().parse().unwrap_or(100.0)
    })
}

/// CPU seconds used by `pid` so far; with `children`, also by the children it has reaped
/// (and theirs).
pub fn cpu_seconds(pid: u32, children: bool) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces:
    // state, ppid, … utime is the 12th of them, then stime, cutime, cstime.
    let after = stat.rfind(')').and_then(|i| stat.get(i + 2..)).unwrap_or_default();
    let f: Vec<f64> = after.split_whitespace().skip(11).take(4).map(|v| v.parse().unwrap_or(0.0)).collect();
    let field = |i: usize| f.get(i).copied().unwrap_or(0.0);
    let ticks = field(0) + field(1) + if children { field(2) + field(3) } else { 0.0 };
    ticks / clock_ticks()
}

/// The kernel's TCP counters (`/proc/net/netstat`, for the whole machine) that show a
/// server's listen queue overflowing: connections it could not take in time.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Handshakes completed by the client but dropped: the accept queue was full.
    pub listen_overflows: u64,
    /// SYN cookies sent: the queue of half-open connections was full.
    pub syncookies_sent: u64,
    /// SYNs the client sent again because no answer came (1 s, then 2 s, …).
    pub syn_retransmits: u64,
}

impl Counters {
    pub fn read() -> Counters {
        let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
        let (Some(names), Some(values)) = (lines.first(), lines.get(1)) else { return Counters::default() };
        let value = |name: &str| {
            names
                .split_whitespace()
                .position(|n| n == name)
                .and_then(|i| values.split_whitespace().nth(i))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Counters {
            listen_overflows: value("ListenOverflows"),
            syncookies_sent: value("SyncookiesSent"),
            syn_retransmits: value("TCPSynRetrans"),
        }
    }

    /// The counts since `before`.
    pub fn since(&self, before: &Counters) -> Counters {
        Counters {
            listen_overflows: self.listen_overflows.saturating_sub(before.listen_overflows),
            syncookies_sent: self.syncookies_sent.saturating_sub(before.syncookies_sent),
            syn_retransmits: self.syn_retransmits.saturating_sub(before.syn_retransmits),
        }
    }
}
