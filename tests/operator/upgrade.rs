//! Scenario tests of Harbor version changes with the real binary, the real control plane (with
//! CloudNativePG's CRDs, the Backup CRD of the same release included) and the swagger-checked fake
//! Harbor API: refused downgrades and jumps; an allowed change step by step (read-only on → database
//! backup → core → the other components → read-only off), resumed after the operator is killed.

use std::time::Duration;

use crate::support::cluster::{ControlPlane, Upstream};
use crate::support::harbor_fake::{ADMIN_PASSWORD, HarborFake};
use crate::support::scenario::*;
use serde_json::{Value, json};

const NS: &str = "registry";
const T: Duration = Duration::from_secs(60);
const BACKUP: &str = "platform-harbor-db-upgrade-2-15-2";

fn registry(server: &ControlPlane) -> Value {
    server
        .get_object("registries", NS, "platform")
        .expect("registry")
}

fn image(server: &ControlPlane, component: &str) -> String {
    server
        .get_object("deployments", NS, &format!("platform-harbor-{component}"))
        .and_then(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_default()
}

fn set_harbor(server: &ControlPlane, harbor: Value) {
    server.merge_patch_object(
        "registries",
        NS,
        "platform",
        json!({"spec": {"harbor": harbor}}),
    );
}

fn admin_secret(server: &ControlPlane) {
    server.put_object(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "harbor-admin", "namespace": NS},
        "stringData": {"password": ADMIN_PASSWORD},
    }));
}

fn operator(server: &ControlPlane, logs: &std::path::Path, harbor: &HarborFake) -> Operator {
    Operator::start(server, logs, &["--harbor-api-url", &harbor.url()])
}

