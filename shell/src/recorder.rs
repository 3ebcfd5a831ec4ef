//! The session recorder: writes what a target sends to the user as an asciicast v2 file
//! under `<data_dir>/recordings/` and indexes it in the database.
//!
//! Writing happens on a blocking thread fed by a bounded channel, so disk latency never
//! stalls the proxy loop's other work, and a slow disk slows the session instead of
//! growing memory. After every batch of events the buffer is flushed to the file: a
//! gateway killed mid-session leaves a file that plays up to that moment. Input typed by
//! the user is never recorded (it would capture passwords typed on the target).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};
use gatehouse_core::config::OnFailure;
use gatehouse_core::metrics::Metrics;
use gatehouse_core::recordings::{self, NewRecording};
use gatehouse_core::{Db, Gateway, time};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::asciicast;
use crate::error::ShellError;

/// Events queued between the proxy loop and the writer thread.
const QUEUE: usize = 64;

enum Event {
    Output(f64, Vec<u8>),
    Resize(f64, u32, u32),
}

/// A recording in progress.
pub struct Recorder {
    id: i64,
    db: Db,
    metrics: Arc<Metrics>,
    queue: mpsc::Sender<Event>,
    started: Instant,
    written: Arc<AtomicU64>,
    /// Bytes already counted in the metrics.
    counted: AtomicU64,
    writer: JoinHandle<std::io::Result<()>>,
    path: PathBuf,
    /// Why the writer stopped, once it has.
    error: Arc<Mutex<Option<String>>>,
    /// The recording failed and the session goes on without it (`on_failure = continue`).
    abandoned: AtomicBool,
    user: String,
    target: String,
}

/// What a session does now that its recording failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// `on_failure = refuse`: the session ends.
    End,
    /// `on_failure = continue`: the session goes on unrecorded.
    Continue,
}

/// Audits and counts a recording that could not be started or written, and says what the
/// session does now (the `[recordings] on_failure` policy).
pub async fn failed(gw: &Gateway, user: &str, target: &str, what: &str, error: &str) -> AfterFailure {
    gw.metrics.recording_errors.inc();
    let (after, then) = match gw.config.recordings.on_failure {
        OnFailure::Refuse => (AfterFailure::End, "the session is refused (recordings.on_failure = refuse)"),
        OnFailure::Continue => {
            (AfterFailure::Continue, "the session goes on unrecorded (recordings.on_failure = continue)")
        }
    };
    tracing::error!(user, target, error, "{what}; {then}");
    let ev = AuditEvent::new(AuditKind::RecordingFailed, Outcome::Failure)
        .actor("gateway")
        .user(user.to_string())
        .detail(format!("{target}: {what} ({error}); {then}"));
    if let Err(e) = gw.audit(ev).await {
        tracing::error!(error = %e, "could not audit a failed recording");
    }
    after
}

/// A file name that says what the recording is, made of characters safe anywhere.
fn file_name(started_at: i64, user: &str, target: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars().take(40).map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') { c } else { '_' }).collect()
    };
    let nonce: u32 = rand::random();
    format!("{started_at}-{}-{}-{nonce:08x}.cast", clean(user), clean(target))
}

