//! Scenario tests of Harbor day-2 objects and the K3d garbage collector: the real binary against the
//! real control plane with CloudNativePG's upstream CRDs (the API server validates every object the
//! operator writes against them; no CNPG operator runs, so the test writes the status CNPG would).

use std::time::Duration;

use crate::support::cluster::{ControlPlane, Upstream};
use crate::support::scenario::*;
use base64::Engine;
use serde_json::{Value, json};

const NS: &str = "registry";
const DB_NS: &str = "storage";
const T: Duration = Duration::from_secs(60);

fn cnpg_server() -> Option<ControlPlane> {
    ControlPlane::builder().with(Upstream::Cnpg).start()
}

/// A Harbor Registry whose database lives on the platform's CloudNativePG Cluster `storage/postgresql`.
fn on_existing_cluster() -> Value {
    json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "platform", "namespace": NS},
        "spec": {"mode": "Harbor", "host": "harbor.ai-platform.localhost",
                 "harbor": {"database": {"cnpg": {"clusterRef": {"name": "postgresql", "namespace": DB_NS}, "name": "harbor"}}}},
    })
}

fn platform_cluster() -> Value {
    json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "postgresql", "namespace": DB_NS},
        "spec": {"instances": 1, "storage": {"size": "5Gi"}},
    })
}

/// The Harbor Registry `registry/platform` with these `spec.harbor` settings.
fn harbor_platform(harbor: Value) -> Value {
    json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "platform", "namespace": NS},
        "spec": {"mode": "Harbor", "host": "harbor.ai-platform.localhost", "harbor": harbor},
    })
}

/// An external database (nothing of it is checked by the scenarios that use it).
fn external_database() -> Value {
    json!({"external": {"host": "postgresql-rw.storage.svc", "username": "harbor",
                        "passwordSecretRef": {"name": "harbor-database"}}})
}

fn registry(server: &ControlPlane) -> Option<Value> {
    server.get_object("registries", NS, "platform")
}

fn ready_reason(server: &ControlPlane) -> Option<String> {
    let r = registry(server)?;
    condition(&r, "Ready")?["reason"]
        .as_str()
        .map(str::to_string)
}

fn secret_value(secret: &Value, key: &str) -> String {
    let encoded = secret["data"][key].as_str().expect("key present");
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap()
}

fn applied(server: &ControlPlane, resource: &str, name: &str) {
    server.patch_status(
        resource,
        DB_NS,
        name,
        json!({"applied": true, "observedGeneration": 1}),
    );
}

