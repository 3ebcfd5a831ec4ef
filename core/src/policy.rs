//! The two-factor policy: global switches in `settings`, per-group switches in
//! `user_groups`, and the resolution of what one user must pass.
//!
//! A second factor is required when the global force flag is on, or any of the user's
//! groups has force on, or the user has enrolled a factor. An exempt user is never asked.
//! Allowed methods are the global set narrowed by every group that sets its own.

use crate::factors::{self, Method, MethodSet};
use crate::users::User;
use crate::{Db, Error, Result, access, groups};

const FORCE_2FA: &str = "force_2fa";
const ALLOWED_METHODS: &str = "allowed_methods";
const BACKUP_CODE_COUNT: &str = "backup_code_count";
const ENROLLMENT_WINDOW_DAYS: &str = "enrollment_window_days";

/// Days a forced user without a usable factor may enroll one with the password alone,
/// counted from the account's creation or an administrator's reset of its factors.
pub const DEFAULT_ENROLLMENT_WINDOW_DAYS: u32 = 7;

/// The global policy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Policy {
    pub force_2fa: bool,
    pub allowed_methods: MethodSet,
    /// How many backup codes a new set has.
    pub backup_code_count: u32,
    /// Days of the first-login enrollment window (see [`Requirement::EnrollmentClosed`]).
    pub enrollment_window_days: u32,
}

async fn setting(db: &Db, key: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(db.pool()).await?)
}

async fn set_setting(db: &Db, key: &str, value: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Reads the global policy (defaults where nothing was set).
pub async fn load(db: &Db) -> Result<Policy> {
    Ok(Policy {
        force_2fa: setting(db, FORCE_2FA).await?.as_deref() == Some("on"),
        allowed_methods: setting(db, ALLOWED_METHODS)
            .await?
            .map(|s| MethodSet::parse_stored(&s))
            .unwrap_or_else(MethodSet::all),
        backup_code_count: setting(db, BACKUP_CODE_COUNT).await?.and_then(|s| s.parse().ok()).unwrap_or(10),
        enrollment_window_days: setting(db, ENROLLMENT_WINDOW_DAYS)
            .await?
            .and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_ENROLLMENT_WINDOW_DAYS),
    })
}

pub async fn set_force_2fa(db: &Db, on: bool) -> Result<()> {
    set_setting(db, FORCE_2FA, if on { "on" } else { "off" }).await?;
    access::changed(db).await
}

pub async fn set_allowed_methods(db: &Db, methods: &MethodSet) -> Result<()> {
    set_setting(db, ALLOWED_METHODS, &methods.to_stored()).await?;
    access::changed(db).await
}

/// Sets the days of the first-login enrollment window (1–365).
pub async fn set_enrollment_window_days(db: &Db, days: u32) -> Result<()> {
    if !(1..=365).contains(&days) {
        return Err(Error::invalid("enrollment window", "must be 1-365 days"));
    }
    set_setting(db, ENROLLMENT_WINDOW_DAYS, &days.to_string()).await
}

pub async fn set_backup_code_count(db: &Db, n: u32) -> Result<()> {
    if !(1..=50).contains(&n) {
        return Err(Error::invalid("backup code count", "must be 1-50"));
    }
    set_setting(db, BACKUP_CODE_COUNT, &n.to_string()).await
}

/// What a user must pass after the primary credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// No second factor: nothing forces one and none is enrolled.
    NotRequired,
    /// Policy would require one, but the user is exempt (audited on every login).
    Exempt,
    /// Ask for one of `methods` (enrolled and allowed), the first being the default.
    Required { methods: Vec<Method> },
    /// Required, but nothing usable is enrolled: the user may only enroll. `allowed` says
    /// what they may enroll.
    MustEnroll { allowed: MethodSet },
    /// Required, nothing usable is enrolled, and the first-login enrollment window (after
    /// the account was created or an administrator reset its factors) is over or was
    /// used: the password alone gets nothing, an administrator must reset the factors.
    EnrollmentClosed,
}

