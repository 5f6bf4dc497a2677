//! `migrate --verify-only`, the Verifying stage of a switch: lists the selected source tags exactly as
//! a copy would (same `--repos` selection, same `--dest-project` mapping), resolves each one at the
//! source and checks that the destination resolves it to the same digest (`verify::check`, which
//! also wants a cosign-style tag's subject there). Copies nothing: only `GET` and `HEAD` reach
//! either registry.

use std::time::Instant;

use futures::StreamExt;

use super::copy::{Selection, open, select};
use super::progress::Progress;
use super::verify::{TagRecord, check};
use super::{MigrateError, MigrateOptions, Summary};

/// What checking one tag found.
enum Checked {
    /// Same digest on both sides.
    Verified,
    /// Missing or different at the destination.
    Mismatch(String),
    /// Could not be resolved at the source.
    Failure(String),
}

/// Checks every selected source tag against the destination and says what differs. `Err` only when
/// the check cannot run at all (unreachable registry, bad credentials, bad pattern); per-tag problems
/// land in `Summary::mismatches` (missing or different at the destination) and `Summary::failures`
/// (unreadable at the source). Manifest, blob and byte counts stay zero.
pub async fn verify_only(
    options: &MigrateOptions,
    progress: Progress,
) -> Result<Summary, MigrateError> {
    let started = Instant::now();
    let (source, destination) = open(options).await?;
    let Selection {
        repos,
        plain,
        signatures,
    } = select(&source, options).await?;
    let mut summary = Summary {
        repos: repos.len() as u64,
        tags: (plain.len() + signatures.len()) as u64,
        ..Summary::default()
    };
    progress.add_tags(summary.tags);
    let outcomes: Vec<Checked> = futures::stream::iter(plain.into_iter().chain(signatures))
        .map(|(repo, tag)| {
            let (source, destination, progress) = (&source, &destination, &progress);
            async move {
                let outcome = match source.manifest_digest(&repo, &tag).await {
                    Ok(Some(digest)) => {
                        let record = TagRecord {
                            dest_repo: options.dest_repo(&repo),
                            source_repo: repo.clone(),
                            tag: tag.clone(),
                            digest,
                        };
                        match check(source, destination, &record).await {
                            None => Checked::Verified,
                            Some(problem) => Checked::Mismatch(problem),
                        }
                    }
                    Ok(None) => Checked::Failure(format!(
                        "{repo}:{tag}: listed at the source but does not resolve there"
                    )),
                    Err(error) => Checked::Failure(format!(
                        "{repo}:{tag}: cannot read at the source: {error}"
                    )),
                };
                let label = match &outcome {
                    Checked::Verified => "verified",
                    Checked::Mismatch(_) => "differs",
                    Checked::Failure(_) => "failed",
                };
                progress.tag_done(&repo, &tag, label);
                outcome
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    for outcome in outcomes {
        match outcome {
            Checked::Verified => summary.verified_tags += 1,
            Checked::Mismatch(problem) => summary.mismatches.push(problem),
            Checked::Failure(problem) => summary.failures.push(problem),
        }
    }
    summary.mismatches.sort();
    summary.failures.sort();
    progress.finish();
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
