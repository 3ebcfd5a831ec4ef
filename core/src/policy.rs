//! The two-factor policy: global switches in `settings`, per-group switches in
//! `user_groups`, and the resolution of what one user must pass.
//!
//! A second factor is required when the global force flag is on, or any of the user's
//! groups has force on, or the user has enrolled a factor. An exempt user is never asked.
//! Allowed methods are the global set narrowed by every group that sets its own.

use crate::factors::{self, Method, MethodSet};
use crate::users::User;
use crate::{Db, Error, Result, groups};

const FORCE_2FA: &str = "force_2fa";
const ALLOWED_METHODS: &str = "allowed_methods";
const BACKUP_CODE_COUNT: &str = "backup_code_count";

/// The global policy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Policy {
    pub force_2fa: bool,
    pub allowed_methods: MethodSet,
    /// How many backup codes a new set has.
    pub backup_code_count: u32,
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
    })
}

pub async fn set_force_2fa(db: &Db, on: bool) -> Result<()> {
    set_setting(db, FORCE_2FA, if on { "on" } else { "off" }).await
}

pub async fn set_allowed_methods(db: &Db, methods: &MethodSet) -> Result<()> {
    set_setting(db, ALLOWED_METHODS, &methods.to_stored()).await
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
}

/// Why 2FA applies, for messages and audit.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub forced_globally: bool,
    pub forced_by_groups: Vec<String>,
    pub allowed: Option<MethodSet>,
    pub enrolled: Vec<Method>,
}

/// Resolves the requirement for `user` from the policy, their groups and their factors.
pub async fn requirement(db: &Db, user: &User) -> Result<Requirement> {
    let r = resolve(db, user).await?;
    let allowed = r.allowed.clone().unwrap_or_else(MethodSet::all);
    Ok(decide(user, &r, &allowed))
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
        }
    }

    fn res(global: bool, groups: &[&str], enrolled: &[Method]) -> Resolution {
        Resolution {
            forced_globally: global,
            forced_by_groups: groups.iter().map(|s| s.to_string()).collect(),
            allowed: None,
            enrolled: enrolled.to_vec(),
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
}
