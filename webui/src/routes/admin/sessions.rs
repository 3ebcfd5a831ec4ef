//! Admin: recordings (list, in-browser player, raw asciicast download) and live sessions
//! with a terminate action. The data comes from `gatehouse_core::{recordings,
//! live_sessions}`, written by the shell on whichever node ran the session.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use gatehouse_core::{Gateway, live_sessions, recordings, time};

use gatehouse_core::admin;

use super::actor;
use crate::error::{WebError, WebResult};
use crate::form::{CsrfForm, Empty};
use crate::render::{Chrome, Notice, page, when};
use crate::routes::account::Done;
use crate::session::Admin;

pub struct RecordingRow {
    pub id: i64,
    pub user: String,
    pub target: String,
    pub started: String,
    pub ended: String,
    pub size: String,
    /// Where the file is: the bucket, or a node's disk.
    pub kept: String,
}

#[derive(askama::Template)]
#[template(path = "admin_recordings.html")]
struct RecordingsPage {
    c: Chrome,
    recordings: Vec<RecordingRow>,
}

fn size(bytes: i64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// `GET /admin/recordings`: the newest 200.
pub async fn recordings(State(gw): State<Gateway>, Admin(a): Admin) -> WebResult {
    let rows = recordings::list(&gw.db, 200)
        .await?
        .into_iter()
        .map(|r| RecordingRow {
            id: r.id,
            started: when(Some(r.started_at)),
            ended: r.ended_at.map(|t| when(Some(t))).unwrap_or_else(|| "running or interrupted".into()),
            size: size(r.size),
            kept: if r.in_bucket { "the bucket".into() } else { format!("node {}", r.node) },
            user: r.user_name,
            target: r.target_name,
        })
        .collect();
    Ok(page(StatusCode::OK, &RecordingsPage { c: a.chrome.clone().with_section("recordings"), recordings: rows }))
}

#[derive(askama::Template)]
#[template(path = "admin_player.html")]
struct PlayerPage {
    c: Chrome,
    id: i64,
    title: String,
    /// The file is on this node, or in the bucket this node reads.
    here: bool,
    in_bucket: bool,
    node: String,
}

async fn the_recording(gw: &Gateway, id: &str) -> WebResult<recordings::Recording> {
    let Ok(id) = id.parse::<i64>() else { return Err(WebError::NotFound("There is no such recording.".into())) };
    match recordings::get(&gw.db, id).await {
        Ok(r) => Ok(r),
        Err(gatehouse_core::Error::NotFound { .. }) => Err(WebError::NotFound("There is no such recording.".into())),
        Err(e) => Err(e.into()),
    }
}

/// `GET /admin/recordings/{id}`: the player page.
pub async fn player(State(gw): State<Gateway>, Admin(a): Admin, Path(id): Path<String>) -> WebResult {
    let r = the_recording(&gw, &id).await?;
    let here = recordings::readable_here(&gw, &r);
    let title = format!("{} on {}, {}", r.user_name, r.target_name, when(Some(r.started_at)));
    Ok(page(
        StatusCode::OK,
        &PlayerPage {
            c: a.chrome.clone().with_section("recordings"),
            id: r.id,
            title,
            here,
            in_bucket: r.in_bucket,
            node: r.node,
        },
    ))
}

/// `GET /admin/recordings/{id}/cast`: the asciicast v2 file, for the player and for
/// `asciinema play`.
pub async fn cast(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> WebResult {
    let r = the_recording(&gw, &id).await?;
    let body = match recordings::read(&gw, &r).await {
        Ok(b) => b,
        Err(gatehouse_core::Error::NotFound { .. }) if r.in_bucket => {
            return Err(WebError::NotFound("The file of this recording is missing from the recordings bucket.".into()));
        }
        Err(gatehouse_core::Error::NotFound { .. }) => {
            return Err(WebError::NotFound(format!(
                "The file of this recording is not on this node (it was written on {}).",
                r.node
            )));
        }
        Err(gatehouse_core::Error::Unavailable(why)) => {
            tracing::warn!(recording = r.id, error = %why, "recording not readable");
            return Err(WebError::Unavailable(
                "The recordings bucket does not answer now; try again later. The details are in the server log.".into(),
            ));
        }
        Err(e) => return Err(WebError::Internal(e)),
    };
    tracing::info!(admin = %a.user.name, recording = r.id, "recording downloaded");
    // A compressed recording goes as it is to a browser (it unpacks gzip itself), and
    // unpacked to a client that does not say it accepts gzip.
    let gzipped = r.path.ends_with(".gz");
    let accepts_gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")));
    let (body, encoded) = match (gzipped, accepts_gzip) {
        (true, false) => {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body.as_slice()), &mut plain)
                .map_err(|e| WebError::Internal(gatehouse_core::Error::io(&r.path, e)))?;
            (plain, false)
        }
        (g, _) => (body, g),
    };
    let mut resp = body.into_response();
    if encoded {
        resp.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-asciicast"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

pub struct LiveRow {
    pub id: i64,
    pub user: String,
    pub target: String,
    pub kind: String,
    pub source: String,
    pub node: String,
    pub started: String,
    pub status: String,
    pub recording: Option<i64>,
    pub ending: bool,
}

#[derive(askama::Template)]
#[template(path = "admin_live.html")]
struct LivePage {
    c: Chrome,
    n: Notice,
    sessions: Vec<LiveRow>,
}

/// `GET /admin/live`.
pub async fn live(State(gw): State<Gateway>, Admin(a): Admin, Query(d): Query<Done>) -> WebResult {
    let now = time::now();
    let sessions = live_sessions::list(&gw.db)
        .await?
        .into_iter()
        .map(|s| LiveRow {
            status: if s.terminate_requested {
                "ending (requested)".into()
            } else if s.is_stale(now) {
                "no heartbeat: its node may be down".into()
            } else {
                "active".into()
            },
            ending: s.terminate_requested,
            id: s.id,
            started: when(Some(s.started_at)),
            user: s.user_name,
            target: s.target_name,
            kind: s.kind,
            source: s.source,
            node: s.node,
            recording: s.recording_id,
        })
        .collect();
    Ok(page(
        StatusCode::OK,
        &LivePage { c: a.chrome.clone().with_section("live"), n: Notice::from_code(d.ok.as_deref()), sessions },
    ))
}

/// `POST /admin/live/{id}/terminate`: the node running it ends it at its next check.
pub async fn terminate(
    State(gw): State<Gateway>,
    Admin(a): Admin,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult {
    let Ok(id) = id.parse::<i64>() else { return Err(WebError::NotFound("There is no such session.".into())) };
    if !admin::sessions::terminate(&gw, &actor(&a), id).await? {
        return Err(WebError::NotFound("That session is no longer live.".into()));
    }
    Ok(Redirect::to("/admin/live?ok=terminate").into_response())
}
