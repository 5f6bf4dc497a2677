//! Apply (server-side apply, one field manager, force) and prune (by owner labels) of rendered
//! children, and the one apply-then-prune driver both controllers call. Skips objects whose cached
//! copy already matches, so a steady state sends no writes. Must not decide what to render or report.

use std::collections::{BTreeMap, BTreeSet};

use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::info;

use super::children::{ChildStores, kind_key};
use super::context::Context;
use super::refused::Refusal;
use crate::crd::Retention;
use crate::render::RenderedObject;
use crate::render::labels::{self, Owner};

/// The one field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "registry-operator";
/// Annotation holding a hash of what was last applied; a changed render changes it. The hash is
/// SHA-256 (hex), so every release of the operator computes the same value for the same object.
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
    /// The API server refused a child (400, 403, 404, 422): retrying alone will not fix it, so the
    /// owner shows it in its status.
    #[error("{0}")]
    Refused(Box<Refusal>),
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

/// SHA-256 of the object's compact JSON (serde_json keeps map keys sorted): stable across processes
/// and Rust releases, unlike `DefaultHasher`, so an upgrade does not re-apply every object.
fn content_hash(value: &Value) -> String {
    hex::encode(Sha256::digest(value.to_string().as_bytes()))
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

/// The first field of `desired` whose value `live` does not hold (a JSON pointer), as [`is_subset`]
/// judges it: why a cached child is applied again (logged at debug, never its values).
pub fn first_difference(desired: &Value, live: &Value) -> Option<String> {
    match (desired, live) {
        (Value::Object(want), Value::Object(have)) => want.iter().find_map(|(k, v)| {
            let key = k.replace('~', "~0").replace('/', "~1");
            match have.get(k) {
                Some(h) => first_difference(v, h).map(|rest| format!("/{key}{rest}")),
                None if v.is_null() => None,
                None => Some(format!("/{key}")),
            }
        }),
        (Value::Array(want), Value::Array(have)) if want.len() == have.len() => want
            .iter()
            .zip(have)
            .enumerate()
            .find_map(|(i, (w, h))| first_difference(w, h).map(|rest| format!("/{i}{rest}"))),
        _ => (desired != live).then(String::new),
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
            tracing::debug!(%key, differs = ?first_difference(&desired, &live_value), "cached copy differs; applying");
        }
        let written = api_for(client, &object.resource, object.namespace())
            .patch(
                object.name(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&desired),
            )
            .await
            .map_err(|source| {
                match Refusal::from_error(
                    "apply",
                    &object.resource.kind,
                    object.namespace(),
                    object.name(),
                    Some(&desired),
                    &source,
                ) {
                    Some(refusal) => ApplyError::Refused(Box::new(refusal)),
                    None => ApplyError::Apply {
                        key: key.clone(),
                        source,
                    },
                }
            })?;
        stores.note_own_write(&object.resource, &written);
        report.applied.push(key);
    }
    Ok(report)
}

/// Remove children labelled for `owner_labels` that the render no longer wants: delete them, except
/// PersistentVolumeClaims and database Clusters under `Retain` (orphaned: owner reference and owner
/// labels removed) and
/// Secrets (generated once; they go only with their owner, by garbage collection).
/// Objects a child made (a CronJob's Jobs carry the labels of its job template) are left to it.
pub async fn prune(
    client: &Client,
    stores: &ChildStores,
    owner_labels: &BTreeMap<String, String>,
    desired: &[RenderedObject],
    keep: &[ChildKey],
    retention: Retention,
    owner_id: &str,
) -> Result<Vec<String>, ApplyError> {
    let mut wanted: BTreeSet<ChildKey> = desired.iter().map(ChildKey::of).collect();
    wanted.extend(keep.iter().cloned());
    let mut candidates = stores.labelled(owner_labels);
    candidates
        .sort_by_key(|(resource, _)| std::cmp::Reverse(crate::render::apply_rank(&resource.kind)));
    let mut pruned = Vec::new();
    for (resource, live) in candidates {
        let name = live.metadata.name.clone().unwrap_or_default();
        let namespace = live.metadata.namespace.clone();
        if wanted.contains(&ChildKey(
            kind_key(&resource),
            namespace.clone(),
            name.clone(),
        )) || resource.kind == "Secret"
            || made_by_a_child(&live)
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
        let orphan = holds_data(&resource.kind) && retention == Retention::Retain;
        let result = if orphan {
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
        result.map_err(|source| {
            let action = if orphan { "orphan" } else { "delete" };
            // A 404 here means the object went meanwhile: transient, not a refusal.
            let gone = matches!(&source, kube::Error::Api(status) if status.code == 404);
            match Refusal::from_error(
                action,
                &resource.kind,
                namespace.as_deref(),
                &name,
                None,
                &source,
            ) {
                Some(refusal) if !gone => ApplyError::Refused(Box::new(refusal)),
                _ => ApplyError::Prune {
                    key: key.clone(),
                    source,
                },
            }
        })?;
        pruned.push(key);
    }
    Ok(pruned)
}

/// A child's identity: kind (`apiVersion/kind`), namespace, name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ChildKey(pub String, pub Option<String>, pub String);

impl ChildKey {
    /// The identity of a rendered object.
    pub(crate) fn of(object: &RenderedObject) -> Self {
        Self(
            kind_key(&object.resource),
            object.namespace().map(str::to_string),
            object.name().to_string(),
        )
    }

    /// The identity of a cached child of kind `resource`.
    pub(crate) fn live(resource: &kube::api::ApiResource, object: &DynamicObject) -> Self {
        Self(
            kind_key(resource),
            object.metadata.namespace.clone(),
            object.metadata.name.clone().unwrap_or_default(),
        )
    }
}

/// Whose children an apply-and-prune pass manages.
pub(crate) struct Owned<'a> {
    /// The owner: prune selects its children by this owner's labels.
    pub owner: Owner<'a>,
    /// `namespace/name` or `Kind/name`, for logs and the retained-from annotation.
    pub id: &'a str,
    /// What happens to children that hold data once they are no longer wanted.
    pub retention: Retention,
    /// Children not rendered any more that the prune must spare for now (e.g. the previous policy
    /// flavour until Kyverno reports the new one ready).
    pub keep: Vec<ChildKey>,
    /// The pass reports only from the caches of the children it applies, read after this apply:
    /// their watch events during the apply need no reconcile of their own
    /// (`read_windows::ReadWindows`). `false` when a step decided before the apply read a child.
    pub reports_after: bool,
}

