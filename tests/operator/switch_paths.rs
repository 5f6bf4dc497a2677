//! Scenario tests of the other paths of a staged switch, with the real binary and the real control
//! plane: Harbor → K3d (`allowDowngrade`, Harbor frozen through its API), a switch cancelled before
//! its flip (the freeze lifted), an adopted k3d registry that cannot be frozen (verified by a final
//! copy), and the image-rewrite mutate policy that exists only during the grace window.

use std::time::Duration;

use super::switch::{mark_everything_ready, registry, show, switch_server};
use crate::support::cluster::ControlPlane;
use crate::support::harbor_fake::{ADMIN_PASSWORD, HarborFake};
use crate::support::scenario::*;
use serde_json::{Value, json};

const NS: &str = "registry";
const T: Duration = Duration::from_secs(60);
const K3D_ENDPOINT: &str = "platform-distribution.registry.svc.cluster.local:5000";
const HARBOR: &str = "harbor.ai-platform.localhost";
/// What k3d's KEP-1755 ConfigMap announces (an adopted registry, outside the cluster).
const ADOPTED: &str = "k3d-myregistry:5000";
/// Counts a finished migration Job reports (informational).
const REPORT: &str = r#"{"repositories":2,"tags":5,"blobsCopied":9,"blobsSkipped":0,"bytesCopied":4096,"problems":0}"#;

fn wait_ready(server: &ControlPlane, what: &str) -> Value {
    wait_for(what, T, || {
        mark_everything_ready(server);
        let r = registry(server);
        (condition(&r, "Ready")?["status"] == "True").then_some(r)
    })
}

/// A k3d Registry (`k3d`: its `spec.k3d`) serving and Ready, plus an ImagePolicy restricting images
/// of namespace `ai-apps` to it.
fn serving_k3d(server: &ControlPlane, k3d: Value, endpoint: &str) {
    server.put_object(k3d_registry(NS, "platform", k3d));
    wait_ready(server, "k3d Ready");
    server.put_object(json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": "ai-workloads"},
        "spec": {"registryRef": {"name": "platform", "namespace": NS}, "namespaces": ["ai-apps"], "rules": {"restrictRegistries": {}}},
    }));
    wait_for("policy allows the k3d host", T, || {
        restrict_policy(server).contains(endpoint).then_some(())
    });
}

fn restrict_policy(server: &ControlPlane) -> String {
    server
        .get_object("clusterpolicies", "", "ai-workloads-restrict-registries")
        .map(|p| p.to_string())
        .unwrap_or_default()
}

/// Wait for `phase` without playing the cluster (a phase that waits on a rollout stays put).
fn wait_phase_as_is(server: &ControlPlane, phase: &str) -> Value {
    let registry = wait_for(&format!("phase {phase}"), T, || {
        let r = registry(server);
        (r["status"]["migration"]["phase"] == phase).then_some(r)
    });
    show(phase, &registry);
    registry
}

/// Wait for `phase`, playing kubelet and the volume provisioner meanwhile; the `Migrating`
/// condition's reason is the phase.
fn wait_phase(server: &ControlPlane, phase: &str) -> Value {
    let registry = wait_for(&format!("phase {phase}"), T, || {
        mark_everything_ready(server);
        let r = registry(server);
        (r["status"]["migration"]["phase"] == phase).then_some(r)
    });
    show(phase, &registry);
    assert_eq!(
        condition(&registry, "Migrating").unwrap()["reason"],
        phase,
        "each phase is the Migrating condition's reason"
    );
    registry
}

/// Wait for the first phase after the flip (`Switched`, `Grace`, or with a zero window and no pod on
/// the old host, `Retired` at once) and print it unless it is `Retired` (printed by [`wait_retired`]).
fn wait_flipped(server: &ControlPlane) -> Value {
    let registry = wait_for("the flip", T, || {
        mark_everything_ready(server);
        let r = registry(server);
        let phase = r["status"]["migration"]["phase"].as_str()?.to_string();
        ["Switched", "Grace", "Retired"]
            .contains(&phase.as_str())
            .then_some(r)
    });
    let phase = registry["status"]["migration"]["phase"].as_str().unwrap();
    if phase != "Retired" {
        show(phase, &registry);
    }
    registry
}

