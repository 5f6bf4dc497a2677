//! The child kinds the operator manages, their label-selected watch caches, and readiness of a child
//! read from those caches. Knows nothing of a particular custom resource.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ApiResource, DynamicObject, TypeMeta};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};

use super::owner_index::{KindIndex, owner_of};
use super::packed::{pack, unpack};
use super::read_windows::ReadWindows;
use crate::render::RenderedObject;

/// Every kind a Registry may render, in apply order; prune walks it in reverse.
pub fn core_child_kinds() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<Secret>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<PersistentVolumeClaim>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<StatefulSet>(&()),
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<Job>(&()),
        ApiResource::erase::<CronJob>(&()),
        ApiResource::erase::<Ingress>(&()),
    ]
}

/// CloudNativePG kinds a Harbor Registry may render (managed `Cluster` and its `ScheduledBackup`;
/// `Database` and `DatabaseRole` on an existing Cluster), watched only while CNPG is served.
pub fn cnpg_child_kinds() -> Vec<ApiResource> {
    vec![
        crate::render::cnpg_cluster_resource(),
        crate::render::cnpg_scheduled_backup_resource(),
        crate::render::cnpg_backup_resource(),
        crate::render::cnpg_database_role_resource(),
        crate::render::cnpg_database_resource(),
    ]
}

/// Key of a kind in [`ChildStores`].
pub fn kind_key(resource: &ApiResource) -> String {
    format!("{}/{}", resource.api_version, resource.kind)
}

/// Watch caches of managed children, one per kind, each filtered by the managed-by label. Shared by
/// every clone: optional kinds (Kyverno, CloudNativePG) are added when they become served and removed
/// when their CRD goes, while the controllers run.
#[derive(Clone, Default)]
pub struct ChildStores {
    stores: Arc<RwLock<KindStores>>,
    /// Resource versions our own applies produced, for kinds whose echo tells the owner nothing
    /// (see [`ChildStores::note_own_write`]), until their watch event is seen.
    own_writes: Arc<Mutex<HashMap<ChildId, String>>>,
    /// Each kind's children by owner, by [`kind_key`] (see [`ChildStores::cache`]).
    owners: Arc<Mutex<HashMap<String, KindIndex>>>,
    /// Children that passes are applying and will read afterwards ([`ReadWindows`]).
    pub read_windows: ReadWindows,
}

/// A child by [`kind_key`], namespace and name.
pub type ChildId = (String, Option<String>, String);

/// Own writes remembered at most; past it the oldest knowledge is dropped (an echo then triggers one
/// reconcile too many, nothing worse).
const OWN_WRITES_MAX: usize = 10_000;

/// Whether the watch event of our own write to a child of this kind can change its owner's outcome.
/// Kyverno's policies: no. The owner reads only their readiness, which Kyverno reports later in a
/// status our apply never sets, and a policy not created yet and one Kyverno has not judged yet read
/// the same (`kyverno::policy_readiness`, the WaitingForKyverno message names every policy). Every
/// other kind: yes (a Deployment's creation changes "not created yet" to "0/1 replicas ready", a
/// Service's carries its allocated NodePort).
pub fn own_echo_is_news(resource: &ApiResource) -> bool {
    !super::kyverno::is_policy_group(&resource.group)
}

/// [`own_echo_is_news`] for the kind of an object from a watch.
pub fn own_echo_is_news_of(object: &DynamicObject) -> bool {
    !super::kyverno::is_policy(object)
}

/// The cache of each kind, by [`kind_key`].
type KindStores = BTreeMap<String, (ApiResource, Store<DynamicObject>)>;

impl ChildStores {
    fn read(&self) -> RwLockReadGuard<'_, KindStores> {
        self.stores
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Register the cache of one kind.
    pub fn insert(&self, resource: ApiResource, store: Store<DynamicObject>) {
        self.stores
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(kind_key(&resource), (resource, store));
    }