#[test]
fn existing_cnpg_cluster_gets_role_database_and_password_copy_and_loses_them_with_the_registry() {
    let Some(server) = cnpg_server() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(on_existing_cluster());

    // The referenced Cluster does not exist: a clear condition, nothing applied.
    let reason = wait_for("ClusterNotFound", T, || {
        ready_reason(&server).filter(|r| r == "ClusterNotFound")
    });
    assert_eq!(reason, "ClusterNotFound");
    let blocked = registry(&server).unwrap();
    let message = condition(&blocked, "Ready").unwrap()["message"].to_string();
    assert!(
        message.contains("spec.harbor.database.cnpg.clusterRef")
            && message.contains("storage/postgresql"),
        "{message}"
    );
    assert!(names_of(&server, "databaseroles", Some(DB_NS)).is_empty());
    assert!(names_of(&server, "deployments", Some(NS)).is_empty());

    // Once the Cluster exists (the resync looks again), role, database and password arrive.
    server.put_object(platform_cluster());
    let role = wait_for("DatabaseRole", T, || {
        server.get_object("databaseroles", DB_NS, "registry-platform-harbor")
    });
    let database = wait_for("Database", T, || {
        server.get_object("databases", DB_NS, "registry-platform-harbor")
    });
    assert_eq!(role["spec"]["cluster"]["name"], "postgresql");
    assert_eq!(role["spec"]["name"], "harbor");
    assert_eq!(role["spec"]["login"], true);
    assert_eq!(role["spec"]["databaseRoleReclaimPolicy"], "retain");
    assert_eq!(database["spec"]["owner"], "harbor");
    assert_eq!(database["spec"]["databaseReclaimPolicy"], "retain");
    let copy_name = role["spec"]["passwordSecret"]["name"].as_str().unwrap();
    let copy = server
        .get_object("secrets", DB_NS, copy_name)
        .expect("password copied to the Cluster's namespace");
    let home = server
        .get_object("secrets", NS, "platform-harbor-database-secret")
        .expect("password generated in the Registry's namespace");
    assert_eq!(copy["type"], "kubernetes.io/basic-auth");
    assert_eq!(secret_value(&copy, "username"), "harbor");
    assert_eq!(
        secret_value(&copy, "password"),
        secret_value(&home, "password")
    );
    assert_eq!(secret_value(&home, "password").len(), 32);
    assert!(
        copy["metadata"]["ownerReferences"].is_null(),
        "no owner reference across namespaces (the garbage collector would delete the copy)"
    );
    assert_eq!(
        home["metadata"]["ownerReferences"][0]["name"], "platform",
        "the home Secret goes with its Registry"
    );
    for object in [&role, &database] {
        assert!(object["metadata"]["ownerReferences"].is_null());
        assert_eq!(
            object["metadata"]["labels"]["registry.aisp.dev/owner-name"],
            "platform"
        );
    }

    // Harbor connects to the Cluster's read-write Service; DatabaseReady follows CNPG's `applied`.
    let core = wait_for("core", T, || {
        server.get_object("deployments", NS, "platform-harbor-core")
    });
    let env = core["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(env.contains("postgresql-rw.storage.svc"), "{env}");
    assert!(env.contains("platform-harbor-database-secret"), "{env}");
    assert!(
        !env.contains(&secret_value(&home, "password")),
        "the password only by reference"
    );
    let waiting = wait_for("DatabaseReady=False", T, || {
        let r = registry(&server)?;
        let c = condition(&r, "DatabaseReady")?;
        (c["status"] == "False").then_some(c)
    });
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .contains("registry-platform-harbor"),
        "{waiting}"
    );
    applied(&server, "databaseroles", "registry-platform-harbor");
    applied(&server, "databases", "registry-platform-harbor");
    wait_for("Ready=True", T, || {
        mark_children_ready(&server, NS, "platform");
        let r = registry(&server)?;
        (condition(&r, "DatabaseReady")?["status"] == "True"
            && condition(&r, "Ready")?["status"] == "True")
            .then_some(())
    });

    // Deleting the Registry removes what it wrote in the Cluster's namespace (no owner reference
    // reaches there); the platform's Cluster stays untouched.
    server.delete_object("registries", NS, "platform");
    wait_for("Registry gone", T, || {
        registry(&server).is_none().then_some(())
    });
    wait_for("role, database and copy deleted", T, || {
        (server
            .get_object("databaseroles", DB_NS, "registry-platform-harbor")
            .is_none()
            && server
                .get_object("databases", DB_NS, "registry-platform-harbor")
                .is_none()
            && server.get_object("secrets", DB_NS, copy_name).is_none())
        .then_some(())
    });
    assert!(server.get_object("clusters", DB_NS, "postgresql").is_some());
    drop(operator);
}

#[test]
fn cnpg_database_without_cnpg_names_the_missing_kinds() {
    let Some(server) = ControlPlane::builder().start() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(on_existing_cluster());
    wait_for("CNPGNotInstalled", T, || {
        ready_reason(&server).filter(|r| r == "CNPGNotInstalled")
    });
    let r = registry(&server).unwrap();
    let message = condition(&r, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("spec.harbor.database.cnpg needs CloudNativePG"),
        "{message}"
    );
    assert!(
        message.contains("databaseroles.postgresql.cnpg.io"),
        "{message}"
    );
    assert!(
        names_of(&server, "secrets", Some(NS)).is_empty(),
        "nothing applied or generated"
    );
}

#[test]
fn backups_render_a_scheduled_backup_and_report_the_last_one() {
    let Some(server) = cnpg_server() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(harbor_platform(json!({"database": {
        "managed": {"instances": 1},
        "backup": {"schedule": "0 0 3 * * *", "method": "VolumeSnapshot",
                   "volumeSnapshot": {"className": "csi-snapclass"}},
    }})));
    let backup = wait_for("ScheduledBackup", T, || {
        server.get_object("scheduledbackups", NS, "platform-harbor-db-backup")
    });
    assert_eq!(backup["spec"]["cluster"]["name"], "platform-harbor-db");
    assert_eq!(backup["spec"]["schedule"], "0 0 3 * * *");
    assert_eq!(backup["spec"]["method"], "volumeSnapshot");
    assert_eq!(backup["spec"]["backupOwnerReference"], "none");
    assert_eq!(backup["metadata"]["ownerReferences"][0]["kind"], "Registry");
    let cluster = server
        .get_object("clusters", NS, "platform-harbor-db")
        .expect("managed Cluster");
    assert_eq!(
        cluster["spec"]["backup"]["volumeSnapshot"]["className"],
        "csi-snapclass"
    );
    assert!(registry(&server).unwrap()["status"]["lastBackupTime"].is_null());

    server.patch_status(
        "clusters",
        NS,
        "platform-harbor-db",
        json!({"lastSuccessfulBackup": "2026-12-03T03:00:12Z",
               "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterIsReady", "message": "", "lastTransitionTime": "2026-12-03T00:00:00Z"}]}),
    );
    wait_for("status.lastBackupTime", T, || {
        mark_children_ready(&server, NS, "platform");
        (registry(&server)?["status"]["lastBackupTime"] == "2026-12-03T03:00:12Z").then_some(())
    });

    // Backups switched off: the ScheduledBackup is pruned (the Backups it made are not ours).
    server.merge_patch_object(
        "registries",
        NS,
        "platform",
        json!({"spec": {"harbor": {"database": {"backup": null}}}}),
    );
    wait_for("ScheduledBackup pruned", T, || {
        server
            .get_object("scheduledbackups", NS, "platform-harbor-db-backup")
            .is_none()
            .then_some(())
    });
}

