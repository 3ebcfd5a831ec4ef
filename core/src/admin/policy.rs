//! The global two-factor policy.

use super::{Actor, on_off, record};
use crate::audit::AuditKind;
use crate::factors::MethodSet;
use crate::{Gateway, Result, policy};

pub async fn set_force_2fa(gw: &Gateway, by: &Actor, on: bool) -> Result<()> {
    policy::set_force_2fa(&gw.db, on).await?;
    record(gw, by, AuditKind::PolicyForce2fa, None, format!("global: {}", on_off(on))).await
}

/// Turns the administrators' scope on or off: while it is on, every administrator must
/// use 2FA, whatever their own override says.
pub async fn set_force_2fa_admins(gw: &Gateway, by: &Actor, on: bool) -> Result<()> {
    policy::set_force_2fa_admins(&gw.db, on).await?;
    record(gw, by, AuditKind::PolicyForce2fa, None, format!("administrators: {}", on_off(on))).await
}

pub async fn set_allowed_methods(gw: &Gateway, by: &Actor, methods: &MethodSet) -> Result<()> {
    policy::set_allowed_methods(&gw.db, methods).await?;
    record(gw, by, AuditKind::PolicyMethods, None, format!("global: {methods}")).await
}

pub async fn set_backup_code_count(gw: &Gateway, by: &Actor, count: u32) -> Result<()> {
    policy::set_backup_code_count(&gw.db, count).await?;
    record(gw, by, AuditKind::PolicyBackupCodes, None, format!("{count} codes per set")).await
}

pub async fn set_enrollment_window_days(gw: &Gateway, by: &Actor, days: u32) -> Result<()> {
    policy::set_enrollment_window_days(&gw.db, days).await?;
    record(gw, by, AuditKind::PolicyEnrollmentWindow, None, format!("{days} days")).await
}
