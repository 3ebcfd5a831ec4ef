//! Targets (the servers behind the gateway), the credential the gateway holds for each
//! (sealed in the vault), their pinned host keys, and grants of targets to users and
//! groups.

use sqlx::Row;
use sqlx::any::AnyRow;
use zeroize::Zeroizing;

use crate::db::sql;
use crate::users::validate_name;
use crate::{Db, Error, Result, Vault, groups, time, users};

/// How the gateway authenticates to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    /// An OpenSSH private key.
    Key,
    Password,
}

impl CredentialKind {
    fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Key => "key",
            CredentialKind::Password => "password",
        }
    }
}

/// A target server.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Target {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub credential_kind: CredentialKind,
    #[serde(skip)]
    sealed_credential: String,
    /// Pinned host key in OpenSSH one-line form, once known.
    pub host_key: Option<String>,
    pub created_at: i64,
}

/// What `create` needs. The credential is the private key text or the password.
pub struct NewTarget<'a> {
    pub name: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub username: &'a str,
    pub credential_kind: CredentialKind,
    pub credential: &'a str,
    pub host_key: Option<&'a str>,
}

/// Who a grant is for.
#[derive(Debug, Clone, Copy)]
pub enum Grantee<'a> {
    User(&'a str),
    Group(&'a str),
}

const COLUMNS: &str = "id, name, host, port, username, credential_kind, credential, host_key, created_at";

fn from_row(row: &AnyRow) -> Result<Target> {
    let kind: String = row.try_get("credential_kind")?;
    let port: i64 = row.try_get("port")?;
    Ok(Target {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        host: row.try_get("host")?,
        port: u16::try_from(port).map_err(|_| Error::invalid("port", port.to_string()))?,
        username: row.try_get("username")?,
        credential_kind: if kind == "key" { CredentialKind::Key } else { CredentialKind::Password },
        sealed_credential: row.try_get("credential")?,
        host_key: row.try_get("host_key")?,
        created_at: row.try_get("created_at")?,
    })
}

fn credential_context(id: i64) -> String {
    format!("target-credential:{id}")
}

fn validate_host(host: &str) -> Result<()> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("host", format!("'{}' is not a host name or address", crate::audit::printable(host))))
    }
}

/// Checks a host key line (`type base64 [comment]`) and returns it without its comment.
pub fn normalize_host_key(line: &str) -> Result<String> {
    let key = ssh_key::PublicKey::from_openssh(line.trim())
        .map_err(|e| Error::invalid("host key", format!("not an OpenSSH public key ({e})")))?;
    let mut bare = key;
    bare.set_comment("");
    Ok(bare.to_openssh().map_err(|e| Error::invalid("host key", e.to_string()))?.trim().to_string())
}

/// Creates a target; the credential is sealed under a context bound to the new row.
pub async fn create(db: &Db, vault: &Vault, new: NewTarget<'_>) -> Result<Target> {
    validate_name("target name", new.name)?;
    validate_host(new.host)?;
    if new.port == 0 {
        return Err(Error::invalid("port", "must be 1-65535"));
    }
    if new.username.is_empty() || new.username.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid("target user", "must be a non-empty name without spaces"));
    }
    match new.credential_kind {
        CredentialKind::Key => {
            let key = ssh_key::PrivateKey::from_openssh(new.credential.trim())
                .map_err(|e| Error::invalid("key file", format!("not an OpenSSH private key ({e})")))?;
            if key.is_encrypted() {
                return Err(Error::invalid(
                    "key file",
                    "the private key is passphrase-protected; store an unencrypted copy (ssh-keygen -p)",
                ));
            }
        }
        CredentialKind::Password => {
            if new.credential.is_empty() {
                return Err(Error::invalid("password", "must not be empty"));
            }
        }
    }
    let host_key = new.host_key.map(normalize_host_key).transpose()?;

    let mut tx = db.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO targets (name, host, port, username, credential_kind, credential, host_key, created_at)
         VALUES ($1, $2, $3, $4, $5, '', $6, $7) RETURNING id",
    )
    .bind(new.name)
    .bind(new.host)
    .bind(i64::from(new.port))
    .bind(new.username)
    .bind(new.credential_kind.as_str())
    .bind(host_key)
    .bind(time::now())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| Error::from_insert(e, "target", new.name))?;
    let sealed = vault.seal(new.credential.as_bytes(), &credential_context(id))?;
    sqlx::query("UPDATE targets SET credential = $1 WHERE id = $2").bind(sealed).bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    get(db, new.name).await
}

pub async fn find(db: &Db, name: &str) -> Result<Option<Target>> {
    let row =
        sqlx::query(sql!("SELECT {COLUMNS} FROM targets WHERE name = $1")).bind(name).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn get(db: &Db, name: &str) -> Result<Target> {
    find(db, name).await?.ok_or_else(|| Error::not_found("target", name))
}

pub async fn list(db: &Db) -> Result<Vec<Target>> {
    let rows = sqlx::query(sql!("SELECT {COLUMNS} FROM targets ORDER BY name")).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

pub async fn delete(db: &Db, name: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM targets WHERE name = $1").bind(name).execute(db.pool()).await?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("target", name));
    }
    Ok(())
}

/// Pins (or re-pins) the target's host key.
pub async fn pin_host_key(db: &Db, name: &str, key_line: &str) -> Result<()> {
    let key = normalize_host_key(key_line)?;
    let done =
        sqlx::query("UPDATE targets SET host_key = $1 WHERE name = $2").bind(key).bind(name).execute(db.pool()).await?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("target", name));
    }
    Ok(())
}

