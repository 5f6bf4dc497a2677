//! The watch streams behind the controllers: what each keeps in its cache (`lean`, `packed::pack`),
//! which changes reach a reconcile (predicates), the `/readyz` sync count, and the tasks that drive
//! the watches apart from the controllers (`detached`). Reconciles nothing and renders nothing.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{Stream, StreamExt, future};
use kube::Client;
use kube::Resource;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc;
use tracing::warn;

use super::children::{self, ChildStores};
use super::managed_selector;
use super::metrics::Metrics;
use super::packed::unpack;
use super::readiness_news;
use super::watch_backoff::watch_backoff;

/// What of a child a reconcile may read, hashed: identity, generation (the spec, for kinds that have
/// one; the whole body for those without, e.g. ConfigMap data), deletion, labels, annotations but
/// those Kubernetes' own controllers write ([`written_by_kubernetes`]), and the status without
/// heartbeat timestamps, or for kinds whose status only readiness reads
/// ([`STATUS_READ_FOR_READINESS_ONLY`]) that readiness. Changes to nothing else (finalizers added by
/// the API server, `resourceVersion`, owner references, condition timestamps, a Deployment's replica
/// counts while none is available) trigger no reconcile.
pub(super) fn child_predicate(object: &DynamicObject) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let meta = &object.metadata;
    let kind = object
        .types
        .as_ref()
        .map(|t| t.kind.as_str())
        .unwrap_or_default();
    let body = match &object.data {
        serde_json::Value::Object(fields) => {
            let mut body = String::new();
            for (key, value) in fields {
                match key.as_str() {
                    "spec" if meta.generation.is_some() => {}
                    "status" if STATUS_READ_FOR_READINESS_ONLY.contains(&kind) => {
                        body.push_str(&format!("{:?}", children::readiness(kind, Some(object))));
                    }
                    "status" => body.push_str(&status_view(value).to_string()),
                    _ => body.push_str(&value.to_string()),
                }
            }
            body
        }
        other => other.to_string(),
    };
    let annotations: Vec<(&String, &String)> = meta
        .annotations
        .iter()
        .flatten()
        .filter(|(key, _)| !written_by_kubernetes(key))
        .collect();
    BuildHasherDefault::<DefaultHasher>::default().hash_one((
        &meta.uid,
        meta.generation,
        meta.deletion_timestamp.is_some(),
        &meta.labels,
        annotations,
        body,
    ))
}

/// Kinds whose status the operator reads only through `children::readiness` (a Deployment's or
/// StatefulSet's ready replicas, a claim's phase): their controllers' other status writes (replica
/// counts while none is ready, conditions) tell the owner nothing (issue 17: a Registry was
/// reconciled once per such write).
const STATUS_READ_FOR_READINESS_ONLY: [&str; 3] =
    ["Deployment", "StatefulSet", "PersistentVolumeClaim"];

/// Annotations Kubernetes' own controllers write on objects we render (the Deployment revision,
/// the volume binding ones): we render none of them and read none.
fn written_by_kubernetes(key: &str) -> bool {
    key == "deployment.kubernetes.io/revision"
        || [
            "pv.kubernetes.io/",
            "volume.kubernetes.io/",
            "volume.beta.kubernetes.io/",
        ]
        .iter()
        .any(|prefix| key.starts_with(prefix))
}

/// Whether a child carries a non-empty `status`.
fn has_status(object: &DynamicObject) -> bool {
    match object.data.get("status") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Object(fields)) => !fields.is_empty(),
        Some(_) => true,
    }
}

/// A status without the timestamps controllers refresh on every heartbeat.
pub(super) fn status_view(status: &serde_json::Value) -> serde_json::Value {
    let mut status = status.clone();
    if let Some(conditions) = status
        .get_mut("conditions")
        .and_then(serde_json::Value::as_array_mut)
    {
        for condition in conditions.iter_mut().filter_map(|c| c.as_object_mut()) {
            condition.remove("lastUpdateTime");
            condition.remove("lastHeartbeatTime");
            condition.remove("lastProbeTime");
        }
    }
    status
}

