//! The load driver: N connections released at the same moment from one process, each a
//! full login with the harness's russh client, and what each ended with.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use russh::keys::PrivateKey;

use crate::common::raw::{ConnectError, RawClient, Step};
use crate::common::totp::{code_for_step, current_step};
use crate::system::{Counters, cpu_seconds};

/// What one connection is to do.
#[derive(Clone)]
pub enum Plan {
    /// Log in to the gateway as `u{user}` with the right code.
    Totp { user: usize },
    /// Answer wrong codes as `u{user}` until the gateway ends the login.
    WrongCode { user: usize },
    /// Public-key login to sshd, then an `internal-sftp` session (no shell: the account's
    /// shell startup files are no part of the login).
    Sshd,
}

/// Milliseconds spent in each step of an accepted login.
#[derive(Clone, Copy, Default)]
pub struct Phases {
    /// TCP connect, the version lines and the key exchange.
    pub handshake: f64,
    /// The signed public key (a partial success at the gateway, the end at sshd).
    pub publickey: f64,
    /// Starting keyboard-interactive up to the code prompt (gateway only).
    pub prompt: f64,
    /// The code answered up to the login's success (gateway only).
    pub code: f64,
    /// The session channel: open, shell or sftp, first answer, close.
    pub session: f64,
}

/// How one connection ended.
enum Outcome {
    /// Logged in and the session printed something.
    Accepted { latency: Duration, phases: Phases },
    /// Wrong codes refused until the login ended; `rounds` codes were sent.
    Refused { latency: Duration, rounds: usize },
    /// Closed by the server before its banner (a cap on logins in progress), with what it
    /// said instead or how the connection ended.
    NoBanner(String),
    /// Anything else, described.
    Unexpected(String),
}

/// Where the connections go, and the TOTP secrets of the gateway's users.
pub struct Driver {
    pub port: u16,
    key: Arc<PrivateKey>,
    secrets: Vec<String>,
    /// The latest TOTP step of each user's codes so far (0: none). The gateway accepts a
    /// code once, and only for a later step than the last accepted one.
    last_step: Vec<AtomicU64>,
    sshd_user: String,
    /// How long one connection may take before it counts as undecided.
    timeout: Duration,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

impl Driver {
    /// Logins to the gateway on `port` as `u0`, `u1`, … with `secrets[i]` as the TOTP
    /// secret of `u{i}`.
    pub fn gateway(port: u16, key: PrivateKey, secrets: Vec<String>, timeout: Duration) -> Driver {
        let last_step = secrets.iter().map(|_| AtomicU64::new(0)).collect();
        Driver { port, key: Arc::new(key), secrets, last_step, sshd_user: String::new(), timeout }
    }

    /// Logins to sshd on `port` as `user`.
    pub fn sshd(port: u16, key: PrivateKey, user: &str, timeout: Duration) -> Driver {
        let (secrets, last_step) = (Vec::new(), Vec::new());
        Driver { port, key: Arc::new(key), secrets, last_step, sshd_user: user.to_string(), timeout }
    }

    /// The code of `user` for the current step, or for the next one when the current one
    /// is spent (the gateway accepts one step either way), and that step.
    fn code(&self, user: usize) -> (String, u64) {
        let step = current_step().max(self.last_step[user].load(Ordering::Relaxed) + 1);
        self.last_step[user].fetch_max(step, Ordering::Relaxed);
        (code_for_step(&self.secrets[user], step), step)
    }

