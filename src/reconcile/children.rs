//! The child kinds the operator manages, their label-selected watch caches, and readiness of a child
//! read from those caches. Knows nothing of a particular custom resource.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{ObjectRef, Store};

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

/// The field under which a cached child keeps everything but its `status`, as compact JSON text.
pub const PACKED: &str = "\u{0}packed";

/// What a child's cache keeps: no `managedFields` (as large as the object under server-side apply,
/// never read), and every field but `status` as one compact JSON string: a parsed `serde_json` tree
/// takes several times the bytes of its text, and a child's body is read only when a reconcile
/// compares it (a few times per pass, see [`ChildStores::get`]). `status` stays parsed: readiness and
/// the watch predicate read it on every event; of a Kyverno policy's, only what readiness reads
/// (`kyverno::readiness_status`).
pub fn pack(object: &mut DynamicObject) {
    object.metadata.managed_fields = None;
    let kyverno_policy = super::kyverno::is_policy(object);
    if let serde_json::Value::Object(fields) = &mut object.data {
        let status = fields.remove("status").map(|status| {
            if kyverno_policy {
                super::kyverno::readiness_status(&status)
            } else {
                status
            }
        });
        let rest = std::mem::take(fields);
        if !rest.is_empty() {
            let text = serde_json::to_string(&rest).unwrap_or_default();
            fields.insert(PACKED.to_string(), serde_json::Value::String(text));
        }
        if let Some(status) = status {
            fields.insert("status".to_string(), status);
        }
    }
}

/// A cached child as the API server sent it (see [`pack`]).
pub fn unpack(mut object: DynamicObject) -> DynamicObject {
    if let serde_json::Value::Object(fields) = &mut object.data
        && let Some(serde_json::Value::String(text)) = fields.remove(PACKED)
        && let Ok(serde_json::Value::Object(rest)) = serde_json::from_str(&text)
    {
        fields.extend(rest);
    }
    object
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
        let mut reference = ObjectRef::new_with(name, resource.clone());
        if let Some(namespace) = namespace {
            reference = reference.within(namespace);
        }
        store.get(&reference).map(|o| unpack((*o).clone()))
    }

    /// Whether the cache of kind `kind_key` holds `namespace/name` (a child just deleted is gone from
    /// it by the time its watch event is seen).
    pub fn contains(&self, kind_key: &str, namespace: Option<&str>, name: &str) -> bool {
        let Some((resource, store)) = self.read().get(kind_key).cloned() else {
            return false;
        };
        let mut reference = ObjectRef::new_with(name, resource);
        if let Some(namespace) = namespace {
            reference = reference.within(namespace);
        }
        store.get(&reference).is_some()
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

    /// Every cached child carrying all of `labels`, with its kind.
    pub fn labelled(&self, labels: &BTreeMap<String, String>) -> Vec<(ApiResource, DynamicObject)> {
        let stores: Vec<(ApiResource, Store<DynamicObject>)> =
            self.read().values().cloned().collect();
        let mut found = Vec::new();
        for (resource, store) in stores {
            for object in store.state() {
                let object_labels = object.metadata.labels.as_ref();
                if labels
                    .iter()
                    .all(|(k, v)| object_labels.and_then(|l| l.get(k)) == Some(v))
                {
                    found.push((resource.clone(), unpack((*object).clone())));
                }
            }
        }
        found
    }
}

/// Whether a child is ready, judged from its cached status; `None` when the kind has no readiness.
pub fn readiness(
    resource: &ApiResource,
    live: Option<&DynamicObject>,
) -> Option<Result<(), String>> {
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
            resource.kind.as_str(),
            "Deployment"
                | "StatefulSet"
                | "PersistentVolumeClaim"
                | "Job"
                | "Cluster"
                | "Database"
                | "DatabaseRole"
        )
        .then(|| Err(format!("{} not created yet", resource.kind)));
    };
    let current = object
        .metadata
        .generation
        .is_none_or(|g| field(object, "/status/observedGeneration").is_none_or(|o| o >= g));
    match resource.kind.as_str() {
        "Deployment" | "StatefulSet" => {
            let wanted = field(object, "/spec/replicas").unwrap_or(1);
            let ready_key = if resource.kind == "Deployment" {
                "/status/availableReplicas"
            } else {
                "/status/readyReplicas"
            };
            let ready = field(object, ready_key).unwrap_or(0);
            Some(if current && ready >= wanted {
                Ok(())
            } else {
                Err(format!(
                    "{} {name}: {ready}/{wanted} replicas ready",
                    resource.kind
                ))
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
                Err(format!("{} {name}: {why}", resource.kind))
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_packed_child_unpacks_to_what_the_server_sent_without_managed_fields() {
        let sent: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": "p", "generation": 2, "labels": {"a": "b"},
                "managedFields": [{"manager": "registry-operator", "operation": "Apply"}]},
            "spec": {"rules": [{"name": "r", "match": {"any": []}}], "background": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
        let mut cached = sent.clone();
        pack(&mut cached);
        let fields = cached.data.as_object().unwrap();
        assert_eq!(
            fields.keys().collect::<Vec<_>>(),
            [PACKED, "status"],
            "the body is one string, the status stays parsed"
        );
        assert!(fields[PACKED].is_string());
        assert_eq!(cached.metadata.managed_fields, None);
        let back = unpack(cached);
        assert_eq!(back.data, sent.data);
        assert_eq!(back.metadata.labels, sent.metadata.labels);
        // A body-less object (no spec, no data) packs to nothing and unpacks unchanged.
        let mut empty: DynamicObject = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        )
        .unwrap();
        pack(&mut empty);
        assert_eq!(unpack(empty).data, json!({}));
    }

    #[test]
    fn a_kyverno_policys_cached_status_keeps_only_readiness_other_kinds_keep_theirs() {
        let status = json!({"ready": true, "rulecount": {"validate": 1},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
        let cached = |api_version: &str, kind: &str| {
            let mut object: DynamicObject = serde_json::from_value(json!({
                "apiVersion": api_version, "kind": kind, "metadata": {"name": "x"},
                "spec": {}, "status": status,
            }))
            .unwrap();
            pack(&mut object);
            object.data["status"].clone()
        };
        assert_eq!(
            cached("kyverno.io/v1", "ClusterPolicy"),
            json!({"ready": true, "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded"}]})
        );
        assert_eq!(cached("apps/v1", "Deployment"), status);
    }
}
