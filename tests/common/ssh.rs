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
/// nothing is left it exits 1, which makes ssh give up that prompt. An answer
/// `@file:PATH` waits for the test to write PATH and answers its content.
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
  line=$(sed -n "$((used + 1))p" "$1")
  case "$line" in
    @file:*) # an answer the test writes later (a mailed code): wait for it, up to 30 s
      f="${line#@file:}"
      for _ in $(seq 600); do [ -f "$f" ] && break; sleep 0.05; done
      [ -f "$f" ] || return 1
      cat "$f"; echo ;;
    *) printf '%s\n' "$line" ;;
  esac
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

    /// Answer the next prompt containing `pattern` with what the test writes to `path`
    /// while ssh waits (e.g. a code mailed during the login); see [`write_answer`].
    pub fn on_prompt_from_file(self, pattern: &str, path: &Path) -> Ssh {
        let answer = format!("@file:{}", path.display());
        self.on_prompt(pattern, &answer)
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

    /// The ssh arguments (after the program name) for `remote`.
    fn ssh_args(&self, remote: &[&str]) -> Vec<String> {
        let mut a: Vec<String> =
            ["-F", "/dev/null", "-p", &self.port.to_string(), "-l", &self.user].iter().map(|s| s.to_string()).collect();
        let mut opt = |o: String| {
            a.push("-o".into());
            a.push(o);
        };
        // ssh keeps the first value it sees for an option: the test's own come first.
        for o in &self.options {
            opt(o.clone());
        }
        if let Some(p) = &self.preferred {
            opt(format!("PreferredAuthentications={p}"));
        }
        opt("StrictHostKeyChecking=no".into());
        opt("UserKnownHostsFile=/dev/null".into());
        opt("GlobalKnownHostsFile=/dev/null".into());
        opt("BatchMode=no".into());
        opt("ConnectTimeout=10".into());
        opt("IdentitiesOnly=yes".into());
        opt("IdentityAgent=none".into());
        // LogLevel stays INFO: keyboard-interactive instructions reach stderr.
        opt("NumberOfPasswordPrompts=3".into());
        match &self.identity {
            Some(path) => opt(format!("IdentityFile={}", path.display())),
            // No key: no public-key attempt at all (and no ~/.ssh/id_* keys).
            None => opt("PubkeyAuthentication=no".into()),
        }
        a.extend(self.args.iter().cloned());
        a.push(self.host.clone());
        if !remote.is_empty() {
            a.push("--".into());
            a.extend(remote.iter().map(|s| s.to_string()));
        }
        a
    }

    /// The command `run` executes: `setsid ssh …` (no controlling terminal, so every
    /// prompt goes to the askpass script).
    pub fn command(&self, remote: &[&str]) -> Command {
        let script = self.prepare();
        let mut cmd = Command::new("setsid");
        cmd.arg("ssh").args(self.ssh_args(remote));
        cmd.env("SSH_ASKPASS", &script).env("SSH_ASKPASS_REQUIRE", "force").env_remove("SSH_AUTH_SOCK");
        cmd
    }

    /// Connects and runs `remote` (empty: ask for a shell), killing ssh after the timeout.
    pub fn run(&self, remote: &[&str]) -> Output {
        let mut cmd = self.command(remote);
        run_with_timeout(&mut cmd, self.stdin.as_deref(), self.timeout)
    }

    /// Runs ssh on a pseudo-terminal under `expect`, for interactive sessions (menus,
    /// shells): login prompts still go to the askpass rules, and `body` is Tcl/expect
    /// code run after `spawn`, e.g.
    /// `expect "web1" { send "1\r" }; expect "$ "; send "exit\r"; expect eof`.
    /// `set timeout` defaults to 30 seconds; a `timeout` pattern is up to `body`.
    /// Returns expect's output (the terminal transcript on stdout).
    pub fn interact(&self, remote: &[&str], body: &str) -> Output {
        let script = self.prepare();
        let mut spawn = String::from("spawn -noecho ssh");
        for arg in self.ssh_args(remote) {
            spawn.push(' ');
            spawn.push_str(&tcl_word(&arg));
        }
        let program = format!("set timeout 30\nlog_user 1\n{spawn}\n{body}\n");
        let file = self.dir.path().join("session.exp");
        std::fs::write(&file, program).expect("writing the expect script");
        let mut cmd = Command::new("expect");
        cmd.arg("-f").arg(&file);
        cmd.env("SSH_ASKPASS", &script).env("SSH_ASKPASS_REQUIRE", "force").env_remove("SSH_AUTH_SOCK");
        run_with_timeout(&mut cmd, None, self.timeout)
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

/// `s` as one Tcl word (braces, or backslash escapes when it has braces or backslashes).
fn tcl_word(s: &str) -> String {
    if !s.is_empty() && !s.contains(['{', '}', '\\']) {
        return format!("{{{s}}}");
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '$' | '[' | ']' | '{' | '}') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `ssh -v` logs "Authenticated to" only once every auth step, the gate included, passed.
pub fn authenticated(out: &Output) -> bool {
    String::from_utf8_lossy(&out.stderr).contains("Authenticated to")
}

/// Writes an answer for [`Ssh::on_prompt_from_file`] in one step (the askpass script never
/// sees half of it).
pub fn write_answer(path: &Path, answer: &str) {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, answer).expect("writing an answer");
    std::fs::rename(&tmp, path).expect("publishing an answer");
}

fn lines(items: &[String]) -> String {
    items.iter().map(|s| format!("{s}\n")).collect()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