/// Wait for retirement. The `Migrating` condition says `False`/`Retired` in that pass; the steady
/// passes after it no longer write the condition (the phase stays in `status.migration`).
fn wait_retired(server: &ControlPlane) -> Value {
    let registry = wait_phase_as_is(server, "Retired");
    if let Some(migrating) = condition(&registry, "Migrating") {
        assert_eq!(migrating["status"], "False");
        assert_eq!(migrating["reason"], "Retired");
    }
    registry
}

/// The Harbor Registry `platform` (external database; the admin password in Secret `harbor-admin`).
fn harbor_registry() -> Value {
    json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "platform", "namespace": NS},
        "spec": {"mode": "Harbor", "host": HARBOR, "harbor": {
            "adminPasswordSecretRef": {"name": "harbor-admin", "key": "password"},
            "database": {"external": {
                "host": "postgresql-rw.storage.svc.cluster.local", "username": "harbor", "passwordSecretRef": {"name": "harbor-db"}}}}},
    })
}

fn put_admin_secret(server: &ControlPlane) {
    server.put_object(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "harbor-admin", "namespace": NS},
        "stringData": {"password": ADMIN_PASSWORD},
    }));
}

/// Switch the Harbor Registry to the hosted k3d registry (copy back, no grace window).
fn downgrade_to_k3d(server: &ControlPlane) {
    server.merge_patch_object(
        "registries",
        NS,
        "platform",
        json!({"spec": {"mode": "K3d", "host": null, "k3d": {"adopt": "Never"},
            "migration": {"allowDowngrade": true, "grace": "0"}}}),
    );
}

