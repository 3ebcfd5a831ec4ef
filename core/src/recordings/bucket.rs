//! The S3-compatible bucket finished recordings move to (`[recordings.s3]`).
//!
//! A session is always recorded to the node's disk first (a slow or unreachable store
//! never stalls a terminal); once it has finished and been compressed, the file is
//! uploaded under `PREFIX + file name` and removed from the disk. Any node reads it from
//! there, so the web player no longer depends on the node that recorded it.

use std::path::Path as FsPath;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStoreExt, PutPayload, RetryConfig};
use tokio::io::AsyncReadExt;

use crate::config::S3Config;
use crate::{Error, Result};

/// A success this recent is taken as proof the bucket is reachable, without a new probe.
const TRUSTED_FOR: Duration = Duration::from_secs(30);
/// Uploads go in parts of this size (S3's minimum part is 5 MiB).
const PART: usize = 8 * 1024 * 1024;

/// Up to one part of `file` (less only at its end).
async fn read_part(file: &mut tokio::fs::File, path: &FsPath) -> Result<Vec<u8>> {
    let mut part = Vec::with_capacity(PART);
    let mut chunk = (&mut *file).take(PART as u64);
    chunk.read_to_end(&mut part).await.map_err(|e| Error::io(path, e))?;
    Ok(part)
}

/// The bucket of `[recordings.s3]`.
pub struct Bucket {
    store: Arc<AmazonS3>,
    name: String,
    prefix: String,
    /// When a request last succeeded.
    last_ok: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("name", &self.name).field("prefix", &self.prefix).finish()
    }
}

impl Bucket {
    /// Builds the client (no request is made yet).
    pub fn open(cfg: &S3Config) -> Result<Bucket> {
        let timeout = Duration::from_secs(cfg.timeout_secs);
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_access_key_id(&cfg.access_key_id)
            .with_secret_access_key(&cfg.secret_access_key)
            .with_client_options(
                ClientOptions::new().with_timeout(timeout).with_connect_timeout(Duration::from_secs(5)),
            )
            .with_retry(RetryConfig { max_retries: 2, retry_timeout: timeout, backoff: Default::default() });
        if !cfg.endpoint.is_empty() {
            // Validated: https, or http for a loopback stand-in only.
            builder = builder
                .with_endpoint(cfg.endpoint.trim_end_matches('/'))
                .with_allow_http(cfg.endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = builder.build().map_err(|e| Error::Config(format!("recordings.s3: {e}")))?;
        Ok(Bucket {
            store: Arc::new(store),
            name: cfg.bucket.clone(),
            prefix: cfg.prefix.clone(),
            last_ok: Mutex::new(None),
        })
    }

    /// The bucket's name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The object name of a recording file.
    pub fn object(&self, file_name: &str) -> Path {
        Path::from(format!("{}{file_name}", self.prefix))
    }

    fn unavailable(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Unavailable(format!("recordings bucket '{}': {what}: {e}", self.name))
    }

    fn succeeded(&self) {
        if let Ok(mut at) = self.last_ok.lock() {
            *at = Some(Instant::now());
        }
    }

    /// Whether the bucket answers: a request succeeded in the last 30 seconds, or a probe
    /// (the metadata of an object that need not exist) gets an answer from the bucket.
    pub async fn ready(&self) -> Result<()> {
        let recent = self.last_ok.lock().ok().and_then(|at| *at).is_some_and(|at| at.elapsed() < TRUSTED_FOR);
        if recent {
            return Ok(());
        }
        match self.store.head(&self.object(".probe")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {
                self.succeeded();
                Ok(())
            }
            Err(e) => Err(self.unavailable("not reachable", e)),
        }
    }

    /// Uploads the file at `local` as `file_name`; returns the bytes sent. A file larger
    /// than one part goes in parts (a long recording never sits in memory whole), and a
    /// failed multipart upload is aborted: no partial object is left behind.
    pub async fn upload(&self, file_name: &str, local: &FsPath) -> Result<u64> {
        let object = self.object(file_name);
        let failed = |e: &dyn std::fmt::Display| self.unavailable(&format!("uploading {file_name}"), e);
        let mut file = tokio::fs::File::open(local).await.map_err(|e| Error::io(local, e))?;
        let mut part = read_part(&mut file, local).await?;
        if part.len() < PART {
            let n = part.len() as u64;
            self.store.put(&object, PutPayload::from(part)).await.map_err(|e| failed(&e))?;
            self.succeeded();
            return Ok(n);
        }
        let mut upload = self.store.put_multipart(&object).await.map_err(|e| failed(&e))?;
        let mut sent = 0u64;
        let outcome = async {
            while !part.is_empty() {
                sent += part.len() as u64;
                upload.put_part(PutPayload::from(part)).await.map_err(|e| failed(&e))?;
                part = read_part(&mut file, local).await?;
            }
            upload.complete().await.map_err(|e| failed(&e))
        }
        .await;
        match outcome {
            Ok(_) => {
                self.succeeded();
                Ok(sent)
            }
            Err(e) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(object = %object, error = %abort, "could not abort a failed multipart upload");
                }
                Err(e)
            }
        }
    }

    /// The content of the object `file_name`.
    pub async fn read(&self, file_name: &str) -> Result<Vec<u8>> {
        let got = match self.store.get(&self.object(file_name)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::not_found("recording object", file_name.to_string()));
            }
            Err(e) => return Err(self.unavailable(&format!("reading {file_name}"), e)),
        };
        let bytes = got.bytes().await.map_err(|e| self.unavailable(&format!("reading {file_name}"), e))?;
        self.succeeded();
        Ok(bytes.to_vec())
    }

    /// Deletes the object `file_name` (one already gone counts as deleted).
    pub async fn delete(&self, file_name: &str) -> Result<()> {
        match self.store.delete(&self.object(file_name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                self.succeeded();
                Ok(())
            }
            Err(e) => Err(self.unavailable(&format!("deleting {file_name}"), e)),
        }
    }
}
