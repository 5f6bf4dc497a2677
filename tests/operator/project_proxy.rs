//! Scenario tests of a proxy-cache RegistryProject (the real binary, the real control plane, the
//! swagger-checked fake Harbor): the registry endpoint `<project>-upstream` is created with the
//! upstream's credentials from a Secret and the project is created with its `registry_id`; no write at
//! rest; an endpoint URL edited in Harbor's UI is put back; a password changed in the Secret is sent
//! once (the endpoint's description carries the credentials' fingerprint), at once through the watch
//! of that Secret (not the resync); deleting the RegistryProject deletes the endpoint after the
//! project, and keeps both when the project is kept; an existing project that is not a proxy cache is
//! reported (`ApplyFailed`), not forced.

use std::time::Duration;

use serde_json::json;

use super::project::{NS, REG_NS, T, harbor_registry, project, registry_project, wait_reason};
use crate::support::harbor_fake::HarborFake;
use crate::support::scenario::*;

const UPSTREAM: &str = "https://registry-1.docker.io";

/// The upstream's credentials Secret `name` in the RegistryProjects' namespace.
fn credentials(name: &str, password: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "stringData": {"username": "puller", "password": password},
    })
}

/// A RegistryProject caching Docker Hub with the credentials of the Secret `secret`.
fn hub_cache(name: &str, secret: &str) -> serde_json::Value {
    registry_project(
        name,
        json!({
            "registryRef": {"name": "platform", "namespace": REG_NS},
            "public": true,
            "proxyCache": {"endpoint": UPSTREAM, "provider": "docker-hub",
                           "credentialsSecretRef": {"name": secret}},
        }),
    )
}

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
    server.put_object(credentials("hub-credentials", "hub-token-s3cr3t"));
    server.put_object(hub_cache("hub-cache", "hub-credentials"));
    wait_reason(&server, "hub-cache", "ProjectReady");

    // The endpoint with the Secret's credentials (Harbor masks the secret), the project on it.
    let registries = harbor.registries();
    assert_eq!(registries.len(), 1, "{registries:?}");
    let endpoint = &registries[0];
    assert_eq!(endpoint["name"], "hub-cache-upstream");
    assert_eq!(endpoint["url"], UPSTREAM);
    assert_eq!(endpoint["type"], "docker-hub");
    assert_eq!(endpoint["credential"]["access_key"], "puller");
    assert_eq!(
        harbor.registry_secret("hub-cache-upstream").as_deref(),
        Some("hub-token-s3cr3t")
    );
    let description = endpoint["description"].as_str().unwrap_or_default();
    assert!(
        description.contains("credentials sha256:") && !description.contains("s3cr3t"),
        "{description}"
    );
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

    // Only the password changes in the Secret: sent once, then nothing at rest.
    server.put_object(credentials("hub-credentials", "hub-token-r0tated"));
    wait_for("new password sent", T, || {
        (harbor.registry_secret("hub-cache-upstream")? == "hub-token-r0tated").then_some(())
    });
    let writes = harbor.writes();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(harbor.writes(), writes, "no write to Harbor at rest");
    assert_eq!(harbor.count(&["updateRegistry"]), 2, "one update");

    // Deleting: the project, then its endpoint (Harbor refuses it while the project uses it).
    server.delete_object("registryprojects", NS, "hub-cache");
    wait_for("RegistryProject gone", T, || {
        project(&server, "hub-cache").is_none().then_some(())
    });
    assert!(
        harbor.project("hub-cache").is_none(),
        "empty project deleted"
    );
    assert!(
        harbor.registries().is_empty(),
        "endpoint deleted: {:?}",
        harbor.registries()
    );
    assert_eq!(harbor.count(&["deleteRegistry"]), 1);

    // A kept project (Retain, holding repositories) keeps its endpoint.
    server.put_object(hub_cache("kept-cache", "hub-credentials"));
    wait_reason(&server, "kept-cache", "ProjectReady");
    harbor.set_repo_count("kept-cache", 1);
    server.delete_object("registryprojects", NS, "kept-cache");
    wait_for("RegistryProject gone", T, || {
        project(&server, "kept-cache").is_none().then_some(())
    });
    assert!(harbor.project("kept-cache").is_some(), "project kept");
    assert!(
        harbor
            .registries()
            .iter()
            .any(|r| r["name"] == "kept-cache-upstream"),
        "endpoint kept with its project"
    );
    assert_eq!(harbor.count(&["deleteRegistry"]), 1);

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

    let log = operator.log();
    for secret in ["hub-token-s3cr3t", "hub-token-r0tated"] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}

/// With a resync far longer than the test, only the watch of the credentials Secret can bring a
/// changed password to Harbor.
#[test]
fn a_changed_password_reaches_harbor_through_the_secret_watch() {
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
        &["--harbor-api-url", &harbor_url, "--resync", "1h"],
    );
    harbor_registry(&server);
    server.put_object(credentials("upstream-credentials", "first-s3cr3t"));
    server.put_object(hub_cache("watched", "upstream-credentials"));
    wait_reason(&server, "watched", "ProjectReady");
    assert_eq!(
        harbor.registry_secret("watched-upstream").as_deref(),
        Some("first-s3cr3t")
    );

    server.put_object(credentials("upstream-credentials", "second-s3cr3t"));
    wait_for("new password sent", T, || {
        (harbor.registry_secret("watched-upstream")? == "second-s3cr3t").then_some(())
    });
    assert_eq!(harbor.count(&["updateRegistry"]), 1, "exactly one update");

    // A change of the Secret that leaves the credentials alone: a pass, and no write.
    let writes = harbor.writes();
    let reads = harbor.requests().len();
    server.merge_patch_object(
        "secrets",
        NS,
        "upstream-credentials",
        json!({"metadata": {"labels": {"touched": "yes"}}}),
    );
    wait_for("a pass after the Secret changed", T, || {
        (harbor.requests().len() > reads).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        harbor.writes(),
        writes,
        "no write for unchanged credentials"
    );
    assert_eq!(harbor.count(&["updateRegistry"]), 1);

    let log = operator.log();
    for secret in ["first-s3cr3t", "second-s3cr3t"] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}