/// Passes a child's watch event on, unpacked (`packed::unpack`: its owner is read from its labels),
/// only when [`child_predicate`] changed and, for a kind whose own echo is no news
/// (`children::own_echo_is_news`), the event is neither the echo of our own write
/// (`ChildStores::note_own_write`) nor the first sight of a child without status; or when the child
/// left its cache (deleted: its owner must look at once).
pub(super) fn child_changes<S, E>(
    stream: S,
    stores: &ChildStores,
) -> impl Stream<Item = Result<DynamicObject, E>> + Send + use<S, E>
where
    S: Stream<Item = Result<DynamicObject, E>> + Send,
    E: Send,
{
    let stores = stores.clone();
    let mut seen: std::collections::HashMap<children::ChildId, u64> =
        std::collections::HashMap::new();
    stream.filter_map(move |event| {
        let passed = match event {
            Err(error) => Some(Err(error)),
            Ok(object) => {
                let object = unpack(object);
                let kind = object
                    .types
                    .as_ref()
                    .map(|t| format!("{}/{}", t.api_version, t.kind))
                    .unwrap_or_default();
                let key = (
                    kind,
                    object.metadata.namespace.clone(),
                    object.metadata.name.clone().unwrap_or_default(),
                );
                let pass = if stores.contains(&key.0, key.1.as_deref(), &key.2) {
                    let hash = child_predicate(&object);
                    // A pass applying it reads it afterwards: its report shows this change.
                    let no_news = stores.read_windows.contains(&key)
                        || (!children::own_echo_is_news_of(&object)
                            && (stores.is_own_echo(&key, object.metadata.resource_version.as_deref())
                                // Its creation, ours or seen first in a list: not judged by Kyverno
                                // yet, which reads as its absence did (and our apply may not have
                                // returned yet, so the version above may not be known).
                                || (!seen.contains_key(&key) && !has_status(&object))));
                    seen.insert(key.clone(), hash) != Some(hash)
                        && !no_news
                        && !stores.resource_of(&key.0).is_some_and(|resource| {
                            readiness_news::ready_while_a_sibling_waits(&resource, &object, &stores)
                        })
                } else {
                    seen.remove(&key);
                    true
                };
                pass.then_some(Ok(object))
            }
        };
        future::ready(passed)
    })
}

/// Count the events of a trigger stream as `source` triggers of `controller` (`/metrics`).
pub(super) fn counted<S, T, E>(
    stream: S,
    metrics: &Arc<Metrics>,
    controller: &'static str,
    source: String,
) -> impl Stream<Item = Result<T, E>> + Send + use<S, T, E>
where
    S: Stream<Item = Result<T, E>> + Send,
{
    let metrics = metrics.clone();
    stream.inspect(move |event| {
        if event.is_ok() {
            metrics.triggered(controller, &source);
        }
    })
}

/// Counts watch streams that completed their initial list, to answer `/readyz`.
#[derive(Clone, Default)]
pub(super) struct SyncTracker {
    expected: Arc<std::sync::atomic::AtomicUsize>,
    synced: Arc<std::sync::atomic::AtomicUsize>,
}

