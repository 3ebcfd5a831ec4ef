//! Second factors: one module per method behind the [`SecondFactor`] trait. The SSH gate
//! and the web login both drive a factor the same way:
//!
//! 1. [`SecondFactor::challenge`] starts an attempt. Code methods only describe what to
//!    type; push methods (an email link, a Duo push) send something here and
//!    return a challenge that can be waited on.
//! 2. [`SecondFactor::verify`] checks the user's answer; [`SecondFactor::poll`] asks a
//!    challenge that can wait whether it was approved elsewhere (on any node: the state
//!    is in the database, or at the push service). The front ends wait through
//!    [`crate::login::wait`] when the user answers nothing to such a challenge.
//!
//! Replay protection and single use live next to each factor's data, in the database.

pub mod backup_codes;
pub mod duo;
pub mod email;
pub mod keyword;
pub mod radius;
pub mod totp;
pub mod yubikey;

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;

use crate::users::User;
use crate::{Db, Gateway, Result};

/// A second-factor method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Totp,
    BackupCode,
    Keyword,
    Email,
    Yubikey,
    Duo,
    Radius,
}

impl Method {
    pub const ALL: [Method; 7] = [
        Method::Totp,
        Method::BackupCode,
        Method::Keyword,
        Method::Email,
        Method::Yubikey,
        Method::Duo,
        Method::Radius,
    ];

    /// The stable name used in the database, the CLI and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::BackupCode => "backup-code",
            Method::Keyword => "keyword",
            Method::Email => "email",
            Method::Yubikey => "yubikey",
            Method::Duo => "duo",
            Method::Radius => "radius",
        }
    }

    /// What people call it, as prompts show it.
    pub fn label(self) -> &'static str {
        match self {
            Method::Totp => "Authenticator code",
            Method::BackupCode => "Backup code",
            Method::Keyword => "Access keyword",
            Method::Email => "Email code",
            Method::Yubikey => "YubiKey OTP",
            Method::Duo => "Duo",
            Method::Radius => "RADIUS",
        }
    }

    /// Backup codes are a fallback: passing one never makes it the default method.
    pub fn becomes_default(self) -> bool {
        self != Method::BackupCode
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Method> {
        let s = s.trim().to_ascii_lowercase();
        Method::ALL
            .into_iter()
            .find(|m| m.as_str() == s || (s == "backup-codes" && *m == Method::BackupCode))
            .ok_or_else(|| {
                let names: Vec<_> = Method::ALL.iter().map(|m| m.as_str()).collect();
                crate::Error::invalid(
                    "method",
                    format!("'{}' is not one of {}", crate::audit::printable(&s), names.join(", ")),
                )
            })
    }
}

/// A set of methods (allowed methods of the policy or a group).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MethodSet(Vec<Method>);

impl MethodSet {
    pub fn all() -> Self {
        MethodSet(Method::ALL.to_vec())
    }

    pub fn contains(&self, m: Method) -> bool {
        self.0.contains(&m)
    }

    pub fn methods(&self) -> &[Method] {
        &self.0
    }

    /// The methods in both sets.
    pub fn intersect(&self, other: &MethodSet) -> MethodSet {
        MethodSet(self.0.iter().copied().filter(|m| other.contains(*m)).collect())
    }

    /// Parses a comma-separated list (`totp,keyword`); the error names the bad entry.
    pub fn parse_list(s: &str) -> Result<MethodSet> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let m: Method = part.parse()?;
            if !out.contains(&m) {
                out.push(m);
            }
        }
        if out.is_empty() {
            return Err(crate::Error::invalid("methods", "name at least one method"));
        }
        out.sort();
        Ok(MethodSet(out))
    }

    /// Reads the stored form, skipping names this version does not know.
    pub(crate) fn parse_stored(s: &str) -> MethodSet {
        let mut out: Vec<Method> = s.split(',').filter_map(|p| p.parse().ok()).collect();
        out.sort();
        out.dedup();
        MethodSet(out)
    }

    pub(crate) fn to_stored(&self) -> String {
        self.0.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(",")
    }
}

impl From<&[Method]> for MethodSet {
    fn from(m: &[Method]) -> Self {
        let mut v = m.to_vec();
        v.sort();
        v.dedup();
        MethodSet(v)
    }
}

