//! Live logins, re-checked. A connection that passed the gate is not a licence: every new
//! channel and every target session asks [`recheck`] whether the login still stands (the
//! same account, not locked, the policy still satisfied by how it got in, its key or
//! passcode not revoked), and only [`granted`] makes the proof a target connection needs.
//!
//! Every change that can withdraw access (a lock, a deletion, a policy or group change,
//! factors, keys or passcodes removed, grants revoked) calls [`changed`], which moves one
//! counter in the database. Each node watches that counter and re-checks its live
//! connections when it moves, so a lock on one node ends the user's connections on all.

use std::fmt;

use crate::policy::{self, Requirement};
use crate::targets::{self, Target};
use crate::users::{self, User};
use crate::{Db, Result, app_passcodes, ssh_keys};

/// Records that access may have been withdrawn somewhere: every node re-checks its live
/// connections.
pub async fn changed(db: &Db) -> Result<()> {
    sqlx::query("UPDATE access_revision SET revision = revision + 1 WHERE id = 1").execute(db.pool()).await?;
    Ok(())
}

/// The current value of the counter [`changed`] moves.
pub async fn revision(db: &Db) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT revision FROM access_revision WHERE id = 1").fetch_one(db.pool()).await?)
}

/// How a login got past the gate: what it proved decides what may take it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passage {
    /// A second factor was passed.
    SecondFactor,
    /// Nothing required a second factor at the time.
    NotRequired,
    /// A browser the user trusts stood in for the second factor (web only).
    TrustedBrowser,
    /// The user was exempt from the second factor.
    Exempt,
    /// Forced without a factor: the connection may only enroll one.
    Enrollment,
    /// An application passcode with this label stood in for password and factor.
    Passcode(String),
}

/// A login that passed, as a live connection holds it.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub user_id: i64,
    pub user_name: String,
    pub passage: Passage,
    /// The fingerprint of the public key the login used, if it used one.
    pub key: Option<String>,
}

/// Why a live login no longer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawn {
    /// The account is gone (or its name now belongs to another account).
    Deleted,
    /// An administrator locked the account.
    Locked,
    /// The directory no longer admits the user (deleted, disabled or filtered out there).
    DirectoryDisabled,
    /// The policy now asks for a second factor this login did not pass.
    PolicyChanged,
    /// The factor this login passed was removed, and the user must enroll again.
    FactorsRemoved,
    /// The public key this login used was removed from the account.
    KeyRemoved,
    /// The application passcode this login used was revoked.
    PasscodeRevoked,
}

impl Withdrawn {
    /// A stable word for audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Withdrawn::Deleted => "account deleted",
            Withdrawn::Locked => "account locked",
            Withdrawn::DirectoryDisabled => "account disabled in the directory",
            Withdrawn::PolicyChanged => "policy now requires a second factor",
            Withdrawn::FactorsRemoved => "second factors removed",
            Withdrawn::KeyRemoved => "key removed",
            Withdrawn::PasscodeRevoked => "application passcode revoked",
        }
    }
}

impl fmt::Display for Withdrawn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `requirement` is still met by a login that got in by `passage` (no I/O).
pub fn still_satisfied(passage: &Passage, requirement: &Requirement) -> Option<Withdrawn> {
    let closed = requirement.must_enroll();
    match passage {
        Passage::SecondFactor if closed => Some(Withdrawn::FactorsRemoved),
        Passage::SecondFactor | Passage::TrustedBrowser | Passage::Enrollment => None,
        Passage::NotRequired | Passage::Exempt => match requirement {
            Requirement::NotRequired | Requirement::Exempt => None,
            _ => Some(Withdrawn::PolicyChanged),
        },
        Passage::Passcode(_) if closed => Some(Withdrawn::FactorsRemoved),
        Passage::Passcode(_) => None,
    }
}

