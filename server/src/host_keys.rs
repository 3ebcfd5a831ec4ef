//! The gateway's SSH host keys: generated once into the data dir (OpenSSH format, mode
//! 0600) and reused on every start, so clients' known_hosts entries stay valid. Ed25519
//! for modern clients, RSA (3072 bits, SHA-2 signatures) for older ones.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::{KeypairData, RsaKeypair};
use russh::keys::{Algorithm, PrivateKey};

use crate::Error;

const ED25519_FILE: &str = "ssh_host_ed25519_key";
const RSA_FILE: &str = "ssh_host_rsa_key";
const RSA_BITS: usize = 3072;

/// Loads the host keys, generating any that is missing. Ed25519 first (preferred).
pub fn load_or_generate(data_dir: &Path) -> Result<Vec<PrivateKey>, Error> {
    let ed = load_or_create(&data_dir.join(ED25519_FILE), || {
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).map_err(|e| Error::HostKey(e.to_string()))
    })?;
    let rsa = load_or_create(&data_dir.join(RSA_FILE), || {
        let pair = RsaKeypair::random(&mut rand::rng(), RSA_BITS).map_err(|e| Error::HostKey(e.to_string()))?;
        PrivateKey::new(KeypairData::from(pair), "").map_err(|e| Error::HostKey(e.to_string()))
    })?;
    Ok(vec![ed, rsa])
}

fn read_key(path: &Path, text: &str) -> Result<PrivateKey, Error> {
    PrivateKey::from_openssh(text).map_err(|e| Error::HostKey(format!("{}: {e}", path.display())))
}

fn load_or_create(path: &Path, generate: impl FnOnce() -> Result<PrivateKey, Error>) -> Result<PrivateKey, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => read_key(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate()?;
            let text = key
                .to_openssh(LineEnding::LF)
                .map_err(|e| Error::HostKey(format!("encoding {}: {e}", path.display())))?;
            let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
                Ok(f) => f,
                // Another process wrote it first: use theirs, so every process agrees.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(path).map_err(|e| Error::Io(path.display().to_string(), e))?;
                    return read_key(path, &text);
                }
                Err(e) => return Err(Error::Io(path.display().to_string(), e)),
            };
            file.write_all(text.as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|e| Error::Io(path.display().to_string(), e))?;
            tracing::info!(path = %path.display(), fingerprint = %key.public_key().fingerprint(Default::default()), "generated host key");
            Ok(key)
        }
        Err(e) => Err(Error::Io(path.display().to_string(), e)),
    }
}
