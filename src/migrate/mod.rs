//! OCI registry-to-registry copy engine behind `registry-operator migrate`: lists repositories and
//! tags at the source, copies manifests (exact bytes), indexes with every child, blobs (streamed),
//! cosign tags and OCI 1.1 referrers to the destination, then verifies every tag's digest. A second
//! pass (a switch's catch-up) skips every tag the destination already resolves to the source's digest
//! without walking its blobs. `verify_only` (`migrate --verify-only`) checks without copying.
//! It speaks only the OCI distribution HTTP API: it knows nothing about Kubernetes or controllers,
//! and it never writes to the source.

mod api;
mod auth;
mod blob;
mod client;
mod copy;
mod credentials;
mod endpoint;
mod manifest;
mod progress;
mod push_guard;
mod verify;
mod verify_only;

pub use copy::run;
pub use credentials::{Credentials, CredentialsError};
pub use endpoint::{Endpoint, EndpointError};
pub use progress::Progress;
pub use verify_only::verify_only;

use serde::Serialize;

/// What to copy and how.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Registry read from (never written to).
    pub from: Endpoint,
    /// Registry written to.
    pub to: Endpoint,
    /// Glob patterns over source repository names; empty copies every repository.
    pub repos: Vec<String>,
    /// Prefix (Harbor project) put before every destination repository; empty for none.
    pub dest_project: String,
    /// Blob transfers (and tags) in flight at once.
    pub concurrency: usize,
    /// Attempts per request or blob transfer on transient failures (5xx, 408, 429, resets, timeouts).
    pub attempts: u32,
    /// Check afterwards that every source tag resolves to the same digest at the destination.
    pub verify: bool,
}

impl MigrateOptions {
    /// The destination repository for a source repository.
    pub fn dest_repo(&self, source_repo: &str) -> String {
        let project = self.dest_project.trim_matches('/');
        if project.is_empty() {
            source_repo.to_string()
        } else {
            format!("{project}/{source_repo}")
        }
    }
}

/// Counts of manifests written and skipped.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ManifestCounts {
    /// Pushed to the destination.
    pub copied: u64,
    /// Already present with the same digest.
    pub skipped: u64,
}

/// Counts of blobs uploaded, skipped and mounted.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct BlobCounts {
    /// Streamed from the source and uploaded.
    pub copied: u64,
    /// Already present in the destination repository.
    pub skipped: u64,
    /// Linked from another destination repository without transferring bytes.
    pub mounted: u64,
}

/// The counts of a run in the small form a Kubernetes termination message carries (≤ 4 KiB), which
/// the operator copies into `status.migration`.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Repositories copied.
    pub repositories: u64,
    /// Tags verified (after a copy, or with `--verify-only`).
    pub tags: u64,
    /// Blobs uploaded.
    pub blobs_copied: u64,
    /// Blobs already there or mounted.
    pub blobs_skipped: u64,
    /// Bytes uploaded.
    pub bytes_copied: u64,
    /// Tags that failed, or are missing or different at the destination.
    pub problems: u64,
}

impl From<&Summary> for Report {
    fn from(summary: &Summary) -> Self {
        Self {
            repositories: summary.repos,
            tags: summary.verified_tags,
            blobs_copied: summary.blobs.copied,
            blobs_skipped: summary.blobs.skipped + summary.blobs.mounted,
            bytes_copied: summary.bytes_copied,
            problems: (summary.failures.len() + summary.mismatches.len()) as u64,
        }
    }
}

/// What a run did; printed at the end (as JSON with `--output json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Source repositories selected.
    pub repos: u64,
    /// Source tags seen.
    pub tags: u64,
    /// Manifests (images, indexes, referrers).
    pub manifests: ManifestCounts,
    /// Blobs (configs and layers).
    pub blobs: BlobCounts,
    /// Blob bytes uploaded.
    pub bytes_copied: u64,
    /// Wall-clock duration.
    pub seconds: f64,
    /// Tags whose destination digest was checked equal to the source's.
    pub verified_tags: u64,
    /// Tags that could not be copied, with the reason.
    pub failures: Vec<String>,
    /// Tags whose destination digest differs from the source's (or is missing).
    pub mismatches: Vec<String>,
}

impl Summary {
    /// Whether everything was copied and verified.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty() && self.mismatches.is_empty()
    }

    /// One-paragraph human summary.
    pub fn human(&self) -> String {
        format!(
            "repos {}, tags {} (verified {}), manifests copied {} skipped {}, blobs copied {} skipped {} mounted {}, \
             {} bytes in {:.1}s, failures {}, mismatches {}",
            self.repos,
            self.tags,
            self.verified_tags,
            self.manifests.copied,
            self.manifests.skipped,
            self.blobs.copied,
            self.blobs.skipped,
            self.blobs.mounted,
            self.bytes_copied,
            self.seconds,
            self.failures.len(),
            self.mismatches.len()
        )
    }
}

/// Why a migration (or one of its steps) failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Transport failure (connection refused/reset, timeout, TLS).
    #[error("{registry}: request failed: {source}")]
    Http {
        registry: String,
        source: reqwest::Error,
    },
    /// The registry answered with an unexpected status.
    #[error("{registry}: {method} {path} returned {status}: {body}")]
    Status {
        registry: String,
        method: String,
        path: String,
        status: u16,
        body: String,
    },
    /// The registry wants credentials and none were given.
    #[error(
        "{registry}: authentication required; give credentials with --{side}-creds-file or MIGRATE_{env}_USERNAME/PASSWORD"
    )]
    AuthRequired {
        registry: String,
        side: &'static str,
        env: &'static str,
    },
    /// The registry (or its token service) rejected the credentials.
    #[error(
        "{registry}: credentials rejected ({status}); check the username/password given for --{side}"
    )]
    AuthRejected {
        registry: String,
        side: &'static str,
        status: u16,
    },
    /// A malformed header or body.
    #[error("{registry}: {message}")]
    Protocol { registry: String, message: String },
    /// Content whose digest is not what it claims.
    #[error("{what}: expected digest {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A guard: the source must never be written to.
    #[error("refusing {method} to the source registry {registry}: the source is read-only")]
    SourceWrite { registry: String, method: String },
    /// A manifest media type this tool cannot walk.
    #[error("{reference}: unsupported manifest media type {media_type}")]
    UnsupportedManifest {
        reference: String,
        media_type: String,
    },
    /// Bad `--repos` pattern.
    #[error("invalid --repos pattern {pattern}: {message}")]
    BadPattern { pattern: String, message: String },
    /// Bad endpoint/credentials setup.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
}

impl MigrateError {
    /// Whether trying again may succeed (server-side or network trouble, not a client mistake).
    pub fn is_transient(&self) -> bool {
        match self {
            MigrateError::Http { .. } => true,
            MigrateError::Status { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            MigrateError::Protocol { .. } => true,
            _ => false,
        }
    }
}
