//! The web UI's TLS: the certificate in force, a self-signed one made on first start when
//! none is configured, and reloading it without a restart.
//!
//! With `web.tls_cert`/`web.tls_key` those files are served; otherwise
//! `<data_dir>/web-tls-cert.pem` and `web-tls-key.pem` (made once, key mode 0600). The files
//! are read again on SIGHUP and when their modification time changes; a reload that fails
//! (a half-written file, a key that does not match) keeps the certificate in force and
//! says so in the log.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use gatehouse_core::Config;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// File names of the self-signed certificate in the data dir.
pub const SELF_SIGNED_CERT: &str = "web-tls-cert.pem";
pub const SELF_SIGNED_KEY: &str = "web-tls-key.pem";

/// How often the files' modification times are compared.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// Why the certificate could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("making the self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS set-up: {0}")]
    Rustls(#[from] rustls::Error),
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File { path: path.to_path_buf(), reason: reason.to_string() }
}

/// The certificate files in force and what they hold now.
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    /// Whether the gateway made them (self-signed) or the operator gave them.
    pub self_signed: bool,
    current: RwLock<Loaded>,
}

struct Loaded {
    key: Arc<CertifiedKey>,
    stamp: (Option<SystemTime>, Option<SystemTime>),
    fingerprint: String,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates").field("cert", &self.cert).field("self_signed", &self.self_signed).finish()
    }
}

impl Certificates {
    /// Loads the configured certificate, or the self-signed one (made now if missing).
    pub fn load(config: &Config) -> Result<Arc<Certificates>, TlsError> {
        let (cert, key, self_signed) = match (&config.web.tls_cert, &config.web.tls_key) {
            (Some(c), Some(k)) => (c.clone(), k.clone(), false),
            _ => {
                let cert = config.data_dir.join(SELF_SIGNED_CERT);
                let key = config.data_dir.join(SELF_SIGNED_KEY);
                if !cert.exists() || !key.exists() {
                    make_self_signed(config, &cert, &key)?;
                }
                (cert, key, true)
            }
        };
        let loaded = read(&cert, &key)?;
        Ok(Arc::new(Certificates { cert, key, self_signed, current: RwLock::new(loaded) }))
    }

    /// SHA-256 of the certificate in force (DER), as `AA:BB:…` like `openssl x509 -fingerprint`.
    pub fn fingerprint(&self) -> String {
        self.current.read().map(|c| c.fingerprint.clone()).unwrap_or_default()
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// Reads the files again. On failure the certificate in force stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let loaded = read(&self.cert, &self.key)?;
        let mut current = self.current.write().map_err(|_| file_error(&self.cert, "lock poisoned"))?;
        let changed = loaded.fingerprint != current.fingerprint;
        *current = loaded;
        Ok(changed)
    }

    fn stamp(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        (modified(&self.cert), modified(&self.key))
    }

    /// A rustls server configuration that always serves the certificate in force.
    pub fn server_config(self: &Arc<Self>) -> ServerConfig {
        let mut config = ServerConfig::builder().with_no_client_auth().with_cert_resolver(self.clone());
        // axum here serves HTTP/1.1 (keep-alive); offering h2 would make clients speak a
        // protocol the server does not.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }

    /// Reloads on SIGHUP and when a file's modification time changes, until `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGHUP; the certificate reloads when its file changes");
                None
            }
        };
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let why = tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
                _ = tick.tick() => {
                    let seen = self.current.read().map(|c| c.stamp).unwrap_or_default();
                    if self.stamp() == seen { continue }
                    "file changed"
                }
            };
            match self.reload() {
                Ok(true) => {
                    tracing::info!(reason = why, fingerprint = %self.fingerprint(), "web TLS certificate reloaded")
                }
                Ok(false) => tracing::debug!(reason = why, "web TLS certificate unchanged"),
                Err(e) => {
                    tracing::error!(reason = why, error = %e, "web TLS certificate not reloaded; the one in force stays");
                    // Do not retry the same broken files every tick: wait for the next change.
                    if let Ok(mut c) = self.current.write() {
                        c.stamp = self.stamp();
                    }
                }
            }
        }
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.key.clone())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reads and checks a certificate chain and its key.
fn read(cert_path: &Path, key_path: &Path) -> Result<Loaded, TlsError> {
    let stamp = (modified(cert_path), modified(key_path));
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| file_error(cert_path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert_path, e))?;
    if chain.is_empty() {
        return Err(file_error(cert_path, "no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| file_error(key_path, e))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| file_error(key_path, format!("does not go with {}: {e}", cert_path.display())))?;
    let fingerprint = fingerprint(&certified.cert[0]);
    Ok(Loaded { key: Arc::new(certified), stamp, fingerprint })
}

/// SHA-256 of a DER certificate as colon-separated upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// Makes a self-signed certificate for the names this gateway is reached by: localhost,
/// the loopback addresses, the listen address and the host of `public_url`.
fn make_self_signed(config: &Config, cert: &Path, key: &Path) -> Result<(), TlsError> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let listen = config.web_listen.ip();
    if !listen.is_unspecified() {
        names.push(listen.to_string());
    }
    if let Some(host) = url_host(&config.public_url) {
        names.push(host);
    }
    let node = config.node_name();
    if !node.is_empty() {
        names.push(node);
    }
    names.sort();
    names.dedup();
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "Gatehouse web UI (self-signed)");
    let pair = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let made = params.self_signed(&pair).map_err(|e| TlsError::Generate(e.to_string()))?;
    write_new(key, pair.serialize_pem().as_bytes(), 0o600)?;
    write_new(cert, made.pem().as_bytes(), 0o644)?;
    tracing::info!(path = %cert.display(), "generated a self-signed web TLS certificate");
    Ok(())
}

/// The host of an `http(s)://host[:port]/…` address, without brackets.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority),
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// Writes a new file (replacing a leftover half of an earlier attempt) with `mode`.
fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| file_error(path, e))?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(|e| file_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("https://gw.example.com:8443/x").as_deref(), Some("gw.example.com"));
        assert_eq!(url_host("https://[2001:db8::1]:8443").as_deref(), Some("2001:db8::1"));
        assert_eq!(url_host("http://10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(url_host(""), None);
    }

    #[test]
    fn self_signed_certificate_is_made_once_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
        let first = Certificates::load(&config).unwrap();
        assert!(first.self_signed);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join(SELF_SIGNED_KEY)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        // A second start serves the same certificate.
        let again = Certificates::load(&config).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        assert_eq!(first.fingerprint().len(), 32 * 3 - 1);
        // A broken file does not replace the certificate in force.
        std::fs::write(dir.path().join(SELF_SIGNED_CERT), "not a certificate").unwrap();
        assert!(first.reload().is_err());
        assert_eq!(first.fingerprint(), again.fingerprint());
    }
}
