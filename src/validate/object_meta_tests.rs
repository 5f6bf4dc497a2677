//! Unit tests of the per-kind object metadata checks.

use serde_json::json;

use super::*;

fn fields(value: &Value) -> Vec<String> {
    object(value).into_iter().map(|e| e.to_string()).collect()
}

fn cluster_policy(labels: Value) -> Value {
    json!({
        "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
        "metadata": {"name": "ai-workloads-disallow-latest-tag", "labels": labels},
        "spec": {}
    })
}

#[test]
fn the_old_cluster_scope_marker_is_refused() {
    let errors = fields(&cluster_policy(json!({
        "registry.aisp.dev/owner-namespace": "_cluster",
        "registry.aisp.dev/owner-kind": "ImagePolicy",
    })));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .starts_with("metadata.labels: registry.aisp.dev/owner-namespace: value \"_cluster\""),
        "{errors:?}"
    );
    let empty = cluster_policy(json!({"registry.aisp.dev/owner-namespace": ""}));
    assert!(fields(&empty).is_empty(), "an empty label value is valid");
}

#[test]
fn names_follow_the_rule_of_their_kind() {
    let service = |name: &str| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "r"}});
    assert!(fields(&service("platform-distribution")).is_empty());
    let long = format!("{}-distribution", "r".repeat(55));
    assert!(!fields(&service(&long)).is_empty(), "68 characters");
    assert!(
        !fields(&service("1abc")).is_empty(),
        "DNS-1035 starts with a letter"
    );
    assert!(!fields(&service("a.b")).is_empty());
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a.b", "namespace": "r"}});
    assert!(fields(&config_map).is_empty(), "subdomain allows dots");
    let job = |name: &str| json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "r"}});
    assert!(fields(&job(&"j".repeat(63))).is_empty());
    assert!(!fields(&job(&"j".repeat(64))).is_empty(), "job-name label");
    let policy = |name: &str| json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": name}});
    assert!(fields(&policy(&"p".repeat(63))).is_empty());
    assert!(
        !fields(&policy(&"p".repeat(64))).is_empty(),
        "Kyverno's limit"
    );
    let missing = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": "r"}});
    assert_eq!(fields(&missing), ["metadata.name: required"]);
    let unknown =
        json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "a"}});
    assert!(fields(&unknown)[0].starts_with("kind: "));
}

#[test]
fn namespace_presence_follows_the_scope() {
    let namespaced_policy = json!({
        "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
        "metadata": {"name": "p", "namespace": "default"}
    });
    assert!(fields(&namespaced_policy)[0].starts_with("metadata.namespace: must be unset"));
    let bare_secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
    assert!(fields(&bare_secret)[0].starts_with("metadata.namespace: required"));
}

#[test]
fn annotations_finalizers_and_owner_references_are_checked() {
    let mut secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": "s", "namespace": "registry",
            "annotations": {"Example.com/Note": "ok"},
            "finalizers": ["registry.aisp.dev/cleanup"],
            "labels": {"registry.aisp.dev/owner-namespace": "registry"},
            "ownerReferences": [{"apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry", "name": "platform", "uid": "u", "controller": true}]
        }
    });
    assert!(fields(&secret).is_empty(), "{:?}", fields(&secret));
    secret["metadata"]["annotations"] = json!({"a/b/c": "x"});
    secret["metadata"]["finalizers"] = json!(["cleanup"]);
    secret["metadata"]["labels"]["registry.aisp.dev/owner-namespace"] = json!("elsewhere");
    let errors = fields(&secret);
    for field in [
        "metadata.annotations",
        "metadata.finalizers",
        "metadata.ownerReferences[0]",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(field)),
            "{field} in {errors:?}"
        );
    }
    let owned_policy = json!({
        "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
        "metadata": {"name": "p", "ownerReferences": [{"apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry", "name": "platform", "uid": "u"}]}
    });
    assert!(fields(&owned_policy)[0].contains("cluster-scoped object cannot be owned"));
    let image_policy_owned = json!({
        "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
        "metadata": {"name": "p", "ownerReferences": [{"apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy", "name": "p", "uid": "u", "controller": true}]}
    });
    assert!(fields(&image_policy_owned).is_empty());
}

#[test]
fn pod_templates_selectors_and_ports_are_checked() {
    let deployment = |container: &str, port: &str, volume: &str, label: &str| {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "r"},
            "spec": {
                "selector": {"matchLabels": {"app": label}},
                "template": {
                    "metadata": {"labels": {"app": label}},
                    "spec": {
                        "containers": [{"name": container, "ports": [{"name": port, "containerPort": 80}],
                                        "readinessProbe": {"httpGet": {"port": port}}}],
                        "volumes": [{"name": volume, "emptyDir": {}}]
                    }
                }
            }
        })
    };
    assert!(fields(&deployment("registry", "http", "data", "a")).is_empty());
    let errors = fields(&deployment(
        "Registry",
        "a-very-long-port-name",
        "data_dir",
        "-a",
    ));
    for field in [
        "spec.template.spec.containers[0].name",
        "spec.template.spec.containers[0].ports[0].name",
        "spec.template.spec.containers[0].readinessProbe.httpGet.port",
        "spec.template.spec.volumes[0].name",
        "spec.template.metadata.labels",
        "spec.selector.matchLabels",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(&format!("{field}:"))),
            "{field} in {errors:?}"
        );
    }
    let service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "r"},
        "spec": {"selector": {"a": "_x"}, "ports": [{"name": "Http", "port": 80, "targetPort": "http--x"}]}
    });
    let errors = fields(&service);
    assert_eq!(errors.len(), 3, "{errors:?}");
}
