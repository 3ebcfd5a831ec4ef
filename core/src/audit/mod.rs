//! The audit log: one row per security-relevant event, written by every front end to the
//! same table so that an administrator reads one history for the whole cluster.
//!
//! Events never carry a secret: no password, code, keyword or key material.

pub mod sinks;

use sqlx::Row;

use crate::{Db, Result, time};

/// How an event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Info,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Info => "info",
        }
    }
}

/// Defines [`AuditKind`]: each kind with its one stable string. Operators build alerts on
/// these strings: a kind is never renamed, only added.
macro_rules! audit_kinds {
    ($($(#[$doc:meta])* $kind:ident => $text:literal,)*) => {
        /// What an audit event records. One variant per kind of event, one stable string
        /// per variant ([`AuditKind::as_str`]); every front end uses these, so the same
        /// action is recorded under the same name whichever front end carried it out.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditKind {
            $($(#[$doc])* $kind,)*
        }

        impl AuditKind {
            /// Every kind, in the order of the README's list.
            pub const ALL: &'static [AuditKind] = &[$(AuditKind::$kind,)*];

            /// The stable string stored in the audit log.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(AuditKind::$kind => $text,)*
                }
            }
        }
    };
}

audit_kinds! {
    /// A password (or a password typed at keyboard-interactive) was checked.
    LoginPassword => "login.password",
    /// A public key was checked.
    LoginPublicKey => "login.publickey",
    /// An application passcode stood in for password and second factor, or was refused.
    LoginPasscode => "login.passcode",
    /// A second-factor answer was checked.
    LoginFactor => "login.factor",
    /// Failures locked an account or blocked a source address.
    LoginLockout => "login.lockout",
    /// Every step of a login passed.
    LoginSuccess => "login.success",
    /// The second factor was skipped for an exempt user.
    LoginExempt => "login.exempt",
    /// A forced user without a usable factor was refused after the enrollment window.
    LoginEnrollmentClosed => "login.enrollment_closed",
    /// Duo's policy let the user through without a second step.
    LoginDuoBypass => "login.duo.bypass",
    /// Duo could not be reached and `duo.fail_open` let the user through.
    LoginDuoFailOpen => "login.duo.fail_open",
    /// A login was approved with the Authorize link of a mail.
    LoginEmailAuthorized => "login.email_authorized",
    /// A login was denied with the Deny button of a mail.
    LoginEmailDenied => "login.email_denied",
    /// A channel, program or target session was refused to a logged-in user.
    SessionRefused => "session.refused",
    /// The gateway ended a connection whose login no longer stands.
    SessionEnded => "session.ended",
    /// An administrator asked to end a live target session.
    SessionTerminate => "session.terminate",
    /// A target session started, or a connection to a target was refused.
    TargetConnect => "target.connect",
    /// A target session ended.
    TargetDisconnect => "target.disconnect",
    /// A session's recording could not be written (and what the session did then).
    RecordingFailed => "recording.failed",
    /// A recording was deleted by the retention limits.
    RecordingDeleted => "recording.deleted",
    /// `ssh -J` to a target's address.
    ForwardDirect => "forward.direct",
    /// Agent forwarding requested.
    ForwardAgent => "forward.agent",
    /// X11 forwarding requested (always refused).
    ForwardX11 => "forward.x11",
    /// Remote forwarding (`ssh -R`) requested (always refused).
    ForwardRemote => "forward.remote",
    /// A forwarded-tcpip channel requested (always refused).
    ForwardForwarded => "forward.forwarded",
    /// Unix socket forwarding requested (always refused).
    ForwardStreamlocal => "forward.streamlocal",
    /// A change of credentials on the web was refused for lack of a fresh proof.
    AccountSudoRequired => "account.sudo_required",
    /// A fresh proof was given for a change of credentials on the web.
    AccountSudoConfirmed => "account.sudo_confirmed",
    /// The mail telling a user of a change to their account could not be sent.
    AccountNotify => "account.notify",
    /// A second factor was enrolled (by the user or an administrator).
    FactorEnroll => "factor.enroll",
    /// A second factor was removed.
    FactorRemove => "factor.remove",
    /// An administrator removed every factor of a user (a new enrollment window opens).
    FactorReset => "factor.reset",
    /// A new set of backup codes was made.
    FactorBackupCodes => "factor.backup_codes",
    /// A confirmation code for the email factor was mailed.
    FactorEmailCode => "factor.email_code",
    /// A security-key answer (WebAuthn assertion) was refused: another login's, used,
    /// expired, another origin's, another user's key, a bad signature.
    WebauthnRefused => "webauthn.refused",
    /// A security key's signature counter did not go up: the key may have been cloned.
    /// The answer is refused.
    WebauthnCloneSuspected => "webauthn.clone_suspected",
    /// A waiting SSH login was approved in the browser with a security key, or an
    /// approval of another user's login was tried.
    WebauthnApproval => "webauthn.approval",
    /// An SSH public key was added to an account.
    KeyAdd => "key.add",
    /// An SSH public key was removed from an account.
    KeyRemove => "key.remove",
    /// An application passcode was made.
    PasscodeCreate => "passcode.create",
    /// An application passcode was revoked.
    PasscodeRevoke => "passcode.revoke",
    /// A browser was trusted to skip the second factor on the web.
    WebTrustBrowser => "web.trust_browser",
    /// A trusted browser was revoked.
    WebUntrustBrowser => "web.untrust_browser",
    /// A user was created.
    UserCreate => "user.create",
    /// A user's password was set or changed.
    UserPassword => "user.password",
    /// An administrator locked an account.
    UserLock => "user.lock",
    /// An administrator unlocked an account (and lifted a lockout).
    UserUnlock => "user.unlock",
    /// A user was deleted.
    UserDelete => "user.delete",
    /// A user was made exempt from the second factor, or no longer.
    UserExempt => "user.exempt",
    /// The administrator flag was given or taken.
    UserAdmin => "user.admin",
    /// Where a user's password is checked changed (local or RADIUS).
    UserStore => "user.store",
    /// A group was created.
    GroupCreate => "group.create",
    /// A group was deleted.
    GroupDelete => "group.delete",
    /// A user was added to a group.
    GroupMemberAdd => "group.member.add",
    /// A user was removed from a group.
    GroupMemberRemove => "group.member.remove",
    /// Force 2FA was switched, globally or for a group.
    PolicyForce2fa => "policy.force_2fa",
    /// The allowed methods changed, globally or for a group.
    PolicyMethods => "policy.methods",
    /// The size of a backup-code set changed.
    PolicyBackupCodes => "policy.backup_codes",
    /// The first-login enrollment window changed.
    PolicyEnrollmentWindow => "policy.enrollment_window",
    /// A target was created.
    TargetCreate => "target.create",
    /// A target's address or login user changed.
    TargetEdit => "target.edit",
    /// A target's host key was pinned (by an administrator, or on first use).
    TargetHostKeyPin => "target.host_key.pin",
    /// A target's pinned host key was forgotten.
    TargetHostKeyForget => "target.host_key.forget",
    /// A target was granted to a user or group.
    TargetGrant => "target.grant",
    /// A grant was revoked.
    TargetRevoke => "target.revoke",
    /// A target was deleted.
    TargetDelete => "target.delete",
    /// The health page sent a RADIUS test request.
    HealthRadiusTest => "health.radius_test",
    /// The health page sent a test mail.
    HealthEmailTest => "health.email_test",
    /// The health page asked Duo's /check.
    HealthDuoCheck => "health.duo_check",
    /// The health page asked the directory for a test bind.
    HealthDirectoryTest => "health.directory_test",
    /// A directory user logged in for the first time and got a Gatehouse account.
    DirectoryProvision => "directory.provision",
    /// A directory user's memberships of mapped groups changed to follow the directory.
    DirectoryGroups => "directory.groups",
    /// The directory no longer admits a user (deleted, disabled, filtered out): their
    /// account is disabled here and their connections end; or it admits them again.
    DirectoryDisable => "directory.disable",
    /// The directory could not be asked (a login failed closed, or a sync stopped).
    DirectoryUnavailable => "directory.unavailable",
    /// A scheduled sync of every directory user ran.
    DirectorySync => "directory.sync",
    /// A host key rotation began: a next key per algorithm, presented beside the active one.
    HostKeyRotated => "hostkey.rotated",
    /// The next host keys replaced the active ones, which were deleted.
    HostKeyRetired => "hostkey.retired",
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Who did it (an admin's name, `cli`, or the user themself); `None` for anonymous.
    pub actor: Option<String>,
    /// Whom it concerns.
    pub user: Option<String>,
    /// What happened.
    pub kind: AuditKind,
    pub outcome: Outcome,
    /// Source address of the client, when there is one.
    pub source: Option<String>,
    /// Free text with details (method, reason, target), never a secret.
    pub detail: String,
}

impl AuditEvent {
    pub fn new(kind: AuditKind, outcome: Outcome) -> Self {
        AuditEvent { actor: None, user: None, kind, outcome, source: None, detail: String::new() }
    }
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// A recorded event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub node: String,
    pub actor: Option<String>,
    pub user: Option<String>,
    pub event: String,
    pub outcome: String,
    pub source: Option<String>,
    pub detail: String,
}

/// Writes one event and returns it as stored. Every text field is made printable here,
/// the one way into the table: a user name typed at a login prompt (`\e]0;…\a`) is
/// stored harmless whichever front end built the event. The names (actor, user, source)
/// are also cut to [`crate::text::MAX_STORED_NAME`] characters, so that a user name of
/// 200 kB is stored, indexed and shown like any other refused one; the detail to
/// [`crate::text::MAX_STORED_DETAIL`].
pub async fn record(db: &Db, node: &str, ev: AuditEvent) -> Result<AuditRecord> {
    let clean = |v: Option<String>| v.map(|t| crate::text::stored_name(&printable(&t)).into_owned());
    let mut rec = AuditRecord {
        id: 0,
        at: time::now(),
        node: printable(node),
        actor: clean(ev.actor),
        user: clean(ev.user),
        event: ev.kind.as_str().to_string(),
        outcome: ev.outcome.as_str().to_string(),
        source: clean(ev.source),
        detail: crate::text::cut(&printable(&ev.detail), crate::text::MAX_STORED_DETAIL).into_owned(),
    };
    rec.id = sqlx::query_scalar(
        "INSERT INTO audit_events (at, node, actor, user_name, event, outcome, source, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(rec.at)
    .bind(&rec.node)
    .bind(&rec.actor)
    .bind(&rec.user)
    .bind(&rec.event)
    .bind(&rec.outcome)
    .bind(&rec.source)
    .bind(&rec.detail)
    .fetch_one(db.pool())
    .await?;
    Ok(rec)
}

/// Which events to read.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub user: Option<String>,
    /// Prefix of the event name (`login` matches `login.password`).
    pub event: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only events with an id below this one (for paging backwards).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Events matching `f` (its `limit` and `before_id` aside) with an id above `after_id`,
/// oldest first, at most `limit`: the pages of an export.
pub async fn page_after(db: &Db, f: &Filter, after_id: i64, limit: i64) -> Result<Vec<AuditRecord>> {
    let rows = sqlx::query(
        "SELECT id, at, node, actor, user_name, event, outcome, source, detail FROM audit_events
         WHERE ($1 = '' OR user_name = $1)
           AND ($2 = '' OR event = $2 OR event LIKE $3)
           AND at >= $4 AND at <= $5 AND id > $6
         ORDER BY id LIMIT $7",
    )
    .bind(f.user.clone().unwrap_or_default())
    .bind(f.event.clone().unwrap_or_default())
    .bind(format!("{}.%", f.event.clone().unwrap_or_default()))
    .bind(f.since.unwrap_or(0))
    .bind(f.until.unwrap_or(i64::MAX))
    .bind(after_id)
    .bind(limit.max(1))
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        node: r.try_get("node")?,
        actor: r.try_get("actor")?,
        user: r.try_get("user_name")?,
        event: r.try_get("event")?,
        outcome: r.try_get("outcome")?,
        source: r.try_get("source")?,
        detail: r.try_get("detail")?,
    })
}

/// One event as a CSV row (RFC 4180 quoting). A field that a spreadsheet would take for a
/// formula (`=`, `+`, `-`, `@`, tab, CR first: a user name typed at a login prompt can be
/// `=HYPERLINK(…)`) gets a leading `'`.
pub fn csv_row(rec: &AuditRecord) -> String {
    let field = |v: &str| -> String {
        let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{v}") } else { v.to_string() };
        if v.contains([',', '"', '\n', '\r']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v }
    };
    [
        rec.id.to_string(),
        time::format_rfc3339(rec.at),
        field(&rec.node),
        field(&rec.event),
        field(&rec.outcome),
        field(rec.actor.as_deref().unwrap_or("")),
        field(rec.user.as_deref().unwrap_or("")),
        field(rec.source.as_deref().unwrap_or("")),
        field(&rec.detail),
    ]
    .join(",")
}

/// The header of [`csv_row`]'s rows.
pub const CSV_HEADER: &str = "id,at,node,event,outcome,actor,user,source,detail";

/// Newest first.
pub async fn list(db: &Db, f: &Filter) -> Result<Vec<AuditRecord>> {
    let rows = sqlx::query(
        "SELECT id, at, node, actor, user_name, event, outcome, source, detail FROM audit_events
         WHERE ($1 = '' OR user_name = $1)
           AND ($2 = '' OR event = $2 OR event LIKE $3)
           AND at >= $4 AND at <= $5 AND id < $6
         ORDER BY id DESC LIMIT $7",
    )
    .bind(f.user.clone().unwrap_or_default())
    .bind(f.event.clone().unwrap_or_default())
    .bind(format!("{}.%", f.event.clone().unwrap_or_default()))
    .bind(f.since.unwrap_or(0))
    .bind(f.until.unwrap_or(i64::MAX))
    .bind(f.before_id.unwrap_or(i64::MAX))
    .bind(if f.limit > 0 { f.limit } else { 100 })
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// `text` made safe to store and to echo into a terminal or a log line (see
/// [`crate::text::printable`]).
pub fn printable(text: &str) -> String {
    crate::text::printable(text)
}

#[cfg(test)]
mod kind_tests {
    use super::AuditKind;

    #[test]
    fn the_readme_lists_every_kind() {
        let readme = include_str!("../../../README.md");
        for k in AuditKind::ALL {
            assert!(readme.contains(&format!("| `{}` |", k.as_str())), "README.md does not list {}", k.as_str());
        }
    }

    #[test]
    fn every_kind_has_its_own_dotted_string() {
        let mut seen = std::collections::HashSet::new();
        for k in AuditKind::ALL {
            let s = k.as_str();
            assert!(seen.insert(s), "{s} is used twice");
            assert!(
                s.contains('.')
                    && s.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_' || c.is_ascii_digit()),
                "{s}"
            );
        }
    }
}

#[cfg(test)]
mod record_tests {
    use super::*;

    #[tokio::test]
    async fn a_detail_of_a_megabyte_is_stored_cut_with_a_mark() {
        let (_dir, db) = crate::db::test_db().await;
        let huge = format!("command {}", "x\u{1b}".repeat(500_000));
        let ev = AuditEvent::new(AuditKind::TargetConnect, Outcome::Success).user("alice").detail(huge);
        let rec = record(&db, "n1", ev).await.unwrap();
        assert_eq!(rec.detail.chars().count(), crate::text::MAX_STORED_DETAIL);
        assert!(rec.detail.starts_with("command x\u{fffd}x") && rec.detail.ends_with('…'), "{}", &rec.detail[..40]);
        let stored = list(&db, &Filter::default()).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].detail, rec.detail, "what is returned is what is stored");
        // A detail within the limit is kept whole.
        let ev = AuditEvent::new(AuditKind::TargetConnect, Outcome::Success).detail("web1 (root@10.0.0.1:22) shell");
        assert_eq!(record(&db, "n1", ev).await.unwrap().detail, "web1 (root@10.0.0.1:22) shell");
    }
}
