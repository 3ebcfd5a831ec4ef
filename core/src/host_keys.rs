//! The installation's SSH host keys, shared by every node through the database: one row
//! per algorithm, the private key (OpenSSH text) sealed with the secrets key. The SSH
//! frontend generates keys (core knows no key formats); this module stores them once and
//! hands every node the same one.

use zeroize::Zeroizing;

use crate::{Gateway, Result, time};

fn context(algorithm: &str) -> String {
    format!("host_key:{algorithm}")
}

/// The stored private key for `algorithm`, if any.
pub async fn get(gw: &Gateway, algorithm: &str) -> Result<Option<Zeroizing<String>>> {
    let sealed: Option<String> = sqlx::query_scalar("SELECT sealed FROM host_keys WHERE algorithm = $1")
        .bind(algorithm)
        .fetch_optional(gw.db.pool())
        .await?;
    match sealed {
        None => Ok(None),
        Some(s) => {
            let bytes = gw.vault.open(&s, &context(algorithm))?;
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| crate::Error::Secrets(format!("host key {algorithm}: not text")))?;
            Ok(Some(Zeroizing::new(text)))
        }
    }
}

/// Stores `private_key` for `algorithm` unless a key is already stored (another node may
/// have stored one first), and returns the one that is stored now: every node agrees.
pub async fn store_first(gw: &Gateway, algorithm: &str, private_key: &str) -> Result<Zeroizing<String>> {
    let sealed = gw.vault.seal(private_key.as_bytes(), &context(algorithm))?;
    sqlx::query(
        "INSERT INTO host_keys (algorithm, sealed, created_at) VALUES ($1, $2, $3) ON CONFLICT (algorithm) DO NOTHING",
    )
    .bind(algorithm)
    .bind(sealed)
    .bind(time::now())
    .execute(gw.db.pool())
    .await?;
    get(gw, algorithm).await?.ok_or_else(|| crate::Error::Secrets(format!("host key {algorithm}: not stored")))
}