impl Requirement {
    /// Whether the user has no usable factor and must enroll one (window open or not).
    pub fn must_enroll(&self) -> bool {
        matches!(self, Requirement::MustEnroll { .. } | Requirement::EnrollmentClosed)
    }
}

/// Why 2FA applies, for messages and audit.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub forced_globally: bool,
    pub forced_by_groups: Vec<String>,
    pub allowed: Option<MethodSet>,
    pub enrolled: Vec<Method>,
    /// Whether the user is inside their first-login enrollment window.
    pub enrollment_open: bool,
}

impl Resolution {
    /// Why a second factor is asked of `user` or not, in one sentence for them: the same
    /// inputs, in the same order, as [`decide`].
    pub fn reason(&self, user: &User) -> String {
        if user.exempt_2fa {
            "You are exempt from the second factor.".to_string()
        } else if self.forced_globally {
            "A second factor is required for every account.".to_string()
        } else if !self.forced_by_groups.is_empty() {
            format!("A second factor is required by your group(s): {}.", self.forced_by_groups.join(", "))
        } else if !self.enrolled.is_empty() {
            "A second factor is asked at every login because you enrolled one.".to_string()
        } else {
            "A second factor is optional for your account.".to_string()
        }
    }

    /// The requirement these inputs give for `user` ([`decide`] with the allowed set).
    pub fn requirement(&self, user: &User) -> Requirement {
        decide(user, self, &self.allowed.clone().unwrap_or_else(MethodSet::all))
    }
}

/// Resolves the requirement for `user` from the policy, their groups and their factors.
pub async fn requirement(db: &Db, user: &User) -> Result<Requirement> {
    Ok(resolve(db, user).await?.requirement(user))
}

/// Gathers the inputs of the decision.
pub async fn resolve(db: &Db, user: &User) -> Result<Resolution> {
    let policy = load(db).await?;
    let groups = groups::of_user(db, user.id).await?;
    let mut allowed = policy.allowed_methods.clone();
    for g in &groups {
        if let Some(set) = &g.allowed_methods {
            allowed = allowed.intersect(set);
        }
    }
    Ok(Resolution {
        forced_globally: policy.force_2fa,
        forced_by_groups: groups.iter().filter(|g| g.force_2fa).map(|g| g.name.clone()).collect(),
        allowed: Some(allowed),
        enrolled: factors::enrolled(db, user.id).await?,
        enrollment_open: user.enrollment_window_open(policy.enrollment_window_days, crate::time::now()),
    })
}

