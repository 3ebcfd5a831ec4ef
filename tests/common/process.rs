//! Running child processes with a deadline, so a hung client or server fails one test
//! with its output instead of hanging the whole suite.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Runs `cmd` with `stdin` (none: `/dev/null`), collects stdout and stderr, and kills it
/// when `timeout` passes. On a timeout the returned status is a failure and stderr ends
/// with a line saying so.
pub fn run_with_timeout(cmd: &mut Command, stdin: Option<&str>, timeout: Duration) -> Output {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin was piped above");
        let text = text.to_string();
        // A writer thread, so a child that never reads cannot block us.
        thread::spawn(move || {
            let _ = pipe.write_all(text.as_bytes());
        });
    }
    let mut out_pipe = child.stdout.take().expect("stdout was piped above");
    let mut err_pipe = child.stderr.take().expect("stderr was piped above");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}"));
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let mut stderr = err_reader.join().unwrap_or_default();
    if timed_out {
        stderr.extend_from_slice(format!("\n[harness] killed after {timeout:?}: {cmd:?}\n").as_bytes());
    }
    Output { status: failed_if(status, timed_out), stdout, stderr }
}

fn failed_if(status: ExitStatus, timed_out: bool) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    if timed_out && status.success() { ExitStatus::from_raw(124 << 8) } else { status }
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A readable dump of a finished command for assertion messages.
pub fn describe(out: &Output) -> String {
    format!("exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}", out.status, stdout(out), stderr(out))
}

/// Sends SIGTERM to `pid` (the `kill` program: the test crates have no libc binding).
pub fn terminate(pid: u32) {
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// Kills and reaps the child in `slot`, if any (for servers with no state worth a clean
/// shutdown).
pub fn kill_child(slot: &mut Option<std::process::Child>) {
    if let Some(mut child) = slot.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A short random lower-case hex string (for database and file names), without a
/// dependency on a random-number crate.
pub fn random_suffix() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    format!("{:016x}", h.finish())
}
