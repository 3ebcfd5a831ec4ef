//! Directory accounts: users whose password an LDAP server or Active Directory checks
//! (`[ldap]`), with their groups and SSH keys read from it.
//!
//! - A directory user who logs in for the first time gets a Gatehouse account
//!   ([`admit`]), marked `store = 'ldap'`, with no password stored.
//! - Whenever the directory answers for a user (a login, a key login, the sync), the
//!   account follows it: mail address, keys from the key attribute, memberships of the
//!   mapped groups, and whether the directory still admits the user at all. A user the
//!   directory no longer admits is disabled here ([`disable`]): refused at every login and
//!   their live connections and target sessions end on every node.
//! - A directory that cannot be asked fails closed: the login is refused (not counted as a
//!   wrong password), audited, and shown on the health page.
//!
//! The LDAP conversation itself is [`client`]; this module owns what the answers change in
//! the database.

pub mod client;

use ssh_key::PublicKey;

pub use client::{Bound, Client, Entry, Unavailable};

use crate::audit::{AuditEvent, AuditKind, Outcome};
use crate::db::flag;
use crate::users::{self, Store, User};
use crate::{Error, Gateway, Result, access, groups, ssh_keys, time};

/// The key the directory's health is kept under (beside the second factors' services).
pub const HEALTH_KEY: &str = "ldap";

/// The text a user reads when the directory cannot be asked.
pub const UNAVAILABLE_TEXT: &str = "Your password is checked by the company directory, which cannot be reached right now.\n\
     Try again in a few minutes; if it goes on, tell an administrator.";

/// The configured directory, or an error a login fails closed on.
fn client(gw: &Gateway) -> std::result::Result<&Client, Unavailable> {
    gw.directory.as_deref().ok_or_else(|| Unavailable("no directory is configured ([ldap] urls)".into()))
}

/// Whether `name` is to be checked by the directory: a directory user, or a name this
/// gateway does not know while a directory is configured (who may be provisioned).
pub fn decides(gw: &Gateway, user: Option<&User>) -> bool {
    match user {
        Some(u) => u.store == Store::Ldap,
        None => gw.directory.is_some(),
    }
}

/// Checks `password` against the directory for `name`. The health page learns the outcome.
pub async fn authenticate(gw: &Gateway, name: &str, password: &str) -> std::result::Result<Bound, Unavailable> {
    let answer = match client(gw) {
        Ok(c) => c.authenticate(name, password).await,
        Err(e) => Err(e),
    };
    note_health(gw, &answer.as_ref().map(|_| ())).await;
    answer
}

/// Looks `name` up with the search account (public-key logins, passcodes, the sync).
pub async fn lookup(gw: &Gateway, name: &str) -> std::result::Result<Option<Entry>, Unavailable> {
    let answer = match client(gw) {
        Ok(c) => c.lookup(name).await,
        Err(e) => Err(e),
    };
    note_health(gw, &answer.as_ref().map(|_| ())).await;
    answer
}

async fn note_health(gw: &Gateway, answer: &std::result::Result<(), &Unavailable>) {
    match answer {
        Ok(()) => crate::health::record_service_ok(gw, HEALTH_KEY).await,
        Err(e) => crate::health::record_service_error(gw, HEALTH_KEY, &e.0).await,
    }
}

/// The account for a directory entry that the directory has just admitted: made on the
/// first login, brought in line with the entry on every later one. `None` when the
/// directory's name cannot be an account here (audited).
pub async fn admit(gw: &Gateway, existing: Option<User>, typed: &str, entry: &Entry) -> Result<Option<User>> {
    // The directory matched the typed name; the account is the directory's spelling. A
    // different spelling (case) would be a second account for one person: refused.
    if entry.name != typed {
        gw.audit(
            AuditEvent::new(AuditKind::DirectoryProvision, Outcome::Failure)
                .user(crate::audit::printable(typed))
                .detail(format!(
                    "the directory's name for this user is '{}': log in with exactly that name",
                    crate::audit::printable(&entry.name)
                )),
        )
        .await?;
        return Ok(None);
    }
    let user = match existing {
        Some(u) => u,
        None => match provision(gw, entry).await? {
            Some(u) => u,
            None => return Ok(None),
        },
    };
    if user.store != Store::Ldap {
        return Ok(None);
    }
    refresh(gw, &user, entry).await?;
    users::by_id(&gw.db, user.id).await
}

