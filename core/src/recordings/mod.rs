//! The index of session recordings: one row per proxied terminal session, pointing at an
//! asciicast v2 file under `<data_dir>/recordings/` of the node that ran it, or, once
//! finished and uploaded, at an object in the `[recordings.s3]` bucket (`bucket`).
//!
//! The file is the recording; the row is how admins find it (who, where, when, how big).
//! A row with no `ended_at` is a session still running, or one whose gateway died: its
//! file still plays up to the last flushed event.

use std::path::{Path, PathBuf};

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::db::sql;
use crate::{Config, Db, Error, Gateway, Result, time};

pub mod bucket;
pub mod retention;

/// How long a finished recording is left to the shell that wrote it to upload before the
/// housekeeping round takes over.
const UPLOAD_GRACE_SECS: i64 = 60;

/// Folder (under the data dir) that holds every recording file.
pub const DIR: &str = "recordings";

/// One indexed recording.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recording {
    pub id: i64,
    pub user_name: String,
    pub target_name: String,
    /// The node whose shell wrote the file (files live on that node's data dir).
    pub node: String,
    /// File name relative to the recordings folder: a plain name, never a path.
    pub path: String,
    /// Terminal size at the start.
    pub width: u32,
    pub height: u32,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    /// Bytes written to the file so far (final once `ended_at` is set).
    pub size: i64,
    /// The file is in the `[recordings.s3]` bucket (else on `node`'s disk).
    pub in_bucket: bool,
}

/// What [`start`] needs.
#[derive(Debug, Clone)]
pub struct NewRecording<'a> {
    pub user_name: &'a str,
    pub target_name: &'a str,
    pub node: &'a str,
    pub path: &'a str,
    pub width: u32,
    pub height: u32,
    pub started_at: i64,
}

const COLUMNS: &str = "id, user_name, target_name, node, path, width, height, started_at, ended_at, size, storage";

fn from_row(row: &AnyRow) -> Result<Recording> {
    let dim = |name: &str| -> Result<u32> {
        let v: i64 = row.try_get(name)?;
        Ok(u32::try_from(v).unwrap_or(0))
    };
    Ok(Recording {
        id: row.try_get("id")?,
        user_name: row.try_get("user_name")?,
        target_name: row.try_get("target_name")?,
        node: row.try_get("node")?,
        path: row.try_get("path")?,
        width: dim("width")?,
        height: dim("height")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        size: row.try_get("size")?,
        in_bucket: row.try_get::<String, _>("storage")? == "bucket",
    })
}

/// A file name is stored only if it is a plain name inside the recordings folder, so that
/// a row can never point [`file_path`] elsewhere.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Indexes a recording that has just started; returns its id.
pub async fn start(db: &Db, new: &NewRecording<'_>) -> Result<i64> {
    if !is_plain_file_name(new.path) {
        return Err(Error::invalid("recording file", "must be a plain file name"));
    }
    let id = sqlx::query_scalar(
        "INSERT INTO recordings (user_name, target_name, node, path, width, height, started_at, size)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0) RETURNING id",
    )
    .bind(new.user_name)
    .bind(new.target_name)
    .bind(new.node)
    .bind(new.path)
    .bind(i64::from(new.width))
    .bind(i64::from(new.height))
    .bind(new.started_at)
    .fetch_one(db.pool())
    .await?;
    Ok(id)
}