/// The exported CA of Harbor's generated certificate (what the migration Job trusts).
fn exported_ca(server: &ControlPlane) -> String {
    server
        .get_object("configmaps", NS, "platform-harbor-ca")
        .and_then(|c| c["data"]["ca.crt"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn job_args(server: &ControlPlane, job: &str) -> String {
    let job = wait_for(job, T, || server.get_object("jobs", NS, job));
    job["spec"]["template"]["spec"]["containers"][0]["args"].to_string()
}

fn distribution_env(server: &ControlPlane) -> String {
    server
        .get_object("deployments", NS, "platform-distribution")
        .map(|d| d["spec"]["template"]["spec"]["containers"][0]["env"].to_string())
        .unwrap_or_default()
}

/// Names of the Registry's Deployments and StatefulSets.
fn workloads(server: &ControlPlane) -> Vec<String> {
    ["deployments", "statefulsets"]
        .iter()
        .flat_map(|resource| children_of(server, resource, NS, "platform"))
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

fn complete(server: &ControlPlane, job: &str) {
    wait_for(job, T, || server.get_object("jobs", NS, job));
    complete_migration_job(server, NS, job, REPORT);
}

/// Harbor → K3d with `spec.migration.allowDowngrade`: the same phases; Harbor is frozen through its
/// API (its `read_only` configuration), the copy adds no project prefix, nodes keep a mirror of the
/// Harbor host without a rewrite, and Harbor's children go at retirement.
#[test]
fn harbor_to_k3d_with_allow_downgrade_goes_through_the_same_phases() {
    let Some(server) = switch_server() else {
        return;
    };
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let harbor_url = harbor.url();
    let _operator = Operator::start(&server, logs.path(), &["--harbor-api-url", &harbor_url]);
    server.put_object(harbor_registry());
    let serving = wait_ready(&server, "Harbor Ready");
    assert_eq!(serving["status"]["endpoint"], HARBOR);
    assert_eq!(harbor.writes(), 0, "nothing asked of Harbor's API at rest");

    assert!(exported_ca(&server).starts_with("-----BEGIN CERTIFICATE-----"));
    downgrade_to_k3d(&server);
    // Copying is held, with no Job, until the operator can make the migration robot through
    // Harbor's API (it needs the admin Secret, absent until now).
    let held = wait_for("Copying waits for the migration robot", T, || {
        mark_everything_ready(&server);
        let r = registry(&server);
        let message = r["status"]["migration"]["message"].as_str()?.to_string();
        message
            .contains("waiting for the migration robot")
            .then_some(r)
    });
    show("Copying (held)", &held);
    assert!(
        server
            .get_object("jobs", NS, "platform-migrate-1")
            .is_none()
    );
    put_admin_secret(&server);
    let copying = wait_for("platform-migrate-1", T, || {
        mark_everything_ready(&server);
        server.get_object("jobs", NS, "platform-migrate-1")?;
        Some(registry(&server))
    });
    assert_eq!(
        copying["status"]["endpoint"], HARBOR,
        "Harbor serves the copy"
    );
    let args = job_args(&server, "platform-migrate-1");
    assert!(
        args.contains(&format!("https://{HARBOR}"))
            && args.contains(&format!("http://{K3D_ENDPOINT}"))
            && args.contains("\"--dest-project=\"")
            && args.contains("--no-verify"),
        "from Harbor to the k3d Service, no project prefix: {args}"
    );
    // Out of Harbor the Job reads as a system robot made for the switch: Harbor's catalog
    // (`catalog:read`, what /v2/_catalog checks) and pull on every project, nothing else; not admin.
    let robots = harbor.robots();
    assert_eq!(robots.len(), 1, "{robots:?}");
    assert_eq!(robots[0]["level"], "system");
    assert_eq!(robots[0]["duration"], 1);
    assert_eq!(
        robots[0]["permissions"],
        json!([
            {"kind": "system", "namespace": "/", "access": [{"resource": "catalog", "action": "read"}]},
            {"kind": "project", "namespace": "*", "access": [{"resource": "repository", "action": "pull"}]}
        ])
    );
    let job = server.get_object("jobs", NS, "platform-migrate-1").unwrap();
    let env = job["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(
        env.contains(r#""name":"MIGRATE_FROM_USERNAME","valueFrom":{"secretKeyRef":{"key":"username","name":"platform-migration-robot""#)
            && !env.contains("admin"),
        "{env}"
    );
    assert!(
        !harbor.read_only(),
        "the source takes pushes during the bulk copy"
    );
    complete_migration_job(&server, NS, "platform-migrate-1", REPORT);

    // Freezing: Harbor is made read-only through its API.
    let catching_up = wait_phase(&server, "CatchingUp");
    assert!(harbor.read_only(), "Harbor made read-only through its API");
    assert!(
        harbor
            .requests()
            .iter()
            .any(|r| r.method == "PUT" && r.operation == "updateConfigurations"),
        "{:?}",
        harbor.requests()
    );
    assert_eq!(catching_up["status"]["migration"]["sourceFrozen"], true);
    assert_eq!(
        condition(&catching_up, "SourceFrozen").unwrap()["status"],
        "True"
    );
    assert!(
        exported_ca(&server).starts_with("-----BEGIN CERTIFICATE-----"),
        "the Harbor source keeps exporting its CA (the Jobs trust it): {}",
        exported_ca(&server)
    );
    let args = job_args(&server, "platform-catchup-1");
    assert!(
        args.contains("\"--dest-project=\"") && args.contains("--no-verify"),
        "{args}"
    );
    complete_migration_job(&server, NS, "platform-catchup-1", REPORT);

    let verifying = wait_phase(&server, "Verifying");
    assert_eq!(
        verifying["status"]["endpoint"], HARBOR,
        "no flip before verification"
    );
    let args = job_args(&server, "platform-verify-1");
    assert!(
        args.contains("--verify-only") && args.contains("\"--dest-project=\""),
        "{args}"
    );
    complete_migration_job(&server, NS, "platform-verify-1", REPORT);

    wait_flipped(&server);
    let retired = wait_retired(&server);
    assert_eq!(retired["status"]["endpoint"], K3D_ENDPOINT);
    assert_eq!(retired["status"]["mode"], "K3d");
    wait_for("the system robot deleted after the flip", T, || {
        (harbor.robots().is_empty()
            && server
                .get_object("secrets", NS, "platform-migration-robot")
                .is_none())
        .then_some(())
    });
    assert_eq!(harbor.count(&["CreateRobot"]), 1, "one robot for every Job");
    let nodes = wait_for("nodes keep a mirror of the Harbor host", T, || {
        let r = registry(&server);
        let yaml = r["status"]["k3sRegistriesYaml"].as_str()?.to_string();
        yaml.contains(&format!("{HARBOR}:")).then_some(yaml)
    });
    eprintln!("k3sRegistriesYaml after the flip:\n{nodes}");
    assert!(
        !nodes.contains("rewrite"),
        "no project prefix into k3d: {nodes}"
    );
    wait_for("Harbor's children pruned", T, || {
        let left = workloads(&server);
        left.iter()
            .all(|name| !name.contains("harbor"))
            .then_some(())
    });
    assert!(workloads(&server).contains(&"platform-distribution".to_string()));
    assert!(
        server.list_objects("jobs", Some(NS)).is_empty(),
        "no migration Job left"
    );
    assert!(harbor.read_only(), "the retired Harbor stays read-only");
}

/// Setting `spec.mode` back before the flip cancels the switch: the hosted k3d registry is writable
/// again, Harbor and the Jobs are pruned, the migration record goes.
#[test]
fn setting_the_mode_back_before_the_flip_cancels_and_lifts_the_freeze() {
    let Some(server) = switch_server() else {
        return;
    };
    let Some(harbor) = harbor_for_switch(&server, NS) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &["--harbor-api-url", &harbor.url()]);
    serving_k3d(&server, json!({"adopt": "Never"}), K3D_ENDPOINT);
    switch_to_harbor(&server, NS, "platform", HARBOR);
    wait_phase(&server, "Copying");
    complete(&server, "platform-migrate-1");

    // The freeze rolls out (the test does not play the rollout, so the phase holds).
    wait_for("source rendered read-only", T, || {
        distribution_env(&server)
            .contains("REGISTRY_STORAGE_MAINTENANCE_READONLY")
            .then_some(())
    });
    let frozen = wait_phase_as_is(&server, "Freezing");
    assert_eq!(frozen["status"]["endpoint"], K3D_ENDPOINT);
    assert!(workloads(&server).iter().any(|n| n.contains("harbor")));

    server.merge_patch_object(
        "registries",
        NS,
        "platform",
        json!({"spec": {"mode": "K3d", "host": null, "harbor": null}}),
    );
    wait_for("freeze lifted", T, || {
        (!distribution_env(&server).contains("MAINTENANCE_READONLY")).then_some(())
    });
    let cancelled = wait_for("cancelled, Ready on K3d", T, || {
        mark_everything_ready(&server);
        let r = registry(&server);
        let done = condition(&r, "Ready")?["status"] == "True"
            && r["status"]["migration"]["phase"].is_null()
            && workloads(&server) == ["platform-distribution"]
            && server.list_objects("jobs", Some(NS)).is_empty();
        done.then_some(r)
    });
    show("cancelled", &cancelled);
    // The robot made for the cancelled switch is deleted with the admin Secret it was made with,
    // although the spec no longer names Harbor.
    assert_eq!(harbor.count(&["CreateRobot"]), 1);
    wait_for("migration robot deleted", T, || {
        (harbor.robots().is_empty()
            && server
                .get_object("secrets", NS, "platform-migration-robot")
                .is_none())
        .then_some(())
    });
    assert_eq!(cancelled["status"]["mode"], "K3d");
    assert_eq!(cancelled["status"]["endpoint"], K3D_ENDPOINT);
    assert!(
        cancelled["status"]["migration"].is_null(),
        "the record of the cancelled switch goes: {}",
        cancelled["status"]["migration"]
    );
    assert!(
        restrict_policy(&server).contains(K3D_ENDPOINT)
            && !restrict_policy(&server).contains(HARBOR),
        "the policy never followed Harbor"
    );
}

/// Setting `spec.mode` back to Harbor after Harbor was frozen cancels the switch away from it: Harbor
/// is made writable again through its API, the k3d side and the Jobs are pruned.
#[test]
fn setting_the_mode_back_to_harbor_after_its_freeze_makes_it_writable_again() {
    let Some(server) = switch_server() else {
        return;
    };
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let harbor_url = harbor.url();
    let _operator = Operator::start(&server, logs.path(), &["--harbor-api-url", &harbor_url]);
    put_admin_secret(&server);
    server.put_object(harbor_registry());
    wait_ready(&server, "Harbor Ready");
    downgrade_to_k3d(&server);
    wait_phase(&server, "Copying");
    complete(&server, "platform-migrate-1");
    wait_phase(&server, "CatchingUp");
    assert!(harbor.read_only(), "Harbor frozen");

    server.merge_patch_object(
        "registries",
        NS,
        "platform",
        json!({"spec": {"mode": "Harbor", "host": HARBOR, "k3d": null}}),
    );
    wait_for("Harbor writable again", T, || {
        (!harbor.read_only()).then_some(())
    });
    let cancelled = wait_for("cancelled, Ready on Harbor", T, || {
        mark_everything_ready(&server);
        let r = registry(&server);
        let done = condition(&r, "Ready")?["status"] == "True"
            && r["status"]["migration"].is_null()
            && !workloads(&server).contains(&"platform-distribution".to_string())
            && server.list_objects("jobs", Some(NS)).is_empty();
        done.then_some(r)
    });
    show("cancelled (Harbor)", &cancelled);
    assert_eq!(cancelled["status"]["endpoint"], HARBOR);
    assert_eq!(cancelled["status"]["mode"], "Harbor");
    let writes = harbor.writes();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        harbor.writes(),
        writes,
        "nothing more asked of Harbor once lifted"
    );
}

/// An adopted k3d registry (outside the cluster) cannot be frozen: the switch says so in a condition
/// and a Warning Event, and its Verifying Job copies what is new as well as verifying every tag.
#[test]
fn an_adopted_k3d_registry_cannot_be_frozen_and_is_verified_by_a_final_copy() {
    let Some(server) = switch_server() else {
        return;
    };
    server.put_object(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "local-registry-hosting", "namespace": "kube-public"},
        "data": {"localRegistryHosting.v1": format!("host: localhost:5111\nhostFromContainerRuntime: {ADOPTED}\nhostFromClusterNetwork: {ADOPTED}\n")},
    }));
    let Some(harbor) = harbor_for_switch(&server, NS) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &["--harbor-api-url", &harbor.url()]);
    serving_k3d(&server, json!({}), ADOPTED);
    assert_eq!(registry(&server)["status"]["endpoint"], ADOPTED);
    server.merge_patch_object(
        "registries",
        NS,
        "platform",
        json!({"spec": {"migration": {"grace": "0"}}}),
    );
    switch_to_harbor(&server, NS, "platform", HARBOR);

    wait_phase(&server, "Copying");
    let args = job_args(&server, "platform-migrate-1");
    assert!(
        args.contains(&format!("http://{ADOPTED}")) && args.contains("--no-verify"),
        "{args}"
    );
    complete(&server, "platform-migrate-1");

    let catching_up = wait_phase(&server, "CatchingUp");
    assert_eq!(catching_up["status"]["migration"]["sourceFrozen"], false);
    let frozen = condition(&catching_up, "SourceFrozen").expect("SourceFrozen");
    assert_eq!(frozen["status"], "False");
    assert_eq!(frozen["reason"], "FreezeUnsupported");
    eprintln!("SourceFrozen: {frozen}");
    wait_for("Warning Event FreezeUnsupported", T, || {
        server
            .list_objects("events.k8s.io/v1/events", None)
            .into_iter()
            .find(|e| e["reason"] == "FreezeUnsupported" && e["type"] == "Warning")
    });
    complete(&server, "platform-catchup-1");

    let verifying = wait_phase(&server, "Verifying");
    assert_eq!(verifying["status"]["endpoint"], ADOPTED);
    let args = job_args(&server, "platform-verify-1");
    assert!(
        !args.contains("--verify-only") && !args.contains("--no-verify"),
        "a final copy-and-verify, the source being writable: {args}"
    );
    complete(&server, "platform-verify-1");

    wait_flipped(&server);
    let retired = wait_retired(&server);
    assert_eq!(retired["status"]["endpoint"], HARBOR);
    assert_eq!(retired["status"]["mode"], "Harbor");
    wait_for("policy follows the Harbor host only", T, || {
        let text = restrict_policy(&server);
        (text.contains(HARBOR) && !text.contains(ADOPTED)).then_some(())
    });
    assert!(
        server
            .get_object("configmaps", "kube-public", "local-registry-hosting")
            .is_some(),
        "k3d's own announcement is left alone"
    );
}

