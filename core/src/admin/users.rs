//! Accounts: create, password, lock, delete, keys, exemption, force-2FA override,
//! administrator flag, factors.

use super::{Actor, on_off, record};
use crate::audit::AuditKind;
use crate::factors::{self, Method, ssh_sk};
use crate::ssh_keys::{self, SshKey};
use crate::users::{self, NewUser, User};
use crate::{Error, Gateway, Result, lockout, trusted_devices, web_sessions};

/// A new account.
#[derive(Debug, Default)]
pub struct NewAccount<'a> {
    pub name: &'a str,
    pub password: Option<&'a str>,
    pub email: Option<&'a str>,
    pub is_admin: bool,
    /// The password is one-time: the web UI asks for a new one at the first login.
    pub one_time_password: bool,
}

/// Creates an account.
pub async fn create(gw: &Gateway, by: &Actor, new: NewAccount<'_>) -> Result<User> {
    let user = users::create(
        &gw.db,
        NewUser { name: new.name, password: new.password, email: new.email, is_admin: new.is_admin },
    )
    .await?;
    if new.one_time_password {
        users::set_must_change_password(&gw.db, user.id, true).await?;
    }
    let detail =
        format!("administrator: {}; one-time password: {}", on_off(user.is_admin), on_off(new.one_time_password));
    record(gw, by, AuditKind::UserCreate, Some(&user.name), detail).await?;
    Ok(user)
}

/// Sets a user's password; every application passcode and every web session goes with
/// the old one (a reset is what an administrator does when the old password may be known
/// to someone else, who may hold a session opened with it). Returns how many passcodes
/// were revoked.
pub async fn set_password(gw: &Gateway, by: &Actor, name: &str, password: &str, one_time: bool) -> Result<u64> {
    let user = users::get(&gw.db, name).await?;
    let revoked = users::set_password(&gw.db, name, password).await?;
    users::set_must_change_password(&gw.db, user.id, one_time).await?;
    let ended = web_sessions::delete_others(&gw.db, user.id, "").await?;
    let detail = format!(
        "set by an administrator (one-time: {}); {revoked} application passcodes revoked, {ended} web sessions ended",
        on_off(one_time)
    );
    record(gw, by, AuditKind::UserPassword, Some(name), detail).await?;
    Ok(revoked)
}

/// Locks an account: its web sessions end at once, and its SSH connections and target
/// sessions on every node within a second. An administrator cannot lock themself out.
/// Returns how many web sessions ended.
pub async fn lock(gw: &Gateway, by: &Actor, name: &str) -> Result<u64> {
    let user = users::get(&gw.db, name).await?;
    if by.is(name) {
        return Err(Error::invalid("user", "you cannot lock your own account"));
    }
    users::set_locked(&gw.db, name, true).await?;
    let ended = web_sessions::delete_others(&gw.db, user.id, "").await?;
    record(gw, by, AuditKind::UserLock, Some(name), format!("locked; {ended} web sessions ended")).await?;
    Ok(ended)
}

/// Unlocks an account, and lifts a lockout after failed attempts.
pub async fn unlock(gw: &Gateway, by: &Actor, name: &str) -> Result<()> {
    users::set_locked(&gw.db, name, false).await?;
    lockout::clear_user(&gw.db, name).await?;
    record(gw, by, AuditKind::UserUnlock, Some(name), "unlocked; failed attempts forgotten".into()).await
}

/// Deletes an account; its connections end on every node. An administrator cannot delete
/// their own account.
pub async fn delete(gw: &Gateway, by: &Actor, name: &str) -> Result<()> {
    if by.is(name) {
        return Err(Error::invalid("user", "you cannot delete your own account"));
    }
    users::delete(&gw.db, name).await?;
    record(gw, by, AuditKind::UserDelete, Some(name), "deleted".into()).await
}

/// Adds an SSH public key (one OpenSSH line) to an account.
pub async fn add_key(gw: &Gateway, by: &Actor, name: &str, line: &str) -> Result<SshKey> {
    let key = ssh_keys::add(&gw.db, name, line).await?;
    record(gw, by, AuditKind::KeyAdd, Some(name), format!("{} {}", key.algorithm, key.fingerprint)).await?;
    Ok(key)
}

/// Makes a user exempt from the second factor, or no longer.
pub async fn set_exempt(gw: &Gateway, by: &Actor, name: &str, exempt: bool) -> Result<()> {
    users::set_exempt(&gw.db, name, exempt).await?;
    let detail = if exempt { "EXEMPTED from the second factor" } else { "exemption ended" };
    record(gw, by, AuditKind::UserExempt, Some(name), detail.into()).await
}