/// Records the current file size of a running recording (so the index is close to the
/// truth even if the gateway dies before [`finish`]).
pub async fn update_size(db: &Db, id: i64, size: u64) -> Result<()> {
    sqlx::query("UPDATE recordings SET size = $1 WHERE id = $2")
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Marks a recording as ended now, with its final file (a plain name in the same
/// folder: the compressed one, if it was compressed) and that file's size.
pub async fn finish(db: &Db, id: i64, path: &str, size: u64) -> Result<()> {
    if !is_plain_file_name(path) {
        return Err(Error::invalid("recording file", "must be a plain file name"));
    }
    sqlx::query("UPDATE recordings SET ended_at = $1, path = $2, size = $3 WHERE id = $4")
        .bind(time::now())
        .bind(path)
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Points an ended recording at another file of it (its compressed copy) of `size`.
pub async fn set_file(db: &Db, id: i64, path: &str, size: u64) -> Result<()> {
    if !is_plain_file_name(path) {
        return Err(Error::invalid("recording file", "must be a plain file name"));
    }
    sqlx::query("UPDATE recordings SET path = $1, size = $2 WHERE id = $3")
        .bind(path)
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The newest `limit` recordings, newest first.
pub async fn list(db: &Db, limit: i64) -> Result<Vec<Recording>> {
    let rows = sqlx::query(sql!("SELECT {COLUMNS} FROM recordings ORDER BY started_at DESC, id DESC LIMIT $1"))
        .bind(if limit > 0 { limit } else { 100 })
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// One recording by id.
pub async fn get(db: &Db, id: i64) -> Result<Recording> {
    let row =
        sqlx::query(sql!("SELECT {COLUMNS} FROM recordings WHERE id = $1")).bind(id).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()?.ok_or_else(|| Error::not_found("recording", id.to_string()))
}

/// The folder holding recording files on this node.
pub fn dir(config: &Config) -> PathBuf {
    config.data_dir.join(DIR)
}

/// Where the file of `recording` lives on this node. Refuses a stored name that is not a
/// plain file name (a tampered row cannot point outside the recordings folder).
pub fn file_path(config: &Config, recording: &Recording) -> Result<PathBuf> {
    if !is_plain_file_name(&recording.path) {
        return Err(Error::invalid("recording file", "must be a plain file name"));
    }
    Ok(dir(config).join(Path::new(&recording.path)))
}

/// Whether this node can read the recording: it is in the bucket and this node knows the
/// bucket, or it is on this node's disk.
pub fn readable_here(gw: &Gateway, recording: &Recording) -> bool {
    if recording.in_bucket {
        return gw.recording_bucket.is_some();
    }
    file_path(&gw.config, recording).is_ok_and(|p| p.is_file())
}

/// The stored bytes of a recording (gzipped when its name ends in `.gz`), from the bucket
/// or from this node's disk. `NotFound` when they are on another node's disk, or gone.
pub async fn read(gw: &Gateway, recording: &Recording) -> Result<Vec<u8>> {
    if recording.in_bucket {
        let Some(bucket) = &gw.recording_bucket else {
            return Err(Error::Unavailable(
                "this recording is in the recordings bucket, and [recordings.s3] is not configured on this node".into(),
            ));
        };
        return bucket.read(&recording.path).await;
    }
    let path = file_path(&gw.config, recording)?;
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::not_found("recording file on this node", recording.path.clone()))
        }
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Moves a finished recording of this node to the bucket: uploads the file, marks the row
/// (only then is the recording "in the bucket"), and removes the local file. Does nothing
/// without a bucket, for a running recording, another node's, or one already moved.
pub async fn upload(gw: &Gateway, id: i64) -> Result<bool> {
    let Some(bucket) = &gw.recording_bucket else { return Ok(false) };
    let r = get(&gw.db, id).await?;
    if r.in_bucket || r.ended_at.is_none() || r.node != gw.config.node_name() {
        return Ok(false);
    }
    let path = file_path(&gw.config, &r)?;
    let started = std::time::Instant::now();
    let sent = bucket.upload(&r.path, &path).await;
    gw.metrics.recording_upload(started.elapsed(), sent.is_ok());
    let sent = sent?;
    let moved =
        sqlx::query("UPDATE recordings SET storage = 'bucket' WHERE id = $1 AND storage = 'local' AND path = $2")
            .bind(r.id)
            .bind(&r.path)
            .execute(gw.db.pool())
            .await?;
    if moved.rows_affected() == 1 {
        if let Err(e) = tokio::fs::remove_file(&path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(recording = r.id, error = %e, "uploaded, but the local file could not be removed");
        }
        tracing::info!(recording = r.id, bucket = bucket.name(), bytes = sent, "recording moved to the bucket");
    }
    Ok(moved.rows_affected() == 1)
}

/// After a session: moves its recording to the bucket; a failure is audited as
/// `recording.failed` (the file stays on this node's disk, and the housekeeping round
/// tries again each minute).
pub async fn upload_finished(gw: &Gateway, id: i64) {
    let Err(e) = upload(gw, id).await else { return };
    tracing::error!(recording = id, error = %e, "recording not uploaded; kept on this node, retried each minute");
    let r = get(&gw.db, id).await.ok();
    let ev = AuditEvent::new(AuditKind::RecordingFailed, Outcome::Failure)
        .actor("gateway")
        .user(r.as_ref().map(|r| r.user_name.clone()).unwrap_or_default())
        .detail(format!(
            "recording {id} could not be uploaded to the recordings bucket ({e}); it is kept on node {} and retried each minute",
            gw.config.node_name()
        ));
    if let Err(e) = gw.audit(ev).await {
        tracing::error!(error = %e, "could not audit a failed upload");
    }
}

/// Uploads this node's finished recordings still on its disk (a failed upload, a node
/// that was down, recordings made before the bucket was configured), leaving a minute to
/// the shell that finished one to upload it itself; stops at the first failure, to try
/// again next round. Returns how many moved.
pub async fn upload_pending(gw: &Gateway) -> Result<usize> {
    upload_older_than(gw, time::now() - UPLOAD_GRACE_SECS).await
}

/// [`upload_pending`] without the grace minute (an administrator's command).
pub async fn upload_pending_now(gw: &Gateway) -> Result<usize> {
    upload_older_than(gw, time::now() + 1).await
}

async fn upload_older_than(gw: &Gateway, ended_before: i64) -> Result<usize> {
    if gw.recording_bucket.is_none() {
        return Ok(0);
    }
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM recordings WHERE node = $1 AND storage = 'local' AND ended_at IS NOT NULL AND ended_at < $2
         ORDER BY id",
    )
    .bind(gw.config.node_name())
    .bind(ended_before)
    .fetch_all(gw.db.pool())
    .await?;
    let mut moved = 0;
    for id in ids {
        if upload(gw, id).await? {
            moved += 1;
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn start_finish_list_get() {
        let (_dir, db) = crate::db::test_db().await;
        let new = NewRecording {
            user_name: "alice",
            target_name: "web1",
            node: "n1",
            path: "1700000000-alice-web1-ab12.cast",
            width: 80,
            height: 24,
            started_at: 1_700_000_000,
        };
        let id = start(&db, &new).await.unwrap();
        let r = get(&db, id).await.unwrap();
        assert_eq!((r.user_name.as_str(), r.target_name.as_str(), r.ended_at, r.size), ("alice", "web1", None, 0));
        update_size(&db, id, 42).await.unwrap();
        finish(&db, id, "1700000000-alice-web1-ab12.cast.gz", 100).await.unwrap();
        let r = get(&db, id).await.unwrap();
        assert!(r.ended_at.is_some());
        assert_eq!((r.size, r.path.as_str(), r.in_bucket), (100, "1700000000-alice-web1-ab12.cast.gz", false));
        assert!(finish(&db, id, "../x", 1).await.is_err());
        assert_eq!(list(&db, 10).await.unwrap().len(), 1);
        assert!(matches!(get(&db, id + 1).await, Err(Error::NotFound { .. })));
    }

    #[tokio::test]
    async fn paths_stay_inside_the_recordings_folder() {
        let (_dir, db) = crate::db::test_db().await;
        let bad = NewRecording {
            user_name: "a",
            target_name: "t",
            node: "n",
            path: "../x",
            width: 1,
            height: 1,
            started_at: 0,
        };
        assert!(start(&db, &bad).await.is_err());
        let config = Config { data_dir: "/srv/gh".into(), ..Config::default() };
        let mut r = Recording {
            id: 1,
            user_name: "a".into(),
            target_name: "t".into(),
            node: "n".into(),
            path: "x.cast".into(),
            width: 80,
            height: 24,
            started_at: 0,
            ended_at: None,
            size: 0,
            in_bucket: false,
        };
        assert_eq!(file_path(&config, &r).unwrap(), PathBuf::from("/srv/gh/recordings/x.cast"));
        r.path = "../../etc/passwd".into();
        assert!(file_path(&config, &r).is_err());
        r.path = "/etc/passwd".into();
        assert!(file_path(&config, &r).is_err());
    }
}
