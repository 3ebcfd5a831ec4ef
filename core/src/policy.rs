//! The two-factor policy: global switches in `settings`, per-group switches in
//! `user_groups`, a per-user override in `users.force_2fa`, and the resolution of what one
//! user must pass.
//!
//! Whether a second factor is *forced* on a user is decided by the most specific scope
//! that speaks ([`Forcing`]): the administrators' scope (every administrator, while it is
//! on, whatever their own override says), then the user's own override (on or off), then
//! any of their groups, then the global switch. A user who enrolled a factor is asked for
//! it even when nothing forces one, and an exempt user is never asked. Allowed methods are
//! the global set narrowed by every group that sets its own.

mod cache;

use std::sync::Arc;

use crate::factors::{self, Method, MethodSet};
use crate::groups::Group;
use crate::users::User;
use crate::{Db, Error, Result, access, groups};

pub use cache::Cache;

const FORCE_2FA: &str = "force_2fa";
const FORCE_2FA_ADMINS: &str = "force_2fa_admins";
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
    /// Every administrator must use 2FA (the administrators' scope). Off when unset, so
    /// an upgraded installation keeps its behaviour; a new one turns it on when its first
    /// administrator is made.
    pub force_2fa_admins: bool,
    pub allowed_methods: MethodSet,
    /// How many backup codes a new set has.
    pub backup_code_count: u32,
    /// Days of the first-login enrollment window (see [`Requirement::EnrollmentClosed`]).
    pub enrollment_window_days: u32,
}

/// Writes one policy setting. Every setting takes part in the decision, so each change
/// moves the access revision ([`access::changed`]): live logins are re-checked and the
/// per-revision [`Cache`] of every node is dropped.
async fn set_setting(db: &Db, key: &str, value: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(db.pool())
    .await?;
    access::changed(db).await
}

/// Reads the global policy (defaults where nothing was set), in one query.
pub async fn load(db: &Db) -> Result<Policy> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT key, value FROM settings WHERE key IN ($1, $2, $3, $4, $5)")
            .bind(FORCE_2FA)
            .bind(FORCE_2FA_ADMINS)
            .bind(ALLOWED_METHODS)
            .bind(BACKUP_CODE_COUNT)
            .bind(ENROLLMENT_WINDOW_DAYS)
            .fetch_all(db.pool())
            .await?;
    let setting = |key: &str| rows.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    Ok(Policy {
        force_2fa: setting(FORCE_2FA) == Some("on"),
        force_2fa_admins: setting(FORCE_2FA_ADMINS) == Some("on"),
        allowed_methods: setting(ALLOWED_METHODS).map(MethodSet::parse_stored).unwrap_or_else(MethodSet::all),
        backup_code_count: setting(BACKUP_CODE_COUNT).and_then(|s| s.parse().ok()).unwrap_or(10),
        enrollment_window_days: setting(ENROLLMENT_WINDOW_DAYS)
            .and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_ENROLLMENT_WINDOW_DAYS),
    })
}

pub async fn set_force_2fa(db: &Db, on: bool) -> Result<()> {
    set_setting(db, FORCE_2FA, if on { "on" } else { "off" }).await
}

/// Turns the administrators' scope on or off. On ends every administrator's live login
/// that did not pass a second factor ([`access::changed`]).
pub async fn set_force_2fa_admins(db: &Db, on: bool) -> Result<()> {
    set_setting(db, FORCE_2FA_ADMINS, if on { "on" } else { "off" }).await
}

pub async fn set_allowed_methods(db: &Db, methods: &MethodSet) -> Result<()> {
    set_setting(db, ALLOWED_METHODS, &methods.to_stored()).await
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
    /// The user's own override: `Some(true)` forces, `Some(false)` does not force even
    /// where a group or the global switch would, `None` inherits.
    pub forced_by_user: Option<bool>,
    /// The user is an administrator and every administrator must use 2FA.
    pub forced_as_admin: bool,
    pub allowed: Option<MethodSet>,
    pub enrolled: Vec<Method>,
    /// Whether the user is inside their first-login enrollment window.
    pub enrollment_open: bool,
}

