//! Streams one blob from the source to the destination: the source response body is piped into the
//! upload request body chunk by chunk while sha256 is computed on the fly, so memory does not grow
//! with layer size. Chunked (POST, PATCH, PUT) by default, monolithic PUT where PATCH is refused.
//! Whole transfers are retried (a stream cannot be replayed). Decides nothing about *what* to copy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use sha2::{Digest as _, Sha256};

use super::MigrateError;
use super::api::push_scope;
use super::client::Registry;
use super::progress::Progress;

/// A blob to move.
#[derive(Debug, Clone)]
pub struct BlobRef {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size from the descriptor.
    pub size: u64,
}

/// Running hash and byte count of a stream.
#[derive(Default)]
struct Tally {
    hasher: Sha256,
    bytes: u64,
}

/// Transfer settings shared by all blobs of a run.
pub struct BlobMover<'a> {
    pub source: &'a Registry,
    pub destination: &'a Registry,
    pub progress: &'a Progress,
    /// Cleared after a registry refuses PATCH, so later blobs go monolithic straight away.
    pub chunked: &'a AtomicBool,
}

impl BlobMover<'_> {
    /// Copies `blob` from `source_repo` to `dest_repo`, retrying transient failures. `session` is an
    /// upload already opened (by a mount that fell back to upload).
    pub async fn transfer(
        &self,
        source_repo: &str,
        dest_repo: &str,
        blob: &BlobRef,
        mut session: Option<Url>,
    ) -> Result<(), MigrateError> {
        let policy = self.destination.retry_policy();
        let mut attempt = 0;
        loop {
            let outcome = self
                .transfer_once(source_repo, dest_repo, blob, session.take())
                .await;
            match outcome {
                Ok(()) => return Ok(()),
                Err(TransferError::PatchRefused) => {
                    tracing::info!(registry = %self.destination.name(), "chunked upload refused; using monolithic PUT");
                    self.chunked.store(false, Ordering::Relaxed);
                    continue;
                }
                Err(TransferError::Failed(error))
                    if !error.is_transient() || attempt + 1 >= policy.attempts =>
                {
                    return Err(error);
                }
                Err(TransferError::Failed(error)) => {
                    tracing::debug!(digest = %blob.digest, attempt, %error, "blob transfer failed; retrying");
                    tokio::time::sleep(policy.delay(attempt)).await;
                    attempt += 1;
                    // The failed attempt may have completed server-side (answer lost on the way back).
                    if self
                        .destination
                        .blob_exists(dest_repo, &blob.digest)
                        .await
                        .unwrap_or(false)
                    {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn transfer_once(
        &self,
        source_repo: &str,
        dest_repo: &str,
        blob: &BlobRef,
        session: Option<Url>,
    ) -> Result<(), TransferError> {
        let response = self.source.blob_stream(source_repo, &blob.digest).await?;
        let location = match session {
            Some(url) => url,
            None => self.destination.start_upload(dest_repo).await?,
        };
        let tally = Arc::new(Mutex::new(Tally::default()));
        let progress = self.progress.clone();
        let stream_tally = Arc::clone(&tally);
        let stream = response.bytes_stream().map(move |chunk| {
            let chunk = chunk?;
            let mut tally = stream_tally.lock().unwrap_or_else(|p| p.into_inner());
            tally.hasher.update(&chunk);
            tally.bytes += chunk.len() as u64;
            progress.add_bytes(chunk.len() as u64);
            Ok::<_, reqwest::Error>(chunk)
        });
        let body = reqwest::Body::wrap_stream(stream);
        let scope = push_scope(dest_repo);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.size));

        let chunked = blob.size > 0 && self.chunked.load(Ordering::Relaxed);
        let final_url = if chunked {
            if let Ok(range) = HeaderValue::from_str(&format!("0-{}", blob.size - 1)) {
                headers.insert(header::CONTENT_RANGE, range);
            }
            let response = self
                .destination
                .send_stream(Method::PATCH, location.clone(), &scope, headers, body)
                .await?;
            match response.status() {
                StatusCode::ACCEPTED | StatusCode::NO_CONTENT => {}
                StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => {
                    return Err(TransferError::PatchRefused);
                }
                StatusCode::NOT_FOUND => return Err(self.session_lost(&location)),
                _ => {
                    return Err(self
                        .destination
                        .status_error(&Method::PATCH, location.path(), response)
                        .await
                        .into());
                }
            }
            let next = self.destination.location(&response).unwrap_or(location);
            self.check_tally(&tally, blob)?;
            let mut url = next;
            url.query_pairs_mut().append_pair("digest", &blob.digest);
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            self.destination
                .send(
                    Method::PUT,
                    url.clone(),
                    &scope,
                    headers,
                    Some(bytes::Bytes::new()),
                )
                .await?
        } else {
            let mut url = location;
            url.query_pairs_mut().append_pair("digest", &blob.digest);
            self.destination
                .send_stream(Method::PUT, url, &scope, headers, body)
                .await?
        };
        if final_url.status() == StatusCode::NOT_FOUND {
            // Typically a retried PUT whose first try completed: the loop checks whether the blob landed.
            return Err(self.session_lost(final_url.url()));
        }
        if !final_url.status().is_success() {
            let path = final_url.url().path().to_string();
            return Err(self
                .destination
                .status_error(&Method::PUT, &path, final_url)
                .await
                .into());
        }
        self.check_tally(&tally, blob)?;
        Ok(())
    }

    fn session_lost(&self, url: &Url) -> TransferError {
        TransferError::Failed(MigrateError::Protocol {
            registry: self.destination.name().to_string(),
            message: format!("upload session {} unknown to the registry", url.path()),
        })
    }

    fn check_tally(&self, tally: &Mutex<Tally>, blob: &BlobRef) -> Result<(), MigrateError> {
        let tally = tally.lock().unwrap_or_else(|p| p.into_inner());
        let actual = format!("sha256:{}", hex::encode(tally.hasher.clone().finalize()));
        if actual != blob.digest || tally.bytes != blob.size {
            return Err(MigrateError::DigestMismatch {
                what: format!(
                    "blob from {} ({} bytes, expected {})",
                    self.source.name(),
                    tally.bytes,
                    blob.size
                ),
                expected: blob.digest.clone(),
                actual,
            });
        }
        Ok(())
    }
}

enum TransferError {
    PatchRefused,
    Failed(MigrateError),
}

impl From<MigrateError> for TransferError {
    fn from(error: MigrateError) -> Self {
        TransferError::Failed(error)
    }
}
