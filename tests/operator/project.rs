//! Scenario tests of the RegistryProject controller: the real binary against the real control plane
//! and the swagger-checked fake Harbor (`tests/support/harbor_fake.rs`): project, robot and pull
//! Secrets in two namespaces; no Harbor write at rest; drift corrected; rotation copied everywhere;
//! an entry removed; Harbor down and back; delete keeps a non-empty project; K3d mode refused.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::support::harbor_fake::{ADMIN_PASSWORD, HarborFake};
use crate::support::scenario::*;

pub(crate) const REG_NS: &str = "registry";
pub(crate) const NS: &str = "apps";
pub(crate) const T: Duration = Duration::from_secs(60);

/// The Harbor Registry `registry/platform`, its admin password in `harbor-admin`.
pub(crate) fn harbor_registry(server: &ControlPlane) {
    server.put_object(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "harbor-admin", "namespace": REG_NS},
        "stringData": {"password": ADMIN_PASSWORD},
    }));
    server.put_object(json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "platform", "namespace": REG_NS},
        "spec": {"mode": "Harbor", "host": "harbor.ai-platform.localhost", "harbor": {
            "adminPasswordSecretRef": {"name": "harbor-admin", "key": "password"},
            "database": {"external": {"host": "postgresql-rw.storage.svc", "username": "harbor",
                                      "passwordSecretRef": {"name": "harbor-database"}}},
        }},
    }));
}

pub(crate) fn registry_project(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "RegistryProject",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    })
}

pub(crate) fn project(server: &ControlPlane, name: &str) -> Option<Value> {
    server.get_object("registryprojects", NS, name)
}

/// Ready's reason once the current generation is observed.
fn ready_reason(server: &ControlPlane, name: &str) -> Option<String> {
    let object = project(server, name)?;
    let ready = condition(&object, "Ready")?;
    (ready["observedGeneration"] == object["metadata"]["generation"])
        .then(|| ready["reason"].as_str().map(str::to_string))?
}

pub(crate) fn wait_reason(server: &ControlPlane, name: &str, reason: &str) {
    wait_for(&format!("{name}: {reason}"), T, || {
        ready_reason(server, name).filter(|r| r == reason).map(drop)
    });
}

/// The robot credentials a dockerconfigjson Secret carries for Harbor's host.
fn pull_credentials(server: &ControlPlane, ns: &str, name: &str) -> Option<(String, String)> {
    let secret = server.get_object("secrets", ns, name)?;
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(
        secret["metadata"]["labels"]["registry.aisp.dev/owner-kind"],
        "RegistryProject"
    );
    let config = base64::engine::general_purpose::STANDARD
        .decode(secret["data"][".dockerconfigjson"].as_str()?)
        .ok()?;
    let config: Value = serde_json::from_slice(&config).ok()?;
    let auth = &config["auths"]["harbor.ai-platform.localhost"];
    Some((
        auth["username"].as_str()?.to_string(),
        auth["password"].as_str()?.to_string(),
    ))
}

