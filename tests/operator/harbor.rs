//! Scenario tests of Harbor mode: the real binary against the real control plane, CNPG served or not;
//! generated secrets are created once, survive restarts, and never appear in logs, events or status.

use std::time::Duration;

use crate::support::cluster::{ControlPlane, Upstream};
use crate::support::scenario::*;
use base64::Engine;
use serde_json::{Value, json};

const NS: &str = "registry";
const T: Duration = Duration::from_secs(60);

fn harbor_server(with_cnpg: bool) -> Option<ControlPlane> {
    let mut builder = ControlPlane::builder();
    if with_cnpg {
        builder = builder.with(Upstream::Cnpg);
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

fn registry(server: &ControlPlane) -> Option<Value> {
    server.get_object("registries", NS, "platform")
}

fn mark_workloads_ready(server: &ControlPlane) {
    mark_children_ready(server, NS, "platform");
}

/// Every generated secret value, decoded.
fn secret_values(server: &ControlPlane) -> Vec<(String, String, String)> {
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
    let Some(server) = harbor_server(true) else {
        return;
    };
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
        held["status"]["harborVersion"].is_null(),
        "no version is reported before Harbor core runs: {}",
        held["status"]
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
    assert_pull_path(&server, &ready);
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
    let Some(server) = harbor_server(false) else {
        return;
    };
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
    let Some(server) = harbor_server(true) else {
        return;
    };
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
    wait_for("coredns-custom", T, || {
        server.get_object("configmaps", "kube-system", "coredns-custom")
    });
    server.delete_object("registries", NS, "platform");
    wait_for("Registry gone", T, || {
        registry(&server).is_none().then_some(())
    });
    assert!(
        server
            .get_object("configmaps", "kube-system", "coredns-custom")
            .is_none(),
        "the finalizer removes this Registry's coredns-custom (no owner reference across namespaces)"
    );
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

/// Nodes and pods reach Harbor by one name over TLS: a generated CA and serving certificate in
/// Secrets, the CA (public part only) exported in a ConfigMap, the Ingress serving the certificate,
/// a CoreDNS rewrite for pods, and a registries.yaml for nodes trusting the exported CA.
fn assert_pull_path(server: &ControlPlane, ready: &Value) {
    let values = secret_values(server);
    let value = |secret: &str, key: &str| {
        values
            .iter()
            .find(|(n, k, _)| n == secret && k == key)
            .map(|(_, _, v)| v.clone())
            .unwrap_or_else(|| panic!("{secret}/{key} missing"))
    };
    let ca = value("platform-harbor-ca-secret", "ca.crt");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(value("platform-harbor-ca-secret", "ca.key").contains("PRIVATE KEY"));
    let tls = children_of(server, "secrets", NS, "platform")
        .into_iter()
        .find(|s| s["type"] == "kubernetes.io/tls")
        .expect("serving certificate Secret");
    let tls_name = tls["metadata"]["name"].as_str().unwrap();
    assert!(tls_name.starts_with("platform-harbor-tls-"), "{tls_name}");
    let ingress = server
        .get_object("ingresses", NS, "platform-harbor-ingress")
        .expect("ingress");
    assert_eq!(ingress["spec"]["tls"][0]["secretName"], tls_name);

    let exported = server
        .get_object("configmaps", NS, "platform-harbor-ca")
        .expect("exported CA");
    assert_eq!(
        exported["data"]["ca.crt"],
        ca.as_str(),
        "the CA certificate, copied"
    );
    assert!(!exported.to_string().contains("PRIVATE KEY"));

    let coredns = server
        .get_object("configmaps", "kube-system", "coredns-custom")
        .expect("coredns-custom");
    assert!(
        coredns["data"]["registry-platform-harbor.override"]
            .as_str()
            .unwrap()
            .contains("rewrite name exact harbor.ai-platform.localhost traefik.kube-system.svc.cluster.local\n")
    );
    assert_eq!(
        coredns["metadata"]["labels"]["registry.aisp.dev/owner-name"],
        "platform"
    );
    assert_eq!(
        ready["status"]["k3sRegistriesYaml"],
        "mirrors:\n  harbor.ai-platform.localhost:\n    endpoint:\n    - https://harbor.ai-platform.localhost\nconfigs:\n  harbor.ai-platform.localhost:\n    tls:\n      ca_file: /etc/rancher/k3s/aisp/harbor.ai-platform.localhost-ca.crt\n"
    );
}

/// A token Secret generated before PKCS#1 (PKCS#8, which Harbor core's libtrust refuses) is
/// rewritten once, in place, to PKCS#1 with the same key: the certificate and every other generated
/// Secret stay as they were, and a restarted operator does not touch it again.
#[test]
fn a_pkcs8_token_key_is_rewritten_once_to_pkcs1_keeping_the_key() {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};

    let Some(server) = harbor_server(true) else {
        return;
    };
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let certificate = "-----BEGIN CERTIFICATE-----\nkept as it is\n-----END CERTIFICATE-----\n";
    server.put_object(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS},
    }));
    server.put_object(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "platform-harbor-token-secret", "namespace": NS},
        "data": {"tls.key": b64(&pkcs8), "tls.crt": b64(certificate)},
    }));
    let logs = tempfile::tempdir().unwrap();
    let mut operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(harbor_registry());

    let token = |server: &ControlPlane| -> Option<(String, String)> {
        let secret = server.get_object("secrets", NS, "platform-harbor-token-secret")?;
        let decode = |key: &str| {
            let value = secret["data"][key].as_str()?;
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(value)
                    .ok()?,
            )
            .ok()
        };
        Some((decode("tls.key")?, decode("tls.crt")?))
    };
    let (rewritten, kept_certificate) = wait_for("PKCS#1 token key", T, || {
        token(&server).filter(|(key, _)| key.starts_with("-----BEGIN RSA PRIVATE KEY-----"))
    });
    assert_eq!(
        rsa::RsaPrivateKey::from_pkcs1_pem(&rewritten).expect("PKCS#1"),
        key,
        "the same key, re-encoded"
    );
    assert_eq!(kept_certificate, certificate, "certificate untouched");
    // The serving certificate is the last generated Secret created.
    wait_for("every generated secret", T, || {
        secret_values(&server)
            .iter()
            .any(|(n, k, _)| n.starts_with("platform-harbor-tls-") && k == "tls.key")
            .then_some(())
    });
    let before = secret_values(&server);

    operator.kill();
    let restarted = Operator::start(&server, logs.path(), &[]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        secret_values(&server),
        before,
        "nothing rotates after the rewrite"
    );
    assert_eq!(
        server.request_log().count("update", "Secret"),
        1,
        "the token Secret is rewritten exactly once"
    );
    let haystack = operator.log() + &restarted.log();
    assert!(
        haystack.contains("token key rewritten from PKCS#8 to PKCS#1"),
        "the rewrite is logged"
    );
    for line in rewritten
        .lines()
        .chain(pkcs8.lines())
        .filter(|l| l.len() > 40)
    {
        assert!(!haystack.contains(line), "key material in the logs");
    }
}