/// Records a host key seen on first use, only if none is pinned yet. Returns false when
/// another key was pinned in the meantime (the caller must then compare again).
pub async fn pin_first_use(db: &Db, id: i64, key_line: &str) -> Result<bool> {
    let key = normalize_host_key(key_line)?;
    let done = sqlx::query("UPDATE targets SET host_key = $1 WHERE id = $2 AND host_key IS NULL")
        .bind(key)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

impl Target {
    /// The decrypted credential (private key text or password).
    pub fn credential(&self, vault: &Vault) -> Result<Zeroizing<String>> {
        let plain = vault.open(&self.sealed_credential, &credential_context(self.id))?;
        String::from_utf8(plain.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| Error::Secrets(format!("credential of target {} is not text", self.name)))
    }
}

async fn grantee_ids(db: &Db, grantee: Grantee<'_>) -> Result<(Option<i64>, Option<i64>)> {
    Ok(match grantee {
        Grantee::User(u) => (Some(users::get(db, u).await?.id), None),
        Grantee::Group(g) => (None, Some(groups::get(db, g).await?.id)),
    })
}

fn grantee_label(grantee: Grantee<'_>) -> String {
    match grantee {
        Grantee::User(u) => format!("user {u}"),
        Grantee::Group(g) => format!("group {g}"),
    }
}

/// Grants `target` to a user or a group.
pub async fn grant(db: &Db, target: &str, grantee: Grantee<'_>) -> Result<()> {
    let t = get(db, target).await?;
    let (user_id, group_id) = grantee_ids(db, grantee).await?;
    sqlx::query("INSERT INTO grants (target_id, user_id, group_id, created_at) VALUES ($1, $2, $3, $4)")
        .bind(t.id)
        .bind(user_id)
        .bind(group_id)
        .bind(time::now())
        .execute(db.pool())
        .await
        .map_err(|e| Error::from_insert(e, "grant", &format!("{target} to {}", grantee_label(grantee))))?;
    Ok(())
}

/// Revokes a grant made by [`grant`].
pub async fn revoke(db: &Db, target: &str, grantee: Grantee<'_>) -> Result<()> {
    let t = get(db, target).await?;
    let (user_id, group_id) = grantee_ids(db, grantee).await?;
    let done = sqlx::query("DELETE FROM grants WHERE target_id = $1 AND (user_id = $2 OR group_id = $3)")
        .bind(t.id)
        .bind(user_id.unwrap_or(-1))
        .bind(group_id.unwrap_or(-1))
        .execute(db.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("grant", format!("{target} to {}", grantee_label(grantee))));
    }
    Ok(())
}

/// The targets `user_id` may reach, directly or through any of their groups.
pub async fn granted_to(db: &Db, user_id: i64) -> Result<Vec<Target>> {
    let rows = sqlx::query(sql!(
        "SELECT {COLUMNS} FROM targets WHERE id IN (
             SELECT target_id FROM grants WHERE user_id = $1
             UNION
             SELECT g.target_id FROM grants g JOIN group_members m ON m.group_id = g.group_id
             WHERE m.user_id = $1)
         ORDER BY name"
    ))
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Who holds a grant on `target`: (users, groups).
pub async fn grantees(db: &Db, target_id: i64) -> Result<(Vec<String>, Vec<String>)> {
    let users = sqlx::query_scalar(
        "SELECT u.name FROM grants g JOIN users u ON u.id = g.user_id WHERE g.target_id = $1 ORDER BY u.name",
    )
    .bind(target_id)
    .fetch_all(db.pool())
    .await?;
    let groups = sqlx::query_scalar(
        "SELECT x.name FROM grants g JOIN user_groups x ON x.id = g.group_id WHERE g.target_id = $1 ORDER BY x.name",
    )
    .bind(target_id)
    .fetch_all(db.pool())
    .await?;
    Ok((users, groups))
}

/// Changes where and as whom the gateway connects to `name`. The pinned host key stays:
/// if the new address serves another key, the connection is refused until re-pinned.
pub async fn update_connection(db: &Db, name: &str, host: &str, port: u16, username: &str) -> Result<()> {
    validate_host(host)?;
    if port == 0 {
        return Err(Error::invalid("port", "must be 1-65535"));
    }
    if username.is_empty() || username.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid("target user", "must be a non-empty name without spaces"));
    }
    let done = sqlx::query("UPDATE targets SET host = $1, port = $2, username = $3 WHERE name = $4")
        .bind(host)
        .bind(i64::from(port))
        .bind(username)
        .bind(name)
        .execute(db.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("target", name));
    }
    Ok(())
}

/// Forgets the pinned host key of `name`: the next connection pins the key it sees
/// (trust on first use), so an administrator re-pins after a target was rebuilt.
pub async fn forget_host_key(db: &Db, name: &str) -> Result<()> {
    let done = sqlx::query("UPDATE targets SET host_key = NULL WHERE name = $1").bind(name).execute(db.pool()).await?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("target", name));
    }
    Ok(())
}
