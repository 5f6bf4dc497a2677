//! Scenario tests of the Registry controller in K3d mode: the real binary against the fake API server.

mod scenario;
mod support;

use std::time::Duration;

use scenario::*;
use serde_json::json;

const NS: &str = "registry";
const T: Duration = Duration::from_secs(30);

fn ready_registry(server: &support::FakeApiServer, name: &str) -> serde_json::Value {
    wait_for("Registry Ready=True", T, || {
        let registry = server.get_object("registries", NS, name)?;
        (condition(&registry, "Ready")?["status"] == "True").then_some(registry)
    })
}

#[test]
fn k3d_registry_gets_children_then_becomes_ready() {
    let server = server();
    let logs = tempfile::tempdir().unwrap();
    let operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(k3d_registry(NS, "platform", json!({"adopt": "Auto"})));

    let deployment = wait_for("Deployment", T, || {
        server.get_object("deployments", NS, "platform-distribution")
    });
    let registry = server.get_object("registries", NS, "platform").unwrap();
    let uid = registry["metadata"]["uid"].clone();
    for (resource, namespace, name) in [
        ("deployments", NS, "platform-distribution"),
        ("services", NS, "platform-distribution"),
        ("persistentvolumeclaims", NS, "platform-distribution"),
    ] {
        let object = wait_for(name, T, || server.get_object(resource, namespace, name));
        assert_eq!(
            object["metadata"]["ownerReferences"][0]["uid"], uid,
            "{resource} owner"
        );
        assert_eq!(object["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(
            object["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "registry-operator"
        );
    }
    let announcement = wait_for("KEP-1755 ConfigMap", T, || {
        server.get_object("configmaps", "kube-public", "local-registry-hosting")
    });
    assert!(
        announcement["metadata"]["ownerReferences"].is_null(),
        "no cross-namespace owner reference"
    );
    assert!(
        deployment["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["manager"] == "registry-operator")
    );

    // Not ready until the children are: Ready is derived, never assumed after apply.
    let pending = wait_for("Ready=False", T, || {
        let r = server.get_object("registries", NS, "platform")?;
        (condition(&r, "Ready")?["status"] == "False").then_some(r)
    });
    assert_eq!(
        condition(&pending, "Ready").unwrap()["reason"],
        "Provisioning"
    );
    assert_eq!(
        condition(&pending, "Progressing").unwrap()["status"],
        "True"
    );

    mark_k3d_children_ready(&server, NS, "platform");
    let ready = ready_registry(&server, "platform");
    assert_eq!(
        ready["status"]["endpoint"],
        "platform-distribution.registry.svc.cluster.local:5000"
    );
    assert_eq!(
        ready["status"]["observedGeneration"],
        ready["metadata"]["generation"]
    );
    assert_eq!(ready["status"]["phase"], "Ready");
    assert!(
        ready["status"]["k3sRegistriesYaml"]
            .as_str()
            .unwrap()
            .contains("mirrors")
    );
    assert!(
        ready["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "registry.aisp.dev/cleanup")
    );
    let (code, metrics) = operator.http_get("/metrics").expect("metrics endpoint");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("registry_operator_reconciles_total"),
        "{metrics}"
    );
    assert_eq!(operator.http_get("/healthz").map(|r| r.0), Some(200));
    assert_eq!(
        wait_for("readyz", T, || operator
            .http_get("/readyz")
            .filter(|r| r.0 == 200))
        .1,
        "ready"
    );
}

#[test]
fn k3d_registry_adopts_announced_registry_and_deploys_nothing() {
    let server = server();
    server.put_object(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "local-registry-hosting", "namespace": "kube-public"},
        "data": {"localRegistryHosting.v1": "host: localhost:5111\nhostFromContainerRuntime: k3d-myregistry:5000\nhostFromClusterNetwork: k3d-myregistry:5000\n"},
    }));
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(k3d_registry(NS, "platform", json!({})));
    let ready = ready_registry(&server, "platform");
    assert_eq!(ready["status"]["endpoint"], "k3d-myregistry:5000");
    assert!(
        server.list_objects("deployments", None).is_empty(),
        "adoption deploys no workload"
    );
    assert!(
        server
            .list_objects("persistentvolumeclaims", None)
            .is_empty()
    );
    let announcement = server
        .get_object("configmaps", "kube-public", "local-registry-hosting")
        .unwrap();
    assert!(
        announcement["metadata"]["labels"].is_null(),
        "k3d's ConfigMap is left untouched"
    );
}