/// Makes the account of a first login.
async fn provision(gw: &Gateway, entry: &Entry) -> Result<Option<User>> {
    if let Err(e) = users::validate_name("user name", &entry.name) {
        gw.audit(
            AuditEvent::new(AuditKind::DirectoryProvision, Outcome::Failure)
                .user(crate::audit::printable(&entry.name))
                .detail(format!("not provisioned: {e}")),
        )
        .await?;
        return Ok(None);
    }
    let now = time::now();
    // Two first logins may race: one inserts, the other finds the row.
    let inserted = sqlx::query(
        "INSERT INTO users (name, email, store, directory_dn, directory_synced_at, created_at, enroll_from)
         VALUES ($1, $2, 'ldap', $3, $4, $4, $4) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&entry.name)
    .bind(entry.mail.as_deref().filter(|m| usable_mail(m)))
    .bind(&entry.dn)
    .bind(now)
    .execute(gw.db.pool())
    .await?
    .rows_affected();
    let user = users::get(&gw.db, &entry.name).await?;
    if inserted == 1 {
        gw.audit(
            AuditEvent::new(AuditKind::DirectoryProvision, Outcome::Success)
                .user(&entry.name)
                .detail(format!("account made at first login from {}", crate::audit::printable(&entry.dn))),
        )
        .await?;
    }
    Ok(Some(user))
}