/// The scope that decides whether a second factor is forced on a user, the most specific
/// that speaks: what [`decide`] and both sentences ([`Resolution::reason`],
/// [`Resolution::reason_for_admin`]) are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forcing {
    /// An administrator, while every administrator must use 2FA; their own override does
    /// not count, so an administrator cannot turn it off for themself.
    AdminScope,
    /// The user's own override says on (`true`) or off (`false`).
    UserOverride(bool),
    /// At least one of the user's groups forces it.
    Groups,
    /// The global switch forces it.
    Global,
    /// No scope forces it.
    Nothing,
}

impl Forcing {
    /// Whether this scope forces a second factor.
    pub fn forces(self) -> bool {
        match self {
            Forcing::AdminScope | Forcing::Groups | Forcing::Global => true,
            Forcing::UserOverride(on) => on,
            Forcing::Nothing => false,
        }
    }
}

impl Resolution {
    /// Which scope decides forcing for this user (precedence: administrators' scope, the
    /// user's override, groups, global). Exemption is not a scope: [`decide`] applies it
    /// after, to whatever this says.
    pub fn forcing(&self) -> Forcing {
        if self.forced_as_admin {
            Forcing::AdminScope
        } else if let Some(on) = self.forced_by_user {
            Forcing::UserOverride(on)
        } else if !self.forced_by_groups.is_empty() {
            Forcing::Groups
        } else if self.forced_globally {
            Forcing::Global
        } else {
            Forcing::Nothing
        }
    }

    /// What a user override "off" sets aside, for the sentences: "group(s) ops" or "the
    /// global setting".
    fn overridden(&self) -> Option<String> {
        if !self.forced_by_groups.is_empty() {
            Some(format!("group(s) {}", self.forced_by_groups.join(", ")))
        } else if self.forced_globally {
            Some("the global setting".to_string())
        } else {
            None
        }
    }

    /// Why a second factor is asked of `user` or not, in one sentence for them: the same
    /// inputs, in the same order, as [`decide`].
    pub fn reason(&self, user: &User) -> String {
        if user.exempt_2fa {
            return "You are exempt from the second factor.".to_string();
        }
        match self.forcing() {
            Forcing::AdminScope => "A second factor is required of every administrator.".to_string(),
            Forcing::UserOverride(true) => "A second factor is required for your account.".to_string(),
            Forcing::Groups => {
                format!("A second factor is required by your group(s): {}.", self.forced_by_groups.join(", "))
            }
            Forcing::Global => "A second factor is required for every account.".to_string(),
            Forcing::UserOverride(false) | Forcing::Nothing if !self.enrolled.is_empty() => {
                "A second factor is asked at every login because you enrolled one.".to_string()
            }
            Forcing::UserOverride(false) | Forcing::Nothing => {
                "A second factor is optional for your account.".to_string()
            }
        }
    }

