//! What the ImagePolicy controller needs to know about Kyverno in the cluster: which policy kinds are
//! served (kept current by `discovery`) and whether a generated policy is ready (read from
//! Kyverno's own status in the watch cache). Never writes anything.

use kube::api::{ApiResource, DynamicObject};
use serde_json::{Map, Value};

/// Which Kyverno policy kinds the API server serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KyvernoServed {
    /// `kyverno.io/v1` `clusterpolicies`.
    pub cluster_policy: bool,
    /// `policies.kyverno.io/v1` `validatingpolicies` and `imagevalidatingpolicies`, both.
    pub cel_policies: bool,
}

/// Readiness of one generated Kyverno policy, as Kyverno reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyReadiness {
    /// Kyverno says the policy is ready (webhooks configured, rules loaded).
    Ready,
    /// Kyverno says it is not ready; the message says why.
    NotReady(String),
    /// Not created yet, or Kyverno has not reported on it yet.
    Pending(String),
}

/// Read Kyverno's readiness from a cached policy: `status.conditions[type=Ready]` on ClusterPolicy
/// (falling back to the deprecated `status.ready`), `status.conditionStatus.ready` on the CEL kinds
/// (falling back to their `Ready` condition).
pub fn policy_readiness(resource: &ApiResource, live: Option<&DynamicObject>) -> PolicyReadiness {
    let Some(object) = live else {
        return PolicyReadiness::Pending(format!("{} not created yet", resource.kind));
    };
    let name = object.metadata.name.as_deref().unwrap_or_default();
    let status = object.data.get("status");
    let (ready_flag, conditions) = if resource.kind == "ClusterPolicy" {
        (
            status.and_then(|s| s.get("ready")),
            status.and_then(|s| s.get("conditions")),
        )
    } else {
        let shared = status.and_then(|s| s.get("conditionStatus"));
        (
            shared.and_then(|s| s.get("ready")),
            shared.and_then(|s| s.get("conditions")),
        )
    };
    let ready_condition = conditions
        .and_then(|c| c.as_array())
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
    let describe = |condition: &serde_json::Value| {
        let message = condition["message"]
            .as_str()
            .or(condition["reason"].as_str())
            .unwrap_or("not ready");
        format!("{} {name}: {message}", resource.kind)
    };
    let prefer_condition = resource.kind == "ClusterPolicy";
    match (ready_condition, ready_flag.and_then(|f| f.as_bool())) {
        (Some(condition), flag) if prefer_condition || flag.is_none() => {
            match condition["status"].as_str() {
                Some("True") => PolicyReadiness::Ready,
                Some("False") => PolicyReadiness::NotReady(describe(condition)),
                _ => PolicyReadiness::Pending(format!(
                    "{} {name}: Kyverno has not reported readiness yet",
                    resource.kind
                )),
            }
        }
        (_, Some(true)) => PolicyReadiness::Ready,
        (condition, Some(false)) => {
            PolicyReadiness::NotReady(condition.map(describe).unwrap_or_else(|| {
                format!("{} {name}: Kyverno reports it not ready", resource.kind)
            }))
        }
        _ => PolicyReadiness::Pending(format!(
            "{} {name}: Kyverno has not reported readiness yet",
            resource.kind
        )),
    }
}

/// API groups of Kyverno's policy kinds.
pub fn is_policy_group(group: &str) -> bool {
    matches!(group, "kyverno.io" | "policies.kyverno.io")
}

/// Whether an object from a watch (its `apiVersion` says) is one of Kyverno's policies.
pub fn is_policy(object: &DynamicObject) -> bool {
    object
        .types
        .as_ref()
        .and_then(|t| t.api_version.split_once('/'))
        .is_some_and(|(group, _)| is_policy_group(group))
}