impl Recorder {
    /// Creates the file (mode 0600, in a 0700 folder), writes the header and indexes the
    /// recording.
    pub async fn start(
        gw: &Gateway,
        user: &str,
        target: &str,
        width: u32,
        height: u32,
        term: Option<&str>,
    ) -> Result<Recorder, ShellError> {
        let dir = recordings::dir(&gw.config);
        let started_at = time::now();
        let name = file_name(started_at, user, target);
        let path = dir.join(&name);
        let header = asciicast::header(width, height, started_at, term, &format!("{user}@{target}"));
        let file = {
            let (dir, file_path) = (dir.clone(), path.clone());
            tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
                let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&file_path)?;
                f.write_all(header.as_bytes())?;
                f.write_all(b"\n")?;
                Ok(f)
            })
            .await
            .map_err(|e| ShellError::Recording(format!("writer task: {e}")))?
            .map_err(|e| ShellError::Recording(format!("{}: {e}", path.display())))?
        };
        let written = Arc::new(AtomicU64::new(file.metadata().map(|m| m.len()).unwrap_or(0)));
        let node = gw.config.node_name();
        let id = recordings::start(
            &gw.db,
            &NewRecording { user_name: user, target_name: target, node: &node, path: &name, width, height, started_at },
        )
        .await?;
        let (queue, rx) = mpsc::channel(QUEUE);
        let error = Arc::new(Mutex::new(None));
        let writer = {
            let (written, error) = (written.clone(), error.clone());
            tokio::task::spawn_blocking(move || {
                let r = write_events(file, rx, written);
                if let Err(e) = &r
                    && let Ok(mut slot) = error.lock()
                {
                    *slot = Some(e.to_string());
                }
                r
            })
        };
        tracing::info!(recording = id, user, target, path = %path.display(), "recording started");
        Ok(Recorder {
            id,
            db: gw.db.clone(),
            metrics: gw.metrics.clone(),
            queue,
            started: Instant::now(),
            counted: AtomicU64::new(written.load(Ordering::Relaxed)),
            written,
            writer,
            path,
            error,
            abandoned: AtomicBool::new(false),
            user: user.to_string(),
            target: target.to_string(),
        })
    }

    /// The recording failed while the session runs: audited and counted once; says
    /// whether the session ends or goes on unrecorded (then nothing more is recorded).
    pub async fn write_failed(&self, gw: &Gateway) -> AfterFailure {
        if self.abandoned.load(Ordering::Relaxed) {
            return AfterFailure::Continue;
        }
        let why = self.error.lock().ok().and_then(|e| e.clone()).unwrap_or_else(|| "the writer stopped".into());
        let what = format!("recording {} could not be written", self.id);
        let after = failed(gw, &self.user, &self.target, &what, &why).await;
        if after == AfterFailure::Continue {
            self.abandoned.store(true, Ordering::Relaxed);
        }
        after
    }

    pub fn id(&self) -> i64 {
        self.id
    }

    /// Bytes in the file so far.
    pub fn size(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Records output sent to the user. False when the recording has failed (the caller
    /// ends the session: an unrecorded session is not allowed to go on).
    pub async fn output(&self, bytes: &[u8]) -> bool {
        if self.abandoned.load(Ordering::Relaxed) {
            return true;
        }
        let t = self.started.elapsed().as_secs_f64();
        self.queue.send(Event::Output(t, bytes.to_vec())).await.is_ok()
    }

    /// Records a terminal resize.
    pub async fn resize(&self, cols: u32, rows: u32) -> bool {
        if self.abandoned.load(Ordering::Relaxed) {
            return true;
        }
        let t = self.started.elapsed().as_secs_f64();
        self.queue.send(Event::Resize(t, cols, rows)).await.is_ok()
    }

    /// Refreshes the size in the index (called periodically while the session runs).
    pub async fn update_index(&self) {
        let size = self.size();
        let before = self.counted.swap(size, Ordering::Relaxed);
        self.metrics.recording_bytes.inc_by(size.saturating_sub(before));
        if let Err(e) = recordings::update_size(&self.db, self.id, self.size()).await {
            tracing::warn!(recording = self.id, error = %e, "could not update the recording size");
        }
    }

    /// Waits for every queued event to reach the file, then marks the recording ended with
    /// that file: from here it plays. Compressing it is a separate step,
    /// [`Finished::compress`], that the session's end need not wait for.
    pub async fn finish(self) -> Result<Finished, ShellError> {
        let Recorder { id, db, metrics, queue, written, counted, writer, path, abandoned, .. } = self;
        drop(queue);
        let outcome = writer.await;
        let size = written.load(Ordering::Relaxed);
        metrics.recording_bytes.inc_by(size.saturating_sub(counted.load(Ordering::Relaxed)));
        recordings::finish(&db, id, &stored_name(&path), size).await?;
        if abandoned.load(Ordering::Relaxed) {
            // Already audited when it failed; the file plays up to that point.
            return Ok(Finished { id, path, size, complete: false });
        }
        match outcome {
            Ok(Ok(())) => Ok(Finished { id, path, size, complete: true }),
            Ok(Err(e)) => Err(ShellError::Recording(format!("{}: {e}", path.display()))),
            Err(e) => Err(ShellError::Recording(format!("writer task: {e}"))),
        }
    }
}

/// The name of a recording's file, as the index stores it.
fn stored_name(p: &std::path::Path) -> String {
    p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string()
}

/// A recording that ended: its file is whole (or, after a write failure, plays up to it)
/// and indexed.
pub struct Finished {
    id: i64,
    path: PathBuf,
    size: u64,
    /// Every event reached the file (not abandoned after a write failure).
    complete: bool,
}

impl Finished {
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The size of the file as it was indexed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Gzips the file beside it, points the index at the compressed file and removes the
    /// plain one; returns the size of the file the index names. On any failure the plain
    /// file stays the recording: a recording is never lost to its compression. A
    /// recording abandoned after a write failure is left as it is.
    pub async fn compress(self, db: &Db) -> u64 {
        let Finished { id, path, size, complete } = self;
        if !complete {
            return size;
        }
        let Some((gz, gz_size)) = gzip(id, &path).await else { return size };
        match recordings::set_file(db, id, &stored_name(&gz), gz_size).await {
            Ok(()) => {
                remove_quietly(id, &path, "uncompressed").await;
                tracing::info!(recording = id, size = gz_size, path = %gz.display(), "recording compressed");
                gz_size
            }
            Err(e) => {
                // The index still names the plain file: keep it, drop the copy.
                tracing::warn!(recording = id, error = %e, "recording kept uncompressed");
                remove_quietly(id, &gz, "compressed").await;
                size
            }
        }
    }
}

async fn remove_quietly(id: i64, path: &std::path::Path, which: &str) {
    if let Err(e) = tokio::fs::remove_file(path).await {
        tracing::warn!(recording = id, error = %e, "the {which} recording file could not be removed");
    }
}

/// Writes the gzip of a finished recording's file beside it (`NAME.gz`, written whole
/// and synced); returns its path and size. On any failure there is no `.gz` and the plain
/// file stays the recording: a recording is never lost to its compression.
async fn gzip(id: i64, path: &std::path::Path) -> Option<(PathBuf, u64)> {
    let plain = path.to_path_buf();
    let made = tokio::task::spawn_blocking(move || -> std::io::Result<(PathBuf, u64)> {
        let gz = plain.with_extension("cast.gz");
        // Written under another name and renamed when whole and synced: a `.cast.gz` is
        // never a part of one.
        let part = plain.with_extension("cast.gz.part");
        let mut input = std::fs::File::open(&plain)?;
        let out = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&part)?;
        let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        let copied = std::io::copy(&mut input, &mut encoder)
            .and_then(|_| encoder.finish())
            .and_then(|f| {
                f.sync_all()?;
                f.metadata()
            })
            .and_then(|meta| std::fs::rename(&part, &gz).map(|()| meta));
        match copied {
            Ok(meta) => Ok((gz, meta.len())),
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                Err(e)
            }
        }
    })
    .await;
    match made {
        Ok(Ok(done)) => Some(done),
        Ok(Err(e)) => {
            tracing::warn!(recording = id, error = %e, "recording kept uncompressed");
            None
        }
        Err(e) => {
            tracing::warn!(recording = id, error = %e, "recording kept uncompressed");
            None
        }
    }
}