/// Re-checks a live login against the database now: the user as they are now, or why
/// the login no longer stands.
pub async fn recheck(db: &Db, login: &Admitted) -> Result<std::result::Result<User, Withdrawn>> {
    let Some(user) = users::by_id(db, login.user_id).await? else {
        return Ok(Err(Withdrawn::Deleted));
    };
    if user.name != login.user_name {
        return Ok(Err(Withdrawn::Deleted));
    }
    if user.locked {
        return Ok(Err(Withdrawn::Locked));
    }
    if user.directory_disabled {
        return Ok(Err(Withdrawn::DirectoryDisabled));
    }
    if let Some(fp) = &login.key
        && !ssh_keys::of_user(db, user.id).await?.iter().any(|k| &k.fingerprint == fp)
    {
        return Ok(Err(Withdrawn::KeyRemoved));
    }
    if let Passage::Passcode(label) = &login.passage
        && !app_passcodes::list(db, user.id).await?.iter().any(|p| &p.label == label)
    {
        return Ok(Err(Withdrawn::PasscodeRevoked));
    }
    let requirement = policy::requirement(db, &user).await?;
    Ok(match still_satisfied(&login.passage, &requirement) {
        Some(why) => Err(why),
        None => Ok(user),
    })
}

/// Proof that a target was granted to a login that still stands, checked against the
/// database just now. Only [`granted`] makes one, and connecting to a target takes one,
/// so no path to a target can skip the check.
#[derive(Debug, Clone)]
pub struct Granted {
    target: Target,
    user: User,
}

impl Granted {
    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn user(&self) -> &User {
        &self.user
    }
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The login itself no longer stands.
    Withdrawn(Withdrawn),
    /// Enrollment mode reaches no target.
    EnrollmentOnly,
    /// No target matches, or it is not granted to the user.
    NotGranted,
}

/// Which target a request names.
#[derive(Debug, Clone, Copy)]
pub enum Wanted<'a> {
    /// By its name (menu, exec, subsystem).
    Name(&'a str),
    /// By its address (`ssh -J`: the client names host and port).
    Address { host: &'a str, port: u32 },
}

/// Re-checks `login` and finds the target it wants among those granted to the user now.
pub async fn granted(db: &Db, login: &Admitted, wanted: Wanted<'_>) -> Result<std::result::Result<Granted, Refusal>> {
    let user = match recheck(db, login).await? {
        Ok(u) => u,
        Err(why) => return Ok(Err(Refusal::Withdrawn(why))),
    };
    if login.passage == Passage::Enrollment {
        return Ok(Err(Refusal::EnrollmentOnly));
    }
    let found = targets::granted_to(db, user.id).await?.into_iter().find(|t| match wanted {
        Wanted::Name(name) => t.name == name,
        Wanted::Address { host, port } => t.host.eq_ignore_ascii_case(host) && u32::from(t.port) == port,
    });
    Ok(match found {
        Some(target) => Ok(Granted { target, user }),
        None => Err(Refusal::NotGranted),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factors::{Method, MethodSet};

    #[test]
    fn a_login_without_a_factor_ends_when_a_factor_becomes_required() {
        let required = Requirement::Required { methods: vec![Method::Totp] };
        let must = Requirement::MustEnroll { allowed: MethodSet::all() };
        assert_eq!(still_satisfied(&Passage::NotRequired, &required), Some(Withdrawn::PolicyChanged));
        assert_eq!(still_satisfied(&Passage::Exempt, &must), Some(Withdrawn::PolicyChanged));
        assert_eq!(still_satisfied(&Passage::NotRequired, &Requirement::Exempt), None);
        assert_eq!(still_satisfied(&Passage::SecondFactor, &required), None);
        assert_eq!(still_satisfied(&Passage::SecondFactor, &must), Some(Withdrawn::FactorsRemoved));
        assert_eq!(
            still_satisfied(&Passage::Passcode("ci".into()), &Requirement::EnrollmentClosed),
            Some(Withdrawn::FactorsRemoved)
        );
        assert_eq!(still_satisfied(&Passage::Enrollment, &must), None);
    }
}