    /// Forget the cache of a kind no longer served.
    pub fn remove(&self, resource: &ApiResource) {
        self.stores
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&kind_key(resource));
        self.owner_index().remove(&kind_key(resource));
    }

    fn owner_index(&self) -> std::sync::MutexGuard<'_, HashMap<String, KindIndex>> {
        self.owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The watch `events` of one kind kept in a new cache of that kind (registered here), packed
    /// ([`pack`]), and in its owner index: the index takes each event first (it reads the labels
    /// the packed form keeps in its text), then the cache.
    pub fn cache<S>(
        &self,
        resource: &ApiResource,
        events: S,
    ) -> impl Stream<Item = S::Item> + Send + use<S>
    where
        S: Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>> + Send,
    {
        let writer = Writer::new(resource.clone());
        self.insert(resource.clone(), writer.as_reader());
        let key = kind_key(resource);
        self.owner_index().insert(key.clone(), KindIndex::default());
        let owners = self.owners.clone();
        // The items of a built-in kind's list carry no apiVersion and kind (watch events and custom
        // resources do): without them a child cached from a list (every start, every re-list) never
        // matches its render and was applied again on every pass, and its events had no kind key.
        let types = TypeMeta {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
        };
        let events = events.modify(move |object| {
            object.types.get_or_insert_with(|| types.clone());
        });
        let indexed = events.inspect(move |event| {
            if let Ok(event) = event {
                owners
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .entry(key.clone())
                    .or_default()
                    .take(event);
            }
        });
        reflector::reflector(writer, indexed.modify(pack))
    }

    /// Remember the resource version our apply of a child produced, when its watch event will tell the
    /// owner nothing ([`own_echo_is_news`]): that event then triggers no reconcile (the cache still
    /// takes it). An event seen before this call is not recognised and triggers one, as before.
    pub fn note_own_write(&self, resource: &ApiResource, written: &DynamicObject) {
        let (Some(name), Some(version)) = (
            written.metadata.name.clone(),
            written.metadata.resource_version.clone(),
        ) else {
            return;
        };
        if own_echo_is_news(resource) {
            return;
        }
        let mut own = self
            .own_writes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if own.len() >= OWN_WRITES_MAX {
            own.clear();
        }
        own.insert(
            (kind_key(resource), written.metadata.namespace.clone(), name),
            version,
        );
    }

    /// Whether a watch event is the echo of our own last write of that child (forgotten once seen).
    pub fn is_own_echo(&self, key: &ChildId, version: Option<&str>) -> bool {
        let mut own = self
            .own_writes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match own.get(key) {
            Some(written) if Some(written.as_str()) == version => {
                own.remove(key);
                true
            }
            _ => false,
        }
    }

    /// The resource of a watched kind, by [`kind_key`].
    pub fn resource_of(&self, kind_key: &str) -> Option<ApiResource> {
        self.read()
            .get(kind_key)
            .map(|(resource, _)| resource.clone())
    }

    /// Whether a kind is watched (e.g. CNPG `Cluster` only while CNPG is served).
    pub fn watches(&self, resource: &ApiResource) -> bool {
        self.read().contains_key(&kind_key(resource))
    }

    /// The cached copy of a child, if any.
    pub fn get(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<DynamicObject> {
        let store = self.read().get(&kind_key(resource))?.1.clone();
        store
            .get(&child_ref(resource, namespace, name))
            .map(|o| unpack((*o).clone()))
    }

    /// Whether the cache of kind `kind_key` holds `namespace/name` (a child just deleted is gone from
    /// it by the time its watch event is seen).
    pub fn contains(&self, kind_key: &str, namespace: Option<&str>, name: &str) -> bool {
        let Some((resource, store)) = self.read().get(kind_key).cloned() else {
            return false;
        };
        store.get(&child_ref(&resource, namespace, name)).is_some()
    }

    /// Wait until every cache has completed its first list (a cache whose writer is gone counts as done).
    pub async fn wait_until_ready(&self) {
        let stores: Vec<Store<DynamicObject>> =
            self.read().values().map(|(_, s)| s.clone()).collect();
        for store in stores {
            let _ = store.wait_until_ready().await;
        }
    }

    /// The cached copy of a rendered object.
    pub fn live(&self, object: &RenderedObject) -> Option<DynamicObject> {
        self.get(&object.resource, object.namespace(), object.name())
    }

    /// Every cached child of one kind.
    pub fn all_of(&self, resource: &ApiResource) -> Vec<DynamicObject> {
        let Some((_, store)) = self.read().get(&kind_key(resource)).cloned() else {
            return Vec::new();
        };
        store
            .state()
            .into_iter()
            .map(|object| unpack((*object).clone()))
            .collect()
    }

    /// Every cached child carrying all of `labels`, with its kind. With the owner labels among
    /// `labels`, only that owner's children are looked at (each kind's owner index); otherwise
    /// every cached child.
    pub fn labelled(&self, labels: &BTreeMap<String, String>) -> Vec<(ApiResource, DynamicObject)> {
        let stores: Vec<(String, ApiResource, Store<DynamicObject>)> = self
            .read()
            .iter()
            .map(|(key, (resource, store))| (key.clone(), resource.clone(), store.clone()))
            .collect();
        let owner = owner_of(labels);
        let mut found = Vec::new();
        for (key, resource, store) in stores {
            let indexed = owner
                .as_ref()
                .and_then(|owner| Some(self.owner_index().get(&key)?.children_of(owner)));
            let candidates: Vec<Arc<DynamicObject>> = match indexed {
                Some(names) => names
                    .into_iter()
                    .filter_map(|(namespace, name)| {
                        store.get(&child_ref(&resource, namespace.as_deref(), &name))
                    })
                    .collect(),
                // A cache registered without an index (tests) or a selector without an owner.
                None => store.state(),
            };
            for object in candidates {
                let object = unpack((*object).clone());
                let object_labels = object.metadata.labels.as_ref();
                if labels
                    .iter()
                    .all(|(k, v)| object_labels.and_then(|l| l.get(k)) == Some(v))
                {
                    found.push((resource.clone(), object));
                }
            }
        }
        found
    }
}

