//! Keeps a manifest untouched at the destination while a manifest that references it is pushed to
//! the same repository. Only synchronisation: no I/O, no copy decisions.
//!
//! Why: a manifest PUT rewrites the manifest's revision link even when the manifest is already
//! there (tagging an existing manifest is a PUT of the same bytes), and CNCF distribution ≤ 2.8 on
//! the filesystem driver rewrites that link in place (truncate, then write). An index PUT that
//! checks its children during that rewrite reads an empty link and is refused with
//! MANIFEST_BLOB_UNKNOWN although the child was pushed first. So: pushing a manifest takes its own
//! lock exclusively and its child manifests' locks shared, for the duration of the PUT only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

/// One lock per (destination repository, manifest digest) for the run.
#[derive(Default)]
pub struct PushGuards {
    locks: Mutex<HashMap<String, Arc<RwLock<()>>>>,
}

/// Held while one manifest PUT is in flight; releases everything on drop.
pub struct PushPermit {
    _own: OwnedRwLockWriteGuard<()>,
    _children: Vec<OwnedRwLockReadGuard<()>>,
}

impl PushGuards {
    /// Waits until `digest` may be written in `repo`: no PUT of a manifest referencing it is in
    /// flight, and none of `children` is being written. Locks are always taken parent before child
    /// (and children in digest order); manifests form a DAG, so waits cannot form a cycle.
    pub async fn before_push(&self, repo: &str, digest: &str, children: &[String]) -> PushPermit {
        let own = self.lock(repo, digest).write_owned().await;
        let mut children: Vec<&String> = children.iter().filter(|c| *c != digest).collect();
        children.sort();
        children.dedup();
        let mut shared = Vec::with_capacity(children.len());
        for child in children {
            shared.push(self.lock(repo, child).read_owned().await);
        }
        PushPermit {
            _own: own,
            _children: shared,
        }
    }

    fn lock(&self, repo: &str, digest: &str) -> Arc<RwLock<()>> {
        Arc::clone(
            self.locks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(format!("{repo}@{digest}"))
                .or_default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "sha256:index";
    const CHILD: &str = "sha256:child";

    #[tokio::test]
    async fn a_child_is_not_rewritten_while_its_index_is_pushed() {
        let guards = PushGuards::default();
        let index_push = guards
            .before_push("multi/app", INDEX, &[CHILD.to_string()])
            .await;
        let child_tagging = guards.before_push("multi/app", CHILD, &[]);
        tokio::pin!(child_tagging);
        assert!(
            futures::poll!(child_tagging.as_mut()).is_pending(),
            "the child's tag PUT must wait for the index PUT"
        );
        drop(index_push);
        assert!(futures::poll!(child_tagging.as_mut()).is_ready());
    }

    #[tokio::test]
    async fn an_index_waits_for_a_child_being_written_and_other_repos_are_independent() {
        let guards = PushGuards::default();
        let children = [CHILD.to_string()];
        let child_push = guards.before_push("multi/app", CHILD, &[]).await;
        let _elsewhere = guards.before_push("other/app", CHILD, &[]).await;
        let _unrelated = guards
            .before_push("multi/app", "sha256:other-index", &[])
            .await;
        let index_push = guards.before_push("multi/app", INDEX, &children);
        tokio::pin!(index_push);
        assert!(futures::poll!(index_push.as_mut()).is_pending());
        drop(child_push);
        assert!(futures::poll!(index_push.as_mut()).is_ready());
    }

    #[tokio::test]
    async fn indexes_sharing_a_child_push_at_the_same_time() {
        let guards = PushGuards::default();
        let children = [CHILD.to_string()];
        let _first = guards.before_push("multi/app", INDEX, &children).await;
        let second = guards.before_push("multi/app", "sha256:index-2", &children);
        tokio::pin!(second);
        assert!(futures::poll!(second.as_mut()).is_ready());
    }
}
