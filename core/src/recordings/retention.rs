//! Retention: deletes this node's finished recordings that are older than
//! `recordings.max_age_days`, then the oldest ones while together they take more than
//! `recordings.max_total_gb`. Each node prunes the recordings it made (on its disk, or
//! moved by it to the bucket); a recording still running is never touched. Every deletion
//! is audited.

use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::{Gateway, Result, time};

use super::{COLUMNS, Recording, file_path, from_row};
use crate::db::sql;

/// One recording deleted, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deleted {
    pub recording: Recording,
    pub reason: String,
}

/// Applies the retention limits now; returns what was deleted, oldest first.
pub async fn prune(gw: &Gateway) -> Result<Vec<Deleted>> {
    let cfg = &gw.config.recordings;
    if cfg.max_age_days == 0 && cfg.max_total_bytes().is_none() {
        return Ok(Vec::new());
    }
    let node = gw.config.node_name();
    let rows = sqlx::query(sql!(
        "SELECT {COLUMNS} FROM recordings WHERE node = $1 AND ended_at IS NOT NULL ORDER BY started_at, id"
    ))
    .bind(&node)
    .fetch_all(gw.db.pool())
    .await?;
    let finished: Vec<Recording> = rows.iter().map(from_row).collect::<Result<_>>()?;

    let now = time::now();
    let too_old = |r: &Recording| cfg.max_age_days > 0 && r.started_at < now - (cfg.max_age_days as i64) * 86_400;
    let mut total: u64 = finished.iter().map(|r| r.size.max(0) as u64).sum();
    let mut doomed = Vec::new();
    for r in finished {
        let reason = if too_old(&r) {
            format!("older than {} days", cfg.max_age_days)
        } else if let Some(cap) = cfg.max_total_bytes().filter(|cap| total > *cap) {
            format!("recordings over {} bytes in all", cap)
        } else {
            continue;
        };
        total = total.saturating_sub(r.size.max(0) as u64);
        doomed.push(Deleted { recording: r, reason });
    }

    let mut deleted = Vec::new();
    for d in doomed {
        match delete(gw, &d).await {
            Ok(()) => deleted.push(d),
            Err(e) => tracing::warn!(recording = d.recording.id, error = %e, "could not delete a recording"),
        }
    }
    Ok(deleted)
}

/// Deletes the file (or the bucket's object), then the row (a row whose file is already
/// gone is removed too), then audits.
async fn delete(gw: &Gateway, d: &Deleted) -> Result<()> {
    let r = &d.recording;
    let place = if r.in_bucket {
        let Some(bucket) = &gw.recording_bucket else {
            return Err(crate::Error::Unavailable(
                "the recording is in the bucket, and [recordings.s3] is not configured".into(),
            ));
        };
        bucket.delete(&r.path).await?;
        format!("bucket {}", bucket.object(&r.path))
    } else {
        let path = file_path(&gw.config, r)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(crate::Error::io(&path, e)),
        }
        path.display().to_string()
    };
    sqlx::query("DELETE FROM recordings WHERE id = $1").bind(r.id).execute(gw.db.pool()).await?;
    gw.audit(
        AuditEvent::new(AuditKind::RecordingDeleted, Outcome::Info).actor("gateway").user(r.user_name.clone()).detail(
            format!(
                "recording {} ({} on {}, started {}, {} bytes): {}",
                r.id,
                r.user_name,
                r.target_name,
                crate::time::format_utc(r.started_at),
                r.size,
                d.reason
            ),
        ),
    )
    .await?;
    tracing::info!(recording = r.id, place = %place, reason = %d.reason, "recording deleted");
    Ok(())
}

/// Marks this node's recordings that have no end as ended: at start no session of this
/// node is running, so they were cut off when an earlier run stopped. Their files play up
/// to the last flushed event; now retention can remove them too. Returns how many.
pub async fn close_orphans(gw: &Gateway) -> Result<u64> {
    let done = sqlx::query("UPDATE recordings SET ended_at = $1 WHERE node = $2 AND ended_at IS NULL")
        .bind(time::now())
        .bind(gw.config.node_name())
        .execute(gw.db.pool())
        .await?;
    Ok(done.rows_affected())
}
