//! What the backend-shell tests (`tests/shell_*.rs`) share on top of the common harness: a
//! started gateway with user `alice` and real sshd targets behind it, an OpenSSH client
//! config naming the gateway and its targets (for `-J`, `scp` and `sftp`, which cannot
//! carry `user:target` in a destination), and small expect helpers.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::{Backend, ClientKey, Gw, Sshd, describe, run_with_timeout, stdout};

pub const PASSWORD: &str = "correct horse battery";

/// A gateway with `alice` (password and key, no second factor) and one sshd.
pub struct Bastion {
    pub gw: Gw,
    pub key: ClientKey,
    pub sshd: Sshd,
    /// The private key the gateway logs in to `sshd` with.
    pub target_key: PathBuf,
}

/// Starts a gateway on SQLite with alice and one sshd target server (not yet added).
pub fn bastion() -> Bastion {
    bastion_with_config("")
}

/// [`bastion`] with extra gateway configuration (TOML).
pub fn bastion_with_config(extra_toml: &str) -> Bastion {
    let mut gw = Gw::with_config(Backend::Sqlite, extra_toml);
    gw.start();
    gw.add_user("alice", PASSWORD);
    let key = gw.add_key("alice");
    let (sshd, target_key) = Sshd::start_with_new_key();
    Bastion { gw, key, sshd, target_key }
}

impl Bastion {
    /// `target add NAME` for `sshd`, pinned to `host_key` (None: trust on first use).
    pub fn add_target(&self, name: &str, sshd: &Sshd, key_file: &Path, host_key: Option<&str>) {
        let port = sshd.port.to_string();
        let key_file = key_file.display().to_string();
        let mut args = vec![
            "target",
            "add",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            &sshd.user,
            "--key-file",
            &key_file,
        ];
        if let Some(k) = host_key {
            args.extend(["--host-key", k]);
        }
        self.gw.cli_ok(&args);
    }

    /// Adds this bastion's sshd as `name`, pinned, and grants it to alice.
    pub fn add_granted(&self, name: &str) {
        self.add_target(name, &self.sshd, &self.target_key, Some(&self.sshd.host_key_pub));
        self.gw.cli_ok(&["target", "grant", name, "--user", "alice"]);
    }

    /// An ssh_config file: `Host gw` is the gateway as alice; `Host via-NAME` reaches target
    /// NAME through the gateway (user `alice:NAME`); `Host direct` is the sshd itself.
    /// The gateway asks for no second factor here, so `BatchMode yes` keeps every client
    /// from ever waiting on a prompt.
    pub fn client_config(&self, targets: &[&str]) -> PathBuf {
        let key = self.key.private.display();
        let common = format!(
            "  HostName 127.0.0.1\n  IdentityFile {key}\n  IdentitiesOnly yes\n  IdentityAgent none\n  \
             StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  GlobalKnownHostsFile /dev/null\n  \
             BatchMode yes\n  ConnectTimeout 10\n  LogLevel ERROR\n"
        );
        let mut text = format!("Host gw\n  Port {}\n  User alice\n{common}", self.gw.ssh_port);
        for t in targets {
            text.push_str(&format!("Host via-{t}\n  Port {}\n  User alice:{t}\n{common}", self.gw.ssh_port));
        }
        text.push_str(&format!("Host direct\n  Port {}\n  User {}\n{common}", self.sshd.port, self.sshd.user));
        let path = self.gw.dir.path().join("ssh_config");
        std::fs::write(&path, text).expect("writing the ssh client config");
        path
    }

    /// Runs SQL on the gateway's SQLite database with the `sqlite3` tool; returns stdout.
    pub fn sql(&self, statement: &str) -> String {
        let db = self
            .gw
            .database_url
            .trim_start_matches("sqlite://")
            .split('?')
            .next()
            .expect("split yields at least one part")
            .to_string();
        let out = run_with_timeout(Command::new("sqlite3").arg(&db).arg(statement), None, Duration::from_secs(20));
        assert!(out.status.success(), "sqlite3 failed:\n{}", describe(&out));
        stdout(&out)
    }

