//! The copy walk: repositories → tags → manifest trees (index children first, blobs before their
//! manifest, referrers after their subject), with per-run dedup of blobs, HEAD-before-upload,
//! cross-repository mounts and bounded concurrency. Counts what it did; never writes to the source.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, try_join_all};
use futures::{FutureExt, StreamExt};
use oci_spec::image::Descriptor;
use tokio::sync::Semaphore;

use super::api::{FetchedManifest, MountOutcome};
use super::blob::{BlobMover, BlobRef};
use super::client::{Registry, RetryPolicy, Side};
use super::manifest::{Children, child_manifest_digests, children, with_manifest_media_type};
use super::progress::Progress;
use super::push_guard::PushGuards;
use super::verify::{TagRecord, cosign_subject, verify};
use super::{BlobCounts, ManifestCounts, MigrateError, MigrateOptions, Summary};

const MAX_DEPTH: u32 = 16;
const REFERRERS_UNKNOWN: u8 = 0;
const REFERRERS_SERVED: u8 = 1;
const REFERRERS_ABSENT: u8 = 2;

/// Copies everything selected by `options`, verifies, and says what happened. `Err` only for
/// problems that stop the whole run (unreachable registry, bad credentials, bad pattern); per-tag
/// problems land in `Summary::failures` / `Summary::mismatches`.
pub async fn run(options: &MigrateOptions, progress: Progress) -> Result<Summary, MigrateError> {
    let started = Instant::now();
    let (source, destination) = open(options).await?;
    let Selection {
        repos,
        plain,
        signatures,
    } = select(&source, options).await?;
    let copier = Copier {
        options,
        source: &source,
        destination: &destination,
        progress: progress.clone(),
        counts: Counts::default(),
        blobs: Mutex::new(HashMap::new()),
        manifests_done: Mutex::new(HashSet::new()),
        manifest_locks: Mutex::new(HashMap::new()),
        push_guards: PushGuards::default(),
        transfers: Semaphore::new(options.concurrency.max(1)),
        chunked: AtomicBool::new(true),
        referrers: AtomicU8::new(REFERRERS_UNKNOWN),
    };
    let mut summary = Summary {
        repos: repos.len() as u64,
        tags: (plain.len() + signatures.len()) as u64,
        ..Summary::default()
    };
    progress.add_tags(summary.tags);
    let mut records = Vec::new();
    for phase in [plain, signatures] {
        let outcomes: Vec<_> = futures::stream::iter(phase)
            .map(|(repo, tag)| {
                let copier = &copier;
                async move {
                    let outcome = copier.copy_tag(&repo, &tag).await;
                    let label = match &outcome {
                        Ok((_, true)) => "copied",
                        Ok((_, false)) => "up to date",
                        Err(_) => "failed",
                    };
                    copier.progress.tag_done(&repo, &tag, label);
                    outcome
                        .map(|(record, _)| record)
                        .map_err(|e| format!("{repo}:{tag}: {e}"))
                }
            })
            .buffer_unordered(options.concurrency.max(1))
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Ok(record) => records.push(record),
                Err(failure) => summary.failures.push(failure),
            }
        }
    }
    summary.failures.sort();
    if options.verify {
        let (verified, mismatches) =
            verify(&source, &destination, &records, options.concurrency).await;
        summary.verified_tags = verified;
        summary.mismatches = mismatches;
    }
    progress.finish();
    copier.counts.fill(&mut summary);
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Clients for both sides of `options`, each checked reachable with its credentials (`GET /v2/`).
pub(super) async fn open(options: &MigrateOptions) -> Result<(Registry, Registry), MigrateError> {
    let retry = RetryPolicy {
        attempts: options.attempts,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(10),
    };
    let source = Registry::new(&options.from, Side::Source, retry)?;
    let destination = Registry::new(&options.to, Side::Destination, retry)?;
    source.ping().await?;
    destination.ping().await?;
    Ok((source, destination))
}

/// The source repositories `--repos` selects (sorted) and their tags as (repository, tag).
pub(super) struct Selection {
    pub repos: Vec<String>,
    /// Ordinary tags.
    pub plain: Vec<(String, String)>,
    /// Cosign-style tags (`sha256-<hex>.sig|.att|.sbom`), handled after the tags they point at.
    pub signatures: Vec<(String, String)>,
}