/// The decision itself, without I/O (unit-tested below).
pub fn decide(user: &User, r: &Resolution, allowed: &MethodSet) -> Requirement {
    let forced = r.forced_globally || !r.forced_by_groups.is_empty();
    let required = forced || !r.enrolled.is_empty();
    if !required {
        return Requirement::NotRequired;
    }
    if user.exempt_2fa {
        return Requirement::Exempt;
    }
    let mut usable: Vec<Method> =
        r.enrolled.iter().copied().filter(|m| allowed.contains(*m) && factors::factor(*m).is_some()).collect();
    // Backup codes alone still let a user in: they are what is left after losing a phone.
    if usable.is_empty() {
        if !r.enrollment_open {
            return Requirement::EnrollmentClosed;
        }
        return Requirement::MustEnroll { allowed: allowed.clone() };
    }
    // The last-used method first, then the others in their stable order, backup codes last.
    usable.sort_by_key(|m| (Some(*m) != user.last_method, *m == Method::BackupCode, *m));
    Requirement::Required { methods: usable }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(last: Option<Method>, exempt: bool) -> User {
        User {
            id: 1,
            name: "alice".into(),
            email: None,
            password_hash: None,
            is_admin: false,
            locked: false,
            exempt_2fa: exempt,
            last_method: last,
            created_at: 0,
            enroll_from: Some(0),
            store: crate::users::Store::Local,
            directory_dn: None,
            directory_disabled: false,
        }
    }

    fn res(global: bool, groups: &[&str], enrolled: &[Method]) -> Resolution {
        Resolution {
            forced_globally: global,
            forced_by_groups: groups.iter().map(|s| s.to_string()).collect(),
            allowed: None,
            enrolled: enrolled.to_vec(),
            enrollment_open: true,
        }
    }

    #[test]
    fn nothing_forced_nothing_enrolled_is_not_required() {
        assert_eq!(decide(&user(None, false), &res(false, &[], &[]), &MethodSet::all()), Requirement::NotRequired);
    }

    #[test]
    fn enrolled_factor_alone_requires_it() {
        let r = decide(&user(None, false), &res(false, &[], &[Method::Keyword]), &MethodSet::all());
        assert_eq!(r, Requirement::Required { methods: vec![Method::Keyword] });
    }

    #[test]
    fn forced_globally_or_by_group_without_factor_must_enroll() {
        for r in [res(true, &[], &[]), res(false, &["ops"], &[])] {
            assert!(matches!(decide(&user(None, false), &r, &MethodSet::all()), Requirement::MustEnroll { .. }));
        }
    }

    #[test]
    fn forced_without_factor_after_the_window_is_refused() {
        let mut r = res(true, &[], &[]);
        r.enrollment_open = false;
        assert_eq!(decide(&user(None, false), &r, &MethodSet::all()), Requirement::EnrollmentClosed);
        // A usable factor makes the window irrelevant.
        r.enrolled = vec![Method::Totp];
        assert!(matches!(decide(&user(None, false), &r, &MethodSet::all()), Requirement::Required { .. }));
    }

    #[test]
    fn exempt_user_is_never_asked() {
        let r = decide(&user(None, true), &res(true, &["ops"], &[Method::Totp]), &MethodSet::all());
        assert_eq!(r, Requirement::Exempt);
    }

    #[test]
    fn last_used_method_comes_first_and_backup_codes_last() {
        let enrolled = [Method::Totp, Method::BackupCode, Method::Keyword];
        let r = decide(&user(Some(Method::Keyword), false), &res(false, &[], &enrolled), &MethodSet::all());
        assert_eq!(r, Requirement::Required { methods: vec![Method::Keyword, Method::Totp, Method::BackupCode] });
        let r = decide(&user(None, false), &res(false, &[], &enrolled), &MethodSet::all());
        assert_eq!(r, Requirement::Required { methods: vec![Method::Totp, Method::Keyword, Method::BackupCode] });
    }

    #[test]
    fn narrower_allowed_set_wins() {
        let global = MethodSet::all();
        let group = MethodSet::parse_list("totp,backup-code").unwrap();
        let allowed = global.intersect(&group);
        let r = decide(
            &user(Some(Method::Keyword), false),
            &res(false, &["ops"], &[Method::Keyword, Method::Totp]),
            &allowed,
        );
        assert_eq!(r, Requirement::Required { methods: vec![Method::Totp] });
        let r = decide(&user(None, false), &res(false, &["ops"], &[Method::Keyword]), &allowed);
        assert!(matches!(r, Requirement::MustEnroll { .. }));
    }

    #[test]
    fn the_reason_given_matches_the_decision() {
        let alice = user(None, false);
        let cases = [
            (res(true, &["ops"], &[]), "required for every account"),
            (res(false, &["ops", "db"], &[]), "required by your group(s): ops, db."),
            (res(false, &[], &[Method::Totp]), "because you enrolled one"),
            (res(false, &[], &[]), "optional"),
        ];
        for (r, says) in cases {
            assert!(r.reason(&alice).contains(says), "{}", r.reason(&alice));
            // Whatever the sentence says is required, the decision requires.
            let required = !matches!(r.requirement(&alice), Requirement::NotRequired);
            assert_eq!(required, !says.contains("optional"), "{says}");
        }
        let exempt = user(None, true);
        let r = res(true, &[], &[]);
        assert!(r.reason(&exempt).contains("exempt"));
        assert_eq!(r.requirement(&exempt), Requirement::Exempt);
    }
}
