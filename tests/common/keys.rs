//! SSH client keys made with the real `ssh-keygen`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::{describe, run_with_timeout};

/// An unencrypted ed25519 key pair on disk.
#[derive(Debug, Clone)]
pub struct ClientKey {
    /// The private key file (what `ssh -i` takes).
    pub private: PathBuf,
    /// The `.pub` file next to it.
    pub public: PathBuf,
    /// The public key line (`ssh-ed25519 AAAA… comment`).
    pub line: String,
}

impl ClientKey {
    /// Makes a new key pair `dir/name` and `dir/name.pub` (the directory is created).
    pub fn generate(dir: &Path, name: &str) -> ClientKey {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let private = dir.join(name);
        let out = run_with_timeout(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", &format!("{name}@test")])
                .arg("-f")
                .arg(&private),
            None,
            Duration::from_secs(20),
        );
        assert!(out.status.success(), "ssh-keygen failed:\n{}", describe(&out));
        let public = dir.join(format!("{name}.pub"));
        let line = std::fs::read_to_string(&public)
            .unwrap_or_else(|e| panic!("reading {}: {e}", public.display()))
            .trim()
            .to_string();
        ClientKey { private, public, line }
    }

    /// The `SHA256:…` fingerprint as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        let out = run_with_timeout(
            Command::new("ssh-keygen").args(["-l", "-E", "sha256", "-f"]).arg(&self.public),
            None,
            Duration::from_secs(20),
        );
        assert!(out.status.success(), "ssh-keygen -l failed:\n{}", describe(&out));
        String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).unwrap_or_default().to_string()
    }
}
