//! The gateway's Prometheus metrics: one registry per [`Gateway`](crate::Gateway), filled
//! where the decisions are made (core's login steps, the shell's proxy and recorder) and
//! read by the exporter (`[metrics] listen`). Gauges that describe shared state (live
//! sessions, the database pool) are read when scraped. No label ever holds a user name,
//! an address or anything else an attacker chooses: every label value is from a fixed set.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::factors::{Frontend, Method, Verdict};

/// The front end of a login step, as a label.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum FrontendLabel {
    Ssh,
    Web,
}

impl From<Frontend> for FrontendLabel {
    fn from(f: Frontend) -> Self {
        match f {
            Frontend::Ssh => FrontendLabel::Ssh,
            Frontend::Web => FrontendLabel::Web,
        }
    }
}

/// The step of a login.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Step {
    /// Password, public key or application passcode.
    Primary,
    /// A second-factor answer.
    Factor,
    /// Starting a second-factor challenge (mail sent, push started).
    Challenge,
    /// Every required step passed.
    Complete,
}

/// How a step ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum StepOutcome {
    Success,
    Failure,
    Locked,
    /// A correct code used before.
    Replayed,
    Expired,
    /// Waiting for an answer given elsewhere (push, link), or a further question.
    Pending,
    /// The factor's service did not answer; not counted against the user.
    Unavailable,
    /// The check itself failed (database, network): the login failed closed.
    Error,
}

