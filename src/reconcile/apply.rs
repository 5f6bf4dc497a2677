//! Apply (server-side apply, one field manager, force) and prune (by owner labels) of rendered
//! children. Skips objects whose cached copy already matches, so a steady state sends no writes.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy,
};
use serde_json::{Value, json};

use super::children::{ChildStores, kind_key};
use crate::crd::Retention;
use crate::render::{RenderedObject, labels};

/// The one field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "registry-operator";
/// Annotation holding a hash of what was last applied; a changed render changes it.
pub const APPLIED_HASH: &str = "registry.aisp.dev/applied-hash";
/// Annotation left on a PersistentVolumeClaim kept under `retention: Retain`.
pub const RETAINED_FROM: &str = "registry.aisp.dev/retained-from";

/// Why applying or pruning failed (transient API errors; retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Server-side apply of one object failed.
    #[error("applying {key}: {source}")]
    Apply { key: String, source: kube::Error },
    /// Deleting or orphaning an object no longer wanted failed.
    #[error("pruning {key}: {source}")]
    Prune { key: String, source: kube::Error },
    /// A rendered object could not be serialized (a bug).
    #[error("serializing {key}: {source}")]
    Serialize {
        key: String,
        source: serde_json::Error,
    },
}

/// What an apply pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Objects sent to the API server.
    pub applied: Vec<String>,
    /// Objects whose cached copy already matched.
    pub unchanged: usize,
}

fn api_for(client: &Client, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

fn content_hash(value: &Value) -> String {
    let mut hasher = DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Whether every field of `desired` has the same value in `live` (arrays must match element-wise).
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(want), Value::Object(have)) => want.iter().all(|(k, v)| {
            have.get(k).is_some_and(|h| is_subset(v, h)) || (v.is_null() && have.get(k).is_none())
        }),
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(w, h)| is_subset(w, h))
        }
        _ => desired == live,
    }
}

/// Server-side apply every object in order, skipping those already in place.
pub async fn apply_all(
    client: &Client,
    stores: &ChildStores,
    objects: &[RenderedObject],
) -> Result<ApplyReport, ApplyError> {
    let mut report = ApplyReport::default();
    for object in objects {
        let key = object.key();
        let mut desired =
            serde_json::to_value(&object.object).map_err(|source| ApplyError::Serialize {
                key: key.clone(),
                source,
            })?;
        let hash = content_hash(&desired);
        desired["metadata"]["annotations"][APPLIED_HASH] = json!(hash);
        if let Some(live) = stores.live(object) {
            let live_value =
                serde_json::to_value(&live).map_err(|source| ApplyError::Serialize {
                    key: key.clone(),
                    source,
                })?;
            let same_hash = live
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(APPLIED_HASH))
                == Some(&hash);
            if same_hash && is_subset(&desired, &live_value) {
                report.unchanged += 1;
                continue;
            }
        }
        api_for(client, &object.resource, object.namespace())
            .patch(
                object.name(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&desired),
            )
            .await
            .map_err(|source| ApplyError::Apply {
                key: key.clone(),
                source,
            })?;
        report.applied.push(key);
    }
    Ok(report)
}

/// Remove children labelled for `owner_labels` that the render no longer wants: delete them, except
/// PersistentVolumeClaims and database Clusters under `Retain` (orphaned: owner reference and owner
/// labels removed) and
/// Secrets (generated once; they go only with their owner, by garbage collection).
pub async fn prune(
    client: &Client,
    stores: &ChildStores,
    owner_labels: &BTreeMap<String, String>,
    desired: &[RenderedObject],
    retention: Retention,
    owner_id: &str,
) -> Result<Vec<String>, ApplyError> {
    let wanted: BTreeSet<(String, Option<String>, String)> = desired
        .iter()
        .map(|o| {
            (
                kind_key(&o.resource),
                o.namespace().map(str::to_string),
                o.name().to_string(),
            )
        })
        .collect();
    let mut candidates = stores.labelled(owner_labels);
    candidates
        .sort_by_key(|(resource, _)| std::cmp::Reverse(crate::render::apply_rank(&resource.kind)));
    let mut pruned = Vec::new();
    for (resource, live) in candidates {
        let name = live.metadata.name.clone().unwrap_or_default();
        let namespace = live.metadata.namespace.clone();
        if wanted.contains(&(kind_key(&resource), namespace.clone(), name.clone()))
            || resource.kind == "Secret"
        {
            continue;
        }
        let key = format!(
            "{}/{}/{}",
            resource.kind,
            namespace.as_deref().unwrap_or("-"),
            name
        );
        let api = api_for(client, &resource, namespace.as_deref());
        let result = if holds_data(&resource.kind) && retention == Retention::Retain {
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(orphan_patch(owner_id)),
            )
            .await
            .map(|_| ())
        } else {
            let params = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..Default::default()
            };
            match api.delete(&name, &params).await {
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                other => other.map(|_| ()),
            }
        };
        result.map_err(|source| ApplyError::Prune {
            key: key.clone(),
            source,
        })?;
        pruned.push(key);
    }
    Ok(pruned)
}

/// Kinds whose deletion loses data: volume claims and CloudNativePG clusters (which delete their own
/// volumes when deleted). Under `Retain` they are orphaned, never deleted.
pub fn holds_data(kind: &str) -> bool {
    matches!(kind, "PersistentVolumeClaim" | "Cluster")
}

/// Merge patch that releases a PVC from its owner: no owner reference, no owner labels.
pub fn orphan_patch(owner_id: &str) -> Value {
    json!({
        "metadata": {
            "ownerReferences": null,
            "labels": {
                "app.kubernetes.io/managed-by": null,
                labels::OWNER_KIND: null,
                labels::OWNER_NAME: null,
                labels::OWNER_NAMESPACE: null,
            },
            "annotations": { RETAINED_FROM: owner_id },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_accepts_server_defaults_and_rejects_drift() {
        let desired = json!({"spec": {"replicas": 1, "template": {"containers": [{"name": "a", "image": "x"}]}}});
        let live = json!({"spec": {"replicas": 1, "progressDeadlineSeconds": 600,
            "template": {"containers": [{"name": "a", "image": "x", "terminationMessagePath": "/dev/termination-log"}]}}});
        assert!(is_subset(&desired, &live));
        let drifted = json!({"spec": {"replicas": 2, "template": {"containers": [{"name": "a", "image": "x"}]}}});
        assert!(!is_subset(&desired, &drifted));
        let extra_container = json!({"spec": {"replicas": 1, "template": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}}});
        assert!(!is_subset(&desired, &extra_container));
    }

    #[test]
    fn content_hash_is_stable_and_sensitive() {
        let a = json!({"a": 1, "b": [1, 2]});
        assert_eq!(content_hash(&a), content_hash(&a.clone()));
        assert_ne!(
            content_hash(&a),
            content_hash(&json!({"a": 1, "b": [2, 1]}))
        );
    }

    #[test]
    fn orphan_patch_drops_owner_and_labels() {
        let patch = orphan_patch("registry/platform");
        assert!(patch["metadata"]["ownerReferences"].is_null());
        assert!(patch["metadata"]["labels"][labels::OWNER_NAME].is_null());
        assert_eq!(
            patch["metadata"]["annotations"][RETAINED_FROM],
            "registry/platform"
        );
    }
}
