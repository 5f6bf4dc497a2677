//! Scenario tests of Harbor mode: the real binary against the fake API server, CNPG served or not;
//! generated secrets are created once, survive restarts, and never appear in logs, events or status.

mod scenario;
mod support;

use std::time::Duration;

use base64::Engine;
use scenario::*;
use serde_json::{Value, json};
use support::{ApiResourceSpec, FakeApiServer};

const NS: &str = "registry";
const T: Duration = Duration::from_secs(60);

fn harbor_server(with_cnpg: bool) -> FakeApiServer {
    let mut builder = FakeApiServer::builder()
        .with_core()
        .with_crd(ApiResourceSpec::registry())
        .with_crd(ApiResourceSpec::image_policy());
    if with_cnpg {
        builder = builder.with_crd(ApiResourceSpec::cnpg_cluster());
    }
    builder.start()
}

fn harbor_registry() -> Value {
    json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "platform", "namespace": NS},
        "spec": {"mode": "Harbor", "host": "harbor.ai-platform.localhost", "harbor": {"database": {"managed": {"instances": 1}}}},
    })
}

fn registry(server: &FakeApiServer) -> Option<Value> {
    server.get_object("registries", NS, "platform")
}

fn mark_workloads_ready(server: &FakeApiServer) {
    mark_children_ready(server, NS, "platform");
}

/// Every generated secret value, decoded.
fn secret_values(server: &FakeApiServer) -> Vec<(String, String, String)> {
    let mut values = Vec::new();
    for secret in children_of(server, "secrets", NS, "platform") {
        let name = secret["metadata"]["name"].as_str().unwrap().to_string();
        for (key, value) in secret["data"].as_object().into_iter().flatten() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.as_str().unwrap())
                .unwrap();
            values.push((
                name.clone(),
                key.clone(),
                String::from_utf8(decoded).unwrap(),
            ));
        }
    }
    values
}

#[test]
fn harbor_comes_up_in_order_and_keeps_its_secrets_across_restarts() {
    let server = harbor_server(true);
    let logs = tempfile::tempdir().unwrap();
    let mut operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(harbor_registry());

    wait_for("CNPG Cluster", T, || {
        server.get_object("clusters", NS, "platform-harbor-db")
    });
    let held = wait_for("WaitingForDatabase", T, || {
        let r = registry(&server)?;
        (condition(&r, "Ready")?["reason"] == "WaitingForDatabase").then_some(r)
    });
    assert_eq!(
        condition(&held, "DatabaseReady").unwrap()["status"],
        "False"
    );
    assert!(
        server
            .get_object("deployments", NS, "platform-harbor-core")
            .is_none(),
        "core held back until the database is Ready"
    );
    assert!(
        server
            .get_object("deployments", NS, "platform-harbor-jobservice")
            .is_none()
    );
    let secrets = secret_values(&server);
    assert!(
        secrets
            .iter()
            .any(|(n, k, v)| n.ends_with("core-secret") && k == "secretKey" && v.len() == 16),
        "{:?}",
        secrets.iter().map(|s| (&s.0, &s.1)).collect::<Vec<_>>()
    );
    assert!(secrets.iter().any(|(n, _, _)| n.ends_with("admin-secret")));

    server.patch_status("clusters", NS, "platform-harbor-db", json!({"conditions": [{"type": "Ready", "status": "True", "reason": "ClusterIsReady", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}));
    wait_for("core after database Ready", T, || {
        server.get_object("deployments", NS, "platform-harbor-core")
    });
    wait_for("jobservice", T, || {
        server.get_object("deployments", NS, "platform-harbor-jobservice")
    });
    let ready = wait_for("Ready=True", T, || {
        mark_workloads_ready(&server);
        let r = registry(&server)?;
        (condition(&r, "Ready")?["status"] == "True").then_some(r)
    });
    for type_ in [
        "DatabaseReady",
        "CacheReady",
        "StorageReady",
        "ComponentsReady",
    ] {
        assert_eq!(
            condition(&ready, type_).unwrap()["status"],
            "True",
            "{type_}"
        );
    }
    assert_eq!(ready["status"]["endpoint"], "harbor.ai-platform.localhost");
    assert!(
        ready["status"]["harborVersion"]
            .as_str()
            .unwrap()
            .starts_with("2.15")
    );

    operator.kill();
    let restarted = Operator::start(&server, logs.path(), &[]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(secret_values(&server), secrets, "secrets must never rotate");
    assert_eq!(
        server.request_log().count("create", "Secret"),
        secrets
            .iter()
            .map(|s| &s.0)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        "each Secret created exactly once"
    );

    // No generated value appears in anything the operator logged, emitted or reported.
    let mut haystack = operator.log() + &restarted.log();
    for event in server.list_objects("events.k8s.io/v1/events", None) {
        haystack.push_str(&event.to_string());
    }
    haystack.push_str(&registry(&server).unwrap()["status"].to_string());
    for deployment in server.list_objects("deployments", None) {
        haystack.push_str(&deployment.to_string());
    }
    for (name, key, value) in &secrets {
        assert!(
            !haystack.contains(value.as_str()),
            "value of {name}/{key} leaked"
        );
    }
}

#[test]
fn managed_database_without_cnpg_reports_cnpg_not_installed_and_applies_nothing() {
    let server = harbor_server(false);
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(harbor_registry());
    let reported = wait_for("CNPGNotInstalled", T, || {
        let r = registry(&server)?;
        (condition(&r, "Ready")?["reason"] == "CNPGNotInstalled").then_some(r)
    });
    let message = condition(&reported, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("spec.harbor.database.external"),
        "{message}"
    );
    std::thread::sleep(Duration::from_secs(1));
    for resource in [
        "deployments",
        "statefulsets",
        "services",
        "secrets",
        "persistentvolumeclaims",
        "ingresses",
        "configmaps",
    ] {
        assert!(
            children_of(&server, resource, NS, "platform").is_empty(),
            "{resource} applied without CNPG"
        );
    }
}

#[test]
fn deleting_with_retain_keeps_the_managed_database_cluster() {
    let server = harbor_server(true);
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(harbor_registry());
    wait_for("CNPG Cluster", T, || {
        server.get_object("clusters", NS, "platform-harbor-db")
    });
    wait_for("finalizer", T, || {
        registry(&server)?["metadata"]["finalizers"]
            .as_array()
            .filter(|f| !f.is_empty())
            .map(|_| ())
    });
    server.delete_object("registries", NS, "platform");
    wait_for("Registry gone", T, || {
        registry(&server).is_none().then_some(())
    });
    let cluster = server
        .get_object("clusters", NS, "platform-harbor-db")
        .expect("database kept under Retain");
    assert!(
        cluster["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|o| o.is_empty())
    );
    assert_eq!(
        cluster["metadata"]["annotations"]["registry.aisp.dev/retained-from"],
        "registry/platform"
    );
}
