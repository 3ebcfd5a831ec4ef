//! The installation's SSH host keys, shared by every node through the database: per
//! algorithm one `active` key (the key exchange signs with it) and, while a rotation is
//! under way, one `next` key that every node presents and announces beside it, so that
//! clients learn it before it replaces the active one. The private key (OpenSSH text) is
//! sealed with the secrets key. The SSH frontend generates and parses keys (core knows
//! no key formats, [`KeyFormat`]); this module stores them and hands every node the same
//! ones.

use sqlx::Row;
use zeroize::Zeroizing;

use crate::{Error, Gateway, Result, time};

fn context(algorithm: &str) -> String {
    format!("host_key:{algorithm}")
}

/// Where a stored key stands in its algorithm's rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Presented and used to sign the key exchange.
    Active,
    /// Presented and announced beside the active key; replaces it when retired.
    Next,
}

impl KeyState {
    /// The stable string stored in the database and shown by `gatehouse hostkey list`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Next => "next",
        }
    }

    fn parse(text: &str) -> Result<KeyState> {
        match text {
            "active" => Ok(KeyState::Active),
            "next" => Ok(KeyState::Next),
            other => Err(Error::invalid("host key state", format!("{other:?} in the database"))),
        }
    }
}

/// One stored host key, opened.
#[derive(Debug)]
pub struct HostKey {
    pub id: i64,
    pub algorithm: String,
    pub state: KeyState,
    /// The private key, OpenSSH text.
    pub private_key: Zeroizing<String>,
    pub created_at: i64,
}

/// A key the SSH frontend made for a rotation, to be stored as `next`.
pub struct NewHostKey {
    pub algorithm: String,
    /// The private key, OpenSSH text.
    pub private_key: Zeroizing<String>,
}

/// What core needs of the SSH frontend to rotate host keys without knowing their formats.
pub trait KeyFormat {
    /// A new private key (OpenSSH text) for `algorithm`.
    fn generate(&self, algorithm: &str) -> impl Future<Output = std::result::Result<Zeroizing<String>, String>> + Send;
    /// The SHA256 fingerprint of a private key (OpenSSH text), for the audit log and
    /// listings; a placeholder when the text is not a key.
    fn fingerprint(&self, private_key: &str) -> String;
}

fn open(gw: &Gateway, algorithm: &str, sealed: &str) -> Result<Zeroizing<String>> {
    let bytes = gw.vault.open(sealed, &context(algorithm))?;
    let text =
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::Secrets(format!("host key {algorithm}: not text")))?;
    Ok(Zeroizing::new(text))
}

/// Every stored key, active ones first, each group in the order the keys were stored.
pub async fn list(gw: &Gateway) -> Result<Vec<HostKey>> {
    let rows = sqlx::query(
        "SELECT id, algorithm, state, sealed, created_at FROM host_keys
         ORDER BY CASE state WHEN 'active' THEN 0 ELSE 1 END, id",
    )
    .fetch_all(gw.db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let algorithm: String = row.try_get("algorithm")?;
            let sealed: String = row.try_get("sealed")?;
            Ok(HostKey {
                id: row.try_get("id")?,
                state: KeyState::parse(&row.try_get::<String, _>("state")?)?,
                private_key: open(gw, &algorithm, &sealed)?,
                created_at: row.try_get("created_at")?,
                algorithm,
            })
        })
        .collect()
}

/// The active private key for `algorithm`, if any.
pub async fn get(gw: &Gateway, algorithm: &str) -> Result<Option<Zeroizing<String>>> {
    let sealed: Option<String> =
        sqlx::query_scalar("SELECT sealed FROM host_keys WHERE algorithm = $1 AND state = 'active'")
            .bind(algorithm)
            .fetch_optional(gw.db.pool())
            .await?;
    sealed.map(|s| open(gw, algorithm, &s)).transpose()
}

/// Stores `private_key` as the active key for `algorithm` unless one is already stored
/// (another node may have stored one first), and returns the one that is stored now:
/// every node agrees.
pub async fn store_first(gw: &Gateway, algorithm: &str, private_key: &str) -> Result<Zeroizing<String>> {
    let sealed = gw.vault.seal(private_key.as_bytes(), &context(algorithm))?;
    sqlx::query(
        "INSERT INTO host_keys (algorithm, state, sealed, created_at) VALUES ($1, 'active', $2, $3)
         ON CONFLICT (algorithm) WHERE state = 'active' DO NOTHING",
    )
    .bind(algorithm)
    .bind(sealed)
    .bind(time::now())
    .execute(gw.db.pool())
    .await?;
    get(gw, algorithm).await?.ok_or_else(|| Error::Secrets(format!("host key {algorithm}: not stored")))
}

/// Stores `keys` as the `next` keys of their algorithms, all or none (one transaction).
/// An algorithm that has a next key already refuses the whole change, however many
/// command lines race.
pub async fn add_next(gw: &Gateway, keys: &[NewHostKey]) -> Result<()> {
    let now = time::now();
    let mut sealed = Vec::with_capacity(keys.len());
    for key in keys {
        sealed.push(gw.vault.seal(key.private_key.as_bytes(), &context(&key.algorithm))?);
    }
    let mut tx = gw.db.begin().await?;
    for (key, sealed) in keys.iter().zip(sealed) {
        sqlx::query("INSERT INTO host_keys (algorithm, state, sealed, created_at) VALUES ($1, 'next', $2, $3)")
            .bind(&key.algorithm)
            .bind(sealed)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| match Error::from_insert(e, "next host key for", &key.algorithm) {
                Error::Duplicate { .. } => Error::Refused(format!(
                    "a rotation is already under way ({} has a next key): retire the old keys first",
                    key.algorithm
                )),
                other => other,
            })?;
    }
    tx.commit().await?;
    Ok(())
}

/// A key replaced by [`promote`]: the algorithm, the retired key and the one active now.
#[derive(Debug)]
pub struct Promotion {
    pub algorithm: String,
    pub retired: Option<Zeroizing<String>>,
    pub active: Zeroizing<String>,
}

/// Makes every `next` key active and deletes the active key it replaces, in one
/// transaction; returns what changed (empty when no rotation was under way).
pub async fn promote(gw: &Gateway) -> Result<Vec<Promotion>> {
    let mut tx = gw.db.begin().await?;
    let rows = sqlx::query("SELECT algorithm, state, sealed FROM host_keys ORDER BY id").fetch_all(&mut *tx).await?;
    let mut next = Vec::new();
    let mut active = Vec::new();
    for row in &rows {
        let algorithm: String = row.try_get("algorithm")?;
        let sealed: String = row.try_get("sealed")?;
        let key = open(gw, &algorithm, &sealed)?;
        match KeyState::parse(&row.try_get::<String, _>("state")?)? {
            KeyState::Next => next.push((algorithm, key)),
            KeyState::Active => active.push((algorithm, key)),
        }
    }
    if next.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query(
        "DELETE FROM host_keys WHERE state = 'active'
         AND algorithm IN (SELECT algorithm FROM host_keys WHERE state = 'next')",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE host_keys SET state = 'active' WHERE state = 'next'").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(next
        .into_iter()
        .map(|(algorithm, key)| {
            let retired = active.iter().position(|(a, _)| *a == algorithm).map(|i| active.swap_remove(i).1);
            Promotion { algorithm, retired, active: key }
        })
        .collect())
}
