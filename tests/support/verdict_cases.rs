//! The cases of the verdict table: image forms, namespaces, pod-bearing kinds and the ImagePolicies
//! judging them, shared by the Kyverno CLI test and the admission-controller test. No verdicts are
//! computed here beyond what each image form should get from each rule.

use serde_json::{Value, json};

pub const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const ALLOWED: [&str; 2] = ["registry.example.com", "localhost:5000"];

/// (label, reference, passes the tag rule, passes the registry rule)
pub fn images() -> Vec<(&'static str, String, bool, bool)> {
    vec![
        ("tag", "registry.example.com/ai/app:1.0".into(), true, true),
        (
            "`latest`",
            "registry.example.com/ai/app:latest".into(),
            false,
            true,
        ),
        ("no tag", "registry.example.com/ai/app".into(), false, true),
        (
            "digest",
            format!("registry.example.com/ai/app@{DIGEST}"),
            true,
            true,
        ),
        (
            "tag and digest",
            format!("registry.example.com/ai/app:1.0@{DIGEST}"),
            true,
            true,
        ),
        (
            "registry with port, tag",
            "localhost:5000/ai/app:1.0".into(),
            true,
            true,
        ),
        (
            "registry with port, no tag",
            "localhost:5000/ai/app".into(),
            false,
            true,
        ),
        ("implicit Docker Hub, tag", "nginx:1.27".into(), true, false),
        (
            "implicit Docker Hub, `latest`",
            "nginx:latest".into(),
            false,
            false,
        ),
        (
            "allowed host, other port",
            "registry.example.com:5000/ai/app:1.0".into(),
            true,
            false,
        ),
        (
            "other registry",
            "ghcr.io/ai-platform/app:2.0".into(),
            true,
            false,
        ),
        (
            "allowed name as a prefix",
            "registry.example.com.evil.io/app:1.0".into(),
            true,
            false,
        ),
    ]
}

/// Namespaces: (name, what the ImagePolicies say about it).
pub const NAMESPACES: [(&str, &str); 4] = [
    ("apps", "Enforce"),
    ("audited", "Audit"),
    ("apps-excluded", "excluded"),
    ("other", "unmatched"),
];

pub const KINDS: [&str; 7] = [
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
];

pub fn image_policy(
    name: &str,
    engine: &str,
    namespaces: &[&str],
    exclude: &[&str],
    action: &str,
) -> Value {
    json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": name},
        "spec": {
            "engine": engine, "failureAction": action, "namespaces": namespaces,
            "excludeNamespaces": exclude, "allowedRegistries": ALLOWED,
            "rules": {"disallowLatestTag": {}, "restrictRegistries": {}},
        },
    })
}

/// The pod spec of a case: the image in `list`, next to a compliant main container.
pub fn pod_spec(list: &str, image: &str) -> Value {
    let good = json!({"name": "main", "image": "registry.example.com/ai/app:1.0"});
    match list {
        "containers" => json!({"containers": [{"name": "main", "image": image}]}),
        "initContainers" => {
            json!({"containers": [good], "initContainers": [{"name": "init", "image": image}]})
        }
        _ => {
            json!({"containers": [good], "ephemeralContainers": [{"name": "debug", "image": image}]})
        }
    }
}

/// A valid object of `kind` (the real API server checks them) whose pod template is `spec`.
pub fn workload(kind: &str, name: &str, namespace: &str, mut spec: Value) -> Value {
    let meta = json!({"name": name, "namespace": namespace});
    if matches!(kind, "Job" | "CronJob") {
        spec["restartPolicy"] = json!("Never");
    }
    let template = json!({"metadata": {"labels": {"app": name}}, "spec": spec});
    let selector = json!({"matchLabels": {"app": name}});
    match kind {
        "Pod" => {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]})
        }
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
            json!({"apiVersion": "apps/v1", "kind": kind,
            "metadata": meta, "spec": {"selector": selector, "template": template}})
        }
        "Job" => {
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": {"template": template}})
        }
        _ => json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
            "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}}),
    }
}