impl SyncTracker {
    /// An observer for one more stream: it counts that stream's first `InitDone`.
    pub(super) fn observer<K>(
        &self,
    ) -> impl FnMut(&Result<watcher::Event<K>, watcher::Error>) + use<K> {
        self.expected.fetch_add(1, Ordering::Relaxed);
        let synced = self.synced.clone();
        let mut seen = false;
        move |event| {
            if !seen && matches!(event, Ok(watcher::Event::InitDone)) {
                seen = true;
                synced.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(super) async fn wait_all(&self) {
        while self.synced.load(Ordering::Relaxed) < self.expected.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The watch of one child kind: label-selected (only what the operator manages), without
/// `managedFields`, feeding that kind's cache in `stores`; counted by `synced`.
pub(super) fn child_stream(
    client: &Client,
    resource: &ApiResource,
    stores: &ChildStores,
    synced: &SyncTracker,
    page_size: u32,
) -> impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + use<> {
    let api = Api::<DynamicObject>::all_with(client.clone(), resource);
    let watch_config = watcher::Config::default()
        .labels(&managed_selector())
        .page_size(page_size);
    stores
        .cache(resource, watcher(api, watch_config))
        .backoff(watch_backoff())
        .inspect(synced.observer())
        .touched_objects()
}

/// The watch of one of our custom resources (every namespace; objects that do not deserialize
/// come through as such), without `managedFields`, feeding `writer`; counted by `synced`.
pub(super) fn owner_stream<K>(
    client: &Client,
    writer: Writer<DeserializeGuard<K>>,
    synced: &SyncTracker,
    page_size: u32,
) -> impl Stream<Item = Result<DeserializeGuard<K>, watcher::Error>> + Send + use<K>
where
    K: Resource<DynamicType = ()>
        + serde::de::DeserializeOwned
        + Clone
        + Debug
        + Send
        + Sync
        + 'static,
{
    watcher(
        Api::<DeserializeGuard<K>>::all(client.clone()),
        watcher::Config::default().page_size(page_size),
    )
    .modify(lean)
    .backoff(watch_backoff())
    .reflect(writer)
    .inspect(synced.observer())
    .applied_objects()
}

/// The messages of a channel as a stream (ends when every sender is gone).
pub(super) fn receiver_stream<T>(
    mut receiver: mpsc::UnboundedReceiver<T>,
) -> impl Stream<Item = T> + use<T> {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// Drive a watch stream (and the cache it feeds) on a task of its own, handing only its objects to
/// the controller; its errors are logged here (the stream retries them with `watch_backoff`).
///
/// Why: inside a kube-runtime `Controller` a watch only advances when the controller polls it, and
/// an error at the head of its input waits there until the controller's output is polled again;
/// meanwhile the watch's cache went stale and the soak (`tests/operator/soak.rs`) measured a
/// controller reconciling from a cache 60–115 s old after the API server had recovered.
pub(super) fn detached<T, S>(
    stream: S,
    watch: String,
) -> impl Stream<Item = Result<T, watcher::Error>> + use<T, S>
where
    T: Send + 'static,
    S: Stream<Item = Result<T, watcher::Error>> + Send + 'static,
{
    let (objects, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(object) => {
                    if objects.send(object).is_err() {
                        break;
                    }
                }
                Err(error) => warn!(%error, %watch, "watch failed; retrying with backoff"),
            }
        }
    });
    receiver_stream(received).map(Ok)
}

/// What the caches keep of an object: everything but `managedFields`, which the operator never reads
/// and which is as large as the object itself under server-side apply.
pub(crate) fn lean<K: kube::Resource>(object: &mut K) {
    kube::ResourceExt::managed_fields_mut(object).clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use kube::api::TypeMeta;

    fn object(resource: &ApiResource, name: &str, version: &str, generation: i64) -> DynamicObject {
        let mut object = DynamicObject::new(name, resource);
        object.types = Some(TypeMeta {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
        });
        object.metadata.resource_version = Some(version.to_string());
        object.metadata.generation = Some(generation);
        object.metadata.uid = Some(format!("uid-{name}"));
        object
    }

    #[test]
    fn a_deployments_bookkeeping_is_no_news_its_readiness_and_our_annotations_are() {
        let kind = ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&());
        let mut created = object(&kind, "r-distribution", "1", 1);
        created.data = serde_json::json!({"spec": {"replicas": 1}});
        let with = |status: serde_json::Value, annotations: &[(&str, &str)]| {
            let mut object = created.clone();
            object.data["status"] = status;
            object.metadata.annotations = Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
            child_predicate(&object)
        };
        let ours = [("registry.aisp.dev/applied-hash", "h1")];
        let start = with(serde_json::json!({}), &ours);
        // The deployment controller's first sync: counts, a condition, its revision annotation.
        let synced = with(
            serde_json::json!({"observedGeneration": 1, "replicas": 1, "unavailableReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "True"}]}),
            &[ours[0], ("deployment.kubernetes.io/revision", "1")],
        );
        assert_eq!(start, synced, "nothing readiness reads changed");
        let available = with(
            serde_json::json!({"observedGeneration": 1, "availableReplicas": 1}),
            &ours,
        );
        assert_ne!(start, available, "available now");
        let edited = with(
            serde_json::json!({}),
            &[("registry.aisp.dev/applied-hash", "h2")],
        );
        assert_ne!(start, edited, "our annotation changed");
        // A kind whose status is read whole (a Job's) still triggers on any status change.
        let job_kind = ApiResource::erase::<k8s_openapi::api::batch::v1::Job>(&());
        let job = |status: serde_json::Value| {
            let mut job = object(&job_kind, "gc", "1", 1);
            job.data = serde_json::json!({"status": status});
            child_predicate(&job)
        };
        assert_ne!(
            job(serde_json::json!({})),
            job(serde_json::json!({"active": 1}))
        );
    }

    #[test]
    fn own_echoes_unjudged_creations_and_changes_a_pass_reads_after_trigger_nothing_other_changes_do()
     {
        let policy_kind = crate::render::kyverno::cluster_policy_resource();
        let deployment_kind = ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&());
        let stores = ChildStores::default();
        let mut writers = Vec::new();
        for resource in [&policy_kind, &deployment_kind] {
            let writer = Writer::new(resource.clone());
            stores.insert(resource.clone(), writer.as_reader());
            writers.push(writer);
        }
        let (events, received) = mpsc::unbounded_channel::<DynamicObject>();
        let mut changes = Box::pin(child_changes(
            receiver_stream(received).map(Ok::<_, ()>),
            &stores,
        ));
        // Each event reaches the cache first (as the watch task does), then the filter.
        let mut passes = |object: DynamicObject, deleted: bool| {
            let writer = if object.types.as_ref().unwrap().kind == "Deployment" {
                &mut writers[1]
            } else {
                &mut writers[0]
            };
            writer.apply_watcher_event(&if deleted {
                watcher::Event::Delete(object.clone())
            } else {
                watcher::Event::Apply(object.clone())
            });
            events.send(object).unwrap();
            changes.next().now_or_never().is_some()
        };

        // Our apply creates a policy: its creation (not judged by Kyverno yet) is no news.
        let created = object(&policy_kind, "p0001-disallow-latest", "10", 1);
        assert!(!passes(created.clone(), false), "creation echo");
        // Kyverno reports it ready: news.
        let mut ready = created.clone();
        ready.metadata.resource_version = Some("11".into());
        ready.data["status"] = serde_json::json!({"ready": true});
        assert!(passes(ready.clone(), false), "Kyverno's readiness");
        // Our own update (its version noted by apply) is no news; somebody else's edit is.
        let mut ours = ready.clone();
        ours.metadata.resource_version = Some("12".into());
        ours.metadata.generation = Some(2);
        stores.note_own_write(&policy_kind, &ours);
        assert!(!passes(ours.clone(), false), "own update echo");
        let mut theirs = ours.clone();
        theirs.metadata.resource_version = Some("13".into());
        theirs.metadata.generation = Some(3);
        assert!(passes(theirs.clone(), false), "somebody else's edit");
        // Deleted: its owner must look.
        assert!(passes(theirs, true), "deletion");

        // A Deployment's creation is news (its owner's message changes), even as our own write.
        let deployment = object(&deployment_kind, "r000-distribution", "20", 1);
        stores.note_own_write(&deployment_kind, &deployment);
        assert!(passes(deployment.clone(), false), "Deployment creation");

        // While a pass that applies it (and reads it afterwards) is applying, no change is news.
        let key = (
            children::kind_key(&deployment_kind),
            None,
            "r000-distribution".to_string(),
        );
        let window = stores.read_windows.open_for(vec![key]);
        let with_status = |version: &str, available: i64| {
            let mut changed = deployment.clone();
            changed.metadata.resource_version = Some(version.into());
            changed.data = serde_json::json!({"spec": {"replicas": 1},
                "status": {"observedGeneration": 1, "availableReplicas": available}});
            changed
        };
        assert!(!passes(with_status("21", 1), false), "read by the pass");
        drop(window);
        assert!(passes(with_status("22", 0), false), "after the window");
    }
}