    /// The recording files the gateway wrote, once none is being compressed: a session's
    /// recording is compressed after its end is reported, and for a moment both files (or
    /// a `.part`) are there.
    pub fn recording_files(&self) -> Vec<PathBuf> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (files, busy) = self.recording_dir();
            if !busy || std::time::Instant::now() > deadline {
                return files;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The recording files once `n` of them are compressed (`.cast.gz`) and no plain one is
    /// left (at most 30 s).
    pub fn compressed_recording_files(&self, n: usize) -> Vec<PathBuf> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (files, busy) = self.recording_dir();
            let gz = files.iter().filter(|f| f.to_string_lossy().ends_with(".cast.gz")).count();
            if (!busy && gz == n && gz == files.len()) || std::time::Instant::now() > deadline {
                return files;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `.cast` and `.cast.gz` files, and whether a compression is under way (a `.part`
    /// file, or a plain file beside its compressed twin).
    fn recording_dir(&self) -> (Vec<PathBuf>, bool) {
        let dir = self.gw.data_dir().join("recordings");
        let all: Vec<PathBuf> =
            std::fs::read_dir(&dir).map(|it| it.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        let named = |p: &PathBuf, end: &str| p.to_str().is_some_and(|s| s.ends_with(end));
        let mut files: Vec<PathBuf> =
            all.iter().filter(|p| named(p, ".cast") || named(p, ".cast.gz")).cloned().collect();
        files.sort();
        let busy = all.iter().any(|p| named(p, ".part"))
            || files.iter().any(|p| named(p, ".cast") && files.contains(&p.with_extension("cast.gz")));
        (files, busy)
    }

    /// The audit log lines for events starting with `event`.
    pub fn audit(&self, event: &str) -> String {
        self.gw.audit(event)
    }
}

/// Tcl for expect: `must PATTERN` waits for an exact substring and fails the script with a
/// recognisable line on timeout or end of file.
pub const MUST: &str = r#"
proc must {pat} {
    expect {
        -ex $pat {}
        timeout { puts "\nEXPECT-TIMEOUT waiting for: $pat"; exit 3 }
        eof { puts "\nEXPECT-EOF waiting for: $pat"; exit 4 }
    }
}
proc finish {} {
    expect {
        eof {}
        timeout { puts "\nEXPECT-TIMEOUT waiting for the end"; exit 3 }
    }
    set status [lindex [wait] 3]
    puts "\nSSH-EXIT $status"
}
"#;

/// The exit status ssh reported, as printed by `finish` in [`MUST`].
pub fn ssh_exit(out: &Output) -> Option<i32> {
    let text = stdout(out);
    let line = text.lines().rev().find(|l| l.starts_with("SSH-EXIT "))?;
    line["SSH-EXIT ".len()..].trim().parse().ok()
}

/// Runs a program with a deadline.
pub fn run(program: &str, args: &[&str], timeout: Duration) -> Output {
    run_with_timeout(Command::new(program).args(args), None, timeout)
}

/// The text of a recording file; a compressed one (`.cast.gz`) through `gunzip`.
pub fn read_recording(file: &Path) -> String {
    if file.to_str().is_some_and(|s| s.ends_with(".gz")) {
        let out = run_with_timeout(Command::new("gunzip").arg("-c").arg(file), None, Duration::from_secs(30));
        assert!(out.status.success(), "gunzip {}: {}", file.display(), describe(&out));
        stdout(&out)
    } else {
        std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    }
}

/// `asciinema cat FILE`: asciinema's own parser replays a recording to stdout (a
/// compressed one, `.cast.gz`, after `gunzip`, as an administrator plays it). It reads
/// its controls from /dev/tty, so it runs under `script`, which gives it a terminal.
pub fn asciinema_cat(file: &Path) -> Output {
    let command = if file.to_str().is_some_and(|s| s.ends_with(".gz")) {
        format!("gunzip -c '{}' > '{}.cast' && asciinema cat '{}.cast'", file.display(), file.display(), file.display())
    } else {
        format!("asciinema cat '{}'", file.display())
    };
    run("script", &["-qec", &command, "/dev/null"], Duration::from_secs(30))
}

/// The SHA-256 of a file, by `sha256sum`.
pub fn sha256(path: &Path) -> String {
    let out = run_with_timeout(Command::new("sha256sum").arg(path), None, Duration::from_secs(30));
    assert!(out.status.success(), "sha256sum failed:\n{}", describe(&out));
    stdout(&out).split_whitespace().next().unwrap_or_default().to_string()
}

/// `size` bytes of incompressible data in `path` (from /dev/urandom).
pub fn random_file(path: &Path, size: usize) {
    use std::io::Read;
    let mut data = vec![0u8; size];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut data)).expect("reading /dev/urandom");
    std::fs::write(path, data).expect("writing a test file");
}