/// The cache key of a child of kind `resource`.
fn child_ref(
    resource: &ApiResource,
    namespace: Option<&str>,
    name: &str,
) -> ObjectRef<DynamicObject> {
    let reference = ObjectRef::new_with(name, resource.clone());
    match namespace {
        Some(namespace) => reference.within(namespace),
        None => reference,
    }
}

/// Whether a child is ready, judged from its cached status; `None` when the kind has no readiness.
pub fn readiness(kind: &str, live: Option<&DynamicObject>) -> Option<Result<(), String>> {
    let field = |object: &DynamicObject, pointer: &str| {
        object
            .data
            .pointer(pointer)
            .and_then(serde_json::Value::as_i64)
    };
    let name = live
        .and_then(|o| o.metadata.name.clone())
        .unwrap_or_default();
    let Some(object) = live else {
        return matches!(
            kind,
            "Deployment"
                | "StatefulSet"
                | "PersistentVolumeClaim"
                | "Job"
                | "Cluster"
                | "Database"
                | "DatabaseRole"
        )
        .then(|| Err(format!("{kind} not created yet")));
    };
    let current = object
        .metadata
        .generation
        .is_none_or(|g| field(object, "/status/observedGeneration").is_none_or(|o| o >= g));
    match kind {
        "Deployment" | "StatefulSet" => {
            let wanted = field(object, "/spec/replicas").unwrap_or(1);
            let ready_key = if kind == "Deployment" {
                "/status/availableReplicas"
            } else {
                "/status/readyReplicas"
            };
            let ready = field(object, ready_key).unwrap_or(0);
            Some(if current && ready >= wanted {
                Ok(())
            } else {
                Err(format!("{kind} {name}: {ready}/{wanted} replicas ready"))
            })
        }
        "PersistentVolumeClaim" => {
            let phase = object
                .data
                .pointer("/status/phase")
                .and_then(|p| p.as_str())
                .unwrap_or("Pending");
            Some(if phase == "Bound" {
                Ok(())
            } else {
                Err(format!("PersistentVolumeClaim {name} is {phase}"))
            })
        }
        "Job" => Some(if field(object, "/status/succeeded").unwrap_or(0) >= 1 {
            Ok(())
        } else {
            Err(format!("Job {name} has not succeeded"))
        }),
        "Cluster" => {
            let ready = object
                .data
                .pointer("/status/conditions")
                .and_then(|c| c.as_array())
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
            Some(if ready {
                Ok(())
            } else {
                Err(format!("database Cluster {name} is not ready"))
            })
        }
        // CloudNativePG reports `status.applied` once the role or database exists in PostgreSQL
        // (and `status.message` when it could not be created).
        "Database" | "DatabaseRole" => {
            let applied = object
                .data
                .pointer("/status/applied")
                .and_then(|a| a.as_bool());
            Some(if current && applied == Some(true) {
                Ok(())
            } else {
                let why = object
                    .data
                    .pointer("/status/message")
                    .and_then(|m| m.as_str())
                    .filter(|m| !m.is_empty())
                    .unwrap_or("not created in PostgreSQL yet");
                Err(format!("{kind} {name}: {why}"))
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_finds_an_owners_children_through_the_index_as_a_full_scan_does() {
        use futures::FutureExt;
        use k8s_openapi::api::core::v1::ConfigMap;
        use watcher::Event;
        let kind = ApiResource::erase::<ConfigMap>(&());
        let owner_a = crate::render::labels::Owner::registry("a", "ns").selector_labels();
        let owner_b = crate::render::labels::Owner::registry("b", "ns").selector_labels();
        let child = |name: &str, labels: &BTreeMap<String, String>| {
            let mut object = DynamicObject::new(name, &kind).within("ns");
            object.metadata.labels = Some(labels.clone());
            object
        };
        let events = vec![
            Event::Init,
            Event::InitApply(child("a-1", &owner_a)),
            Event::InitApply(child("a-2", &owner_a)),
            Event::InitApply(child("a-3", &owner_a)),
            Event::InitApply(child("b-1", &owner_b)),
            Event::InitDone,
            // Orphaned: its owner labels removed (the index still lists it under `a`).
            Event::Apply(child("a-2", &BTreeMap::new())),
            Event::Delete(child("a-3", &owner_a)),
            Event::Apply(child("a-4", &owner_a)),
        ];
        let indexed = ChildStores::default();
        let taken = indexed
            .cache(
                &kind,
                futures::stream::iter(events.clone().into_iter().map(Ok)),
            )
            .count()
            .now_or_never();
        assert_eq!(taken, Some(events.len()));
        // The same events in a cache registered without an index: `labelled` scans it all.
        let scanned = ChildStores::default();
        let mut writer = Writer::new(kind.clone());
        scanned.insert(kind.clone(), writer.as_reader());
        for event in &events {
            writer.apply_watcher_event(event);
        }
        let names = |stores: &ChildStores, labels: &BTreeMap<String, String>| {
            let mut names: Vec<String> = stores
                .labelled(labels)
                .into_iter()
                .map(|(_, object)| object.metadata.name.clone().unwrap())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(&indexed, &owner_a), ["a-1", "a-4"]);
        assert_eq!(names(&indexed, &owner_b), ["b-1"]);
        for labels in [&owner_a, &owner_b] {
            assert_eq!(names(&indexed, labels), names(&scanned, labels));
        }
        // A selector narrower than the owner's still filters the owner's children.
        let mut narrower = owner_a.clone();
        narrower.insert("app.kubernetes.io/component".into(), "gc".into());
        assert!(names(&indexed, &narrower).is_empty());
    }

    #[test]
    fn a_child_listed_without_apiversion_and_kind_is_cached_with_them() {
        use futures::FutureExt;
        use k8s_openapi::api::core::v1::Service;
        use watcher::Event;
        let kind = ApiResource::erase::<Service>(&());
        // As a list of a built-in kind delivers its items: no apiVersion, no kind.
        let mut listed = DynamicObject::new("r-distribution", &kind).within("ns");
        listed.types = None;
        let stores = ChildStores::default();
        let events = [Event::Init, Event::InitApply(listed), Event::InitDone];
        let passed: Vec<_> = stores
            .cache(&kind, futures::stream::iter(events.into_iter().map(Ok)))
            .collect::<Vec<_>>()
            .now_or_never()
            .expect("a finite stream");
        assert_eq!(passed.len(), 3);
        let cached = stores.get(&kind, Some("ns"), "r-distribution").unwrap();
        assert_eq!(
            cached.types,
            Some(TypeMeta {
                api_version: "v1".into(),
                kind: "Service".into()
            })
        );
    }
}
