//! What the shell's own integration tests share: a real OpenSSH sshd target on loopback, a
//! gateway in a temp dir, and a [`Terminal`] driven from the test like the SSH frontend
//! would drive it.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_core::targets::{self, CredentialKind, Grantee, NewTarget};
use gatehouse_core::users::{self, NewUser};
use gatehouse_core::{Config, Gateway};
use gatehouse_shell::{Input, Output, Terminal, Visitor};
use tempfile::TempDir;
use tokio::sync::mpsc;

/// A running sshd; dropping it kills it.
pub struct Sshd {
    pub port: u16,
    pub host_key: String,
    pub client_key: String,
    pub user: String,
    pub dir: TempDir,
    child: Child,
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "t", "-f"])
        .arg(path)
        .status()
        .expect("running ssh-keygen")
        .success();
    assert!(ok, "ssh-keygen failed");
}

fn pub_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .expect("reading a public key")
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("running id");
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if name.is_empty() { "root".into() } else { name }
}

impl Sshd {
    pub fn start() -> Sshd {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        keygen(&d.join("host"));
        keygen(&d.join("client"));
        std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).expect("authorized_keys");
        let _ = std::fs::create_dir_all("/run/sshd");
        for _ in 0..4 {
            let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
            let conf = format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host\nPidFile {d}/pid\nAuthorizedKeysFile {d}/authorized_keys\n\
                 StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n",
                d = d.display()
            );
            std::fs::write(d.join("sshd_config"), conf).expect("sshd_config");
            let log = std::fs::File::create(d.join("log")).expect("log");
            let child = Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .stdin(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("starting sshd");
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut child = Some(child);
            while Instant::now() < deadline {
                let text = std::fs::read_to_string(d.join("log")).unwrap_or_default();
                if text.contains("Server listening") {
                    return Sshd {
                        port,
                        host_key: pub_line(&d.join("host.pub")),
                        client_key: std::fs::read_to_string(d.join("client")).expect("client key"),
                        user: current_user(),
                        child: child.take().expect("child is set until returned"),
                        dir,
                    };
                }
                if let Some(Ok(Some(_))) = child.as_mut().map(|c| c.try_wait()) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Some(mut c) = child {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        panic!("sshd did not start: {}", std::fs::read_to_string(d.join("log")).unwrap_or_default());
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gateway in a temp dir with one user, `alice`.
pub struct World {
    pub gw: Gateway,
    pub dir: TempDir,
}

impl World {
    pub async fn new() -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config { data_dir: dir.path().join("data"), node_name: "node-a".into(), ..Config::default() };
        let gw = Gateway::open(config).await.expect("opening the gateway");
        users::create(&gw.db, NewUser { name: "alice", password: Some("correct horse 1"), ..Default::default() })
            .await
            .expect("creating alice");
        World { gw, dir }
    }

    /// Adds `sshd` as target `name` (key credential), optionally pinned, granted to alice.
    pub async fn add_target(&self, name: &str, sshd: &Sshd, host_key: Option<&str>) {
        targets::create(
            &self.gw.db,
            &self.gw.vault,
            NewTarget {
                name,
                host: "127.0.0.1",
                port: sshd.port,
                username: &sshd.user,
                credential_kind: CredentialKind::Key,
                credential: &sshd.client_key,
                host_key,
            },
        )
        .await
        .expect("creating the target");
        targets::grant(&self.gw.db, name, Grantee::User("alice")).await.expect("granting");
    }

    pub async fn visitor(&self) -> Visitor {
        Visitor {
            user: users::get(&self.gw.db, "alice").await.expect("alice"),
            source: "127.0.0.1:50000".into(),
            enrollment_only: false,
            passed_with: "totp".into(),
            app_passcode: None,
        }
    }
}

/// The frontend's side of a [`Terminal`].
pub struct Remote {
    pub input: mpsc::Sender<Input>,
    pub output: mpsc::Receiver<Output>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: Option<u32>,
    pub closed: bool,
}

pub fn terminal(pty: bool) -> (Terminal, Remote) {
    let (in_tx, in_rx) = mpsc::channel(16);
    let (out_tx, out_rx) = mpsc::channel(16);
    let term = Terminal {
        input: in_rx,
        output: out_tx,
        term: pty.then(|| "xterm".to_string()),
        cols: 100,
        rows: 30,
        typeahead: Vec::new(),
        agent: None,
    };
    (term, Remote { input: in_tx, output: out_rx, stdout: Vec::new(), stderr: Vec::new(), exit: None, closed: false })
}

impl Remote {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn take(&mut self, out: Output) {
        match out {
            Output::Data(d) => self.stdout.extend_from_slice(&d),
            Output::Stderr(d) => self.stderr.extend_from_slice(&d),
            Output::ExitStatus(s) => self.exit = Some(s),
            Output::Close => self.closed = true,
        }
    }

    /// Reads output until stdout contains `needle` (panics after 20 s with what was seen).
    pub async fn expect(&mut self, needle: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !self.text().contains(needle) {
            match tokio::time::timeout_at(deadline, self.output.recv()).await {
                Ok(Some(out)) => self.take(out),
                Ok(None) | Err(_) => panic!(
                    "waited for {needle:?}; stdout: {:?} stderr: {:?}",
                    self.text(),
                    String::from_utf8_lossy(&self.stderr)
                ),
            }
        }
    }

    /// Reads everything until the shell closes the channel.
    pub async fn until_closed(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !self.closed {
            match tokio::time::timeout_at(deadline, self.output.recv()).await {
                Ok(Some(out)) => self.take(out),
                Ok(None) => break,
                Err(_) => panic!("the shell did not close; stdout: {:?}", self.text()),
            }
        }
    }

    pub async fn send(&self, bytes: &[u8]) {
        self.input.send(Input::Data(bytes.to_vec())).await.expect("the shell reads input");
    }
}
