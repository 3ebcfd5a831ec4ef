//! The index of session recordings: one row per proxied terminal session, pointing at an
//! asciicast v2 file under `<data_dir>/recordings/`.
//!
//! The file is the recording; the row is how admins find it (who, where, when, how big).
//! A row with no `ended_at` is a session still running, or one whose gateway died: its
//! file still plays up to the last flushed event.

use std::path::{Path, PathBuf};

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::sql;
use crate::{Config, Db, Error, Result, time};

pub mod retention;

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

const COLUMNS: &str = "id, user_name, target_name, node, path, width, height, started_at, ended_at, size";

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

/// Points a recording at its compressed file (a plain name in the same folder) and
/// records that file's size.
pub async fn compressed(db: &Db, id: i64, path: &str, size: u64) -> Result<()> {
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

/// Marks a recording as ended now, with its final size.
pub async fn finish(db: &Db, id: i64, size: u64) -> Result<()> {
    sqlx::query("UPDATE recordings SET ended_at = $1, size = $2 WHERE id = $3")
        .bind(time::now())
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
        finish(&db, id, 100).await.unwrap();
        let r = get(&db, id).await.unwrap();
        assert!(r.ended_at.is_some());
        assert_eq!(r.size, 100);
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
        };
        assert_eq!(file_path(&config, &r).unwrap(), PathBuf::from("/srv/gh/recordings/x.cast"));
        r.path = "../../etc/passwd".into();
        assert!(file_path(&config, &r).is_err());
        r.path = "/etc/passwd".into();
        assert!(file_path(&config, &r).is_err());
    }
}