/// Moves a user's password check to the `[radius]` servers or back to Gatehouse.
pub async fn set_store(gw: &Gateway, by: &Actor, name: &str, store: users::Store) -> Result<()> {
    if store == users::Store::Radius && !gw.config.radius.primary {
        return Err(Error::invalid("store", "RADIUS passwords need radius.primary = true (and radius.servers)"));
    }
    users::set_store(&gw.db, name, store).await?;
    let detail = match store {
        users::Store::Radius => "password checked by the RADIUS servers from now on; the stored one was dropped",
        _ => "password checked by Gatehouse from now on; none is set until an administrator sets one",
    };
    record(gw, by, AuditKind::UserStore, Some(name), detail.into()).await
}

/// The words a force-2FA override is shown and audited with: `on`, `off` or `inherit`.
pub fn override_word(force: Option<bool>) -> &'static str {
    match force {
        Some(true) => "on",
        Some(false) => "off",
        None => "inherit",
    }
}

/// Sets a user's own force-2FA override (`None` inherits from their groups and the
/// global switch). Forcing it on ends the user's live logins that did not pass a second
/// factor, on every node. An administrator under the administrators' scope stays forced
/// whatever their override says.
pub async fn set_force_2fa(gw: &Gateway, by: &Actor, name: &str, force: Option<bool>) -> Result<()> {
    users::set_force_2fa(&gw.db, name, force).await?;
    let detail = format!("user {name}: {}", override_word(force));
    record(gw, by, AuditKind::PolicyForce2fa, Some(name), detail).await
}

/// Gives or takes the administrator flag. An administrator cannot take their own.
pub async fn set_admin(gw: &Gateway, by: &Actor, name: &str, admin: bool) -> Result<()> {
    users::get(&gw.db, name).await?;
    if !admin && by.is(name) {
        return Err(Error::invalid("user", "you cannot remove your own administrator flag; ask another administrator"));
    }
    users::set_admin(&gw.db, name, admin).await?;
    record(gw, by, AuditKind::UserAdmin, Some(name), format!("administrator: {}", on_off(admin))).await
}

/// What a reset of a user's factors removed.
#[derive(Debug, Clone)]
pub struct Reset {
    pub methods: Vec<Method>,
    pub trusted_browsers: u64,
}

/// Removes every factor, backup code and trusted browser of a user and opens a new
/// first-login enrollment window.
pub async fn reset_factors(gw: &Gateway, by: &Actor, name: &str) -> Result<Reset> {
    let user = users::get(&gw.db, name).await?;
    let methods = factors::reset(&gw.db, user.id).await?;
    let trusted_browsers = trusted_devices::revoke_others(&gw.db, user.id, "").await?;
    let names: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
    let detail = format!("removed [{}], {trusted_browsers} trusted browsers", names.join(", "));
    record(gw, by, AuditKind::FactorReset, Some(name), detail).await?;
    Ok(Reset { methods, trusted_browsers })
}

/// Removes one factor of a user. False when the user had none of that method.
pub async fn remove_factor(gw: &Gateway, by: &Actor, name: &str, method: Method) -> Result<bool> {
    let user = users::get(&gw.db, name).await?;
    if !factors::remove(&gw.db, user.id, method).await? {
        return Ok(false);
    }
    record(gw, by, AuditKind::FactorRemove, Some(name), method.as_str().into()).await?;
    Ok(true)
}

/// Registers a security key (one `sk-…@openssh.com` line) as a second factor of an account.
pub async fn add_ssh_sk_key(
    gw: &Gateway,
    by: &Actor,
    name: &str,
    line: &str,
    key_name: &str,
    verify_required: bool,
) -> Result<ssh_sk::SkKey> {
    let user = users::get(&gw.db, name).await?;
    let key = ssh_sk::add(&gw.db, user.id, line, key_name, verify_required).await?;
    record(gw, by, AuditKind::FactorEnroll, Some(name), ssh_sk_detail(&key)).await?;
    Ok(key)
}

/// Removes the security key `id` of an account. False when the account has no such key.
pub async fn remove_ssh_sk_key(gw: &Gateway, by: &Actor, name: &str, id: i64) -> Result<bool> {
    let user = users::get(&gw.db, name).await?;
    let Some(key) = ssh_sk::remove(&gw.db, user.id, id).await? else {
        return Ok(false);
    };
    record(gw, by, AuditKind::FactorRemove, Some(name), ssh_sk_detail(&key)).await?;
    Ok(true)
}

/// How a security key is named in the audit log.
pub fn ssh_sk_detail(key: &ssh_sk::SkKey) -> String {
    let uv = if key.verify_required { ", verify-required" } else { "" };
    format!("ssh-sk key #{} \"{}\" {} {}{uv}", key.id, key.name, key.algorithm, key.fingerprint)
}
