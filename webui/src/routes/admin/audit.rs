//! Admin: the audit log, filtered by user, event and time, newest first, paged backwards
//! by id (stable while new events arrive).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use gatehouse_core::Gateway;
use gatehouse_core::audit::{self, Filter};

use crate::error::WebResult;
use crate::render::{Chrome, Notice, page, when};
use crate::session::Admin;

const PAGE: i64 = 50;

#[derive(serde::Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub event: String,
    /// `YYYY-MM-DD` (UTC), inclusive.
    #[serde(default)]
    pub since: String,
    /// `YYYY-MM-DD` (UTC), inclusive.
    #[serde(default)]
    pub until: String,
    #[serde(default)]
    pub before: String,
}

pub struct EventRow {
    pub at: String,
    pub node: String,
    pub actor: String,
    pub user: String,
    pub event: String,
    pub outcome: String,
    pub source: String,
    pub detail: String,
}

#[derive(askama::Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    c: Chrome,
    n: Notice,
    q: AuditQuery,
    events: Vec<EventRow>,
    /// Query string of the next (older) page, empty when there is none.
    older: String,
}

/// Days since the epoch of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Epoch seconds at the start of a `YYYY-MM-DD` day (UTC).
pub fn parse_day(s: &str) -> Option<i64> {
    let mut parts = s.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400)
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /admin/audit`.
pub async fn list(State(gw): State<Gateway>, Admin(a): Admin, Query(q): Query<AuditQuery>) -> WebResult {
    let c = a.chrome.clone().with_section("audit");
    let bad = |field: &str, msg: &str, q: AuditQuery| {
        page(
            StatusCode::BAD_REQUEST,
            &AuditPage { c: c.clone(), n: Notice::error(field, msg), q, events: vec![], older: String::new() },
        )
    };
    let since = match q.since.trim() {
        "" => None,
        s => match parse_day(s) {
            Some(t) => Some(t),
            None => return Ok(bad("since", "Use the form YYYY-MM-DD.", q)),
        },
    };
    let until = match q.until.trim() {
        "" => None,
        s => match parse_day(s) {
            Some(t) => Some(t + 86_399),
            None => return Ok(bad("until", "Use the form YYYY-MM-DD.", q)),
        },
    };
    let before = match q.before.trim() {
        "" => None,
        s => match s.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => return Ok(bad("form", "The page marker is not a number.", q)),
        },
    };
    let filter = Filter {
        user: Some(q.user.trim().to_string()).filter(|s| !s.is_empty()),
        event: Some(q.event.trim().to_string()).filter(|s| !s.is_empty()),
        since,
        until,
        before_id: before,
        limit: PAGE,
    };
    let records = audit::list(&gw.db, &filter).await?;
    let older = match records.last() {
        Some(last) if records.len() as i64 == PAGE => {
            format!(
                "user={}&event={}&since={}&until={}&before={}",
                encode(&q.user),
                encode(&q.event),
                encode(&q.since),
                encode(&q.until),
                last.id
            )
        }
        _ => String::new(),
    };
    let events = records
        .into_iter()
        .map(|r| EventRow {
            at: when(Some(r.at)),
            node: r.node,
            actor: r.actor.unwrap_or_default(),
            user: r.user.unwrap_or_default(),
            event: r.event,
            outcome: r.outcome,
            source: r.source.unwrap_or_default(),
            detail: r.detail,
        })
        .collect();
    Ok(page(StatusCode::OK, &AuditPage { c, n: Notice::none(), q, events, older }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_to_utc_midnight() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2005-03-18"), Some(1_111_104_000));
        assert_eq!(parse_day("2033-05-18"), Some(1_999_987_200));
        assert_eq!(parse_day("2024-13-01"), None);
        assert_eq!(parse_day("yesterday"), None);
    }
}
