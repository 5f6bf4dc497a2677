//! Scenario tests of a K3d → Harbor switch with the real binary and the real control plane: Harbor comes
//! up beside the serving k3d registry, a migration Job runs, and only its success flips the endpoint
//! (ImagePolicies follow) and retires the old registry, keeping its volume. The switch with the operator
//! killed is in `switch_restarts.rs`. The tests play the cluster's part (Jobs' and children's status)
//! and must not play the operator's: the real binary runs as a child process.

use std::time::Duration;

use crate::support::cluster::{ControlPlane, Upstream};
use crate::support::harbor_fake::HarborFake;
use crate::support::scenario::*;
use serde_json::{Value, json};

const NS: &str = "registry";
const T: Duration = Duration::from_secs(60);
const K3D_ENDPOINT: &str = "platform-distribution.registry.svc.cluster.local:5000";
const HARBOR: &str = "harbor.ai-platform.localhost";

pub(super) fn switch_server() -> Option<ControlPlane> {
    ControlPlane::builder()
        .with(Upstream::KyvernoClusterPolicyOnly)
        .with(Upstream::Cnpg)
        .start()
}

pub(super) fn registry(server: &ControlPlane) -> Value {
    server
        .get_object("registries", NS, "platform")
        .expect("registry")
}

pub(super) fn mark_everything_ready(server: &ControlPlane) {
    mark_children_ready(server, NS, "platform");
}