#[test]
fn hosted_k3d_registry_gets_a_garbage_collection_cron_job() {
    let Some(server) = server() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(k3d_registry(
        NS,
        "gc",
        json!({"adopt": "Never", "gc": {"schedule": "0 3 * * 0", "deleteUntagged": true}}),
    ));
    let cron = wait_for("CronJob", T, || {
        server.get_object("cronjobs", NS, "gc-distribution-gc")
    });
    assert_eq!(cron["spec"]["schedule"], "0 3 * * 0");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    assert_eq!(cron["metadata"]["ownerReferences"][0]["name"], "gc");
    let command =
        cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
            .to_string();
    assert!(
        command.contains("garbage-collect") && command.contains("--delete-untagged"),
        "{command}"
    );

    server.merge_patch_object(
        "registries",
        NS,
        "gc",
        json!({"spec": {"k3d": {"gc": null}}}),
    );
    wait_for("CronJob pruned", T, || {
        server
            .get_object("cronjobs", NS, "gc-distribution-gc")
            .is_none()
            .then_some(())
    });
}

fn gc_registry_env(server: &ControlPlane) -> String {
    server
        .get_object("deployments", NS, "gc-distribution")
        .map(|d| d["spec"]["template"]["spec"]["containers"][0]["env"].to_string())
        .unwrap_or_default()
}