fn usable_mail(mail: &str) -> bool {
    mail.len() <= 254 && mail.contains('@') && !mail.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Brings the account in line with the entry: enabled again if it was disabled, mail, DN,
/// keys from the directory, memberships of the mapped groups. Anything that can withdraw
/// access (a key or a group gone) moves the access revision.
pub async fn refresh(gw: &Gateway, user: &User, entry: &Entry) -> Result<()> {
    let mail = entry.mail.as_deref().filter(|m| usable_mail(m));
    sqlx::query(
        "UPDATE users SET email = $1, directory_dn = $2, directory_disabled = 0, directory_synced_at = $3
         WHERE id = $4",
    )
    .bind(mail)
    .bind(&entry.dn)
    .bind(time::now())
    .bind(user.id)
    .execute(gw.db.pool())
    .await?;
    if user.directory_disabled {
        gw.audit(
            AuditEvent::new(AuditKind::DirectoryDisable, Outcome::Info)
                .user(&user.name)
                .detail("the directory admits the user again: enabled"),
        )
        .await?;
    }
    let mut withdrawn = false;
    if !gw.config.ldap.ssh_key_attribute.is_empty() {
        let keys: Vec<PublicKey> = entry.ssh_keys.iter().filter_map(|line| ssh_keys::parse(line).ok()).collect();
        withdrawn |= ssh_keys::replace_from_directory(&gw.db, user.id, &keys).await?;
    }
    withdrawn |= sync_groups(gw, user, entry).await?;
    if withdrawn {
        access::changed(&gw.db).await?;
    }
    Ok(())
}

/// Sets the user's memberships of the mapped groups to what the directory says; groups
/// that are not mapped are left alone. Returns whether any membership changed (joining
/// can withdraw too: a group may force a second factor a live login did not pass).
async fn sync_groups(gw: &Gateway, user: &User, entry: &Entry) -> Result<bool> {
    let map = &gw.config.ldap.groups;
    if map.is_empty() {
        return Ok(false);
    }
    let current: Vec<String> = groups::of_user(&gw.db, user.id).await?.into_iter().map(|g| g.name).collect();
    let mut joined = Vec::new();
    let mut left = Vec::new();
    let mut made = Vec::new();
    // One Gatehouse group may be fed by several directory groups: a member of any is in.
    let mut wanted: std::collections::BTreeMap<&str, bool> = std::collections::BTreeMap::new();
    for (dn, group) in map {
        let member = entry.groups.iter().any(|g| client::same_dn(g, dn));
        *wanted.entry(group.as_str()).or_default() |= member;
    }
    for (group, member) in wanted {
        let is_member = current.iter().any(|g| g == group);
        if member && !is_member {
            if groups::find(&gw.db, group).await?.is_none() {
                match groups::create(&gw.db, group).await {
                    Ok(_) => made.push(group.to_string()),
                    Err(Error::Duplicate { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            match groups::add_member(&gw.db, group, &user.name).await {
                Ok(()) | Err(Error::Duplicate { .. }) => joined.push(group.to_string()),
                Err(e) => return Err(e),
            }
        } else if !member && is_member {
            match groups::remove_member(&gw.db, group, &user.name).await {
                Ok(()) | Err(Error::NotFound { .. }) => left.push(group.to_string()),
                Err(e) => return Err(e),
            }
        }
    }
    if !joined.is_empty() || !left.is_empty() {
        let mut parts = Vec::new();
        if !joined.is_empty() {
            parts.push(format!("joined {}", joined.join(", ")));
        }
        if !left.is_empty() {
            parts.push(format!("left {}", left.join(", ")));
        }
        if !made.is_empty() {
            parts.push(format!("group(s) {} made for the [ldap.groups] mapping", made.join(", ")));
        }
        gw.audit(
            AuditEvent::new(AuditKind::DirectoryGroups, Outcome::Info)
                .user(&user.name)
                .detail(format!("{} (following the directory)", parts.join("; "))),
        )
        .await?;
    }
    // Joining can withdraw too: a group may force a second factor this login did not pass.
    Ok(!joined.is_empty() || !left.is_empty())
}

/// The directory no longer admits `user`: the account is disabled here, and its live
/// connections and target sessions end on every node. Audited once, when it changes.
pub async fn disable(gw: &Gateway, user: &User, why: &str) -> Result<()> {
    let changed = sqlx::query("UPDATE users SET directory_disabled = $1 WHERE id = $2 AND directory_disabled = 0")
        .bind(flag(true))
        .bind(user.id)
        .execute(gw.db.pool())
        .await?
        .rows_affected();
    if changed == 0 {
        return Ok(());
    }
    crate::live_sessions::terminate_user(&gw.db, &user.name).await?;
    access::changed(&gw.db).await?;
    gw.audit(
        AuditEvent::new(AuditKind::DirectoryDisable, Outcome::Info)
            .user(&user.name)
            .detail(format!("disabled: {why}; live connections end")),
    )
    .await
}

/// The sync's setting: when it last ran (epoch seconds), shared by every node so one node
/// runs each round.
const LAST_SYNC: &str = "ldap_last_sync";

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    pub checked: usize,
    pub disabled: usize,
    pub enabled: usize,
}

/// Runs the sync if its interval has passed and no other node claimed this round.
pub async fn sync_if_due(gw: &Gateway) -> Result<Option<SyncReport>> {
    let every = gw.config.ldap.sync_interval_secs as i64;
    if gw.directory.is_none() || every == 0 || !gw.config.ldap.searches() {
        return Ok(None);
    }
    let now = time::now();
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, '0') ON CONFLICT (key) DO NOTHING")
        .bind(LAST_SYNC)
        .execute(gw.db.pool())
        .await?;
    // One UPDATE decides which node runs this round (the row is compared and set at once).
    let claimed = sqlx::query("UPDATE settings SET value = $1 WHERE key = $2 AND CAST(value AS BIGINT) <= $3")
        .bind(now.to_string())
        .bind(LAST_SYNC)
        .bind(now - every)
        .execute(gw.db.pool())
        .await?
        .rows_affected();
    if claimed == 0 {
        return Ok(None);
    }
    sync(gw).await.map(Some)
}

/// Asks the directory about every directory user: the ones it no longer admits are
/// disabled, the others follow it (groups, keys, mail). A directory that stops answering
/// stops the sync: nobody is disabled for an outage.
pub async fn sync(gw: &Gateway) -> Result<SyncReport> {
    let directory_users: Vec<User> =
        users::list(&gw.db).await?.into_iter().filter(|u| u.store == Store::Ldap).collect();
    let mut report = SyncReport::default();
    for user in directory_users {
        match lookup(gw, &user.name).await {
            Ok(Some(entry)) if entry.name == user.name => {
                if user.directory_disabled {
                    report.enabled += 1;
                }
                refresh(gw, &user, &entry).await?;
            }
            Ok(_) => {
                if !user.directory_disabled {
                    report.disabled += 1;
                }
                disable(gw, &user, "no longer in the directory (or excluded by ldap.user_filter), found by the sync")
                    .await?;
            }
            Err(e) => {
                gw.audit(
                    AuditEvent::new(AuditKind::DirectoryUnavailable, Outcome::Failure)
                        .detail(format!("sync stopped after {} user(s): {e}", report.checked)),
                )
                .await?;
                return Err(Error::Unavailable(format!("directory sync: {e}")));
            }
        }
        report.checked += 1;
    }
    gw.audit(AuditEvent::new(AuditKind::DirectorySync, Outcome::Success).detail(format!(
        "{} directory user(s) checked, {} disabled, {} enabled again",
        report.checked, report.disabled, report.enabled
    )))
    .await?;
    Ok(report)
}

/// The administrator's "test bind", recorded for the health page and audited.
pub async fn test(gw: &Gateway) -> String {
    let answer = match client(gw) {
        Ok(c) => c.test().await,
        Err(e) => Err(e),
    };
    note_health(gw, &answer.as_ref().map(|_| ())).await;
    match answer {
        Ok(what) => format!("OK: {what}."),
        Err(e) => format!("No answer: {e}."),
    }
}