    /// Why a second factor is or is not required of `user`, in one sentence for an
    /// administrator looking at the account: the same inputs, in the same order, as
    /// [`decide`]. Starts with "Required" or "Not required".
    pub fn reason_for_admin(&self, user: &User) -> String {
        let name = &user.name;
        if user.exempt_2fa {
            return format!("Not required: {name} is exempt from the second factor and is never asked for one.");
        }
        let enrolled = !self.enrolled.is_empty();
        match self.forcing() {
            Forcing::AdminScope => {
                format!("Required: {name} is an administrator and every administrator must use 2FA.")
            }
            Forcing::UserOverride(true) => format!("Required: forcing is turned on for {name}."),
            Forcing::Groups => format!("Required by group(s): {}.", self.forced_by_groups.join(", ")),
            Forcing::Global => "Required: 2FA is forced for every account.".to_string(),
            Forcing::UserOverride(false) => {
                let over = self.overridden().map(|o| format!(", overriding {o}")).unwrap_or_default();
                if enrolled {
                    format!(
                        "Required: forcing is turned off for {name}{over}, but {name} enrolled a factor and is asked for it."
                    )
                } else {
                    format!("Not required: forcing is turned off for {name}{over}.")
                }
            }
            Forcing::Nothing if enrolled => {
                format!("Required: nothing forces it, but {name} enrolled a factor and is asked for it.")
            }
            Forcing::Nothing => {
                "Not required: no scope forces 2FA on this account and no factor is enrolled.".to_string()
            }
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
    let enrolled = factors::enrolled(db, user.id).await?;
    Ok(Resolution::assemble(user, &policy, &groups, enrolled, crate::time::now()))
}

/// [`resolve`] for a request that has already read the user, what they enrolled and the
/// access revision (one query, see `web_sessions::signed_in`): the global policy and the
/// user's groups come from `cache` when nothing moved the revision since they were read.
pub async fn resolve_at(
    db: &Db,
    cache: &Cache,
    user: &User,
    enrolled: Vec<Method>,
    revision: i64,
) -> Result<Resolution> {
    let (policy, groups) = match cache.get(user.id, revision) {
        Some(hit) => hit,
        None => {
            let policy = Arc::new(load(db).await?);
            let groups = Arc::new(groups::of_user(db, user.id).await?);
            cache.put(user.id, revision, &policy, &groups);
            (policy, groups)
        }
    };
    Ok(Resolution::assemble(user, &policy, &groups, enrolled, crate::time::now()))
}

impl Resolution {
    /// The inputs of the decision, from what was read: `now` decides whether the user is
    /// still inside their enrollment window.
    fn assemble(user: &User, policy: &Policy, groups: &[Group], enrolled: Vec<Method>, now: i64) -> Resolution {
        let mut allowed = policy.allowed_methods.clone();
        for g in groups {
            if let Some(set) = &g.allowed_methods {
                allowed = allowed.intersect(set);
            }
        }
        Resolution {
            forced_globally: policy.force_2fa,
            forced_by_groups: groups.iter().filter(|g| g.force_2fa).map(|g| g.name.clone()).collect(),
            forced_by_user: user.force_2fa,
            forced_as_admin: user.is_admin && policy.force_2fa_admins,
            allowed: Some(allowed),
            enrolled,
            enrollment_open: user.enrollment_window_open(policy.enrollment_window_days, now),
        }
    }
}

/// The decision itself, without I/O (unit-tested below). Precedence, most specific first:
/// exempt (never asked) > the administrators' scope > the user's override > groups >
/// global ([`Resolution::forcing`]) > a factor the user enrolled, which is asked for even
/// when nothing forces one.
pub fn decide(user: &User, r: &Resolution, allowed: &MethodSet) -> Requirement {
    let forced = r.forcing().forces();
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
            force_2fa: None,
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
            forced_by_user: None,
            forced_as_admin: false,
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
            (res(true, &[], &[]), "required for every account"),
            // The more specific scope is named: the group, not the global switch.
            (res(true, &["ops"], &[]), "required by your group(s): ops."),
            (res(false, &["ops", "db"], &[]), "required by your group(s): ops, db."),
            (res(false, &[], &[Method::Totp]), "because you enrolled one"),
            (res(false, &[], &[]), "optional"),
            (scoped(false, &[], Some(true), false, &[]), "required for your account"),
            (scoped(true, &["ops"], Some(false), false, &[]), "optional"),
            (scoped(false, &[], Some(false), true, &[]), "required of every administrator"),
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

    /// `res` with the user's override and the administrators' scope.
    fn scoped(global: bool, groups: &[&str], user: Option<bool>, admin: bool, enrolled: &[Method]) -> Resolution {
        Resolution { forced_by_user: user, forced_as_admin: admin, ..res(global, groups, enrolled) }
    }

    fn forced(r: &Resolution) -> bool {
        !matches!(decide(&user(None, false), r, &MethodSet::all()), Requirement::NotRequired)
    }

    #[test]
    fn a_user_override_on_forces_when_nothing_else_does() {
        let r = scoped(false, &[], Some(true), false, &[]);
        assert_eq!(r.forcing(), Forcing::UserOverride(true));
        assert!(matches!(decide(&user(None, false), &r, &MethodSet::all()), Requirement::MustEnroll { .. }));
    }

    #[test]
    fn a_user_override_off_beats_groups_and_the_global_switch() {
        for r in [scoped(false, &["ops"], Some(false), false, &[]), scoped(true, &[], Some(false), false, &[])] {
            assert_eq!(r.forcing(), Forcing::UserOverride(false));
            assert!(!forced(&r), "{r:?}");
        }
        // Inherit falls back to the group, then to the global switch.
        assert_eq!(scoped(true, &["ops"], None, false, &[]).forcing(), Forcing::Groups);
        assert_eq!(scoped(true, &[], None, false, &[]).forcing(), Forcing::Global);
    }

    #[test]
    fn override_off_still_asks_for_an_enrolled_factor() {
        let r = scoped(true, &["ops"], Some(false), false, &[Method::Totp]);
        assert_eq!(
            decide(&user(None, false), &r, &MethodSet::all()),
            Requirement::Required { methods: vec![Method::Totp] }
        );
    }

    #[test]
    fn the_administrators_scope_beats_the_users_own_override() {
        let r = scoped(false, &[], Some(false), true, &[]);
        assert_eq!(r.forcing(), Forcing::AdminScope);
        assert!(matches!(decide(&user(None, false), &r, &MethodSet::all()), Requirement::MustEnroll { .. }));
        // Only the administrators' scope: an administrator with nothing else forcing.
        assert!(forced(&scoped(false, &[], None, true, &[])));
        // Exemption still wins over every scope (never asked, and audited as such).
        assert_eq!(decide(&user(None, true), &r, &MethodSet::all()), Requirement::Exempt);
        let enrolled = scoped(false, &[], Some(false), true, &[Method::Totp]);
        assert_eq!(decide(&user(None, true), &enrolled, &MethodSet::all()), Requirement::Exempt);
    }

    /// Every combination of the inputs: the administrator's sentence says "Required" exactly
    /// when [`decide`] requires a factor, and names the scope that decided.
    #[test]
    fn the_administrators_sentence_matches_the_decision_for_every_combination() {
        let mut seen = std::collections::HashSet::new();
        for exempt in [false, true] {
            for admin in [false, true] {
                for over in [None, Some(true), Some(false)] {
                    for groups in [&[][..], &["ops"][..]] {
                        for global in [false, true] {
                            for enrolled in [&[][..], &[Method::Totp][..]] {
                                let mut u = user(None, exempt);
                                u.name = "bob".into();
                                let r = scoped(global, groups, over, admin, enrolled);
                                let sentence = r.reason_for_admin(&u);
                                let required =
                                    !matches!(r.requirement(&u), Requirement::NotRequired | Requirement::Exempt);
                                assert_eq!(
                                    sentence.starts_with("Required"),
                                    required,
                                    "{sentence} for exempt={exempt} admin={admin} override={over:?} groups={groups:?} global={global} enrolled={enrolled:?}"
                                );
                                assert!(sentence.starts_with("Not required") != required, "{sentence}");
                                let names = match (exempt, r.forcing()) {
                                    (true, _) => "exempt",
                                    (false, Forcing::AdminScope) => "every administrator must use 2FA",
                                    (false, Forcing::UserOverride(true)) => "forcing is turned on for bob",
                                    (false, Forcing::UserOverride(false)) => "forcing is turned off for bob",
                                    (false, Forcing::Groups) => "group(s): ops",
                                    (false, Forcing::Global) => "every account",
                                    (false, Forcing::Nothing) if !enrolled.is_empty() => "enrolled a factor",
                                    (false, Forcing::Nothing) => "no scope forces",
                                };
                                assert!(sentence.contains(names), "{sentence} should say {names}");
                                // And the user's own sentence agrees with the same decision.
                                let own = r.reason(&u);
                                assert_eq!(!own.contains("optional") && !own.contains("exempt"), required, "{own}");
                                seen.insert(sentence);
                            }
                        }
                    }
                }
            }
        }
        assert!(seen.len() >= 10, "the sentences tell the scopes apart: {seen:?}");
    }

    #[test]
    fn the_administrators_sentence_names_what_an_override_sets_aside() {
        let mut bob = user(None, false);
        bob.name = "bob".into();
        let admin = {
            let mut u = user(None, false);
            u.is_admin = true;
            u
        };
        let cases = [
            (
                scoped(false, &[], Some(false), true, &[]),
                &admin,
                "Required: alice is an administrator and every administrator must use 2FA.",
            ),
            (
                scoped(false, &["ops"], Some(false), false, &[]),
                &bob,
                "Not required: forcing is turned off for bob, overriding group(s) ops.",
            ),
            (
                scoped(true, &[], Some(false), false, &[]),
                &bob,
                "Not required: forcing is turned off for bob, overriding the global setting.",
            ),
            (scoped(false, &[], Some(false), false, &[]), &bob, "Not required: forcing is turned off for bob."),
            (scoped(false, &["ops", "db"], None, false, &[]), &bob, "Required by group(s): ops, db."),
            (scoped(false, &[], Some(true), false, &[]), &bob, "Required: forcing is turned on for bob."),
        ];
        for (r, u, says) in cases {
            assert_eq!(r.reason_for_admin(u), says);
        }
    }
}
