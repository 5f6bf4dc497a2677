//! What a child's watch cache keeps of it ([`pack`]) and the object back from that ([`unpack`]).
//! Decides nothing about a child; only its in-memory form.
//!
//! Why: a cache holds thousands of children (two Kyverno policies per ImagePolicy), and a parsed
//! object costs far more than its text: every JSON object and every label or annotation map is a
//! B-tree node of ~0.6 KiB however few entries it has. A reconcile reads a child's body only after
//! looking it up ([`super::children::ChildStores::get`], a few per pass), so the cache keeps as one
//! compact JSON string everything but what the cache itself and the watch filter use per event:
//! name and namespace (the cache's key), `resourceVersion` (own-echo recognition), `generation` and
//! the deletion mark. `managedFields` (as large as the object under server-side apply, never read) is
//! dropped, and of a Kyverno policy's status only what readiness reads is kept
//! (`kyverno::readiness_status`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DynamicObject;
use serde_json::{Map, Value};

/// The key, inside the packed text, of the metadata fields moved there.
const METADATA: &str = "\u{0}metadata";

/// Pack a child for its cache (in place; see the module doc).
pub fn pack(object: &mut DynamicObject) {
    let mut fields = match std::mem::take(&mut object.data) {
        Value::Object(fields) => fields,
        Value::Null => Map::new(),
        // Packed already (or not an object at all): leave it as it is.
        other => {
            object.data = other;
            return;
        }
    };
    if super::kyverno::is_policy(object)
        && let Some(status) = fields.get_mut("status")
    {
        *status = super::kyverno::readiness_status(status);
    }
    let meta = &mut object.metadata;
    meta.managed_fields = None;
    let moved = ObjectMeta {
        labels: meta.labels.take(),
        annotations: meta.annotations.take(),
        owner_references: meta.owner_references.take(),
        finalizers: meta.finalizers.take(),
        uid: meta.uid.take(),
        creation_timestamp: meta.creation_timestamp.take(),
        generate_name: meta.generate_name.take(),
        deletion_grace_period_seconds: meta.deletion_grace_period_seconds.take(),
        self_link: meta.self_link.take(),
        ..ObjectMeta::default()
    };
    if moved != ObjectMeta::default() {
        fields.insert(
            METADATA.to_string(),
            serde_json::to_value(&moved).unwrap_or_default(),
        );
    }
    object.data = Value::String(serde_json::to_string(&fields).unwrap_or_default());
}

/// A cached child as the API server sent it (without `managedFields`; see [`pack`]). An object that
/// is not packed comes back unchanged.
pub fn unpack(mut object: DynamicObject) -> DynamicObject {
    let Value::String(text) = &object.data else {
        return object;
    };
    let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(text) else {
        return object;
    };
    if let Some(moved) = fields.remove(METADATA)
        && let Ok(moved) = serde_json::from_value::<ObjectMeta>(moved)
    {
        let meta = &mut object.metadata;
        meta.labels = moved.labels;
        meta.annotations = moved.annotations;
        meta.owner_references = moved.owner_references;
        meta.finalizers = moved.finalizers;
        meta.uid = moved.uid;
        meta.creation_timestamp = moved.creation_timestamp;
        meta.generate_name = moved.generate_name;
        meta.deletion_grace_period_seconds = moved.deletion_grace_period_seconds;
        meta.self_link = moved.self_link;
    }
    object.data = Value::Object(fields);
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_packed_child_keeps_its_cache_key_parsed_and_unpacks_to_what_the_server_sent() {
        let sent = object(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "ns", "generation": 2, "resourceVersion": "7",
                "uid": "u-1", "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"a": "b"}, "annotations": {"registry.aisp.dev/applied-hash": "h"},
                "finalizers": ["f"],
                "ownerReferences": [{"apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
                    "name": "r", "uid": "u-0", "controller": true}],
                "managedFields": [{"manager": "registry-operator", "operation": "Apply"}]},
            "spec": {"replicas": 1, "template": {"spec": {"containers": []}}},
            "status": {"availableReplicas": 1},
        }));
        let mut cached = sent.clone();
        pack(&mut cached);
        assert!(cached.data.is_string(), "everything else is one string");
        let meta = &cached.metadata;
        assert_eq!(
            (
                meta.name.as_deref(),
                meta.namespace.as_deref(),
                meta.resource_version.as_deref(),
                meta.generation
            ),
            (Some("d"), Some("ns"), Some("7"), Some(2))
        );
        assert_eq!(
            (
                &meta.labels,
                &meta.annotations,
                &meta.uid,
                &meta.owner_references
            ),
            (&None, &None, &None, &None)
        );
        let mut expected = serde_json::to_value(&sent).unwrap();
        expected["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        let back = unpack(cached.clone());
        assert_eq!(serde_json::to_value(&back).unwrap(), expected);
        // Packing twice changes nothing; unpacking what is not packed changes nothing.
        let mut twice = cached.clone();
        pack(&mut twice);
        assert_eq!(twice.data, cached.data);
        assert_eq!(serde_json::to_value(unpack(back)).unwrap(), expected);
        // A body-less object packs and unpacks to an empty body.
        let mut empty =
            object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
        pack(&mut empty);
        assert_eq!(unpack(empty).data, json!({}));
    }

    #[test]
    fn a_kyverno_policys_cached_status_keeps_only_readiness_other_kinds_keep_theirs() {
        let status = json!({"ready": true, "rulecount": {"validate": 1},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
        let cached = |api_version: &str, kind: &str| {
            let mut cached = object(json!({
                "apiVersion": api_version, "kind": kind, "metadata": {"name": "x"},
                "spec": {}, "status": status,
            }));
            pack(&mut cached);
            unpack(cached).data["status"].clone()
        };
        assert_eq!(
            cached("kyverno.io/v1", "ClusterPolicy"),
            json!({"ready": true, "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded"}]})
        );
        assert_eq!(cached("apps/v1", "Deployment"), status);
    }
}