impl From<Verdict> for StepOutcome {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Accepted => StepOutcome::Success,
            Verdict::Rejected => StepOutcome::Failure,
            Verdict::Replayed => StepOutcome::Replayed,
            Verdict::Expired => StepOutcome::Expired,
            Verdict::Pending | Verdict::Continue => StepOutcome::Pending,
            Verdict::Unavailable => StepOutcome::Unavailable,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub frontend: FrontendLabel,
    pub step: Step,
    /// `password`, `publickey`, `passcode`, or a second-factor method's name.
    pub method: String,
    pub outcome: StepOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepTimeLabels {
    pub frontend: FrontendLabel,
    pub step: Step,
    pub method: String,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum LockSubject {
    User,
    Source,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LockLabels {
    pub subject: LockSubject,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Direction {
    /// From the target to the user.
    ToUser,
    /// From the user to the target.
    ToTarget,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    pub direction: Direction,
}

/// Label values in lower case, as Prometheus names go.
macro_rules! lower_case_labels {
    ($($t:ty { $($variant:ident => $text:literal),+ $(,)? })+) => {$(
        impl EncodeLabelValue for $t {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                let text = match self { $(Self::$variant => $text),+ };
                std::fmt::Write::write_str(encoder, text)
            }
        }
    )+};
}

lower_case_labels! {
    FrontendLabel { Ssh => "ssh", Web => "web" }
    Step { Primary => "primary", Factor => "factor", Challenge => "challenge", Complete => "complete" }
    StepOutcome {
        Success => "success", Failure => "failure", Locked => "locked", Replayed => "replayed",
        Expired => "expired", Pending => "pending", Unavailable => "unavailable", Error => "error",
    }
    LockSubject { User => "user", Source => "source" }
    Direction { ToUser => "to_user", ToTarget => "to_target" }
}

/// Every metric of one gateway process.
pub struct Metrics {
    registry: Registry,
    steps: Family<StepLabels, Counter>,
    step_seconds: Family<StepTimeLabels, Histogram>,
    lockouts: Family<LockLabels, Counter>,
    pub bytes_proxied: Family<DirectionLabels, Counter>,
    pub recording_bytes: Counter,
    pub recording_errors: Counter,
    recording_uploads: Counter,
    recording_upload_seconds: Histogram,
    pub audit_copy_errors: Counter,
    pub live_sessions: Gauge,
    pub db_connections: Gauge,
    pub db_idle: Gauge,
    db_acquire_seconds: Gauge<f64, AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gatehouse");
        let steps = Family::<StepLabels, Counter>::default();
        registry.register("login_steps", "Login steps decided, by front end, step, method and outcome", steps.clone());
        // 1 ms to about 33 s: a local check takes milliseconds, a push waits for a person.
        let step_seconds = Family::<StepTimeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "login_step_duration_seconds",
            "Time the gateway took to decide a login step (its own work and the factor service's, not the user's typing)",
            step_seconds.clone(),
        );
        let lockouts = Family::<LockLabels, Counter>::default();
        registry.register("lockouts", "Accounts locked and source addresses blocked by failures", lockouts.clone());
        let bytes_proxied = Family::<DirectionLabels, Counter>::default();
        registry.register("proxied_bytes", "Bytes carried between users and targets", bytes_proxied.clone());
        let recording_bytes = Counter::default();
        registry.register("recording_bytes", "Bytes written to session recordings", recording_bytes.clone());
        let recording_errors = Counter::default();
        registry.register(
            "recording_errors",
            "Recordings that could not be started, written or uploaded",
            recording_errors.clone(),
        );
        let recording_uploads = Counter::default();
        registry.register(
            "recording_uploads",
            "Finished recordings moved to the [recordings.s3] bucket",
            recording_uploads.clone(),
        );
        // 10 ms to about 5 min.
        let recording_upload_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 15));
        registry.register(
            "recording_upload_duration_seconds",
            "Time an upload of a finished recording to the bucket took, failed ones included",
            recording_upload_seconds.clone(),
        );
        let audit_copy_errors = Counter::default();
        registry.register(
            "audit_copy_errors",
            "Audit events that could not be copied to the [audit] file or syslog",
            audit_copy_errors.clone(),
        );
        let live_sessions = Gauge::default();
        registry.register("live_sessions", "Target sessions running on this node", live_sessions.clone());
        let db_connections = Gauge::default();
        registry.register("db_pool_connections", "Database connections open in the pool", db_connections.clone());
        let db_idle = Gauge::default();
        registry.register("db_pool_idle_connections", "Idle database connections in the pool", db_idle.clone());
        let db_acquire_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "db_pool_acquire_seconds",
            "Time the scrape waited for a database connection from the pool: what any query waits now",
            db_acquire_seconds.clone(),
        );
        Metrics {
            registry,
            steps,
            step_seconds,
            lockouts,
            bytes_proxied,
            recording_bytes,
            recording_errors,
            recording_uploads,
            recording_upload_seconds,
            audit_copy_errors,
            live_sessions,
            db_connections,
            db_idle,
            db_acquire_seconds,
        }
    }

    /// Counts a decided login step and how long deciding it took.
    pub fn step(&self, frontend: Frontend, step: Step, method: &str, outcome: StepOutcome, took: Duration) {
        let frontend = FrontendLabel::from(frontend);
        let method = method.to_string();
        self.steps.get_or_create(&StepLabels { frontend, step, method: method.clone(), outcome }).inc();
        self.step_seconds.get_or_create(&StepTimeLabels { frontend, step, method }).observe(took.as_secs_f64());
    }

    /// Counts a completed login (every required step passed).
    pub fn completed(&self, frontend: Frontend) {
        let labels = StepLabels {
            frontend: frontend.into(),
            step: Step::Complete,
            method: "any".into(),
            outcome: StepOutcome::Success,
        };
        self.steps.get_or_create(&labels).inc();
    }

    /// Counts a second-factor step.
    pub fn factor(&self, frontend: Frontend, step: Step, method: Method, outcome: StepOutcome, took: Duration) {
        self.step(frontend, step, &method.to_string(), outcome, took);
    }

    pub fn lockout(&self, subject: LockSubject) {
        self.lockouts.get_or_create(&LockLabels { subject }).inc();
    }

    pub fn proxied(&self, direction: Direction, bytes: usize) {
        self.bytes_proxied.get_or_create(&DirectionLabels { direction }).inc_by(bytes as u64);
    }

    /// Times an upload of a recording to the bucket; a failed one is also a recording error.
    pub fn recording_upload(&self, took: Duration, ok: bool) {
        self.recording_upload_seconds.observe(took.as_secs_f64());
        if ok {
            self.recording_uploads.inc();
        } else {
            self.recording_errors.inc();
        }
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl crate::Gateway {
    /// The metrics as the exporter serves them: the gauges of shared state are read now.
    pub async fn scrape(&self) -> String {
        match crate::live_sessions::count_on(&self.db, &self.config.node_name()).await {
            Ok(n) => {
                self.metrics.live_sessions.set(n);
            }
            Err(e) => tracing::warn!(error = %e, "counting live sessions for the metrics failed"),
        }
        let waiting = std::time::Instant::now();
        match self.db.pool().acquire().await {
            Ok(conn) => {
                self.metrics.db_acquire_seconds.set(waiting.elapsed().as_secs_f64());
                drop(conn);
            }
            Err(e) => {
                // A pool that gives no connection waited at least this long.
                self.metrics.db_acquire_seconds.set(waiting.elapsed().as_secs_f64());
                tracing::warn!(error = %e, "no database connection for the metrics scrape");
            }
        }
        self.metrics.db_connections.set(i64::from(self.db.pool().size()));
        self.metrics.db_idle.set(self.db.pool().num_idle() as i64);
        self.metrics.encode()
    }
}
