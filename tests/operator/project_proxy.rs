//! Scenario tests of a proxy-cache RegistryProject (the real binary, the real control plane, the
//! swagger-checked fake Harbor): the registry endpoint `<project>-upstream` is created with the
//! upstream's credentials from a Secret and the project is created with its `registry_id`; no write at
//! rest; an endpoint URL edited in Harbor's UI is put back; an existing project that is not a proxy
//! cache is reported (`ApplyFailed`), not forced.

use std::time::Duration;

use serde_json::json;

use super::project::{NS, REG_NS, T, harbor_registry, project, registry_project, wait_reason};
use crate::support::harbor_fake::HarborFake;
use crate::support::scenario::*;

const UPSTREAM: &str = "https://registry-1.docker.io";

#[test]
fn proxy_cache_project_on_its_own_endpoint_kept_and_refused_on_a_plain_project() {
    let Some(server) = server() else {
        return;
    };
    let Some(harbor) = HarborFake::start() else {
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
    server.put_object(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hub-credentials", "namespace": NS},
        "stringData": {"username": "puller", "password": "hub-token-s3cr3t"},
    }));
    server.put_object(registry_project(
        "hub-cache",
        json!({
            "registryRef": {"name": "platform", "namespace": REG_NS},
            "public": true,
            "proxyCache": {"endpoint": UPSTREAM, "provider": "docker-hub",
                           "credentialsSecretRef": {"name": "hub-credentials"}},
        }),
    ));
    wait_reason(&server, "hub-cache", "ProjectReady");

    // The endpoint with the Secret's credentials (Harbor masks the secret), the project on it.
    let registries = harbor.registries();
    assert_eq!(registries.len(), 1, "{registries:?}");
    let endpoint = &registries[0];
    assert_eq!(endpoint["name"], "hub-cache-upstream");
    assert_eq!(endpoint["url"], UPSTREAM);
    assert_eq!(endpoint["type"], "docker-hub");
    assert_eq!(endpoint["credential"]["access_key"], "puller");
    let created = harbor.project("hub-cache").expect("project");
    assert_eq!(created["registry_id"], endpoint["id"]);
    assert_eq!(created["metadata"]["public"], "true");

    // At rest: nothing written.
    let writes = harbor.writes();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(harbor.writes(), writes, "no write to Harbor at rest");

    // The endpoint's URL edited in Harbor's UI is put back.
    harbor.tamper_registry_url("hub-cache-upstream", "https://mirror.example");
    wait_for("endpoint URL corrected", T, || {
        harbor
            .registries()
            .iter()
            .any(|r| r["name"] == "hub-cache-upstream" && r["url"] == UPSTREAM)
            .then_some(())
    });
    assert_eq!(harbor.count(&["updateRegistry"]), 1);
    assert_eq!(harbor.count(&["createRegistry"]), 1);

    // A plain project cannot become a proxy cache: reported, the project left as it is.
    server.put_object(registry_project(
        "plain",
        json!({"registryRef": {"name": "platform", "namespace": REG_NS}}),
    ));
    wait_reason(&server, "plain", "ProjectReady");
    server.merge_patch_object(
        "registryprojects",
        NS,
        "plain",
        json!({"spec": {"proxyCache": {"endpoint": "https://ghcr.io", "provider": "github-ghcr"}}}),
    );
    wait_reason(&server, "plain", "ApplyFailed");
    let ready = condition(&project(&server, "plain").unwrap(), "Ready").unwrap();
    let message = ready["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("spec.proxyCache") && message.contains("plain"),
        "{message}"
    );
    assert!(
        harbor
            .project("plain")
            .unwrap()
            .get("registry_id")
            .is_none()
    );

    assert!(
        !operator.log().contains("hub-token-s3cr3t"),
        "a secret reached the log"
    );
}
