//! Watches of the upstream credentials Secrets of proxy-cache RegistryProjects
//! (`spec.proxyCache.credentialsSecretRef`): a password changed in such a Secret reaches Harbor at
//! once instead of at the next resync. The operator watches no Secret it did not label, so each
//! referenced Secret gets a watch of its own, selected by namespace and name (`metadata.name=`),
//! metadata only (the password never reaches this watch); the set follows the RegistryProjects in
//! the cache, recomputed when one changes and every [`SWEEP`] (a deleted one leaves no event).
//! Each change is mapped back to the RegistryProjects naming that Secret ([`projects_using`]).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PartialObjectMeta};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tracing::debug;

use crate::crd::RegistryProject;
use crate::reconcile::watch_backoff::watch_backoff;

/// How often the set of watches is recomputed without a RegistryProject change.
const SWEEP: Duration = Duration::from_secs(60);

/// `(namespace, name)` of a Secret.
type SecretKey = (String, String);

/// The credentials Secret a RegistryProject names, if any.
fn referenced(project: &RegistryProject) -> Option<SecretKey> {
    let reference = project
        .spec
        .proxy_cache
        .as_ref()?
        .credentials_secret_ref
        .as_ref()?;
    Some((project.namespace()?, reference.name.clone()))
}

/// The RegistryProjects whose proxy cache takes its credentials from `secret`.
pub(crate) fn projects_using(
    projects: &Store<DeserializeGuard<RegistryProject>>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<DeserializeGuard<RegistryProject>>> {
    let key = (secret.namespace().unwrap_or_default(), secret.name_any());
    projects
        .state()
        .iter()
        .filter(|guard| {
            guard
                .0
                .as_ref()
                .is_ok_and(|p| referenced(p).as_ref() == Some(&key))
        })
        .map(|guard| ObjectRef::from_obj(&**guard))
        .collect()
}

/// Every Secret some RegistryProject in the cache names.
fn wanted(projects: &Store<DeserializeGuard<RegistryProject>>) -> BTreeSet<SecretKey> {
    projects
        .state()
        .iter()
        .filter_map(|guard| guard.0.as_ref().ok().and_then(referenced))
        .collect()
}

/// Keeps one watch per referenced Secret until the stream's receiver is gone; each event of one is
/// sent on `changes`. `projects_changed` is notified when a RegistryProject changed.
pub(crate) async fn run(
    client: Client,
    projects: Store<DeserializeGuard<RegistryProject>>,
    projects_changed: Arc<Notify>,
    changes: mpsc::UnboundedSender<PartialObjectMeta<Secret>>,
) {
    // No `projects.wait_until_ready()`: its one-shot channel keeps a single waker, and the
    // controller already waits on it (a second waiter is never woken). Before the first list the
    // store is empty and the first RegistryProject event wakes this loop.
    let mut watches: BTreeMap<SecretKey, JoinHandle<()>> = BTreeMap::new();
    while !changes.is_closed() {
        let wanted = wanted(&projects);
        watches.retain(|key, task| {
            let keep = wanted.contains(key) && !task.is_finished();
            if !keep {
                debug!(namespace = %key.0, secret = %key.1, "credentials Secret no longer watched");
                task.abort();
            }
            keep
        });
        for key in wanted {
            if let Entry::Vacant(entry) = watches.entry(key) {
                let key = entry.key().clone();
                debug!(namespace = %key.0, secret = %key.1, "watching a proxy cache's credentials Secret");
                entry.insert(tokio::spawn(watch(client.clone(), key, changes.clone())));
            }
        }
        let _ = tokio::time::timeout(SWEEP, projects_changed.notified()).await;
    }
    for task in watches.into_values() {
        task.abort();
    }
}

/// The metadata watch of one Secret: every version of it seen (also at the initial list, and on
/// creation after a RegistryProject named it) is sent on `changes`.
async fn watch(
    client: Client,
    (namespace, name): SecretKey,
    changes: mpsc::UnboundedSender<PartialObjectMeta<Secret>>,
) {
    // `PartialObjectMeta`: metadata-only requests (no `data` is ever sent to the operator).
    let api: Api<PartialObjectMeta<Secret>> = Api::namespaced(client, &namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = std::pin::pin!(
        watcher(api, config)
            .backoff(watch_backoff())
            .touched_objects()
    );
    while let Some(event) = events.next().await {
        match event {
            Ok(secret) => {
                if changes.send(secret).is_err() {
                    return;
                }
            }
            Err(error) => {
                debug!(%namespace, secret = %name, %error, "credentials Secret watch failed; retried");
            }
        }
    }
}
