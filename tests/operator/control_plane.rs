//! The control-plane harness itself: the real kube-apiserver, etcd and kube-controller-manager start,
//! serve our CRDs, enforce the shipped RBAC, collect garbage, and stop; the proxy logs and faults.

use std::time::Duration;

use crate::support;
use crate::support::cluster::{ControlPlane, Faults, OPERATOR_NAMESPACE};
use serde_json::json;

#[test]
fn control_plane_serves_our_crds_rbac_and_garbage_collection() {
    let Some(plane) = ControlPlane::builder().start() else {
        return;
    };
    eprintln!(
        "control plane started in {:?}; RSS {:?}",
        plane.startup_time(),
        plane.rss_kib()
    );
    let version = plane.request(http::Method::GET, "/version", None);
    assert_eq!(version["gitVersion"], "v1.37.2");
    assert!(plane.served("registries") && plane.served("ImagePolicy"));
    assert!(
        plane
            .get_object("namespaces", "", OPERATOR_NAMESPACE)
            .is_some()
    );

    // A label value the real server refuses (what the fake accepted).
    let refused = plane
        .try_put_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "bad", "namespace": "default", "labels": {"a": "_cluster"}}}))
        .unwrap_err();
    assert!(refused.contains("metadata.labels"), "{refused}");

    // Garbage collection by the real controller manager.
    let owner = plane.put_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "owner", "namespace": "default"}}));
    plane.put_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "owned", "namespace": "default", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
            "uid": owner["metadata"]["uid"]}]}}));
    plane.delete_object("configmaps", "default", "owner");
    support::cluster::wait_for("owned ConfigMap collected", Duration::from_secs(60), || {
        plane
            .get_object("configmaps", "default", "owned")
            .is_none()
            .then_some(())
    });
}

#[test]
fn operator_credentials_carry_exactly_the_shipped_role() {
    let Some(plane) = ControlPlane::builder().start() else {
        return;
    };
    plane.not_a_scenario();
    // Through the proxy with the operator's token: allowed and forbidden requests.
    let run = |args: &[&str]| {
        let mut cmd = plane.kubectl_with(&plane.operator_kubeconfig);
        cmd.args(args);
        cmd.output().expect("kubectl")
    };
    let allowed = run(&["get", "registries", "-A"]);
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let forbidden = run(&["get", "nodes"]);
    assert!(!forbidden.status.success());
    assert!(String::from_utf8_lossy(&forbidden.stderr).contains("forbidden"));
    assert!(
        !plane.operator_forbidden().is_empty(),
        "the audit log saw the 403"
    );
    let log = plane.request_log();
    assert!(
        log.entries
            .iter()
            .any(|e| e.verb == "list" && e.kind.as_deref() == Some("Registry"))
    );

    plane.set_faults(
        Faults::failing(1.0, &[500])
            .verbs(&["list"])
            .kinds(&["Registry"]),
    );
    let failed = run(&["get", "registries", "-A"]);
    assert!(
        !failed.status.success(),
        "an injected 500 reaches the client"
    );
    plane.clear_faults();
}