/// Garbage collection runs inside a read-only window: the CronJob's Job is created suspended, the
/// operator makes the registry read-only, releases the Job once that rolled out, and makes the
/// registry writable again when the Job finished. The Job is never pruned as if it were stale.
#[test]
fn k3d_garbage_collection_runs_inside_a_read_only_window() {
    let Some(server) = server() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(k3d_registry(
        NS,
        "gc",
        json!({"adopt": "Never", "gc": {"schedule": "0 3 * * 0", "deleteUntagged": true}}),
    ));
    let cron = wait_for("CronJob", T, || {
        mark_children_ready(&server, NS, "gc");
        server.get_object("cronjobs", NS, "gc-distribution-gc")
    });
    assert_eq!(cron["spec"]["jobTemplate"]["spec"]["suspend"], true);
    wait_for("k3d Ready", T, || {
        mark_children_ready(&server, NS, "gc");
        let r = server.get_object("registries", NS, "gc")?;
        (condition(&r, "Ready")?["status"] == "True").then_some(())
    });
    assert!(!gc_registry_env(&server).contains("MAINTENANCE_READONLY"));

    // The CronJob controller's part: a Job from the template, owned by the CronJob.
    let template = &cron["spec"]["jobTemplate"];
    server.put_object(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "gc-distribution-gc-29000000", "namespace": NS,
            "labels": template["metadata"]["labels"],
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "gc-distribution-gc",
                "uid": cron["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]},
        "spec": template["spec"],
    }));
    wait_for("registry read-only for the collection", T, || {
        gc_registry_env(&server)
            .contains("REGISTRY_STORAGE_MAINTENANCE_READONLY")
            .then_some(())
    });
    wait_for("Progressing GarbageCollecting", T, || {
        let r = server.get_object("registries", NS, "gc")?;
        (condition(&r, "Progressing")?["reason"] == "GarbageCollecting").then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let job = server
        .get_object("jobs", NS, "gc-distribution-gc-29000000")
        .expect("the CronJob's Job is not pruned");
    assert_eq!(
        job["spec"]["suspend"], true,
        "held until the read-only rollout is done"
    );

    wait_for("Job released once read-only", T, || {
        mark_children_ready(&server, NS, "gc");
        let job = server.get_object("jobs", NS, "gc-distribution-gc-29000000")?;
        (job["spec"]["suspend"] == false).then_some(())
    });
    complete_migration_job(&server, NS, "gc-distribution-gc-29000000", "{}");
    wait_for("writable again", T, || {
        mark_children_ready(&server, NS, "gc");
        let r = server.get_object("registries", NS, "gc")?;
        (!gc_registry_env(&server).contains("MAINTENANCE_READONLY")
            && condition(&r, "Progressing")?["reason"] != "GarbageCollecting")
            .then_some(())
    });
}

fn set_version(server: &ControlPlane, harbor: Value) {
    server.merge_patch_object(
        "registries",
        NS,
        "platform",
        json!({"spec": {"harbor": harbor}}),
    );
}

/// Ready at `version`: every child plays ready and `status.harborVersion` reports it.
fn wait_running(server: &ControlPlane, version: &str) {
    wait_for(&format!("Harbor {version} running"), T, || {
        mark_children_ready(server, NS, "platform");
        let r = registry(server)?;
        (r["status"]["harborVersion"] == version && ready_reason(server)? == "Available")
            .then_some(())
    });
}

/// Harbor's GC schedule as the fake holds it, read with the operator's own client.
fn harbor_gc(harbor: &crate::support::harbor_fake::HarborFake) -> Option<(String, String)> {
    let client = registry_operator::harbor::HarborClient::new(
        &harbor.url(),
        "admin",
        crate::support::harbor_fake::ADMIN_PASSWORD,
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let history = runtime.block_on(client.gc_schedule()).unwrap()?;
    Some((
        history.schedule?.cron?,
        history.job_parameters.unwrap_or_default(),
    ))
}

#[test]
fn harbor_read_only_and_gc_are_kept_through_its_api() {
    let Some(server) = server() else {
        return;
    };
    let Some(mut harbor) = crate::support::harbor_fake::HarborFake::start() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let harbor_url = harbor.url();
    let operator = Operator::start(
        &server,
        logs.path(),
        &[
            "--harbor-api-url",
            &harbor_url,
            "--requeue",
            "1s",
            "--resync",
            "2s",
        ],
    );
    server.put_object(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "harbor-admin", "namespace": NS},
        "stringData": {"password": crate::support::harbor_fake::ADMIN_PASSWORD},
    }));
    server.put_object(harbor_platform(json!({
        "readOnly": true,
        "gc": {"schedule": "0 0 3 * * 6", "deleteUntagged": true},
        "adminPasswordSecretRef": {"name": "harbor-admin", "key": "password"},
        "database": external_database(),
    })));
    assert!(!harbor.read_only(), "nothing sent before core runs");
    wait_running(&server, "2.15.2");
    wait_for("Harbor read-only and its GC scheduled", T, || {
        (harbor.read_only() && harbor_gc(&harbor).is_some()).then_some(())
    });
    let (cron, parameters) = harbor_gc(&harbor).unwrap();
    assert_eq!(cron, "0 0 3 * * 6");
    assert!(
        parameters.contains("\"delete_untagged\":true"),
        "{parameters}"
    );

    // Steady: resyncs every 2 s read Harbor's settings and write nothing.
    let writes = harbor.writes();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(harbor.writes(), writes, "no write to Harbor at rest");
    assert!(
        harbor.requests().len() > writes,
        "resyncs did read Harbor's settings"
    );

    // Drift made in Harbor is corrected; a spec change is applied.
    set_version(&server, json!({"readOnly": false}));
    wait_for("Harbor writable again", T, || {
        (!harbor.read_only()).then_some(())
    });

    // Harbor unreachable: Ready stays (Harbor serves images), Degraded says why.
    harbor.stop();
    set_version(&server, json!({"readOnly": true}));
    let degraded = wait_for("HarborUnavailable", T, || {
        let r = registry(&server)?;
        let degraded = condition(&r, "Degraded")?;
        (degraded["reason"] == "HarborUnavailable").then_some(r)
    });
    assert_eq!(condition(&degraded, "Ready").unwrap()["status"], "True");
    let message = condition(&degraded, "Degraded").unwrap()["message"].to_string();
    // It names the setting whose sync failed: read-only first, or the GC schedule when a request
    // still in flight on a kept-alive connection completed the read-only step as Harbor stopped.
    assert!(
        message.contains("spec.harbor.readOnly") || message.contains("spec.harbor.gc"),
        "{message}"
    );
    assert!(message.contains("Harbor is unreachable"), "{message}");
    assert!(
        !operator
            .log()
            .contains(crate::support::harbor_fake::ADMIN_PASSWORD)
            && !message.contains(crate::support::harbor_fake::ADMIN_PASSWORD),
        "the admin password is never logged or reported"
    );
}
