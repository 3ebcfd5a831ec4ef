//! Host key rotation: a next key per algorithm, then the old keys retired.
//!
//! The installation's keys live in the database (`crate::host_keys`); a node presents
//! the active and next keys it read at its start and announces them to every client
//! after login, so clients with OpenSSH's `UpdateHostKeys` learn the next key while the
//! active one still signs. Keys named in `ssh.host_key_files` are the operator's files,
//! not ours to replace: with them configured, rotation is refused.

use super::{Actor, record};
use crate::audit::AuditKind;
use crate::host_keys::{self, KeyFormat, KeyState, NewHostKey};
use crate::{Error, Gateway, Result};

/// A key added or changed by a rotation step, as the command line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    pub algorithm: String,
    /// SHA256 fingerprint of the key added (`rotate`) or now active (`retire`).
    pub fingerprint: String,
    /// SHA256 fingerprint of the key deleted (`retire` only).
    pub retired: Option<String>,
}

/// Starts a rotation: generates a next key for every algorithm that has an active key,
/// stores them all in one transaction and writes one `hostkey.rotated` event. Refused
/// with host key files configured, before any node stored a key, and while a rotation
/// is under way.
pub async fn rotate(gw: &Gateway, by: &Actor, format: &impl KeyFormat) -> Result<Vec<KeyChange>> {
    if !gw.config.ssh.host_key_files.is_empty() {
        return Err(Error::Refused(
            "the host keys come from the files in ssh.host_key_files, not from the database: \
             replace those files yourself (or remove the setting to use the installation's keys)"
                .into(),
        ));
    }
    let stored = host_keys::list(gw).await?;
    if let Some(next) = stored.iter().find(|k| k.state == KeyState::Next) {
        return Err(Error::Refused(format!(
            "a rotation is already under way ({} has a next key): retire the old keys first \
             (`gatehouse hostkey retire`)",
            next.algorithm
        )));
    }
    let algorithms: Vec<&str> =
        stored.iter().filter(|k| k.state == KeyState::Active).map(|k| k.algorithm.as_str()).collect();
    if algorithms.is_empty() {
        return Err(Error::Refused("there are no host keys yet: start the gateway once, then rotate".into()));
    }
    let mut keys = Vec::with_capacity(algorithms.len());
    for algorithm in &algorithms {
        let private_key = format
            .generate(algorithm)
            .await
            .map_err(|e| Error::Unavailable(format!("generating a {algorithm} host key: {e}")))?;
        keys.push(NewHostKey { algorithm: algorithm.to_string(), private_key });
    }
    host_keys::add_next(gw, &keys).await?;
    let changes: Vec<KeyChange> = keys
        .iter()
        .map(|k| KeyChange {
            algorithm: k.algorithm.clone(),
            fingerprint: format.fingerprint(&k.private_key),
            retired: None,
        })
        .collect();
    let detail = changes.iter().map(|c| format!("next {} {}", c.algorithm, c.fingerprint)).collect::<Vec<_>>();
    record(gw, by, AuditKind::HostKeyRotated, None, detail.join(", ")).await?;
    Ok(changes)
}

/// Ends a rotation: every next key becomes active and the key it replaces is deleted, in
/// one transaction, with one `hostkey.retired` event. Refused when no rotation is under
/// way.
pub async fn retire(gw: &Gateway, by: &Actor, format: &impl KeyFormat) -> Result<Vec<KeyChange>> {
    let promoted = host_keys::promote(gw).await?;
    if promoted.is_empty() {
        return Err(Error::Refused(
            "no rotation is under way, there is no next key to make active: `gatehouse hostkey rotate` first".into(),
        ));
    }
    let changes: Vec<KeyChange> = promoted
        .iter()
        .map(|p| KeyChange {
            algorithm: p.algorithm.clone(),
            fingerprint: format.fingerprint(&p.active),
            retired: p.retired.as_ref().map(|k| format.fingerprint(k)),
        })
        .collect();
    let detail = changes
        .iter()
        .map(|c| match &c.retired {
            Some(old) => format!("{} {} active, {old} deleted", c.algorithm, c.fingerprint),
            None => format!("{} {} active", c.algorithm, c.fingerprint),
        })
        .collect::<Vec<_>>();
    record(gw, by, AuditKind::HostKeyRetired, None, detail.join(", ")).await?;
    Ok(changes)
}