/// A k3d Registry serving and Ready, plus an ImagePolicy restricting images to it.
pub(super) fn serving_k3d(server: &ControlPlane) {
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

/// Play the Jobs' part: every migration Job of the switch that exists and has not finished succeeds.
pub(super) fn complete_running_jobs(server: &ControlPlane) {
    for job in [
        "platform-migrate-1",
        "platform-catchup-1",
        "platform-verify-1",
    ] {
        if let Some(live) = server.get_object("jobs", NS, job)
            && live["status"]["succeeded"] != 1
        {
            job_status(server, job, json!({"succeeded": 1}));
        }
    }
}

fn job_status(server: &ControlPlane, name: &str, status: Value) {
    server.patch_status("jobs", NS, name, status);
}

/// The Registry's migration status and the reason of its `Migrating` condition, printed for the
/// closing note's phase table.
pub(super) fn show(label: &str, registry: &Value) {
    let migrating = condition(registry, "Migrating").unwrap_or(Value::Null);
    eprintln!(
        "PHASE {label}: endpoint={} mode={} migration={} Migrating={}/{}",
        registry["status"]["endpoint"],
        registry["status"]["mode"],
        registry["status"]["migration"],
        migrating["status"],
        migrating["reason"]
    );
}

/// The one robot in the fake Harbor, which must be the migration robot.
fn only_migration_robot(harbor: &HarborFake) -> Value {
    let robots = harbor.robots();
    assert_eq!(robots.len(), 1, "one migration robot: {robots:?}");
    robots[0].clone()
}

fn wait_phase(server: &ControlPlane, phase: &str) -> Value {
    let registry = wait_for(&format!("phase {phase}"), T, || {
        mark_everything_ready(server);
        let r = registry(server);
        (r["status"]["migration"]["phase"] == phase).then_some(r)
    });
    show(phase, &registry);
    assert_eq!(
        condition(&registry, "Migrating").unwrap()["reason"],
        if phase == "Pending" {
            "ProvisioningTarget"
        } else {
            phase
        },
        "each phase is the Migrating condition's reason"
    );
    registry
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

/// The whole staged switch: copy (source writable), freeze (distribution read-only), catch up,
/// verify, flip; in the grace window both hosts are allowed and nodes keep an alias of the old host;
/// the old registry is retired only after the window and once no pod uses its host, keeping its data.
#[test]
fn switch_goes_through_every_phase_and_retires_the_old_registry_after_grace_and_pods() {
    let Some(server) = switch_server() else {
        return;
    };
    let Some(harbor) = harbor_for_switch(&server, NS) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &["--harbor-api-url", &harbor.url()]);
    serving_k3d(&server);
    // Into a project Harbor does not have yet: the operator creates it (private).
    server.merge_patch_object(
        "registries",
        NS,
        "platform",
        json!({"spec": {"migration": {"grace": "2s", "destinationProject": "ai-models"}}}),
    );
    switch_to_harbor(&server, NS, "platform", HARBOR);

    let provisioning = wait_for("ProvisioningTarget", T, || {
        let r = registry(&server);
        (condition(&r, "Progressing")?["reason"] == "ProvisioningTarget").then_some(r)
    });
    show("Pending", &provisioning);
    assert_eq!(provisioning["status"]["endpoint"], K3D_ENDPOINT);
    assert!(
        server
            .get_object("jobs", NS, "platform-migrate-1")
            .is_none(),
        "no copy before Harbor is Ready"
    );

    // Copying: the bulk copy; the source still takes pushes.
    let copying = wait_phase(&server, "Copying");
    assert_eq!(copying["status"]["endpoint"], K3D_ENDPOINT);
    let args = job_args(&server, "platform-migrate-1");
    assert!(
        args.contains(&format!("http://{K3D_ENDPOINT}"))
            && args.contains(&format!("https://{HARBOR}"))
            && args.contains("--no-verify"),
        "{args}"
    );
    assert!(!distribution_env(&server).contains("MAINTENANCE_READONLY"));
    // The Job pushes as a robot created for the switch: push and pull on the destination project
    // only, its credentials in a Secret the Job reads; never as admin.
    let project = harbor
        .project("ai-models")
        .expect("destination project created");
    assert_eq!(project["metadata"]["public"], "false");
    let robot = only_migration_robot(&harbor);
    assert_eq!(robot["name"], "robot$ai-models+migrate-registry-platform");
    assert_eq!(robot["level"], "project");
    assert_eq!(
        robot["duration"], 1,
        "short-lived: one day, Harbor's shortest"
    );
    assert_eq!(
        robot["permissions"],
        json!([{"kind": "project", "namespace": "ai-models", "access": [
            {"resource": "repository", "action": "pull"},
            {"resource": "repository", "action": "push"}]}])
    );
    let credentials = server
        .get_object("secrets", NS, "platform-migration-robot")
        .expect("robot Secret");
    let decoded = |key: &str| {
        use base64::Engine;
        let value = credentials["data"][key].as_str().unwrap_or_default();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(value)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(
        decoded("username"),
        "robot$ai-models+migrate-registry-platform"
    );
    assert_eq!(
        Some(decoded("password")),
        harbor.robot_secret("robot$ai-models+migrate-registry-platform")
    );
    let job = server.get_object("jobs", NS, "platform-migrate-1").unwrap();
    let env = job["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(
        env.contains(r#""key":"username","name":"platform-migration-robot""#)
            && env.contains(r#""key":"password","name":"platform-migration-robot""#)
            && !env.contains("admin"),
        "{env}"
    );
    assert!(args.contains("--dest-project=ai-models"), "{args}");
    complete_migration_job(
        &server,
        NS,
        "platform-migrate-1",
        r#"{"repositories":3,"tags":7,"blobsCopied":11,"blobsSkipped":4,"bytesCopied":123456,"problems":0}"#,
    );

    // Freezing: distribution's read-only setting rolls out before the second pass (held here
    // until the test plays the Deployment's rollout).
    let freezing = wait_for("phase Freezing", T, || {
        let r = registry(&server);
        (r["status"]["migration"]["phase"] == "Freezing").then_some(r)
    });
    show("Freezing", &freezing);
    assert_eq!(
        condition(&freezing, "Migrating").unwrap()["reason"],
        "Freezing"
    );
    wait_for("source rendered read-only", T, || {
        distribution_env(&server)
            .contains("REGISTRY_STORAGE_MAINTENANCE_READONLY")
            .then_some(())
    });
    // CatchingUp: a second pass, only what changed.
    let catching_up = wait_phase(&server, "CatchingUp");
    assert_eq!(catching_up["status"]["migration"]["sourceFrozen"], true);
    assert_eq!(
        condition(&catching_up, "SourceFrozen").unwrap()["status"],
        "True"
    );
    assert_eq!(
        catching_up["status"]["migration"]["tags"], 7,
        "bulk counts kept"
    );
    assert!(
        server
            .get_object("jobs", NS, "platform-migrate-1")
            .is_none(),
        "finished Job pruned"
    );
    assert!(job_args(&server, "platform-catchup-1").contains("--no-verify"));
    complete_migration_job(
        &server,
        NS,
        "platform-catchup-1",
        r#"{"repositories":3,"tags":7,"blobsCopied":0,"blobsSkipped":0,"bytesCopied":0,"problems":0}"#,
    );

    // Verifying: every tag's digest compared, nothing written.
    let verifying = wait_phase(&server, "Verifying");
    assert_eq!(
        verifying["status"]["migration"]["catchUp"]["blobsCopied"],
        0
    );
    assert_eq!(
        verifying["status"]["endpoint"], K3D_ENDPOINT,
        "no flip before verification"
    );
    assert!(job_args(&server, "platform-verify-1").contains("--verify-only"));
    // A pod that still names the old host keeps the old registry alive after the window.
    server.put_object(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "old-app", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": format!("{K3D_ENDPOINT}/ai/app:1.0")}]},
    }));
    complete_migration_job(
        &server,
        NS,
        "platform-verify-1",
        r#"{"repositories":3,"tags":7,"blobsCopied":0,"blobsSkipped":0,"bytesCopied":0,"problems":0}"#,
    );

    // Switched, then Grace: the endpoint is Harbor's, both hosts stay served and allowed.
    let grace = wait_phase(&server, "Grace");
    assert_eq!(grace["status"]["endpoint"], HARBOR);
    assert_eq!(grace["status"]["mode"], "Harbor");
    assert!(grace["status"]["migration"]["switchedAt"].is_string());
    assert!(grace["status"]["migration"]["graceEndsAt"].is_string());
    let nodes = grace["status"]["k3sRegistriesYaml"]
        .as_str()
        .unwrap_or_default();
    assert!(
        nodes.contains(&format!("{K3D_ENDPOINT}:")) && nodes.contains("^(.*)$: ai-models/$1"),
        "nodes keep pulling old references from Harbor: {nodes}"
    );
    wait_for("policy allows both hosts", T, || {
        let policy =
            server.get_object("clusterpolicies", "", "ai-workloads-restrict-registries")?;
        let text = policy.to_string();
        (text.contains(HARBOR) && text.contains(K3D_ENDPOINT)).then_some(())
    });
    assert!(
        server
            .get_object("deployments", NS, "platform-distribution")
            .is_some()
    );
    // The robot lived exactly as long as the Jobs: deleted in Harbor, then its Secret.
    wait_for("migration robot deleted after the flip", T, || {
        (harbor.robots().is_empty()
            && server
                .get_object("secrets", NS, "platform-migration-robot")
                .is_none())
        .then_some(())
    });
    assert!(harbor.take_violations().is_empty());
    let counted = wait_for("the old-host pod is counted", T, || {
        let r = registry(&server);
        (r["status"]["migration"]["oldHostPods"] == 1).then_some(r)
    });
    assert_eq!(
        counted["status"]["migration"]["oldHostPodExamples"],
        json!(["default/old-app"])
    );
    // The window (2s) ends; the pod still holds the old registry.
    std::thread::sleep(Duration::from_secs(3));
    let held = registry(&server);
    show("Grace (window over, 1 pod left)", &held);
    assert_eq!(held["status"]["migration"]["phase"], "Grace");
    assert!(
        server
            .get_object("deployments", NS, "platform-distribution")
            .is_some()
    );

    // Retired once the last old-host pod is gone.
    server.delete_object("pods", "default", "old-app");
    let retired = wait_phase(&server, "Retired");
    assert_eq!(condition(&retired, "Migrating").unwrap()["status"], "False");
    wait_for("policy follows the Harbor host only", T, || {
        let policy =
            server.get_object("clusterpolicies", "", "ai-workloads-restrict-registries")?;
        let text = policy.to_string();
        (text.contains(HARBOR) && !text.contains(K3D_ENDPOINT)).then_some(())
    });
    wait_for("old registry retired", T, || {
        let gone = server
            .get_object("deployments", NS, "platform-distribution")
            .is_none()
            && server
                .get_object("services", NS, "platform-distribution")
                .is_none()
            && server
                .get_object("configmaps", "kube-public", "local-registry-hosting")
                .is_none();
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
    let after = registry(&server);
    assert!(
        after["status"]["k3sRegistriesYaml"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("{K3D_ENDPOINT}:")),
        "the node alias of the old host outlives the old registry"
    );
    let events = server.list_objects("events.k8s.io/v1/events", None);
    for reason in ["Switched", "Retired"] {
        assert!(
            events.iter().any(|e| e["reason"] == reason),
            "{reason} event"
        );
    }
    for job in [
        "platform-migrate-2",
        "platform-catchup-2",
        "platform-verify-2",
    ] {
        assert!(
            server.get_object("jobs", NS, job).is_none(),
            "{job}: no phase ran twice"
        );
    }
}

#[test]
fn failed_migration_keeps_old_registry_serving_and_retries() {
    let Some(server) = switch_server() else {
        return;
    };
    let Some(harbor) = harbor_for_switch(&server, NS) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &["--harbor-api-url", &harbor.url()]);
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
