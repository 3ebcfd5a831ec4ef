//! Groups: create, delete, members, force 2FA, allowed methods.

use super::{Actor, on_off, record};
use crate::audit::AuditKind;
use crate::factors::MethodSet;
use crate::groups::{self, Group};
use crate::{Gateway, Result};

pub async fn create(gw: &Gateway, by: &Actor, name: &str) -> Result<Group> {
    let group = groups::create(&gw.db, name).await?;
    record(gw, by, AuditKind::GroupCreate, None, format!("group {name}")).await?;
    Ok(group)
}

pub async fn delete(gw: &Gateway, by: &Actor, name: &str) -> Result<()> {
    groups::delete(&gw.db, name).await?;
    record(gw, by, AuditKind::GroupDelete, None, format!("group {name}")).await
}

pub async fn add_member(gw: &Gateway, by: &Actor, group: &str, user: &str) -> Result<()> {
    groups::add_member(&gw.db, group, user).await?;
    record(gw, by, AuditKind::GroupMemberAdd, Some(user), format!("added to group {group}")).await
}

pub async fn remove_member(gw: &Gateway, by: &Actor, group: &str, user: &str) -> Result<()> {
    groups::remove_member(&gw.db, group, user).await?;
    record(gw, by, AuditKind::GroupMemberRemove, Some(user), format!("removed from group {group}")).await
}

/// Forces 2FA for the group's members, or no longer.
pub async fn set_force_2fa(gw: &Gateway, by: &Actor, group: &str, on: bool) -> Result<()> {
    groups::set_force_2fa(&gw.db, group, on).await?;
    record(gw, by, AuditKind::PolicyForce2fa, None, format!("group {group}: {}", on_off(on))).await
}

/// Narrows the group to `methods`; `None` inherits the global set.
pub async fn set_allowed_methods(gw: &Gateway, by: &Actor, group: &str, methods: Option<&MethodSet>) -> Result<()> {
    groups::set_allowed_methods(&gw.db, group, methods.map(|m| m.methods())).await?;
    let shown = methods.map(|m| m.to_string()).unwrap_or_else(|| "inherit".into());
    record(gw, by, AuditKind::PolicyMethods, None, format!("group {group}: {shown}")).await
}
