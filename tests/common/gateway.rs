//! [`Gw`]: one gateway under test, living in a temp dir: its config file, its data dir,
//! its database (SQLite in the dir or a fresh PostgreSQL database), the CLI against that
//! config, and `gatehouse serve` with its log.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::keys::ClientKey;
use super::postgres::{Backend, fresh_postgres_url};
use super::process::{describe, run_with_timeout, stdout, terminate};
use super::servers::free_port;
use super::{bin, random_suffix};

/// How long `serve` may take to listen on both ports.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one CLI command may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// Start attempts when a port picked by [`free_port`] was taken in the meantime.
const START_ATTEMPTS: u32 = 4;

/// A gateway under test. `new` prepares it; `start` runs `gatehouse serve`; dropping it
/// stops the server and deletes the dir.
pub struct Gw {
    pub dir: TempDir,
    pub ssh_port: u16,
    pub web_port: u16,
    pub database_url: String,
    pub backend: Backend,
    /// TOML appended to the generated config (top-level keys first, then tables).
    extra_toml: String,
    /// The host name of `public_url` and of [`Gw::web_url`] when not 127.0.0.1: a name
    /// such as `localhost` or `other.localhost` (Chromium resolves `*.localhost` to
    /// loopback), since WebAuthn refuses an IP address as the relying party.
    public_host: Option<String>,
    /// Environment for `serve` and the CLI, on top of a `GATEHOUSE_*`-free environment.
    env: Vec<(String, String)>,
    child: Option<Child>,
    last_exit: Option<ExitStatus>,
}

impl Gw {
    /// A gateway on `backend` with sane test settings; does not start `serve`.
    pub fn new(backend: Backend) -> Gw {
        Gw::with_config(backend, "")
    }

