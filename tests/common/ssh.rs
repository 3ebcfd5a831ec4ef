//! [`Ssh`]: the real OpenSSH client, detached from any terminal, answering every prompt
//! (password, keyboard-interactive) through a generated `SSH_ASKPASS` script that logs
//! each prompt it was shown, so tests can assert what the gateway asked.
//!
//! ```ignore
//! let out = Ssh::new(gw.ssh_port, "alice")
//!     .identity(&key)
//!     .on_prompt("Authenticator code", &code)
//!     .run(&["web1"]);
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tempfile::TempDir;

use super::keys::ClientKey;
use super::process::run_with_timeout;

/// The askpass program. It gets the prompt as `$1`, appends it to `prompts.log`, then
/// answers from the first rule whose pattern is a substring of the prompt (each rule's
/// answers are used in order, one per prompt), else from the fallback sequence. When
/// nothing is left it exits 1, which makes ssh give up that prompt.
const ASKPASS: &str = r#"#!/bin/bash
dir="$(dirname "$0")"
prompt="$1"
printf '%s\n' "$prompt" >> "$dir/prompts.log"
answer_from() { # $1 = file of answers, $2 = file holding how many were used
  local used total
  used=$(cat "$2" 2>/dev/null || echo 0)
  total=$(wc -l < "$1")
  if [ "$used" -ge "$total" ]; then return 1; fi
  echo $((used + 1)) > "$2"
  sed -n "$((used + 1))p" "$1"
}
i=0
while [ -f "$dir/rule.$i.pattern" ]; do
  pattern=$(cat "$dir/rule.$i.pattern")
  case "$prompt" in
    *"$pattern"*)
      if answer_from "$dir/rule.$i.answers" "$dir/rule.$i.used"; then exit 0; fi
      printf '%s\n' "[askpass] no answer left for: $prompt" >> "$dir/prompts.log"
      exit 1
      ;;
  esac
  i=$((i + 1))
done
if answer_from "$dir/fallback" "$dir/fallback.used"; then exit 0; fi
printf '%s\n' "[askpass] no answer for: $prompt" >> "$dir/prompts.log"
exit 1
"#;

/// How long one ssh run may take by default.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A configured OpenSSH client invocation. Reusable: each `run` starts with fresh answer
/// counters and an empty prompt log.
pub struct Ssh {
    port: u16,
    host: String,
    user: String,
    identity: Option<PathBuf>,
    rules: Vec<(String, Vec<String>)>,
    fallback: Vec<String>,
    preferred: Option<String>,
    options: Vec<String>,
    args: Vec<String>,
    stdin: Option<String>,
    timeout: Duration,
    dir: TempDir,
}

impl Ssh {
    /// `ssh -p PORT -l USER 127.0.0.1`. `user` may carry a target (`alice:web1`).
    pub fn new(port: u16, user: &str) -> Ssh {
        let dir = tempfile::Builder::new().prefix("gatehouse-ssh-").tempdir().expect("creating a temp dir");
        Ssh {
            port,
            host: "127.0.0.1".into(),
            user: user.to_string(),
            identity: None,
            rules: Vec::new(),
            fallback: Vec::new(),
            preferred: None,
            options: Vec::new(),
            args: Vec::new(),
            stdin: None,
            timeout: RUN_TIMEOUT,
            dir,
        }
    }

    /// Offer this private key (and only this one: no agent, no default key files).
    pub fn identity(mut self, key: &ClientKey) -> Ssh {
        self.identity = Some(key.private.clone());
        self
    }

    /// Offer the private key at `path`.
    pub fn identity_file(mut self, path: &Path) -> Ssh {
        self.identity = Some(path.to_path_buf());
        self
    }

    /// Answer prompts containing "assword" with `password`.
    pub fn password(self, password: &str) -> Ssh {
        self.on_prompt("assword", password)
    }

    /// Answer the next prompt containing `pattern` with `answer`. Several calls with the
    /// same pattern answer successive prompts in order; the first matching rule wins.
    pub fn on_prompt(mut self, pattern: &str, answer: &str) -> Ssh {
        match self.rules.iter_mut().find(|(p, _)| p == pattern) {
            Some((_, answers)) => answers.push(answer.to_string()),
            None => self.rules.push((pattern.to_string(), vec![answer.to_string()])),
        }
        self
    }

