//! The gateway's SSH host keys. Every node of an installation presents the same ones:
//! they live in the database, sealed with the secrets key (`gatehouse_core::host_keys`),
//! made by the first node to start. A node upgraded from a version that kept them in its
//! data dir adopts those files, so clients' known_hosts entries stay valid. Files named in
//! `ssh.host_key_files` win over all of this. Ed25519 for modern clients, RSA (3072 bits,
//! SHA-2 signatures) for older ones.
//!
//! During a rotation (`gatehouse hostkey rotate`) each algorithm also has a next key: it
//! is presented after the active ones (the key exchange signs with the first key of an
//! algorithm, the active one) and announced to clients after login, so that they learn
//! it before `gatehouse hostkey retire` makes it the active one. [`OpenSshKeys`] makes
//! and reads the keys for that, since core knows no key formats.

use std::path::Path;

use gatehouse_core::Gateway;
use gatehouse_core::host_keys::{KeyFormat, KeyState};
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::{KeypairData, RsaKeypair};
use russh::keys::{Algorithm, PrivateKey};
use zeroize::Zeroizing;

use crate::Error;

const ED25519_FILE: &str = "ssh_host_ed25519_key";
const RSA_FILE: &str = "ssh_host_rsa_key";
const RSA_BITS: usize = 3072;

/// The host keys to present: the active ones, Ed25519 first (preferred), then the next
/// ones of a rotation under way.
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
    let ed = shared(gw, ED25519, ED25519_FILE).await?;
    let rsa = shared(gw, RSA, RSA_FILE).await?;
    let mut keys = vec![ed, rsa];
    for next in gatehouse_core::host_keys::list(gw).await?.into_iter().filter(|k| k.state == KeyState::Next) {
        let key = read_key(Path::new(&next.algorithm), &next.private_key)?;
        tracing::info!(algorithm = %next.algorithm, fingerprint = %fingerprint(&key), "next host key of a rotation, presented and announced");
        keys.push(key);
    }
    Ok(keys)
}

const ED25519: &str = "ssh-ed25519";
const RSA: &str = "ssh-rsa";

/// A new key for `algorithm` (as the database names it), made on a blocking thread (an
/// RSA key takes a while).
async fn generate(algorithm: &str) -> Result<PrivateKey, Error> {
    let make: fn() -> Result<PrivateKey, Error> = match algorithm {
        ED25519 => {
            || PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).map_err(|e| Error::HostKey(e.to_string()))
        }
        RSA => || {
            let pair = RsaKeypair::random(&mut rand::rng(), RSA_BITS).map_err(|e| Error::HostKey(e.to_string()))?;
            PrivateKey::new(KeypairData::from(pair), "").map_err(|e| Error::HostKey(e.to_string()))
        },
        other => return Err(Error::HostKey(format!("no host keys of algorithm {other} are made here"))),
    };
    tokio::task::spawn_blocking(make).await.map_err(|e| Error::HostKey(e.to_string()))?
}

/// The OpenSSH key formats, for core's host key rotation (`gatehouse_core::admin::host_keys`).
pub struct OpenSshKeys;

impl KeyFormat for OpenSshKeys {
    async fn generate(&self, algorithm: &str) -> Result<Zeroizing<String>, String> {
        let key = generate(algorithm).await.map_err(|e| e.to_string())?;
        key.to_openssh(LineEnding::LF).map(|text| Zeroizing::new(text.to_string())).map_err(|e| e.to_string())
    }

    fn fingerprint(&self, private_key: &str) -> String {
        match PrivateKey::from_openssh(private_key) {
            Ok(key) => fingerprint(&key),
            Err(_) => "(not a key)".to_string(),
        }
    }
}

/// The installation's key for `algorithm`: the stored one, else this node's old data-dir
/// file, else a new one; stored so that every node uses the first one stored.
async fn shared(gw: &Gateway, algorithm: &str, file: &str) -> Result<PrivateKey, Error> {
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
                None => (generate(algorithm).await?, "generated"),
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
