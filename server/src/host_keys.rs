//! The gateway's SSH host keys. Every node of an installation presents the same ones:
//! they live in the database, sealed with the secrets key (`gatehouse_core::host_keys`),
//! made by the first node to start. A node upgraded from a version that kept them in its
//! data dir adopts those files, so clients' known_hosts entries stay valid. Files named in
//! `ssh.host_key_files` win over all of this. Ed25519 for modern clients, RSA (3072 bits,
//! SHA-2 signatures) for older ones.

use std::path::Path;

use gatehouse_core::Gateway;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::{KeypairData, RsaKeypair};
use russh::keys::{Algorithm, PrivateKey};

use crate::Error;

const ED25519_FILE: &str = "ssh_host_ed25519_key";
const RSA_FILE: &str = "ssh_host_rsa_key";
const RSA_BITS: usize = 3072;

/// The host keys to present, Ed25519 first (preferred).
pub async fn load(gw: &Gateway) -> Result<Vec<PrivateKey>, Error> {
    let files = &gw.config.ssh.host_key_files;
    if !files.is_empty() {
        return files
            .iter()
            .map(|path| {
                let path = Path::new(path);
                let text = std::fs::read_to_string(path).map_err(|e| Error::Io(path.display().to_string(), e))?;
                read_key(path, &text)
            })
            .collect();
    }
    let ed = shared(gw, "ssh-ed25519", ED25519_FILE, || {
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).map_err(|e| Error::HostKey(e.to_string()))
    })
    .await?;
    let rsa = shared(gw, "ssh-rsa", RSA_FILE, || {
        let pair = RsaKeypair::random(&mut rand::rng(), RSA_BITS).map_err(|e| Error::HostKey(e.to_string()))?;
        PrivateKey::new(KeypairData::from(pair), "").map_err(|e| Error::HostKey(e.to_string()))
    })
    .await?;
    Ok(vec![ed, rsa])
}

/// The installation's key for `algorithm`: the stored one, else this node's old data-dir
/// file, else a new one; stored so that every node uses the first one stored.
async fn shared(
    gw: &Gateway,
    algorithm: &str,
    file: &str,
    generate: impl FnOnce() -> Result<PrivateKey, Error> + Send + 'static,
) -> Result<PrivateKey, Error> {
    let legacy = gw.config.data_dir.join(file);
    let here = match std::fs::read_to_string(&legacy) {
        Ok(text) => Some(read_key(&legacy, &text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::Io(legacy.display().to_string(), e)),
    };
    let key = match gatehouse_core::host_keys::get(gw, algorithm).await? {
        Some(text) => read_key(Path::new(algorithm), &text)?,
        None => {
            let (candidate, origin) = match &here {
                Some(k) => (k.clone(), "adopted from the data dir"),
                None => (
                    tokio::task::spawn_blocking(generate).await.map_err(|e| Error::HostKey(e.to_string()))??,
                    "generated",
                ),
            };
            let text = candidate
                .to_openssh(LineEnding::LF)
                .map_err(|e| Error::HostKey(format!("encoding the {algorithm} key: {e}")))?;
            let stored = gatehouse_core::host_keys::store_first(gw, algorithm, &text).await?;
            let key = read_key(Path::new(algorithm), &stored)?;
            if key.public_key() == candidate.public_key() {
                tracing::info!(algorithm, origin, fingerprint = %fingerprint(&key), "host key stored for every node");
            }
            key
        }
    };
    if let Some(local) = here
        && local.public_key() != key.public_key()
    {
        tracing::warn!(
            path = %legacy.display(),
            fingerprint = %fingerprint(&key),
            "this node's old host key file differs from the installation's key; the installation's is presented"
        );
    }
    Ok(key)
}

fn fingerprint(key: &PrivateKey) -> String {
    key.public_key().fingerprint(Default::default()).to_string()
}

fn read_key(origin: &Path, text: &str) -> Result<PrivateKey, Error> {
    PrivateKey::from_openssh(text).map_err(|e| Error::HostKey(format!("{}: {e}", origin.display())))
}