#[test]
fn spec_edit_updates_children_in_place() {
    let server = server();
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(k3d_registry(NS, "platform", json!({"adopt": "Never"})));
    let before = wait_for("Deployment", T, || {
        server.get_object("deployments", NS, "platform-distribution")
    });
    mark_k3d_children_ready(&server, NS, "platform");
    ready_registry(&server, "platform");

    server.merge_patch_object(
        "registries",
        NS,
        "platform",
        json!({"spec": {"k3d": {"image": "mirror.local/registry:2.8.3"}}}),
    );
    let after = wait_for("new image", T, || {
        let d = server.get_object("deployments", NS, "platform-distribution")?;
        (d["spec"]["template"]["spec"]["containers"][0]["image"] == "mirror.local/registry:2.8.3")
            .then_some(d)
    });
    assert_eq!(
        before["metadata"]["uid"], after["metadata"]["uid"],
        "updated in place, not recreated"
    );
    let registry = wait_for("generation 2 observed", T, || {
        let r = server.get_object("registries", NS, "platform")?;
        (r["status"]["observedGeneration"] == 2).then_some(r)
    });
    assert_eq!(registry["metadata"]["generation"], 2);
    assert_eq!(server.request_log().count("delete", "Deployment"), 0);
}

#[test]
fn invalid_spec_sets_ready_false_naming_the_field_and_applies_nothing() {
    let server = server();
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    // The fake server does not run CRD validation, as if CEL had been bypassed.
    server.put_object(json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "broken", "namespace": NS},
        "spec": {"mode": "Harbor"},
    }));
    let registry = wait_for("Ready=False InvalidSpec", T, || {
        let r = server.get_object("registries", NS, "broken")?;
        (condition(&r, "Ready")?["reason"] == "InvalidSpec").then_some(r)
    });
    let ready = condition(&registry, "Ready").unwrap();
    assert_eq!(ready["status"], "False");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("spec.host: required when spec.mode is Harbor"),
        "{ready}"
    );
    assert_eq!(registry["status"]["phase"], "Invalid");
    std::thread::sleep(Duration::from_millis(1500));
    for resource in [
        "deployments",
        "services",
        "persistentvolumeclaims",
        "statefulsets",
        "secrets",
    ] {
        assert!(
            children_of(&server, resource, NS, "broken").is_empty(),
            "{resource} created for an invalid spec"
        );
    }
}

fn delete_scenario(retention: &str) -> (support::FakeApiServer, tempfile::TempDir) {
    let server = server();
    let logs = tempfile::tempdir().unwrap();
    let operator = Operator::start(&server, logs.path(), &[]);
    let mut registry = k3d_registry(NS, "platform", json!({"adopt": "Never"}));
    registry["spec"]["retention"] = json!(retention);
    server.put_object(registry);
    wait_for("PVC", T, || {
        server.get_object("persistentvolumeclaims", NS, "platform-distribution")
    });
    wait_for("announcement", T, || {
        server.get_object("configmaps", "kube-public", "local-registry-hosting")
    });
    wait_for("finalizer", T, || {
        let r = server.get_object("registries", NS, "platform")?;
        r["metadata"]["finalizers"]
            .as_array()
            .filter(|f| !f.is_empty())
            .map(|_| ())
    });
    server.delete_object("registries", NS, "platform");
    wait_for("Registry gone", T, || {
        server
            .get_object("registries", NS, "platform")
            .is_none()
            .then_some(())
    });
    assert!(
        server
            .get_object("configmaps", "kube-public", "local-registry-hosting")
            .is_none(),
        "KEP ConfigMap removed by the finalizer"
    );
    assert!(
        server
            .get_object("deployments", NS, "platform-distribution")
            .is_none(),
        "Deployment garbage-collected"
    );
    drop(operator);
    (server, logs)
}

#[test]
fn delete_with_retain_keeps_the_volume_claim_without_owner() {
    let (server, _logs) = delete_scenario("Retain");
    let claim = server
        .get_object("persistentvolumeclaims", NS, "platform-distribution")
        .expect("PVC retained");
    assert!(
        claim["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|o| o.is_empty())
    );
    assert_eq!(
        claim["metadata"]["annotations"]["registry.aisp.dev/retained-from"],
        "registry/platform"
    );
}

#[test]
fn delete_with_delete_removes_the_volume_claim() {
    let (server, _logs) = delete_scenario("Delete");
    assert!(
        server
            .get_object("persistentvolumeclaims", NS, "platform-distribution")
            .is_none()
    );
}