#[test]
fn project_robot_pull_secrets_drift_rotation_outage_and_delete() {
    let Some(server) = server() else {
        return;
    };
    let Some(mut harbor) = HarborFake::start() else {
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
    harbor_registry(&server);
    for ns in ["ai-apps", "ai-jobs"] {
        server
            .put_object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    server.put_object(registry_project(
        "team-a",
        json!({
            "registryRef": {"name": "platform", "namespace": REG_NS},
            "storageQuota": "10Gi", "autoScan": true, "requireCosign": true,
            "preventVulnerable": {"severity": "High"},
            "pullSecrets": [{"namespace": "ai-apps", "name": "harbor-pull"},
                            {"namespace": "ai-jobs", "name": "harbor-pull"}],
        }),
    ));
    wait_reason(&server, "team-a", "ProjectReady");

    // The project as declared, a pull robot, its credentials in both namespaces.
    let created = harbor.project("team-a").expect("project created");
    assert_eq!(created["metadata"]["public"], "false");
    assert_eq!(created["metadata"]["auto_scan"], "true");
    assert_eq!(created["metadata"]["enable_content_trust_cosign"], "true");
    assert_eq!(created["metadata"]["prevent_vul"], "true");
    assert_eq!(created["metadata"]["severity"], "high");
    let status = project(&server, "team-a").unwrap()["status"].clone();
    assert_eq!(status["projectId"], created["project_id"]);
    assert_eq!(status["projectName"], "team-a");
    assert!(status["robotSecretRefreshedAt"].is_string(), "{status}");
    let secret = harbor.robot_secret("robot$team-a+pull").expect("robot");
    for ns in ["ai-apps", "ai-jobs"] {
        let (username, password) = pull_credentials(&server, ns, "harbor-pull").unwrap();
        assert_eq!(username, "robot$team-a+pull");
        assert_eq!(password, secret, "{ns}");
    }

    // At rest: resyncs every 2 s read Harbor and write nothing to it.
    let writes = harbor.writes();
    let requests = harbor.requests().len();
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(harbor.writes(), writes, "no write to Harbor at rest");
    assert!(
        harbor.requests().len() > requests,
        "resyncs did read Harbor"
    );

    // Drift made in Harbor's UI is corrected.
    harbor.tamper_project("team-a", Some(true), Some(-1));
    wait_for("visibility and quota corrected", T, || {
        let p = harbor.project("team-a")?;
        (p["metadata"]["public"] == "false" && harbor.count(&["updateQuota"]) >= 1).then_some(())
    });

    // Rotation: every copy gets the new secret.
    server.merge_patch_object(
        "registryprojects",
        NS,
        "team-a",
        json!({"spec": {"robotSecretRotation": "3s"}}),
    );
    let rotated = wait_for("secret refreshed and copied", T, || {
        let now = harbor.robot_secret("robot$team-a+pull")?;
        let copies = ["ai-apps", "ai-jobs"]
            .iter()
            .map(|ns| pull_credentials(&server, ns, "harbor-pull").map(|c| c.1))
            .collect::<Option<Vec<_>>>()?;
        (now != secret && copies.iter().all(|c| *c == now)).then_some(now)
    });
    assert!(harbor.count(&["RefreshSec"]) >= 1);
    server.merge_patch_object(
        "registryprojects",
        NS,
        "team-a",
        json!({"spec": {"robotSecretRotation": null, "pullSecrets": [{"namespace": "ai-apps", "name": "harbor-pull"}]}}),
    );

    // An entry removed: its Secret goes, the other stays.
    wait_for("ai-jobs Secret deleted", T, || {
        server
            .get_object("secrets", "ai-jobs", "harbor-pull")
            .is_none()
            .then_some(())
    });
    assert!(pull_credentials(&server, "ai-apps", "harbor-pull").is_some());

    // Harbor down: HarborUnavailable (Degraded), no crash; back: Ready again.
    harbor.stop();
    server.merge_patch_object(
        "registryprojects",
        NS,
        "team-a",
        json!({"spec": {"public": true}}),
    );
    wait_reason(&server, "team-a", "HarborUnavailable");
    let down = project(&server, "team-a").unwrap();
    assert_eq!(condition(&down, "Degraded").unwrap()["status"], "True");
    harbor.restart();
    wait_reason(&server, "team-a", "ProjectReady");
    assert_eq!(
        harbor.project("team-a").unwrap()["metadata"]["public"],
        "true"
    );

    // An empty project goes with its RegistryProject.
    server.put_object(registry_project(
        "scratch",
        json!({"registryRef": {"name": "platform", "namespace": REG_NS}}),
    ));
    wait_reason(&server, "scratch", "ProjectReady");
    assert!(harbor.project("scratch").is_some());
    server.delete_object("registryprojects", NS, "scratch");
    wait_for("empty project deleted", T, || {
        harbor.project("scratch").is_none().then_some(())
    });

    // Retain keeps a project holding repositories; robots and Secrets go.
    harbor.set_repo_count("team-a", 2);
    server.delete_object("registryprojects", NS, "team-a");
    wait_for("RegistryProject gone", T, || {
        project(&server, "team-a").is_none().then_some(())
    });
    assert!(harbor.project("team-a").is_some(), "non-empty project kept");
    assert!(
        harbor
            .robots()
            .iter()
            .all(|r| r["name"] != "robot$team-a+pull"),
        "robot deleted"
    );
    assert!(
        server
            .get_object("secrets", "ai-apps", "harbor-pull")
            .is_none()
    );
    assert!(
        server
            .get_object("secrets", NS, "team-a-harbor-pull")
            .is_none()
    );

    // No secret in the log.
    let log = operator.log();
    for secret in [ADMIN_PASSWORD, &secret, &rotated] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}

#[test]
fn a_k3d_registry_is_refused_with_needs_harbor() {
    let Some(server) = server() else {
        return;
    };
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let harbor_url = harbor.url();
    let _operator = Operator::start(&server, logs.path(), &["--harbor-api-url", &harbor_url]);
    server.put_object(k3d_registry(NS, "local", json!({"adopt": "Never"})));
    server.put_object(registry_project(
        "team-b",
        json!({"registryRef": {"name": "local"},
               "pullSecrets": [{"namespace": "ai-apps", "name": "harbor-pull"}]}),
    ));
    wait_reason(&server, "team-b", "NeedsHarbor");
    let object = project(&server, "team-b").unwrap();
    let message = condition(&object, "Ready").unwrap()["message"].to_string();
    assert!(message.contains("K3d mode"), "{message}");
    assert!(harbor.requests().is_empty(), "nothing sent to Harbor");
    assert!(
        server
            .get_object("secrets", "ai-apps", "harbor-pull")
            .is_none()
    );

    // A reference to no Registry waits for it.
    server.put_object(registry_project(
        "team-c",
        json!({"registryRef": {"name": "missing"}}),
    ));
    wait_reason(&server, "team-c", "WaitingForRegistry");
}
