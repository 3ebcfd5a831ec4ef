//! Targets: create, edit, host keys, grants, delete.

use super::{Actor, record};
use crate::audit::AuditKind;
use crate::targets::{self, Grantee, NewTarget, Target};
use crate::{Gateway, Result};

fn grantee_text(g: Grantee<'_>) -> String {
    match g {
        Grantee::User(u) => format!("user {u}"),
        Grantee::Group(g) => format!("group {g}"),
    }
}

fn grantee_user(g: Grantee<'_>) -> Option<&str> {
    match g {
        Grantee::User(u) => Some(u),
        Grantee::Group(_) => None,
    }
}

pub async fn create(gw: &Gateway, by: &Actor, new: NewTarget<'_>) -> Result<Target> {
    let t = targets::create(&gw.db, &gw.vault, new).await?;
    let pinned = if t.host_key.is_some() { "host key pinned" } else { "host key pinned on first use" };
    record(
        gw,
        by,
        AuditKind::TargetCreate,
        None,
        format!("target {} {}@{}:{}, {pinned}", t.name, t.username, t.host, t.port),
    )
    .await?;
    Ok(t)
}

/// Changes where a target is and whom the gateway logs in as.
pub async fn edit(gw: &Gateway, by: &Actor, name: &str, host: &str, port: u16, username: &str) -> Result<()> {
    targets::update_connection(&gw.db, name, host, port, username).await?;
    record(gw, by, AuditKind::TargetEdit, None, format!("target {name} now {username}@{host}:{port}")).await
}

/// Pins a host key (one OpenSSH line).
pub async fn pin_host_key(gw: &Gateway, by: &Actor, name: &str, key_line: &str) -> Result<()> {
    targets::pin_host_key(&gw.db, name, key_line).await?;
    let pinned = targets::get(&gw.db, name).await?.host_key.unwrap_or_default();
    record(gw, by, AuditKind::TargetHostKeyPin, None, format!("target {name} pinned {pinned}")).await
}

/// Forgets the pinned host key: the next connection pins what the target shows.
pub async fn forget_host_key(gw: &Gateway, by: &Actor, name: &str) -> Result<()> {
    targets::forget_host_key(&gw.db, name).await?;
    record(gw, by, AuditKind::TargetHostKeyForget, None, format!("target {name}: pin cleared, next connection pins"))
        .await
}

pub async fn grant(gw: &Gateway, by: &Actor, name: &str, to: Grantee<'_>) -> Result<()> {
    targets::grant(&gw.db, name, to).await?;
    record(gw, by, AuditKind::TargetGrant, grantee_user(to), format!("{name} to {}", grantee_text(to))).await
}

pub async fn revoke(gw: &Gateway, by: &Actor, name: &str, from: Grantee<'_>) -> Result<()> {
    targets::revoke(&gw.db, name, from).await?;
    record(gw, by, AuditKind::TargetRevoke, grantee_user(from), format!("{name} from {}", grantee_text(from))).await
}

pub async fn delete(gw: &Gateway, by: &Actor, name: &str) -> Result<()> {
    targets::delete(&gw.db, name).await?;
    record(gw, by, AuditKind::TargetDelete, None, format!("target {name}")).await
}