impl fmt::Display for MethodSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_stored())
    }
}

/// One attempt at a second factor, as shown to the user.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub method: Method,
    /// The prompt line, e.g. `Authenticator code: `.
    pub prompt: String,
    /// Whether the answer may be echoed (codes shown on a device: no secrets typed).
    pub echo: bool,
    /// Text shown above the prompt (what was sent where, how long it is valid).
    pub instructions: String,
    /// For methods approved elsewhere (email link, Duo push): the method's reference to
    /// the approval being waited on (an approval row, a Duo transaction), opaque to the
    /// front ends.
    pub pending: Option<String>,
    /// Whether an empty answer means "wait for the approval given elsewhere" (the click on
    /// the mailed link, the push answered on the phone). The front ends then call
    /// [`crate::login::wait`] instead of checking an answer; `prompt` says so.
    pub can_wait: bool,
    /// For methods with several rounds (RADIUS Access-Challenge): what the next answer
    /// must carry back. Set by [`SecondFactor::verify`] together with a new `prompt`.
    pub state: Option<Vec<u8>>,
}

/// The result of checking an answer or polling a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Wrong answer.
    Rejected,
    /// A correct code that was already used (TOTP step, backup code).
    Replayed,
    /// A push not yet answered.
    Pending,
    /// The push or code has expired.
    Expired,
    /// Not decided yet: the method asks another question, now in the challenge's `prompt`
    /// (RADIUS Access-Challenge). Not a failure.
    Continue,
    /// The service that checks the answer could not be asked (RADIUS servers down). The
    /// answer is not accepted: the login fails closed.
    Unavailable,
}

/// Which front end carries a login: what core tells the user depends on it (press Enter
/// over SSH, a button on the web), never what it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    Ssh,
    Web,
}

impl Frontend {
    pub fn as_str(self) -> &'static str {
        match self {
            Frontend::Ssh => "ssh",
            Frontend::Web => "web",
        }
    }
}

impl fmt::Display for Frontend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The context of a login, passed to push methods so they can name it ("alice from
/// 192.0.2.7 at 12:00 on node gw1").
#[derive(Debug, Clone)]
pub struct LoginContext {
    pub user_name: String,
    pub source: String,
    pub frontend: Frontend,
    /// Names this login attempt (an SSH connection, a web login session) so that a method
    /// that keeps state between rounds (a mailed code) finds its own and no other.
    /// Random and unguessable; never shown.
    pub attempt: String,
}

/// One second-factor method.
#[async_trait]
pub trait SecondFactor: Send + Sync {
    fn method(&self) -> Method;

    /// Whether this gateway is set up to check the method (e.g. a RADIUS server is
    /// configured).
    fn available(&self, gw: &Gateway) -> bool {
        let _ = gw;
        true
    }

    /// Starts an attempt for `user`.
    async fn challenge(&self, gw: &Gateway, user: &User, login: &LoginContext) -> Result<Challenge> {
        let _ = (gw, user, login);
        let m = self.method();
        Ok(Challenge {
            method: m,
            prompt: format!("{}: ", m.label()),
            echo: false,
            instructions: String::new(),
            pending: None,
            can_wait: false,
            state: None,
        })
    }

    /// Checks the user's answer to `challenge`. A method with several rounds updates the
    /// challenge and answers [`Verdict::Continue`].
    async fn verify(&self, gw: &Gateway, user: &User, challenge: &mut Challenge, answer: &str) -> Result<Verdict>;

    /// Asks once whether a challenge that can wait was approved elsewhere; it may start
    /// the approval on its first call (send the push) and record that in the challenge.
    /// Code methods are never approved elsewhere.
    async fn poll(&self, gw: &Gateway, user: &User, challenge: &mut Challenge) -> Result<Verdict> {
        let _ = (gw, user, challenge);
        Ok(Verdict::Pending)
    }
}

/// The implementation of `method`, if this build has one (every method has one now; the
/// health page still tells a method without one apart).
pub fn factor(method: Method) -> Option<&'static dyn SecondFactor> {
    match method {
        Method::Totp => Some(&totp::Totp),
        Method::BackupCode => Some(&backup_codes::BackupCodes),
        Method::Keyword => Some(&keyword::Keyword),
        Method::Radius => Some(&radius::Radius),
        Method::Duo => Some(&duo::Duo),
        Method::Email => Some(&email::Email),
        Method::Yubikey => Some(&yubikey::Yubikey),
    }
}