/// Lists the source's catalog and the tags of every repository `options.repos` selects.
pub(super) async fn select(
    source: &Registry,
    options: &MigrateOptions,
) -> Result<Selection, MigrateError> {
    let filter = repo_filter(&options.repos)?;
    let mut repos: Vec<String> = source
        .catalog()
        .await?
        .into_iter()
        .filter(|r| filter.as_ref().is_none_or(|f| f.is_match(r)))
        .collect();
    repos.sort();
    repos.dedup();
    let listings: Vec<Result<(String, Vec<String>), MigrateError>> = futures::stream::iter(&repos)
        .map(|repo| async { source.tags(repo).await.map(|tags| (repo.clone(), tags)) })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    // Plain tags first, then signature-style tags, so subjects exist before what points at them.
    let (mut plain, mut signatures) = (Vec::new(), Vec::new());
    for listing in listings {
        let (repo, tags) = listing?;
        for tag in tags {
            let bucket = if cosign_subject(&tag).is_some() {
                &mut signatures
            } else {
                &mut plain
            };
            bucket.push((repo.clone(), tag));
        }
    }
    Ok(Selection {
        repos,
        plain,
        signatures,
    })
}

fn repo_filter(patterns: &[String]) -> Result<Option<globset::GlobSet>, MigrateError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in patterns {
        let glob = globset::Glob::new(pattern).map_err(|e| MigrateError::BadPattern {
            pattern: pattern.clone(),
            message: e.to_string(),
        })?;
        builder.add(glob);
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| MigrateError::BadPattern {
            pattern: patterns.join(","),
            message: e.to_string(),
        })
}

#[derive(Default)]
struct Counts {
    manifests_copied: AtomicU64,
    manifests_skipped: AtomicU64,
    blobs_copied: AtomicU64,
    blobs_skipped: AtomicU64,
    blobs_mounted: AtomicU64,
    bytes: AtomicU64,
}

impl Counts {
    fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    fn fill(&self, summary: &mut Summary) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        summary.manifests = ManifestCounts {
            copied: get(&self.manifests_copied),
            skipped: get(&self.manifests_skipped),
        };
        summary.blobs = BlobCounts {
            copied: get(&self.blobs_copied),
            skipped: get(&self.blobs_skipped),
            mounted: get(&self.blobs_mounted),
        };
        summary.bytes_copied = get(&self.bytes);
    }
}

/// Where a digest is known to exist at the destination during this run.
#[derive(Default)]
struct BlobPlaces {
    repos: HashSet<String>,
    /// Serialises work on one digest so a second repository mounts instead of re-uploading.
    lock: Arc<tokio::sync::Mutex<()>>,
}

struct Copier<'a> {
    options: &'a MigrateOptions,
    source: &'a Registry,
    destination: &'a Registry,
    progress: Progress,
    counts: Counts,
    blobs: Mutex<HashMap<String, BlobPlaces>>,
    manifests_done: Mutex<HashSet<String>>,
    /// Serialises work on one manifest so tags sharing it do not walk it twice at once.
    manifest_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Keeps a manifest from being re-pushed (tagged) while an index referencing it is pushed.
    push_guards: PushGuards,
    transfers: Semaphore,
    chunked: AtomicBool,
    referrers: AtomicU8,
}

