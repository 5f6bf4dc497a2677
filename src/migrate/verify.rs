//! After-copy check: every copied source tag must resolve to the same digest at the destination, and
//! every cosign-style tag (`sha256-<hex>.sig|.att|.sbom`) must have its subject there too. Reads only.

use futures::StreamExt;

use super::MigrateError;
use super::client::Registry;

/// A source tag and the digest it resolved to when copied.
#[derive(Debug, Clone)]
pub struct TagRecord {
    /// Source repository.
    pub source_repo: String,
    /// Destination repository.
    pub dest_repo: String,
    /// The tag.
    pub tag: String,
    /// `sha256:` digest at the source.
    pub digest: String,
}

/// The subject digest a cosign-style tag names (`sha256-<hex>.sig` → `sha256:<hex>`).
pub fn cosign_subject(tag: &str) -> Option<String> {
    let rest = tag.strip_prefix("sha256-")?;
    let (hex, suffix) = rest.split_once('.')?;
    let is_hex = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    (is_hex && matches!(suffix, "sig" | "att" | "sbom")).then(|| format!("sha256:{hex}"))
}

/// Checks every record; returns how many matched and a line per problem.
pub async fn verify(
    source: &Registry,
    destination: &Registry,
    records: &[TagRecord],
    concurrency: usize,
) -> (u64, Vec<String>) {
    let outcomes: Vec<Option<String>> = futures::stream::iter(records)
        .map(|record| check(source, destination, record))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut problems: Vec<String> = outcomes.iter().flatten().cloned().collect();
    problems.sort();
    ((outcomes.len() - problems.len()) as u64, problems)
}

/// Checks one record: `None` when the destination has the same digest (and, for a cosign-style tag,
/// its subject), else a line naming the destination tag and what differs.
pub(super) async fn check(
    source: &Registry,
    destination: &Registry,
    record: &TagRecord,
) -> Option<String> {
    let name = format!("{}:{}", record.dest_repo, record.tag);
    match destination
        .manifest_digest(&record.dest_repo, &record.tag)
        .await
    {
        Ok(Some(digest)) if digest == record.digest => {}
        Ok(Some(digest)) => {
            return Some(format!(
                "{name}: destination has {digest}, source has {}",
                record.digest
            ));
        }
        Ok(None) => {
            return Some(format!(
                "{name}: missing at destination (source has {})",
                record.digest
            ));
        }
        Err(error) => return Some(format!("{name}: cannot check: {error}")),
    }
    let subject = cosign_subject(&record.tag)?;
    match destination
        .manifest_digest(&record.dest_repo, &subject)
        .await
    {
        Ok(Some(_)) => None,
        Ok(None) => match source.manifest_digest(&record.source_repo, &subject).await {
            Ok(None) => {
                tracing::warn!(tag = %name, %subject, "signature tag whose subject is missing at the source too");
                None
            }
            _ => Some(format!("{name}: subject {subject} missing at destination")),
        },
        Err(error) => Some(format!(
            "{name}: cannot check subject {subject}: {}",
            describe(&error)
        )),
    }
}

fn describe(error: &MigrateError) -> String {
    error.to_string()
}

#[cfg(test)]
mod tests {
    use super::cosign_subject;

    #[test]
    fn cosign_tags_name_their_subject() {
        let hex = "a".repeat(64);
        assert_eq!(
            cosign_subject(&format!("sha256-{hex}.sig")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(
            cosign_subject(&format!("sha256-{hex}.att")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(
            cosign_subject(&format!("sha256-{hex}.sbom")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(cosign_subject(&format!("sha256-{hex}")), None);
        assert_eq!(cosign_subject("sha256-abc.sig"), None);
        assert_eq!(cosign_subject("latest"), None);
    }
}
