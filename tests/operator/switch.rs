//! Scenario tests of a K3d → Harbor switch with the real binary and the real control plane: Harbor comes
//! up beside the serving k3d registry, a migration Job runs, and only its success flips the endpoint
//! (ImagePolicies follow) and retires the old registry, keeping its volume.

use std::time::Duration;

use crate::support::cluster::{ControlPlane, Upstream};
use crate::support::scenario::*;
use serde_json::{Value, json};

const NS: &str = "registry";
const T: Duration = Duration::from_secs(60);
const K3D_ENDPOINT: &str = "platform-distribution.registry.svc.cluster.local:5000";
const HARBOR: &str = "harbor.ai-platform.localhost";

fn switch_server() -> Option<ControlPlane> {
    ControlPlane::builder()
        .with(Upstream::KyvernoClusterPolicyOnly)
        .with(Upstream::Cnpg)
        .start()
}

fn registry(server: &ControlPlane) -> Value {
    server
        .get_object("registries", NS, "platform")
        .expect("registry")
}

fn mark_everything_ready(server: &ControlPlane) {
    mark_children_ready(server, NS, "platform");
}

/// A k3d Registry serving and Ready, plus an ImagePolicy restricting images to it.
fn serving_k3d(server: &ControlPlane) {
    server.put_object(k3d_registry(NS, "platform", json!({"adopt": "Never"})));
    wait_for("k3d Ready", T, || {
        mark_everything_ready(server);
        let r = server.get_object("registries", NS, "platform")?;
        (condition(&r, "Ready")?["status"] == "True").then_some(())
    });
    server.put_object(json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": "ai-workloads"},
        "spec": {"registryRef": {"name": "platform", "namespace": NS}, "namespaces": ["ai-apps"], "rules": {"restrictRegistries": {}}},
    }));
    wait_for("policy allows the k3d host", T, || {
        let policy =
            server.get_object("clusterpolicies", "", "ai-workloads-restrict-registries")?;
        policy.to_string().contains(K3D_ENDPOINT).then_some(())
    });
}

fn job_status(server: &ControlPlane, name: &str, status: Value) {
    server.patch_status("jobs", NS, name, status);
}

#[test]
fn switch_copies_then_flips_endpoint_policies_follow_and_old_registry_retires_keeping_data() {
    let Some(server) = switch_server() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    serving_k3d(&server);
    switch_to_harbor(&server, NS, "platform", HARBOR);

    let provisioning = wait_for("ProvisioningTarget", T, || {
        let r = registry(&server);
        (condition(&r, "Progressing")?["reason"] == "ProvisioningTarget").then_some(r)
    });
    assert_eq!(
        provisioning["status"]["endpoint"], K3D_ENDPOINT,
        "the old registry keeps serving"
    );
    assert_eq!(provisioning["status"]["mode"], "K3d");
    assert!(
        server
            .get_object("deployments", NS, "platform-harbor-core")
            .is_some()
    );
    assert!(
        server
            .get_object("deployments", NS, "platform-distribution")
            .is_some()
    );
    assert!(
        server
            .get_object("jobs", NS, "platform-migrate-1")
            .is_none(),
        "no copy before Harbor is Ready"
    );

    let job = wait_for("migration Job once Harbor is Ready", T, || {
        mark_everything_ready(&server);
        server.get_object("jobs", NS, "platform-migrate-1")
    });
    let args = job["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    // Harbor serves TLS with the generated certificate; the Job trusts the exported CA.
    assert!(
        args.contains(&format!("http://{K3D_ENDPOINT}"))
            && args.contains(&format!("https://{HARBOR}")),
        "{args}"
    );
    assert_eq!(
        job["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"],
        "platform-harbor-ca"
    );
    let migrating = wait_for("Migrating=True", T, || {
        let r = registry(&server);
        (condition(&r, "Migrating")?["status"] == "True").then_some(r)
    });
    assert_eq!(migrating["status"]["endpoint"], K3D_ENDPOINT);
    assert_eq!(migrating["status"]["migration"]["phase"], "Running");

    // The Job's pod leaves `migrate`'s counts in its termination message.
    complete_migration_job(
        &server,
        NS,
        "platform-migrate-1",
        r#"{"repositories":3,"tags":7,"blobsCopied":11,"blobsSkipped":4,"bytesCopied":123456,"problems":0}"#,
    );
    let switched = wait_for("endpoint flipped to Harbor", T, || {
        let r = registry(&server);
        (r["status"]["endpoint"] == HARBOR).then_some(r)
    });
    assert_eq!(switched["status"]["mode"], "Harbor");
    assert_eq!(switched["status"]["migration"]["phase"], "Succeeded");
    assert_eq!(
        switched["status"]["migration"]["tags"], 7,
        "counts come from the Job's termination message"
    );
    assert_eq!(switched["status"]["migration"]["bytesCopied"], 123456);
    wait_for("policy follows the Harbor host", T, || {
        let policy =
            server.get_object("clusterpolicies", "", "ai-workloads-restrict-registries")?;
        let text = policy.to_string();
        (text.contains(HARBOR) && !text.contains(K3D_ENDPOINT)).then_some(())
    });
    wait_for("old registry retired", T, || {
        let gone = server.get_object("deployments", NS, "platform-distribution").is_none()
            && server.get_object("services", NS, "platform-distribution").is_none()
            // the k3d announcement is withdrawn
            && server.get_object("configmaps", "kube-public", "local-registry-hosting").is_none();
        gone.then_some(())
    });
    let claim = server
        .get_object("persistentvolumeclaims", NS, "platform-distribution")
        .expect("k3d data kept (retention Retain)");
    assert!(
        claim["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|o| o.is_empty())
    );
    let events = server.list_objects("events.k8s.io/v1/events", None);
    assert!(
        events.iter().any(|e| e["reason"] == "Switched"),
        "a Switched event is published"
    );
}

#[test]
fn failed_migration_keeps_old_registry_serving_and_retries() {
    let Some(server) = switch_server() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    serving_k3d(&server);
    switch_to_harbor(&server, NS, "platform", HARBOR);
    wait_for("migration Job", T, || {
        mark_everything_ready(&server);
        server.get_object("jobs", NS, "platform-migrate-1")
    });
    job_status(
        &server,
        "platform-migrate-1",
        json!({"failed": 1, "startTime": "2026-11-28T00:00:00Z",
            "conditions": [
                {"type": "FailureTarget", "status": "True", "lastTransitionTime": "2026-11-28T00:01:00Z"},
                {"type": "Failed", "status": "True", "lastTransitionTime": "2026-11-28T00:01:00Z"}]}),
    );
    let degraded = wait_for("Degraded MigrationFailed", T, || {
        let r = registry(&server);
        (condition(&r, "Degraded")?["reason"] == "MigrationFailed").then_some(r)
    });
    assert_eq!(
        degraded["status"]["endpoint"], K3D_ENDPOINT,
        "the old registry stays the endpoint"
    );
    assert_eq!(degraded["status"]["migration"]["phase"], "Failed");
    assert!(
        server
            .get_object("deployments", NS, "platform-distribution")
            .is_some(),
        "nothing is deleted on failure"
    );
    wait_for("second attempt after backoff", T, || {
        server.get_object("jobs", NS, "platform-migrate-2")
    });
}

#[test]
fn downgrade_without_allow_downgrade_is_refused_and_harbor_keeps_serving() {
    let Some(server) = switch_server() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "platform", "namespace": NS},
        "spec": {"mode": "Harbor", "host": HARBOR, "harbor": {"database": {"external": {
            "host": "postgresql-rw.storage.svc.cluster.local", "username": "harbor", "passwordSecretRef": {"name": "harbor-db"}}}}},
    }));
    wait_for("Harbor Ready", T, || {
        mark_everything_ready(&server);
        (condition(&registry(&server), "Ready")?["status"] == "True").then_some(())
    });
    server.merge_patch_object(
        "registries",
        NS,
        "platform",
        json!({"spec": {"mode": "K3d"}}),
    );
    let refused = wait_for("DowngradeRefused", T, || {
        let r = registry(&server);
        (condition(&r, "Degraded")?["reason"] == "DowngradeRefused").then_some(r)
    });
    assert!(
        condition(&refused, "Degraded").unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("spec.migration.allowDowngrade")
    );
    assert_eq!(refused["status"]["endpoint"], HARBOR);
    assert!(
        server
            .get_object("deployments", NS, "platform-harbor-core")
            .is_some(),
        "Harbor keeps running"
    );
    assert!(
        server
            .get_object("deployments", NS, "platform-distribution")
            .is_none(),
        "no k3d registry started"
    );
}