    /// Like [`Gw::new`] with `extra_toml` appended to the config file. Top-level keys must
    /// come before tables in it. A `[lockout]` table there replaces the harness default
    /// (user threshold 5, source threshold 50, 15-minute window and lock).
    pub fn with_config(backend: Backend, extra_toml: &str) -> Gw {
        let dir = tempfile::Builder::new().prefix("gatehouse-test-").tempdir().expect("creating a temp dir");
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("data").join("gatehouse.db").display()),
            Backend::Postgres => fresh_postgres_url(),
        };
        let gw = Gw {
            dir,
            ssh_port: free_port(),
            web_port: free_port(),
            database_url,
            backend,
            extra_toml: extra_toml.to_string(),
            public_host: None,
            env: Vec::new(),
            child: None,
            last_exit: None,
        };
        gw.write_config();
        gw
    }

    /// A second node of the same installation: its own dir and ports, the same database
    /// and the same secrets key (copied from this node's data dir).
    pub fn join(&self) -> Gw {
        let key = self.data_dir().join("secret.key");
        if !key.exists() {
            self.cli_ok(&["migrate"]);
        }
        let dir = tempfile::Builder::new().prefix("gatehouse-test-").tempdir().expect("creating a temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("creating the second node's data dir");
        std::fs::copy(&key, data.join("secret.key")).expect("copying the secrets key");
        let gw = Gw {
            dir,
            ssh_port: free_port(),
            web_port: free_port(),
            database_url: self.database_url.clone(),
            backend: self.backend,
            extra_toml: self.extra_toml.clone(),
            public_host: self.public_host.clone(),
            env: self.env.clone(),
            child: None,
            last_exit: None,
        };
        gw.write_config();
        gw
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("gatehouse.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Where `serve` writes its standard output and error.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    /// The web UI's base address, e.g. `http://127.0.0.1:41234` (or with the host name
    /// set by [`Gw::set_public_host`]).
    pub fn web_url(&self) -> String {
        let scheme = if self.web_tls() { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.public_host.as_deref().unwrap_or("127.0.0.1"), self.web_port)
    }

    /// Makes `public_url` (and [`Gw::web_url`]) name `host` instead of 127.0.0.1, e.g.
    /// `localhost` for the security-key tests; takes effect at the next start.
    pub fn set_public_host(&mut self, host: &str) {
        self.public_host = Some(host.to_string());
        self.write_config();
    }

    /// Whether the web UI serves HTTPS: only when the test's own `[web]` table leaves TLS
    /// on (the product's default); every other test gets plain HTTP.
    pub fn web_tls(&self) -> bool {
        self.extra_toml.contains("[web]") && !self.extra_toml.contains("tls = \"off\"")
    }

    /// Sets an environment variable for `serve` and the CLI from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Replaces the extra TOML and rewrites the config (takes effect at the next start).
    pub fn set_extra_config(&mut self, extra_toml: &str) {
        self.extra_toml = extra_toml.to_string();
        self.write_config();
    }

    fn write_config(&self) {
        let mut text = format!(
            "# written by the test harness\n\
             data_dir = {}\n\
             database_url = {}\n\
             ssh_listen = \"127.0.0.1:{}\"\n\
             web_listen = \"127.0.0.1:{}\"\n\
             public_url = \"{}://{}:{}\"\n\
             node_name = \"test-{}\"\n",
            toml_string(&self.data_dir().display().to_string()),
            toml_string(&self.database_url),
            self.ssh_port,
            self.web_port,
            if self.web_tls() { "https" } else { "http" },
            self.public_host.as_deref().unwrap_or("127.0.0.1"),
            self.web_port,
            self.ssh_port,
        );
        text.push_str(&self.extra_toml);
        text.push('\n');
        // Plain HTTP for the web tests' clients; tests/web_tls.rs covers the default (HTTPS).
        if !self.extra_toml.contains("[web]") {
            text.push_str("[web]\ntls = \"off\"\n");
        }
        if !self.extra_toml.contains("[lockout]") {
            text.push_str(
                "[lockout]\nuser_threshold = 5\nsource_threshold = 50\nwindow_secs = 900\nduration_secs = 900\n",
            );
        }
        std::fs::write(self.config_path(), text).expect("writing the gateway config");
    }

    /// A `gatehouse --config FILE` command with a clean environment: no `GATEHOUSE_*`
    /// variable of the test runner leaks in (they would be read as config keys).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(bin());
        for (key, _) in std::env::vars() {
            if key.starts_with("GATEHOUSE_") {
                cmd.env_remove(&key);
            }
        }
        // Plain log files: tracing's colours would put escape codes between the words
        // tests look for.
        cmd.env("NO_COLOR", "1");
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.arg("--config").arg(self.config_path());
        cmd
    }

    /// Runs `gatehouse --config FILE <args>` with no standard input.
    pub fn cli(&self, args: &[&str]) -> Output {
        run_with_timeout(self.command().args(args), None, CLI_TIMEOUT)
    }

    /// Runs `gatehouse --config FILE <args>` with `stdin` as standard input.
    pub fn cli_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run_with_timeout(self.command().args(args), Some(stdin), CLI_TIMEOUT)
    }

    /// Runs a command that must succeed; returns its standard output.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "gatehouse {args:?} failed:\n{}", describe(&out));
        stdout(&out)
    }

    /// Runs a command that must fail; returns its standard error.
    pub fn cli_err(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(!out.status.success(), "gatehouse {args:?} should have failed:\n{}", describe(&out));
        super::process::stderr(&out)
    }

    /// Starts `gatehouse serve` and waits until the SSH port accepts connections and
    /// `/healthz` answers. Retries with new ports when one was taken in the meantime.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "the gateway is already running");
        for attempt in 1..=START_ATTEMPTS {
            self.write_config();
            let mut log =
                OpenOptions::new().create(true).append(true).open(self.log_path()).expect("opening the serve log");
            let _ = writeln!(log, "[harness] start attempt {attempt}: ssh {} web {}", self.ssh_port, self.web_port);
            let err = log.try_clone().expect("cloning the log file handle");
            let child = self
                .command()
                .arg("serve")
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(err))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin().display()));
            self.child = Some(child);
            match self.wait_ready() {
                Ok(()) => return,
                Err(exited) => {
                    let log = self.log();
                    let taken = log.contains("in use") || log.contains("AddrInUse");
                    if exited && taken && attempt < START_ATTEMPTS {
                        self.ssh_port = free_port();
                        self.web_port = free_port();
                        continue;
                    }
                    self.stop();
                    panic!("gatehouse serve did not become ready:\n{}", self.log());
                }
            }
        }
    }

    /// Ok when ready; Err(true) when the server exited, Err(false) on a timeout.
    fn wait_ready(&mut self) -> Result<(), bool> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.last_exit = Some(status);
                self.child = None;
                return Err(true);
            }
            let web_ready = if self.web_tls() { port_open(self.web_port) } else { healthz(self.web_port) };
            if port_open(self.ssh_port) && web_ready {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(false)
    }

    /// The process id of the running `serve`.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether `serve` is running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops `serve` with SIGTERM (SIGKILL after 15 s) and returns how it exited.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let Some(mut child) = self.child.take() else { return self.last_exit };
        terminate(child.id());
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    let _ = child.kill();
                    break child.wait().ok();
                }
            }
        };
        self.last_exit = status;
        status
    }

    /// Kills `serve` with SIGKILL (a crash: no clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            self.last_exit = child.wait().ok();
        }
    }

    /// Everything `serve` printed so far (standard output and error, interleaved).
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(self.log_path()) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// The one-time password of the first administrator, as `serve` printed it on the
    /// first start.
    pub fn bootstrap_password(&self) -> Option<String> {
        let log = self.log();
        let line = log.lines().find(|l| l.contains("One-time password:"))?;
        line.split("One-time password:").nth(1).map(|p| p.trim().to_string()).filter(|p| !p.is_empty())
    }

    /// Panics with the command's output and the gateway log unless `out` succeeded.
    pub fn assert_success(&self, out: &Output, what: &str) {
        assert!(out.status.success(), "{what} failed:\n{}\n--- gateway log ---\n{}", describe(out), self.log());
    }

    /// Panics with the command's output and the gateway log if `out` succeeded.
    pub fn assert_failure(&self, out: &Output, what: &str) {
        assert!(
            !out.status.success(),
            "{what} should have failed:\n{}\n--- gateway log ---\n{}",
            describe(out),
            self.log()
        );
    }

    /// Asserts that an `ssh -v` run got through every login step, the gate included; the
    /// panic shows ssh's output and the gateway log.
    pub fn assert_logged_in(&self, out: &Output, what: &str) {
        assert!(
            super::ssh::authenticated(out),
            "{what}: expected to get in\n{}\n--- gateway log ---\n{}",
            describe(out),
            self.log()
        );
    }

    /// Asserts that an `ssh -v` run was refused at the login (exit 255, never
    /// authenticated).
    pub fn assert_refused(&self, out: &Output, what: &str) {
        assert!(
            !super::ssh::authenticated(out),
            "{what}: expected to be refused\n{}\n--- gateway log ---\n{}",
            describe(out),
            self.log()
        );
        assert_eq!(out.status.code(), Some(255), "{what}: ssh should fail to log in\n{}", describe(out));
    }

    /// Runs `ssh` and asserts it succeeded; on failure the panic shows ssh's output, the
    /// prompts it was shown and the gateway log.
    pub fn ssh_ok(&self, ssh: &super::Ssh, remote: &[&str]) -> Output {
        let out = ssh.run(remote);
        assert!(
            out.status.success(),
            "ssh {remote:?} failed:\n{}\n--- prompts seen ---\n{}\n--- gateway log ---\n{}",
            describe(&out),
            ssh.prompts_seen().join("\n"),
            self.log()
        );
        out
    }

    /// Runs `ssh` and asserts it failed (same diagnostics as [`Gw::ssh_ok`]).
    pub fn ssh_fails(&self, ssh: &super::Ssh, remote: &[&str]) -> Output {
        let out = ssh.run(remote);
        assert!(
            !out.status.success(),
            "ssh {remote:?} should have failed:\n{}\n--- prompts seen ---\n{}\n--- gateway log ---\n{}",
            describe(&out),
            ssh.prompts_seen().join("\n"),
            self.log()
        );
        out
    }

    /// The audit log's lines for events named `event` or starting with `event.`, newest
    /// first (`gatehouse audit`).
    pub fn audit(&self, event: &str) -> String {
        self.cli_ok(&["audit", "--event", event, "--limit", "500"])
    }

    /// A command that prints JSON (`--json`), parsed.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let text = self.cli_ok(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("gatehouse {args:?}: not JSON ({e}):\n{text}"))
    }

    /// A command that must fail the way every command fails: a non-zero exit and one
    /// line on stderr starting with `error:`, nothing on stdout. Returns that line.
    pub fn cli_refused(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = match stdin {
            Some(s) => self.cli_stdin(args, s),
            None => self.cli(args),
        };
        assert!(!out.status.success(), "gatehouse {args:?} should fail:\n{}", describe(&out));
        let err = super::stderr(&out);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "gatehouse {args:?}: expected a one-line error:\n{}", describe(&out));
        assert!(lines[0].starts_with("error:"), "gatehouse {args:?}: {err}");
        assert!(out.stdout.is_empty(), "gatehouse {args:?} printed to stdout on failure:\n{}", describe(&out));
        lines[0].to_string()
    }

    /// A command line clap rejects (missing or malformed argument): exit status 2, the
    /// error first. Returns stderr.
    pub fn cli_usage_error(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert_eq!(out.status.code(), Some(2), "gatehouse {args:?} should be a usage error:\n{}", describe(&out));
        let err = super::stderr(&out);
        assert!(err.starts_with("error:"), "gatehouse {args:?}: {err}");
        err
    }

    /// Creates a user with a password (`user add NAME --password-stdin`).
    pub fn add_user(&self, name: &str, password: &str) {
        let out = self.cli_stdin(&["user", "add", name, "--password-stdin"], &format!("{password}\n"));
        assert!(out.status.success(), "user add {name} failed:\n{}", describe(&out));
    }

    /// Makes a new ed25519 key pair in the temp dir and enrolls it for `user`.
    pub fn add_key(&self, user: &str) -> ClientKey {
        let key = self.new_key(user);
        let public = key.public.display().to_string();
        self.cli_ok(&["user", "add-key", user, "--key-file", &public]);
        key
    }

    /// Makes a new ed25519 key pair in the temp dir without enrolling it.
    pub fn new_key(&self, label: &str) -> ClientKey {
        ClientKey::generate(&self.dir.path().join("keys"), &format!("{label}-{}", random_suffix()))
    }

    /// Runs one SQL statement on the gateway's database (`sqlite3` or `psql`), for tests
    /// that must move a stored time, e.g. age a session's proofs past their window.
    pub fn sql(&self, statement: &str) -> String {
        let mut cmd = match self.backend {
            Backend::Sqlite => {
                let mut c = Command::new("sqlite3");
                c.arg(self.data_dir().join("gatehouse.db")).arg(statement);
                c
            }
            Backend::Postgres => {
                let mut c = Command::new("psql");
                c.args(["-v", "ON_ERROR_STOP=1", "-At", &self.database_url, "-c", statement]);
                c
            }
        };
        let out = run_with_timeout(&mut cmd, None, CLI_TIMEOUT);
        assert!(out.status.success(), "SQL {statement:?} failed:\n{}", describe(&out));
        stdout(&out)
    }

    /// Enrolls a TOTP for `user` (`factor totp enroll`) and returns the base32 secret
    /// from the printed otpauth URI.
    pub fn enroll_totp(&self, user: &str) -> String {
        let uri = self.cli_ok(&["factor", "totp", "enroll", user]);
        secret_from_uri(&uri).unwrap_or_else(|| panic!("no secret= in the enrollment output: {uri}"))
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `secret` parameter of an `otpauth://` URI.
pub fn secret_from_uri(text: &str) -> Option<String> {
    let start = text.find("secret=")? + "secret=".len();
    let rest = &text[start..];
    let end = rest.find(|c: char| c == '&' || c.is_whitespace()).unwrap_or(rest.len());
    Some(rest[..end].to_string()).filter(|s| !s.is_empty())
}

/// A TOML basic string literal.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(300)).is_ok()
}

/// Whether `GET /healthz` on 127.0.0.1:`port` answers 200.
pub fn healthz(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(300))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]);
    head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200")
}
