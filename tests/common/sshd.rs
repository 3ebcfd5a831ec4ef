//! [`Sshd`]: a throwaway real OpenSSH server on 127.0.0.1, used as a target behind the
//! gateway. Everything it needs lives in its own temp dir: config, host key,
//! `authorized_keys`, pid file, log. It accepts public keys for the user running the tests
//! (root in CI, hence `PermitRootLogin prohibit-password`).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::keys::ClientKey;
use super::process::{describe, kill_child, run_with_timeout, stdout};
use super::servers::{free_port, read_or_empty};

const SSHD: &str = "/usr/sbin/sshd";
const START_TIMEOUT: Duration = Duration::from_secs(20);
const START_ATTEMPTS: u32 = 4;

/// A running sshd; dropping it kills the server and deletes its dir.
pub struct Sshd {
    pub port: u16,
    /// The server's host key, `ssh-ed25519 AAAA…` (no comment): what the gateway pins.
    pub host_key_pub: String,
    /// The account to log in as (the user running the tests).
    pub user: String,
    pub dir: TempDir,
    child: Option<Child>,
}

impl Sshd {
    /// Starts a server that lets `authorized_pubkey` (a public key line) log in as
    /// [`Sshd::user`].
    pub fn start(authorized_pubkey: &str) -> Sshd {
        Sshd::start_with(authorized_pubkey, "")
    }

    /// Starts a server for a fresh key pair and returns the private key file, which is
    /// what the gateway is given (`target add … --key-file`). The file lives as long as
    /// the server.
    pub fn start_with_new_key() -> (Sshd, PathBuf) {
        let dir = tempfile::Builder::new().prefix("gatehouse-sshd-").tempdir().expect("creating a temp dir");
        let key = ClientKey::generate(&dir.path().join("client"), "gateway");
        let sshd = Sshd::start_in(dir, &key.line, "");
        (sshd, key.private)
    }

    /// Like [`Sshd::start`] with extra `sshd_config` lines (they come first, so they win).
    pub fn start_with(authorized_pubkey: &str, extra_config: &str) -> Sshd {
        let dir = tempfile::Builder::new().prefix("gatehouse-sshd-").tempdir().expect("creating a temp dir");
        Sshd::start_in(dir, authorized_pubkey, extra_config)
    }

    fn start_in(dir: TempDir, authorized_pubkey: &str, extra_config: &str) -> Sshd {
        // sshd's privilege-separation directory; scripts/test makes it too.
        let _ = std::fs::create_dir_all("/run/sshd");
        let host_key = dir.path().join("ssh_host_ed25519_key");
        let out = run_with_timeout(
            Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "target", "-f"]).arg(&host_key),
            None,
            Duration::from_secs(20),
        );
        assert!(out.status.success(), "ssh-keygen (host key) failed:\n{}", describe(&out));
        let host_key_pub = std::fs::read_to_string(dir.path().join("ssh_host_ed25519_key.pub"))
            .expect("reading the host public key")
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        std::fs::write(dir.path().join("authorized_keys"), format!("{}\n", authorized_pubkey.trim()))
            .expect("writing authorized_keys");
        let user = current_user();
        let mut sshd = Sshd { port: 0, host_key_pub, user, dir, child: None };
        for attempt in 1..=START_ATTEMPTS {
            sshd.port = free_port();
            sshd.write_config(extra_config);
            if sshd.spawn_and_wait(attempt) {
                return sshd;
            }
            let log = sshd.log();
            if !(log.contains("Address already in use") || log.contains("Cannot bind")) || attempt == START_ATTEMPTS {
                panic!("sshd did not start:\n{log}");
            }
        }
        unreachable!("the loop returns or panics")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("sshd_config")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    fn write_config(&self, extra: &str) {
        let d = self.dir.path().display();
        let text = format!(
            "{extra}\n\
             ListenAddress 127.0.0.1\n\
             Port {port}\n\
             HostKey {d}/ssh_host_ed25519_key\n\
             PidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             StrictModes no\n\
             UsePAM no\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             AllowTcpForwarding yes\n\
             Subsystem sftp internal-sftp\n\
             LogLevel VERBOSE\n",
            port = self.port,
        );
        std::fs::write(self.config_path(), text).expect("writing sshd_config");
    }

    /// Spawns sshd and waits for "Server listening"; false when it exited first.
    fn spawn_and_wait(&mut self, attempt: u32) -> bool {
        let mut log = OpenOptions::new().create(true).append(true).open(self.log_path()).expect("opening the sshd log");
        let _ = writeln!(log, "[harness] start attempt {attempt} on port {}", self.port);
        let err = log.try_clone().expect("cloning the log file handle");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        let listening = format!("Server listening on 127.0.0.1 port {}", self.port);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return false;
            }
            if self.log().contains(&listening) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        panic!("sshd did not listen within {START_TIMEOUT:?}:\n{}", self.log());
    }

    /// Lets one more public key log in.
    pub fn authorize(&self, pubkey: &str) {
        let mut f = OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("authorized_keys"))
            .expect("opening authorized_keys");
        writeln!(f, "{}", pubkey.trim()).expect("appending to authorized_keys");
    }

    /// The process id of the listening sshd.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// The server's log (sshd -e, LogLevel VERBOSE): accepted keys, sessions, subsystems.
    pub fn log(&self) -> String {
        read_or_empty(&self.log_path())
    }

    /// Stops the server (SIGKILL: sshd -D has no state worth a clean shutdown).
    pub fn stop(&mut self) {
        kill_child(&mut self.child);
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The name of the user running the tests.
pub fn current_user() -> String {
    let out = run_with_timeout(Command::new("id").arg("-un"), None, Duration::from_secs(10));
    let name = stdout(&out).trim().to_string();
    if name.is_empty() { "root".into() } else { name }
}