/// The one apply-then-prune pass of both controllers: server-side apply `desired` in order, then
/// prune the owner's children it no longer lists; count what was applied and log what changed (`what`
/// names the step). A refusal comes back as [`ApplyError::Refused`] for the caller to report.
pub(crate) async fn apply_and_prune(
    ctx: &Context,
    owned: &Owned<'_>,
    desired: &[RenderedObject],
    what: &str,
) -> Result<(), ApplyError> {
    let _window = owned.reports_after.then(|| {
        let children = desired
            .iter()
            .map(|object| {
                (
                    kind_key(&object.resource),
                    object.namespace().map(str::to_string),
                    object.name().to_string(),
                )
            })
            .collect();
        ctx.stores.read_windows.open_for(children)
    });
    let report = apply_all(&ctx.client, &ctx.stores, desired).await?;
    for key in &report.applied {
        ctx.metrics
            .applied(key.split('/').next().unwrap_or_default());
    }
    let pruned = prune(
        &ctx.client,
        &ctx.stores,
        &owned.owner.selector_labels(),
        desired,
        &owned.keep,
        owned.retention,
        owned.id,
    )
    .await?;
    if !report.applied.is_empty() || !pruned.is_empty() {
        info!(kind = owned.owner.kind, owner = %owned.id, applied = ?report.applied, pruned = ?pruned, unchanged = report.unchanged, "{what}");
    }
    Ok(())
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

/// Whether another controller made this object from one of our children (its controller owner is
/// not one of the operator's own kinds, e.g. a Job of the K3d GC CronJob).
fn made_by_a_child(live: &kube::api::DynamicObject) -> bool {
    live.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|reference| {
            reference.controller == Some(true)
                && reference.api_version.split('/').next() != Some(crate::crd::GROUP)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cron_jobs_job_is_left_to_its_cron_job() {
        let mut job = kube::api::DynamicObject::new(
            "gc-1",
            &kube::api::ApiResource::erase::<k8s_openapi::api::batch::v1::Job>(&()),
        );
        assert!(!made_by_a_child(&job));
        job.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "batch/v1".into(),
                kind: "CronJob".into(),
                name: "platform-distribution-gc".into(),
                uid: "u".into(),
                controller: Some(true),
                block_owner_deletion: None,
            },
        ]);
        assert!(made_by_a_child(&job));
        job.metadata.owner_references.as_mut().unwrap()[0].api_version =
            format!("{}/v1alpha1", crate::crd::GROUP);
        assert!(
            !made_by_a_child(&job),
            "the operator's own children are pruned"
        );
    }

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
        // The debug log names the first field that differs, as is_subset judges it.
        assert_eq!(first_difference(&desired, &live), None);
        assert_eq!(
            first_difference(&desired, &drifted).as_deref(),
            Some("/spec/replicas")
        );
        assert_eq!(
            first_difference(&desired, &extra_container).as_deref(),
            Some("/spec/template/containers")
        );
        let typed = json!({"apiVersion": "v1", "metadata": {"annotations": {"a/b": "1"}}});
        assert_eq!(
            first_difference(&typed, &json!({"metadata": {"annotations": {"a/b": "1"}}}))
                .as_deref(),
            Some("/apiVersion")
        );
        assert_eq!(
            first_difference(
                &typed,
                &json!({"apiVersion": "v1", "metadata": {"annotations": {"a/b": "2"}}})
            )
            .as_deref(),
            Some("/metadata/annotations/a~1b")
        );
    }

    #[test]
    fn content_hash_is_stable_and_sensitive() {
        let a = json!({"a": 1, "b": [1, 2]});
        assert_eq!(content_hash(&a), content_hash(&a.clone()));
        assert_ne!(
            content_hash(&a),
            content_hash(&json!({"a": 1, "b": [2, 1]}))
        );
        // Pinned: the value is stored in an annotation and compared by later operator versions.
        assert_eq!(
            content_hash(&json!({"b": 2, "a": 1})),
            "43258cff783fe7036d8a43033f830adfc60ec037382473548ac742b888292777"
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
