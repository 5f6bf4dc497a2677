//! Scenario tests of the Registry controller in K3d mode: the real binary against the real control plane.

use std::time::Duration;

use crate::support::scenario::*;
use serde_json::json;

const NS: &str = "registry";
const T: Duration = Duration::from_secs(30);

fn ready_registry(server: &ControlPlane, name: &str) -> serde_json::Value {
    wait_for("Registry Ready=True", T, || {
        let registry = server.get_object("registries", NS, name)?;
        (condition(&registry, "Ready")?["status"] == "True").then_some(registry)
    })
}

#[test]
fn k3d_registry_gets_children_then_becomes_ready() {
    let Some(server) = server() else {
        return;
    };
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
    // Pods use the cluster DNS name; nodes, which cannot resolve it, pull through the NodePort.
    assert_eq!(
        ready["status"]["k3sRegistriesYaml"],
        "mirrors:\n  platform-distribution.registry.svc.cluster.local:5000:\n    endpoint:\n    - http://127.0.0.1:30500\n"
    );
    let service = server
        .get_object("services", NS, "platform-distribution")
        .unwrap();
    assert_eq!(service["spec"]["type"], "NodePort");
    assert_eq!(service["spec"]["ports"][0]["nodePort"], 30500);
    let announced: serde_json::Value = yaml_serde::from_str(
        announcement["data"]["localRegistryHosting.v1"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(announced["host"], "localhost:30500");
    assert_eq!(announced["hostFromContainerRuntime"], "127.0.0.1:30500");
    assert_eq!(
        announced["hostFromClusterNetwork"],
        "platform-distribution.registry.svc.cluster.local:5000"
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
    let Some(server) = server() else {
        return;
    };
    server.put_object(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "local-registry-hosting", "namespace": "kube-public"},
        "data": {"localRegistryHosting.v1": "host: localhost:5111\nhostFromContainerRuntime: k3d-myregistry:5000\nhostFromClusterNetwork: k3d-myregistry:5000\n"},
    }));
    let logs = tempfile::tempdir().unwrap();
    // No resync within the test: only the announcement's watch can carry its change (below).
    let _operator = Operator::start(&server, logs.path(), &["--resync", "1h"]);
    server.put_object(k3d_registry(NS, "platform", json!({})));
    let ready = ready_registry(&server, "platform");
    assert_eq!(ready["status"]["endpoint"], "k3d-myregistry:5000");
    let message = condition(&ready, "Ready").unwrap()["message"].clone();
    assert!(
        message
            .as_str()
            .unwrap()
            .contains("reachability is not checked"),
        "an adopted registry says plainly that it is not probed: {message}"
    );
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
    // k3d announces another registry (a cluster re-created with a new one): the Registry follows
    // at once, from the announcement's watch.
    server.put_object(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "local-registry-hosting", "namespace": "kube-public"},
        "data": {"localRegistryHosting.v1": "host: localhost:5222\nhostFromContainerRuntime: k3d-other:5000\nhostFromClusterNetwork: k3d-other:5000\n"},
    }));
    wait_for("endpoint follows the new announcement", T, || {
        let registry = server.get_object("registries", NS, "platform")?;
        (registry["status"]["endpoint"] == "k3d-other:5000").then_some(())
    });
}