/// The methods `user_id` has enrolled (backup codes count while any is unused), in a
/// stable order.
pub async fn enrolled(db: &Db, user_id: i64) -> Result<Vec<Method>> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT method FROM factors WHERE user_id = $1").bind(user_id).fetch_all(db.pool()).await?;
    let mut out: Vec<Method> = names.iter().filter_map(|n| n.parse().ok()).collect();
    if backup_codes::remaining(db, user_id).await? > 0 {
        out.push(Method::BackupCode);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// An enrolled factor as listed to administrators (no secret).
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnrolledFactor {
    pub method: Method,
    pub label: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// The user's factors with their dates; backup codes as one entry with the count left.
pub async fn describe(db: &Db, user_id: i64) -> Result<Vec<EnrolledFactor>> {
    let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT method, label, created_at, last_used_at FROM factors WHERE user_id = $1 ORDER BY method",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    let mut out: Vec<EnrolledFactor> = rows
        .into_iter()
        .filter_map(|(m, label, created_at, last_used_at)| {
            Some(EnrolledFactor { method: m.parse().ok()?, label, created_at, last_used_at })
        })
        .collect();
    let (left, created, used): (i64, Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*) - COUNT(used_at), MIN(created_at), MAX(used_at) FROM backup_codes WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_one(db.pool())
    .await?;
    if let Some(created_at) = created {
        out.push(EnrolledFactor {
            method: Method::BackupCode,
            label: format!("{left} unused"),
            created_at,
            last_used_at: used,
        });
    }
    Ok(out)
}

/// Removes one method's enrollment (for backup codes: the whole set).
pub async fn remove(db: &Db, user_id: i64, method: Method) -> Result<bool> {
    let done = if method == Method::BackupCode {
        sqlx::query("DELETE FROM backup_codes WHERE user_id = $1").bind(user_id).execute(db.pool()).await?
    } else {
        sqlx::query("DELETE FROM factors WHERE user_id = $1 AND method = $2")
            .bind(user_id)
            .bind(method.as_str())
            .execute(db.pool())
            .await?
    };
    crate::access::changed(db).await?;
    Ok(done.rows_affected() > 0)
}

/// An administrator's reset: every factor and backup code goes, and the user gets a new
/// first-login enrollment window. Returns the methods that were enrolled.
pub async fn reset(db: &Db, user_id: i64) -> Result<Vec<Method>> {
    let methods = enrolled(db, user_id).await?;
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM factors WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM backup_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
    sqlx::query("UPDATE users SET enroll_from = $1 WHERE id = $2")
        .bind(crate::time::now())
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    crate::access::changed(db).await?;
    Ok(methods)
}

/// A factor was enrolled: the first-login enrollment window is used up.
pub(crate) async fn close_enrollment_window(conn: &mut sqlx::AnyConnection, user_id: i64) -> Result<()> {
    sqlx::query("UPDATE users SET enroll_from = NULL WHERE id = $1").bind(user_id).execute(conn).await?;
    Ok(())
}

/// Stores or replaces the factor row for `method` (one per method and user), and closes
/// the user's first-login enrollment window.
pub(crate) async fn upsert(
    conn: &mut sqlx::AnyConnection,
    user_id: i64,
    method: Method,
    secret: &str,
    label: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO factors (user_id, method, secret, label, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, method) DO UPDATE SET secret = excluded.secret, label = excluded.label,
             created_at = excluded.created_at, last_step = NULL, last_used_at = NULL",
    )
    .bind(user_id)
    .bind(method.as_str())
    .bind(secret)
    .bind(label)
    .bind(crate::time::now())
    .execute(&mut *conn)
    .await?;
    close_enrollment_window(conn, user_id).await
}

/// Normalises a typed code: drops spaces and dashes, lower-cases.
pub(crate) fn normalize_code(answer: &str) -> String {
    answer.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect()
}
