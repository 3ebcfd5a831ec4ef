//! What the shell's own integration tests share: a real OpenSSH sshd target on loopback, a
//! gateway in a temp dir, and a [`Terminal`] driven from the test like the SSH frontend
//! would drive it.
//!
//! The sshd target is the end-to-end harness's own [`Sshd`] (`tests/common`), included
//! here with the few modules it stands on, not copied.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use gatehouse_core::targets::{self, CredentialKind, Grantee, NewTarget};
use gatehouse_core::users::{self, NewUser};
use gatehouse_core::{Config, Gateway};
use gatehouse_shell::{Input, Output, Terminal, Visitor};
use tempfile::TempDir;
use tokio::sync::mpsc;

// The end-to-end harness's sshd and what it needs: key pairs, processes with deadlines,
// free ports and log files.
#[path = "../../../tests/common/keys.rs"]
pub mod keys;
#[path = "../../../tests/common/process.rs"]
pub mod process;
#[path = "../../../tests/common/servers.rs"]
pub mod servers;
#[path = "../../../tests/common/sshd.rs"]
pub mod sshd;

pub use sshd::Sshd;

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

    /// Adds `sshd` as target `name`, reached with the private key in `key_file`, optionally
    /// pinned, granted to alice.
    pub async fn add_target(&self, name: &str, sshd: &Sshd, key_file: &Path, host_key: Option<&str>) {
        let key = std::fs::read_to_string(key_file).expect("reading the target's key");
        targets::create(
            &self.gw.db,
            &self.gw.vault,
            NewTarget {
                name,
                host: "127.0.0.1",
                port: sshd.port,
                username: &sshd.user,
                credential_kind: CredentialKind::Key,
                credential: &key,
                host_key,
            },
        )
        .await
        .expect("creating the target");
        targets::grant(&self.gw.db, name, Grantee::User("alice")).await.expect("granting");
    }

    pub async fn visitor(&self) -> Visitor {
        let user = users::get(&self.gw.db, "alice").await.expect("alice");
        let login = gatehouse_core::access::Admitted {
            user_id: user.id,
            user_name: user.name.clone(),
            passage: gatehouse_core::access::Passage::SecondFactor,
            key: None,
        };
        Visitor { user, source: "127.0.0.1:50000".into(), passed_with: "totp".into(), login }
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