#[test]
fn spec_edit_updates_children_in_place() {
    let Some(server) = server() else {
        return;
    };
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
    let Some(server) = server() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    // What the schema can express, the API server refuses at once, naming the field.
    let refused = server
        .try_put_object(json!({
            "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
            "metadata": {"name": "broken", "namespace": NS},
            "spec": {"mode": "Harbor"},
        }))
        .expect_err("CEL refuses Harbor mode without a host");
    assert!(
        refused.contains("spec.host: required when spec.mode is Harbor"),
        "{refused}"
    );
    // What it cannot (a glob's syntax), the operator refuses with Ready=False naming the field.
    let mut broken = k3d_registry(NS, "broken", json!({"adopt": "Never"}));
    broken["spec"]["migration"] = json!({"repositories": ["ai/[models"]});
    server.put_object(broken);
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
            .contains("spec.migration.repositories[0]: \"ai/[models\" is not a glob pattern"),
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

fn delete_scenario(retention: &str) -> Option<(ControlPlane, tempfile::TempDir)> {
    let server = server()?;
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
    // The real garbage collector (kube-controller-manager) removes owned children after the owner.
    wait_for("Deployment garbage-collected", T, || {
        server
            .get_object("deployments", NS, "platform-distribution")
            .is_none()
            .then_some(())
    });
    drop(operator);
    Some((server, logs))
}

#[test]
fn delete_with_retain_keeps_the_volume_claim_without_owner() {
    let Some((server, _logs)) = delete_scenario("Retain") else {
        return;
    };
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
    let Some((server, _logs)) = delete_scenario("Delete") else {
        return;
    };
    // Collected, then released by the pvc-protection controller (no pod uses it).
    wait_for("PVC deleted", T, || {
        server
            .get_object("persistentvolumeclaims", NS, "platform-distribution")
            .is_none()
            .then_some(())
    });
}

/// NodePorts: a second Registry finds 30500 taken and gets a port the API server picks (and its
/// registries.yaml names it); a chosen port another Service holds is a clear condition, and choosing
/// a free one recovers.
#[test]
fn node_ports_are_allocated_when_taken_and_conflicts_are_reported() {
    let Some(server) = server() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "gitea", "namespace": NS},
        "spec": {"type": "NodePort", "selector": {"app": "gitea"},
                 "ports": [{"port": 3000, "nodePort": 30600}]},
    }));
    // The census of NodePorts lists every Service in the cluster only when none of ours holds the
    // wanted port.
    let service_lists = |server: &ControlPlane| server.request_log().count("list", "Service");
    let lists_at_start = service_lists(&server);
    server.put_object(k3d_registry(NS, "first", json!({"adopt": "Never"})));
    mark_k3d_children_ready(&server, NS, "first");
    let first = wait_for("first Ready", T, || {
        mark_k3d_children_ready(&server, NS, "first");
        let r = server.get_object("registries", NS, "first")?;
        (condition(&r, "Ready")?["status"] == "True").then_some(r)
    });
    assert!(
        first["status"]["k3sRegistriesYaml"]
            .as_str()
            .unwrap()
            .contains("http://127.0.0.1:30500")
    );

    let lists_after_first = service_lists(&server);
    assert!(
        lists_after_first > lists_at_start,
        "30500 free among ours: listed"
    );
    server.put_object(k3d_registry(NS, "second", json!({"adopt": "Never"})));
    let second = wait_for("second Ready with its allocated port", T, || {
        mark_k3d_children_ready(&server, NS, "second");
        let r = server.get_object("registries", NS, "second")?;
        (condition(&r, "Ready")?["status"] == "True"
            && r["status"]["k3sRegistriesYaml"].is_string())
        .then_some(r)
    });
    let port = server
        .get_object("services", NS, "second-distribution")
        .unwrap()["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .unwrap();
    assert!(
        (30000..=32767).contains(&port) && port != 30500 && port != 30600,
        "{port}"
    );
    assert_eq!(
        second["status"]["k3sRegistriesYaml"],
        format!(
            "mirrors:\n  second-distribution.registry.svc.cluster.local:5000:\n    endpoint:\n    - http://127.0.0.1:{port}\n"
        )
    );
    assert_eq!(
        service_lists(&server),
        lists_after_first,
        "30500 held by our first Registry's cached Service: no list"
    );
    // Learning the allocated port changed nothing in the Service: it was applied once.
    let service_applies = |server: &ControlPlane, name: &str| {
        server
            .request_log()
            .entries
            .iter()
            .filter(|e| {
                e.verb == "patch"
                    && e.kind.as_deref() == Some("Service")
                    && e.name.as_deref() == Some(name)
            })
            .count()
    };
    assert_eq!(service_applies(&server, "second-distribution"), 1);
    // Applied again (drift: a label edited) without naming a NodePort, the Service keeps its port.
    server.merge_patch_object(
        "services",
        NS,
        "second-distribution",
        json!({"metadata": {"labels": {"app.kubernetes.io/component": "edited"}}}),
    );
    let repaired = wait_for("the edited Service repaired", T, || {
        let s = server.get_object("services", NS, "second-distribution")?;
        (s["metadata"]["labels"]["app.kubernetes.io/component"] != "edited").then_some(s)
    });
    assert_eq!(service_applies(&server, "second-distribution"), 2);
    assert_eq!(repaired["spec"]["ports"][0]["nodePort"], port);

    server.put_object(k3d_registry(
        NS,
        "third",
        json!({"adopt": "Never", "nodePort": 30600}),
    ));
    let conflict = wait_for("NodePortConflict", T, || {
        let r = server.get_object("registries", NS, "third")?;
        (condition(&r, "Ready")?["reason"] == "NodePortConflict").then_some(r)
    });
    let ready = condition(&conflict, "Ready").unwrap();
    assert_eq!(ready["status"], "False");
    assert_eq!(
        ready["message"],
        "spec.k3d.nodePort: 30600 is already used by Service registry/gitea; choose a free port between 30000 and 32767"
    );
    assert_eq!(condition(&conflict, "Degraded").unwrap()["status"], "True");
    assert!(
        children_of(&server, "services", NS, "third").is_empty(),
        "nothing applied while the port is taken"
    );

    server.merge_patch_object(
        "registries",
        NS,
        "third",
        json!({"spec": {"k3d": {"nodePort": 30601}}}),
    );
    wait_for("third Ready on its free port", T, || {
        mark_k3d_children_ready(&server, NS, "third");
        let r = server.get_object("registries", NS, "third")?;
        (condition(&r, "Ready")?["status"] == "True").then_some(())
    });
    assert_eq!(
        server
            .get_object("services", NS, "third-distribution")
            .unwrap()["spec"]["ports"][0]["nodePort"],
        30601
    );
    // `spec.k3d.nodePort` removed: the port the Service has stays (no longer named in the apply).
    let applies_before = service_applies(&server, "third-distribution");
    server.merge_patch_object(
        "registries",
        NS,
        "third",
        json!({"spec": {"k3d": {"nodePort": null}}}),
    );
    wait_for("the Service applied without its NodePort", T, || {
        (service_applies(&server, "third-distribution") > applies_before).then_some(())
    });
    let third = wait_for("third Ready again", T, || {
        mark_k3d_children_ready(&server, NS, "third");
        let r = server.get_object("registries", NS, "third")?;
        (condition(&r, "Ready")?["status"] == "True"
            && r["status"]["observedGeneration"] == r["metadata"]["generation"])
            .then_some(r)
    });
    assert_eq!(
        server
            .get_object("services", NS, "third-distribution")
            .unwrap()["spec"]["ports"][0]["nodePort"],
        30601
    );
    assert!(
        third["status"]["k3sRegistriesYaml"]
            .as_str()
            .unwrap()
            .contains("http://127.0.0.1:30601")
    );
}