#[test]
fn operator_killed_ten_times_during_a_switch_still_completes_it_once() {
    let Some(server) = switch_server() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    {
        let _operator = Operator::start(&server, logs.path(), &[]);
        serving_k3d(&server);
    }
    switch_to_harbor(&server, NS, "platform", HARBOR);
    // Kill the operator at varying points of the switch (seeded delays), playing the cluster's part.
    let mut rng = fastrand::Rng::with_seed(7);
    for round in 0..10 {
        let mut operator = Operator::start(&server, logs.path(), &[]);
        std::thread::sleep(Duration::from_millis(rng.u64(150..900)));
        mark_everything_ready(&server);
        if round >= 6
            && let Some(job) = server.get_object("jobs", NS, "platform-migrate-1")
            && job["status"]["succeeded"] != 1
        {
            job_status(&server, "platform-migrate-1", json!({"succeeded": 1}));
        }
        operator.kill();
        assert!(
            !operator.log().contains("panicked"),
            "round {round}: {}",
            operator.log()
        );
    }
    let _operator = Operator::start(&server, logs.path(), &[]);
    wait_for("switch completed", T, || {
        mark_everything_ready(&server);
        if let Some(job) = server.get_object("jobs", NS, "platform-migrate-1")
            && job["status"]["succeeded"] != 1
        {
            job_status(&server, "platform-migrate-1", json!({"succeeded": 1}));
        }
        let r = registry(&server);
        (r["status"]["endpoint"] == HARBOR
            && server
                .get_object("deployments", NS, "platform-distribution")
                .is_none())
        .then_some(())
    });
    assert_eq!(
        registry(&server)["status"]["migration"]["phase"],
        "Succeeded"
    );
    assert!(
        server
            .get_object("jobs", NS, "platform-migrate-2")
            .is_none(),
        "one successful attempt, no duplicate Job"
    );
    for resource in ["deployments", "statefulsets", "services"] {
        let names: Vec<String> = children_of(&server, resource, NS, "platform")
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "duplicate {resource}: {names:?}");
    }
    assert!(
        server
            .get_object("persistentvolumeclaims", NS, "platform-distribution")
            .is_some(),
        "k3d data kept"
    );
}