    /// The TOTP step that the codes of `plans` need at least: for each user, one after
    /// its last.
    pub fn needed_step(&self, plans: &[Plan]) -> u64 {
        plans
            .iter()
            .filter_map(|p| match p {
                Plan::Totp { user } | Plan::WrongCode { user } => {
                    Some(self.last_step[*user].load(Ordering::Relaxed) + 1)
                }
                Plan::Sshd => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// A code that no step the gateway accepts now (±1) produces.
    fn wrong_code(&self, user: usize) -> String {
        let (right, step) = self.code(user);
        let valid: Vec<String> =
            (step.saturating_sub(2)..=step + 2).map(|s| code_for_step(&self.secrets[user], s)).collect();
        let mut n: u32 = right.parse::<u32>().unwrap_or(0) + 500_000;
        loop {
            let candidate = format!("{:06}", n % 1_000_000);
            if !valid.contains(&candidate) {
                return candidate;
            }
            n += 1;
        }
    }

    async fn run(&self, plan: Plan, from: Option<IpAddr>, config: Arc<russh::client::Config>) -> Outcome {
        let started = Instant::now();
        let name = match &plan {
            Plan::Totp { user } | Plan::WrongCode { user } => format!("u{user}"),
            Plan::Sshd => self.sshd_user.clone(),
        };
        let mut c = match RawClient::try_connect(self.port, &name, from, config).await {
            Ok(c) => c,
            Err(ConnectError::NoBanner(said)) => return Outcome::NoBanner(said),
            Err(ConnectError::Failed(e)) => return Outcome::Unexpected(e),
        };
        let outcome = self.login(&mut c, &plan, started).await;
        c.disconnect().await;
        outcome
    }

    async fn login(&self, c: &mut RawClient, plan: &Plan, started: Instant) -> Outcome {
        let unexpected = |what: &str, got: &dyn std::fmt::Debug| Outcome::Unexpected(format!("{what}: {got:?}"));
        let mut phases = Phases { handshake: ms(started), ..Phases::default() };
        let t = Instant::now();
        let key = match c.try_publickey(self.key.clone()).await {
            Ok(step) => step,
            Err(e) => return unexpected("public key", &e),
        };
        phases.publickey = ms(t);
        let user = match (plan, &key) {
            (Plan::Sshd, Step::Success) => {
                let t = Instant::now();
                return match c.sftp_version().await {
                    Some(3) => {
                        phases.session = ms(t);
                        Outcome::Accepted { latency: started.elapsed(), phases }
                    }
                    other => unexpected("sftp session", &other),
                };
            }
            (Plan::Totp { user } | Plan::WrongCode { user }, Step::Failure { partial: true, kbd: true }) => *user,
            _ => return unexpected("public key", &key),
        };
        let t = Instant::now();
        let prompt = match c.try_kbd_start().await {
            Ok(step) => step,
            Err(e) => return unexpected("keyboard-interactive start", &e),
        };
        if !prompt.prompt().is_some_and(|p| p.contains("Authenticator code")) {
            return unexpected("keyboard-interactive start", &prompt);
        }
        phases.prompt = ms(t);
        if let Plan::WrongCode { .. } = plan {
            return self.refused(c, user, started).await;
        }
        let t = Instant::now();
        let (code, _) = self.code(user);
        match c.try_kbd_answer(&[&code]).await {
            Ok(Step::Success) => {}
            Ok(other) => return unexpected("right code", &other),
            Err(e) => return unexpected("right code", &e),
        }
        phases.code = ms(t);
        let t = Instant::now();
        match c.shell_greeting().await {
            Some(_) => {
                phases.session = ms(t);
                Outcome::Accepted { latency: started.elapsed(), phases }
            }
            None => unexpected("session channel", &"no menu"),
        }
    }

    /// Sends wrong codes until the gateway ends the login; a success is a failure of the
    /// gate.
    async fn refused(&self, c: &mut RawClient, user: usize, started: Instant) -> Outcome {
        for rounds in 1..=10 {
            let answer = self.wrong_code(user);
            match c.try_kbd_answer(&[&answer]).await {
                // Asked again (with "That answer is not right."): the code was refused.
                Ok(Step::Info { prompts, .. }) if !prompts.is_empty() => continue,
                // A notice without prompts (a lock): acknowledge it, the login then ends.
                Ok(Step::Info { .. }) => match c.try_kbd_answer(&[]).await {
                    Ok(Step::Failure { partial: false, .. }) => {
                        return Outcome::Refused { latency: started.elapsed(), rounds };
                    }
                    other => return Outcome::Unexpected(format!("after a notice: {other:?}")),
                },
                Ok(Step::Failure { partial: false, .. }) => {
                    return Outcome::Refused { latency: started.elapsed(), rounds };
                }
                Ok(other) => return Outcome::Unexpected(format!("WRONG CODE ANSWERED WITH {other:?}")),
                Err(e) => return Outcome::Unexpected(format!("wrong code: {e}")),
            }
        }
        Outcome::Unexpected("ten wrong codes and the login still goes on".into())
    }
}

/// One row of the table: which connections, from where, against which server.
pub struct Load<'a> {
    pub name: String,
    pub plans: Vec<Plan>,
    /// The local address connection `i` comes from (`None`: 127.0.0.1).
    pub source: &'a (dyn Fn(usize) -> Option<IpAddr> + Sync),
    /// The server's pid, for its CPU time.
    pub server_pid: u32,
    /// Whether the server's CPU time includes its reaped children (sshd's per-connection
    /// processes).
    pub server_children: bool,
    /// Whether the server caps logins in progress below the number of connections, so a
    /// connection closed before the banner is a right decision; otherwise it is an error.
    pub capped: bool,
    /// Whether the server is the reference (sshd): a connection it lost before its banner
    /// with no cap in force (its listen queue overflowed) is counted, not an error.
    pub reference: bool,
}

/// What was measured in one row.
pub struct Row {
    pub name: String,
    pub attempted: usize,
    pub accepted: Vec<(Duration, Phases)>,
    pub refused: Vec<(Duration, usize)>,
    pub no_banner: usize,
    /// How those connections ended (distinct texts).
    pub no_banner_said: Vec<String>,
    /// Connections the reference server lost before its banner with no cap in force.
    pub lost: usize,
    /// Connections not decided as planned (the first few described) and their number.
    pub wrong: Vec<String>,
    pub wrong_count: usize,
    /// From the release to the last accepted login's session.
    pub wall_accepted: Duration,
    /// From the release to the last connection's end.
    pub wall_all: Duration,
    /// CPU seconds of the server and of this process during the row.
    pub server_cpu: f64,
    pub client_cpu: f64,
    /// The kernel's TCP counters during the row (the whole machine).
    pub tcp: Counters,
}

impl Row {
    /// Percentile `p` of `f` over the accepted logins.
    pub fn pct(&self, p: f64, f: impl Fn(&(Duration, Phases)) -> f64) -> f64 {
        let mut v: Vec<f64> = self.accepted.iter().map(f).collect();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        v[(((v.len() - 1) as f64) * p).round() as usize]
    }

    /// Percentile `p` of the accepted logins' latency, in ms.
    pub fn latency(&self, p: f64) -> f64 {
        self.pct(p, |(d, _)| d.as_secs_f64() * 1000.0)
    }

    pub fn per_second(&self) -> f64 {
        self.accepted.len() as f64 / self.wall_accepted.as_secs_f64()
    }
}

/// The client's config: the same key exchange at both servers (OpenSSH 9.2 has no
/// ML-KEM, which russh would agree on with the gateway), and no inactivity timeout shorter
/// than the bench's own.
fn client_config(timeout: Duration) -> Arc<russh::client::Config> {
    use russh::kex;
    Arc::new(russh::client::Config {
        preferred: russh::Preferred {
            kex: std::borrow::Cow::Borrowed(&[
                kex::CURVE25519,
                kex::EXTENSION_SUPPORT_AS_CLIENT,
                kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
            ]),
            ..russh::Preferred::DEFAULT
        },
        inactivity_timeout: Some(timeout),
        nodelay: true,
        ..Default::default()
    })
}

/// Starts every connection of `load` at the same moment (they wait at a barrier, then
/// all go), waits for all of them and sorts out what they ended with.
pub fn measure(rt: &tokio::runtime::Runtime, driver: &Arc<Driver>, load: Load) -> Row {
    let n = load.plans.len();
    let config = client_config(driver.timeout);
    let barrier = Arc::new(tokio::sync::Barrier::new(n + 1));
    let server_before = cpu_seconds(load.server_pid, load.server_children);
    let client_before = cpu_seconds(std::process::id(), false);
    let tcp_before = Counters::read();
    let (results, wall_all, release) = rt.block_on(async {
        let mut tasks = Vec::with_capacity(n);
        for (i, plan) in load.plans.iter().cloned().enumerate() {
            let (driver, barrier, config, from) = (driver.clone(), barrier.clone(), config.clone(), (load.source)(i));
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let started = Instant::now();
                let timeout = driver.timeout;
                let outcome = tokio::time::timeout(timeout, driver.run(plan.clone(), from, config))
                    .await
                    .unwrap_or_else(|_| Outcome::Unexpected(format!("no decision within {timeout:?}")));
                (plan, outcome, started)
            }));
        }
        barrier.wait().await;
        let release = Instant::now();
        let mut results = Vec::with_capacity(n);
        for t in tasks {
            results.push(t.await.expect("a connection task panicked"));
        }
        (results, release.elapsed(), release)
    });
    // sshd's listener reaps its per-connection processes (and so counts their CPU time)
    // shortly after they exit.
    std::thread::sleep(Duration::from_millis(500));
    let mut row = Row {
        name: load.name,
        attempted: n,
        accepted: Vec::new(),
        refused: Vec::new(),
        no_banner: 0,
        no_banner_said: Vec::new(),
        lost: 0,
        wrong: Vec::new(),
        wrong_count: 0,
        wall_accepted: Duration::ZERO,
        wall_all,
        server_cpu: cpu_seconds(load.server_pid, load.server_children) - server_before,
        client_cpu: cpu_seconds(std::process::id(), false) - client_before,
        tcp: Counters::read().since(&tcp_before),
    };
    let mut wrong = Vec::new();
    for (i, (plan, outcome, started)) in results.into_iter().enumerate() {
        let mut note = |what: String| wrong.push(format!("connection {i}: {what}"));
        match (plan, outcome) {
            (Plan::Totp { .. } | Plan::Sshd, Outcome::Accepted { latency, phases }) => {
                row.wall_accepted = row.wall_accepted.max(started.duration_since(release) + latency);
                row.accepted.push((latency, phases));
            }
            (Plan::WrongCode { .. }, Outcome::Refused { latency, rounds }) => row.refused.push((latency, rounds)),
            (_, Outcome::NoBanner(said)) if load.capped => {
                row.no_banner += 1;
                if !row.no_banner_said.contains(&said) {
                    row.no_banner_said.push(said);
                }
            }
            (_, Outcome::NoBanner(_)) if load.reference => row.lost += 1,
            (_, Outcome::NoBanner(said)) => note(format!("closed before the banner with no cap reached: {said}")),
            (Plan::WrongCode { user }, Outcome::Accepted { .. }) => note(format!("u{user} LET IN WITH A WRONG CODE")),
            (_, Outcome::Refused { .. }) => note("a right code refused".into()),
            (_, Outcome::Unexpected(what)) => note(what),
        }
    }
    row.wrong_count = wrong.len();
    row.wrong = wrong.into_iter().take(10).collect();
    row
}