impl Copier<'_> {
    /// Copies one tag; `true` when anything had to be written.
    async fn copy_tag(&self, repo: &str, tag: &str) -> Result<(TagRecord, bool), MigrateError> {
        let manifest = self.source.manifest(repo, tag).await?;
        let dest_repo = self.options.dest_repo(repo);
        let record = TagRecord {
            source_repo: repo.into(),
            dest_repo: dest_repo.clone(),
            tag: tag.into(),
            digest: manifest.digest.clone(),
        };
        if self
            .destination
            .manifest_digest(&dest_repo, tag)
            .await?
            .as_deref()
            == Some(manifest.digest.as_str())
        {
            // Already there under this tag: none of its children or blobs is looked at (this is
            // what keeps a catch-up pass over an unchanged source fast); new referrers still are.
            Counts::bump(&self.counts.manifests_skipped, 1);
            self.copy_referrers(repo, &dest_repo, &manifest.digest, 0)
                .await?;
            return Ok((record, false));
        }
        self.copy_tree(repo, &dest_repo, manifest, Some(tag), 0)
            .await?;
        Ok((record, true))
    }

    /// Makes `manifest` (and everything it needs) exist at the destination, tagged `tag` if given.
    fn copy_tree<'s>(
        &'s self,
        repo: &'s str,
        dest_repo: &'s str,
        manifest: FetchedManifest,
        tag: Option<&'s str>,
        depth: u32,
    ) -> BoxFuture<'s, Result<(), MigrateError>> {
        async move {
            if depth > MAX_DEPTH {
                return Err(MigrateError::Protocol {
                    registry: self.source.name().into(),
                    message: format!("{repo}: manifests nested too deep"),
                });
            }
            let manifest = with_manifest_media_type(manifest);
            let key = format!("{dest_repo}@{}", manifest.digest);
            let lock = Arc::clone(
                self.manifest_locks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(key.clone())
                    .or_default(),
            );
            let _serialised = lock.lock().await;
            let known = self
                .manifests_done
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&key);
            let present = known
                || self
                    .destination
                    .manifest_digest(dest_repo, &manifest.digest)
                    .await?
                    .is_some();
            if present {
                if !known {
                    Counts::bump(&self.counts.manifests_skipped, 1);
                }
            } else {
                let reference = format!("{repo}@{}", manifest.digest);
                let child_manifests = match children(&manifest, &reference)? {
                    Children::Manifests(descriptors) => {
                        try_join_all(descriptors.iter().map(|d| async move {
                            let child = self.source.manifest(repo, d.digest().as_ref()).await?;
                            self.copy_tree(repo, dest_repo, child, None, depth + 1)
                                .await
                        }))
                        .await?;
                        descriptors.iter().map(|d| d.digest().to_string()).collect()
                    }
                    Children::Blobs(descriptors) => {
                        try_join_all(
                            descriptors
                                .iter()
                                .map(|d| self.ensure_blob(repo, dest_repo, d)),
                        )
                        .await?;
                        Vec::new()
                    }
                };
                let target = tag.unwrap_or(&manifest.digest);
                self.push_manifest(dest_repo, target, &manifest, &child_manifests)
                    .await?;
                Counts::bump(&self.counts.manifests_copied, 1);
            }
            self.manifests_done
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key);
            if let Some(tag) = tag.filter(|_| present) {
                // Tagging an existing manifest is a PUT of it again: it must not overlap an index PUT.
                let child_manifests = child_manifest_digests(&manifest);
                self.push_manifest(dest_repo, tag, &manifest, &child_manifests)
                    .await?;
            }
            if !known {
                self.copy_referrers(repo, dest_repo, &manifest.digest, depth)
                    .await?;
            }
            Ok(())
        }
        .boxed()
    }

    /// PUTs `manifest` as `reference` while no manifest referencing it, and none of `child_manifests`,
    /// is being pushed to `dest_repo` (see `push_guard`).
    async fn push_manifest(
        &self,
        dest_repo: &str,
        reference: &str,
        manifest: &FetchedManifest,
        child_manifests: &[String],
    ) -> Result<(), MigrateError> {
        let _permit = self
            .push_guards
            .before_push(dest_repo, &manifest.digest, child_manifests)
            .await;
        self.destination
            .put_manifest(dest_repo, reference, manifest)
            .await
    }

    /// Copies the OCI 1.1 referrers of `digest`, when the source serves the referrers API.
    fn copy_referrers<'s>(
        &'s self,
        repo: &'s str,
        dest_repo: &'s str,
        digest: &'s str,
        depth: u32,
    ) -> BoxFuture<'s, Result<(), MigrateError>> {
        async move {
            if self.referrers.load(Ordering::Relaxed) == REFERRERS_ABSENT {
                return Ok(());
            }
            let Some(descriptors) = self.source.referrers(repo, digest).await? else {
                let _ = self.referrers.compare_exchange(
                    REFERRERS_UNKNOWN,
                    REFERRERS_ABSENT,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                return Ok(());
            };
            self.referrers.store(REFERRERS_SERVED, Ordering::Relaxed);
            for descriptor in descriptors {
                let referrer = self
                    .source
                    .manifest(repo, descriptor.digest().as_ref())
                    .await?;
                self.copy_tree(repo, dest_repo, referrer, None, depth + 1)
                    .await?;
            }
            Ok(())
        }
        .boxed()
    }

    /// Makes blob `descriptor` exist in `dest_repo`: skip, mount, or stream it.
    async fn ensure_blob(
        &self,
        repo: &str,
        dest_repo: &str,
        descriptor: &Descriptor,
    ) -> Result<(), MigrateError> {
        if is_foreign(descriptor) {
            return Ok(());
        }
        let blob = BlobRef {
            digest: descriptor.digest().to_string(),
            size: descriptor.size(),
        };
        let lock = {
            let mut places = self.blobs.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(&places.entry(blob.digest.clone()).or_default().lock)
        };
        let _serialised = lock.lock().await;
        let mount_from = {
            let places = self.blobs.lock().unwrap_or_else(|p| p.into_inner());
            let place = places.get(&blob.digest);
            if place.is_some_and(|p| p.repos.contains(dest_repo)) {
                return Ok(());
            }
            place.and_then(|p| p.repos.iter().next().cloned())
        };
        let _permit = self
            .transfers
            .acquire()
            .await
            .map_err(|_| MigrateError::Protocol {
                registry: String::new(),
                message: "transfer pool closed".into(),
            })?;
        if self
            .destination
            .blob_exists(dest_repo, &blob.digest)
            .await?
        {
            Counts::bump(&self.counts.blobs_skipped, 1);
        } else {
            let mut session = None;
            if let Some(from) = mount_from {
                match self.destination.mount(dest_repo, &blob.digest, &from).await {
                    Ok(MountOutcome::Mounted) => {
                        Counts::bump(&self.counts.blobs_mounted, 1);
                        self.remember(&blob.digest, dest_repo);
                        return Ok(());
                    }
                    Ok(MountOutcome::UploadAt(url)) => session = Some(url),
                    Err(error) => {
                        tracing::debug!(digest = %blob.digest, %error, "mount failed; uploading")
                    }
                }
            }
            let mover = BlobMover {
                source: self.source,
                destination: self.destination,
                progress: &self.progress,
                chunked: &self.chunked,
            };
            mover.transfer(repo, dest_repo, &blob, session).await?;
            Counts::bump(&self.counts.blobs_copied, 1);
            Counts::bump(&self.counts.bytes, blob.size);
        }
        self.remember(&blob.digest, dest_repo);
        Ok(())
    }

    fn remember(&self, digest: &str, dest_repo: &str) {
        let mut places = self.blobs.lock().unwrap_or_else(|p| p.into_inner());
        places
            .entry(digest.to_string())
            .or_default()
            .repos
            .insert(dest_repo.to_string());
    }
}

/// Non-distributable layers (with `urls`) live outside registries; they are not copied.
fn is_foreign(descriptor: &Descriptor) -> bool {
    let media_type = descriptor.media_type().to_string();
    descriptor.urls().as_ref().is_some_and(|u| !u.is_empty())
        && (media_type.contains("foreign") || media_type.contains("nondistributable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_filter_globs() {
        let filter = repo_filter(&["team-a/*".into(), "base".into()])
            .expect("valid")
            .expect("some");
        assert!(
            filter.is_match("team-a/app")
                && filter.is_match("base")
                && !filter.is_match("team-b/app")
        );
        assert!(repo_filter(&["[".into()]).is_err());
        assert!(repo_filter(&[]).expect("valid").is_none());
    }

    #[test]
    fn dest_project_prefix() {
        let endpoint = super::super::Endpoint::anonymous("x", false);
        let mut options = MigrateOptions {
            from: endpoint.clone(),
            to: endpoint,
            repos: vec![],
            dest_project: "library".into(),
            concurrency: 1,
            attempts: 1,
            verify: true,
        };
        assert_eq!(options.dest_repo("app"), "library/app");
        options.dest_project = String::new();
        assert_eq!(options.dest_repo("app"), "app");
    }
}