    /// Answers for prompts no rule matches, in order.
    pub fn answers(mut self, answers: &[&str]) -> Ssh {
        self.fallback.extend(answers.iter().map(|s| s.to_string()));
        self
    }

    /// `-o PreferredAuthentications=…`, e.g. `"keyboard-interactive"`.
    pub fn preferred(mut self, methods: &str) -> Ssh {
        self.preferred = Some(methods.to_string());
        self
    }

    /// `-o OPTION` (e.g. `"ServerAliveInterval=5"`).
    pub fn option(mut self, option: &str) -> Ssh {
        self.options.push(option.to_string());
        self
    }

    /// An extra ssh argument placed before the destination (e.g. `"-v"`, `"-t"`, `"-N"`).
    pub fn arg(mut self, arg: &str) -> Ssh {
        self.args.push(arg.to_string());
        self
    }

    /// Standard input for the remote command (default: none).
    pub fn stdin(mut self, text: &str) -> Ssh {
        self.stdin = Some(text.to_string());
        self
    }

    /// How long a run may take before ssh is killed (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Ssh {
        self.timeout = timeout;
        self
    }

    /// Where this client keeps its askpass script and prompt log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn prepare(&self) -> PathBuf {
        let dir = self.dir.path();
        for entry in std::fs::read_dir(dir).expect("listing the ssh temp dir").flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        let script = dir.join("askpass");
        std::fs::write(&script, ASKPASS).expect("writing the askpass script");
        set_mode(&script, 0o755);
        for (i, (pattern, answers)) in self.rules.iter().enumerate() {
            std::fs::write(dir.join(format!("rule.{i}.pattern")), pattern).expect("writing an askpass rule");
            std::fs::write(dir.join(format!("rule.{i}.answers")), lines(answers)).expect("writing an askpass rule");
        }
        std::fs::write(dir.join("fallback"), lines(&self.fallback)).expect("writing the askpass fallback");
        std::fs::write(dir.join("prompts.log"), "").expect("creating the prompt log");
        script
    }

    /// The full command line `run` would execute (for messages and for `expect` scripts).
    pub fn command(&self, remote: &[&str]) -> Command {
        let script = self.prepare();
        let mut cmd = Command::new("setsid");
        cmd.arg("ssh")
            .args(["-F", "/dev/null", "-p", &self.port.to_string(), "-l", &self.user])
            .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=no"])
            .args(["-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
            // LogLevel stays INFO: keyboard-interactive instructions reach stderr.
            .args(["-o", "NumberOfPasswordPrompts=3"]);
        match &self.identity {
            Some(path) => cmd.arg("-o").arg(format!("IdentityFile={}", path.display())),
            // A file that does not exist: keeps ssh from trying ~/.ssh/id_* keys.
            None => cmd.arg("-o").arg(format!("IdentityFile={}", self.dir.path().join("no-key").display())),
        };
        if let Some(p) = &self.preferred {
            cmd.arg("-o").arg(format!("PreferredAuthentications={p}"));
        }
        for o in &self.options {
            cmd.arg("-o").arg(o);
        }
        cmd.args(&self.args).arg(&self.host);
        if !remote.is_empty() {
            cmd.arg("--").args(remote);
        }
        cmd.env("SSH_ASKPASS", &script).env("SSH_ASKPASS_REQUIRE", "force");
        cmd.env_remove("SSH_AUTH_SOCK");
        cmd
    }

    /// Connects and runs `remote` (empty: ask for a shell), killing ssh after the timeout.
    pub fn run(&self, remote: &[&str]) -> Output {
        let mut cmd = self.command(remote);
        run_with_timeout(&mut cmd, self.stdin.as_deref(), self.timeout)
    }

    /// Every prompt the askpass script was shown during the last run, in order.
    pub fn prompts_seen(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("prompts.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn lines(items: &[String]) -> String {
    items.iter().map(|s| format!("{s}\n")).collect()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