/// The part of a Kyverno policy's status [`policy_readiness`] reads: `ready` and the `Ready`
/// condition's type, status, reason and message, at the top (ClusterPolicy) and under
/// `conditionStatus` (the CEL kinds). The watch cache keeps only this of 2,000 policies (issue 17:
/// Kyverno's status also carries rule counts, autogen rules and other conditions nobody here reads).
pub fn readiness_status(status: &Value) -> Value {
    let keep = |part: &Value| {
        let mut kept = Map::new();
        if let Some(ready) = part.get("ready") {
            kept.insert("ready".to_string(), ready.clone());
        }
        if let Some(conditions) = part.get("conditions").and_then(Value::as_array) {
            let ready: Vec<Value> = conditions
                .iter()
                .filter(|c| c["type"] == "Ready")
                .map(|c| {
                    let fields = ["type", "status", "reason", "message"]
                        .into_iter()
                        .filter_map(|key| Some((key.to_string(), c.get(key)?.clone())));
                    Value::Object(fields.collect())
                })
                .collect();
            kept.insert("conditions".to_string(), Value::Array(ready));
        }
        kept
    };
    let mut view = keep(status);
    if let Some(shared) = status.get("conditionStatus") {
        view.insert("conditionStatus".to_string(), Value::Object(keep(shared)));
    }
    Value::Object(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_status_reads_as_ready_as_the_whole_one() {
        let statuses = [
            json!({}),
            json!({"ready": true, "rulecount": {"validate": 1}, "autogen": {"rules": [{"name": "x"}]}}),
            json!({"ready": false, "conditions": [
                {"type": "Ready", "status": "True", "reason": "Succeeded", "message": "Ready", "lastTransitionTime": "t"},
                {"type": "Other", "status": "False"}]}),
            json!({"conditions": [{"type": "Ready", "status": "False", "message": "webhook not configured"}]}),
            json!({"conditionStatus": {"ready": false, "message": "m", "conditions": [
                {"type": "WebhookConfigured", "status": "False"}]}}),
            json!({"conditionStatus": {"conditions": [{"type": "Ready", "status": "True"}]}, "generated": true}),
        ];
        for resource in [cluster_policy_resource(), validating_policy_resource()] {
            for status in &statuses {
                let whole = object(&resource, status.clone());
                let cached = object(&resource, readiness_status(status));
                assert_eq!(
                    policy_readiness(&resource, Some(&cached)),
                    policy_readiness(&resource, Some(&whole)),
                    "{status}"
                );
            }
        }
        assert_eq!(
            readiness_status(&statuses[1]),
            json!({"ready": true}),
            "what readiness does not read is dropped"
        );
        assert_eq!(
            readiness_status(&statuses[2])["conditions"],
            json!([{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "Ready"}])
        );
    }
    use crate::render::kyverno::{cluster_policy_resource, validating_policy_resource};
    use serde_json::json;

    fn object(resource: &ApiResource, status: serde_json::Value) -> DynamicObject {
        let mut object = DynamicObject::new("p-restrict-registries", resource);
        object.data = json!({ "status": status });
        object
    }

    #[test]
    fn cluster_policy_readiness_follows_its_ready_condition() {
        let resource = cluster_policy_resource();
        assert!(matches!(
            policy_readiness(&resource, None),
            PolicyReadiness::Pending(_)
        ));
        let fresh = object(&resource, json!({}));
        assert!(matches!(
            policy_readiness(&resource, Some(&fresh)),
            PolicyReadiness::Pending(_)
        ));
        let ready = object(
            &resource,
            json!({"ready": false, "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded"}]}),
        );
        assert_eq!(
            policy_readiness(&resource, Some(&ready)),
            PolicyReadiness::Ready
        );
        let failed = object(
            &resource,
            json!({"conditions": [{"type": "Ready", "status": "False", "message": "webhook not configured"}]}),
        );
        assert_eq!(
            policy_readiness(&resource, Some(&failed)),
            PolicyReadiness::NotReady(
                "ClusterPolicy p-restrict-registries: webhook not configured".into()
            )
        );
        let legacy = object(&resource, json!({"ready": true}));
        assert_eq!(
            policy_readiness(&resource, Some(&legacy)),
            PolicyReadiness::Ready
        );
    }

    #[test]
    fn cel_policy_readiness_reads_condition_status() {
        let resource = validating_policy_resource();
        let ready = object(&resource, json!({"conditionStatus": {"ready": true}}));
        assert_eq!(
            policy_readiness(&resource, Some(&ready)),
            PolicyReadiness::Ready
        );
        let not_ready = object(
            &resource,
            json!({"conditionStatus": {"ready": false, "conditions": [{"type": "WebhookConfigured", "status": "False"}]}}),
        );
        assert!(matches!(
            policy_readiness(&resource, Some(&not_ready)),
            PolicyReadiness::NotReady(_)
        ));
        let by_condition = object(
            &resource,
            json!({"conditionStatus": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert_eq!(
            policy_readiness(&resource, Some(&by_condition)),
            PolicyReadiness::Ready
        );
    }
}