fn mark_ready(server: &ControlPlane) {
    mark_children_ready(server, NS, "platform");
    if server.served("clusters")
        && let Some(cluster) = server.get_object("clusters", NS, "platform-harbor-db")
        && cluster["status"]["conditions"].is_null()
    {
        server.patch_status("clusters", NS, "platform-harbor-db", json!({"conditions": [{"type": "Ready", "status": "True", "reason": "ClusterIsReady", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}));
    }
}

fn wait_running(server: &ControlPlane, version: &str) -> Value {
    wait_for(&format!("Harbor {version} running"), T, || {
        mark_ready(server);
        let r = registry(server);
        (r["status"]["harborVersion"] == version
            && r["status"]["upgrade"].is_null()
            && condition(&r, "Ready")?["reason"] == "Available")
            .then_some(r)
    })
}

fn ready_reason(server: &ControlPlane) -> String {
    condition(&registry(server), "Ready")
        .map(|c| c["reason"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// Wait for an upgrade step (without playing the cluster's part) and print the status.
fn wait_step(server: &ControlPlane, step: &str) -> Value {
    let r = wait_for(&format!("upgrade step {step}"), T, || {
        let r = registry(server);
        (r["status"]["upgrade"]["step"] == step).then_some(r)
    });
    eprintln!(
        "UPGRADE {step}: upgrade={} harborVersion={} Progressing={}",
        r["status"]["upgrade"],
        r["status"]["harborVersion"],
        condition(&r, "Progressing").unwrap_or_default()["message"]
    );
    r
}

#[test]
fn harbor_version_changes_follow_the_upgrade_path_and_refuse_downgrades() {
    let Some(server) = server() else {
        return;
    };
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = operator(&server, logs.path(), &harbor);
    admin_secret(&server);
    server.put_object(json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "platform", "namespace": NS},
        "spec": {"mode": "Harbor", "host": "harbor.ai-platform.localhost", "harbor": {
            "version": "2.12.0",
            "adminPasswordSecretRef": {"name": "harbor-admin", "key": "password"},
            "database": {"external": {"host": "postgresql-rw.storage.svc", "username": "harbor",
                "passwordSecretRef": {"name": "harbor-database"}}}}},
    }));
    wait_running(&server, "2.12.0");

    // Three minor releases ahead: refused with the path; nothing applied, 2.12.0 keeps serving.
    set_harbor(&server, json!({"version": "2.15.2"}));
    wait_for("UpgradeRefused", T, || {
        (ready_reason(&server) == "UpgradeRefused").then_some(())
    });
    let message = condition(&registry(&server), "Ready").unwrap()["message"].to_string();
    assert!(
        message.contains("2.12.0 → 2.14.x (its latest patch) → 2.15.2"),
        "{message}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        image(&server, "core"),
        "docker.io/goharbor/harbor-core:v2.12.0"
    );
    assert!(
        !harbor.read_only(),
        "a refused change does not touch Harbor"
    );

    // Two minors ahead is Harbor's documented step: read-only first, core, the rest, read-only off.
    set_harbor(&server, json!({"version": "2.14.0"}));
    wait_for("core v2.14.0 while Harbor is read-only", T, || {
        mark_ready(&server);
        (image(&server, "core").ends_with(":v2.14.0")).then_some(())
    });
    assert!(
        harbor.read_only(),
        "core changes only once Harbor is read-only"
    );
    wait_running(&server, "2.14.0");
    assert!(image(&server, "portal").ends_with(":v2.14.0"));
    assert!(!harbor.read_only(), "read-only lifted at the end");

    // Back to 2.13.0: a downgrade, refused until allowed.
    set_harbor(&server, json!({"version": "2.13.0"}));
    wait_for("UpgradeRefused", T, || {
        (ready_reason(&server) == "UpgradeRefused").then_some(())
    });
    assert!(image(&server, "core").ends_with(":v2.14.0"));
    set_harbor(&server, json!({"allowDowngrade": true}));
    wait_running(&server, "2.13.0");
    assert!(image(&server, "core").ends_with(":v2.13.0"));
    assert!(harbor.take_violations().is_empty());
}

/// The managed database is backed up between read-only and core; the operator is killed in the
/// backup and core steps and resumes each; the Backup outlives the upgrade.
#[test]
fn an_allowed_upgrade_backs_up_then_upgrades_core_first_and_resumes_after_kills() {
    let Some(server) = ControlPlane::builder().with(Upstream::Cnpg).start() else {
        return;
    };
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let mut op = operator(&server, logs.path(), &harbor);
    admin_secret(&server);
    server.put_object(json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "platform", "namespace": NS},
        "spec": {"mode": "Harbor", "host": "harbor.ai-platform.localhost", "harbor": {
            "version": "2.14.0",
            "adminPasswordSecretRef": {"name": "harbor-admin", "key": "password"},
            "database": {"managed": {}, "backup": {"schedule": "0 0 2 * * *", "method": "VolumeSnapshot",
                "volumeSnapshot": {"className": "csi-snapclass"}}}}},
    }));
    wait_running(&server, "2.14.0");
    set_harbor(&server, json!({"version": "2.15.2"}));

    let backing_up = wait_step(&server, "BackingUp");
    assert_eq!(backing_up["status"]["upgrade"]["from"], "2.14.0");
    assert!(
        harbor.read_only(),
        "the backup is taken with Harbor read-only"
    );
    let backup = wait_for("the pre-upgrade Backup", T, || {
        server.get_object("backups", NS, BACKUP)
    });
    assert_eq!(backup["spec"]["cluster"]["name"], "platform-harbor-db");
    assert_eq!(backup["spec"]["method"], "volumeSnapshot");
    assert!(
        image(&server, "core").ends_with(":v2.14.0"),
        "nothing upgraded before the backup"
    );

    // Killed while the backup runs: the restarted operator waits for the same Backup.
    op.kill();
    op = operator(&server, logs.path(), &harbor);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(registry(&server)["status"]["upgrade"]["step"], "BackingUp");
    server.patch_status("backups", NS, BACKUP, json!({"phase": "completed"}));

    let core = wait_step(&server, "Core");
    assert_eq!(core["status"]["upgrade"]["to"], "2.15.2");
    wait_for("core at 2.15.2 first", T, || {
        image(&server, "core").ends_with(":v2.15.2").then_some(())
    });
    assert!(
        image(&server, "portal").ends_with(":v2.14.0"),
        "the others wait for core"
    );
    assert!(image(&server, "jobservice").ends_with(":v2.14.0"));

    // Killed in the core step: resumes there.
    op.kill();
    let _op = operator(&server, logs.path(), &harbor);
    let done = wait_running(&server, "2.15.2");
    eprintln!(
        "UPGRADE done: harborVersion={} upgrade={}",
        done["status"]["harborVersion"], done["status"]["upgrade"]
    );
    assert!(image(&server, "portal").ends_with(":v2.15.2"));
    assert!(!harbor.read_only(), "read-only lifted at the end");
    assert!(
        server.get_object("backups", NS, BACKUP).is_some(),
        "the pre-upgrade Backup is kept"
    );
    assert!(harbor.take_violations().is_empty());
}