/// The writer thread: drains the queue in batches, flushing after each batch.
fn write_events(file: std::fs::File, mut rx: mpsc::Receiver<Event>, written: Arc<AtomicU64>) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
    let mut encoder = asciicast::Encoder::default();
    let mut last_t = 0.0;
    let write_line = |out: &mut std::io::BufWriter<std::fs::File>, line: String| -> std::io::Result<()> {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        written.fetch_add(line.len() as u64 + 1, Ordering::Relaxed);
        Ok(())
    };
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(ev) = next {
            match ev {
                Event::Output(t, bytes) => {
                    last_t = t;
                    if let Some(line) = encoder.output(t, &bytes) {
                        write_line(&mut out, line)?;
                    }
                }
                Event::Resize(t, c, r) => {
                    last_t = t;
                    write_line(&mut out, asciicast::resize(t, c, r))?;
                }
            }
            next = rx.try_recv().ok();
        }
        out.flush()?;
    }
    if let Some(line) = encoder.finish(last_t) {
        write_line(&mut out, line)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::Config;

    #[tokio::test]
    async fn records_a_playable_file_and_indexes_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_path_buf(), node_name: "n1".into(), ..Config::default() };
        let gw = Gateway::open(config).await.unwrap();
        let rec = Recorder::start(&gw, "alice", "web/1", 80, 24, Some("xterm")).await.unwrap();
        assert!(rec.output(b"hello \xe2\x82").await);
        assert!(rec.output(b"\xac\r\n").await);
        // Flushed as it goes: the file holds the events before the recording ends.
        let path = rec.path.clone();
        let mut seen = String::new();
        for _ in 0..100 {
            seen = std::fs::read_to_string(&path).unwrap();
            if seen.lines().count() >= 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(seen.contains("\"hello \"") && seen.contains("\"€\\r\\n\""), "{seen}");
        assert!(rec.resize(100, 30).await);
        rec.update_index().await;
        let id = rec.id();
        let size = rec.finish().await.unwrap().size();

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(size, text.len() as u64);
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["version"], 2);
        assert_eq!(lines[1][2], "hello ");
        assert_eq!(lines[2][2], "€\r\n");
        assert_eq!(lines[3][1], "r");
        assert_eq!(lines[3][2], "100x30");
        let row = recordings::get(&gw.db, id).await.unwrap();
        assert_eq!(row.size as u64, size);
        assert!(row.ended_at.is_some());
        assert!(row.path.contains("alice-web_1"), "{}", row.path);
        assert_eq!(recordings::file_path(&gw.config, &row).unwrap(), path);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