/// `spec.migration.rewriteImages`: a Kyverno mutate policy rewriting the old host to Harbor's (with
/// the project) exists only while the grace window runs; afterwards only Harbor is allowed.
#[test]
fn rewrite_images_adds_a_mutate_policy_only_during_grace() {
    let Some(server) = switch_server() else {
        return;
    };
    let Some(harbor) = harbor_for_switch(&server, NS) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &["--harbor-api-url", &harbor.url()]);
    serving_k3d(&server, json!({"adopt": "Never"}), K3D_ENDPOINT);
    server.merge_patch_object(
        "registries",
        NS,
        "platform",
        json!({"spec": {"migration": {"rewriteImages": true, "grace": "3s"}}}),
    );
    switch_to_harbor(&server, NS, "platform", HARBOR);
    let rewrite = "ai-workloads-rewrite-images";

    wait_phase(&server, "Copying");
    complete(&server, "platform-migrate-1");
    wait_phase(&server, "CatchingUp");
    complete(&server, "platform-catchup-1");
    wait_phase(&server, "Verifying");
    assert!(
        server.get_object("clusterpolicies", "", rewrite).is_none(),
        "no rewrite before the flip"
    );
    // A pod on the old host holds the window open until the test has looked at it.
    server.put_object(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "old-app", "namespace": "ai-apps"},
        "spec": {"containers": [{"name": "app", "image": format!("{K3D_ENDPOINT}/ai/app:1.0")}]},
    }));
    complete(&server, "platform-verify-1");

    let grace = wait_phase(&server, "Grace");
    assert_eq!(grace["status"]["endpoint"], HARBOR);
    let policy = wait_for("rewrite policy during grace", T, || {
        server.get_object("clusterpolicies", "", rewrite)
    });
    let text = policy.to_string();
    assert!(
        text.contains(K3D_ENDPOINT) && text.contains(HARBOR) && text.contains("library/"),
        "{text}"
    );
    wait_for("policy allows both hosts", T, || {
        let text = restrict_policy(&server);
        (text.contains(HARBOR) && text.contains(K3D_ENDPOINT)).then_some(())
    });
    wait_for("the old-host pod is counted", T, || {
        (registry(&server)["status"]["migration"]["oldHostPods"] == 1).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let held = registry(&server);
    show("Grace (window over, 1 pod left)", &held);
    assert_eq!(held["status"]["migration"]["phase"], "Grace");
    assert!(server.get_object("clusterpolicies", "", rewrite).is_some());

    server.delete_object("pods", "ai-apps", "old-app");
    wait_retired(&server);
    wait_for("rewrite policy pruned, only Harbor allowed", T, || {
        let text = restrict_policy(&server);
        (server.get_object("clusterpolicies", "", rewrite).is_none()
            && text.contains(HARBOR)
            && !text.contains(K3D_ENDPOINT))
        .then_some(())
    });
    wait_for("the old registry pruned", T, || {
        server
            .get_object("deployments", NS, "platform-distribution")
            .is_none()
            .then_some(())
    });
}
