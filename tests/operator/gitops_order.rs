//! Install order does not matter: Kyverno's and CloudNativePG's CRDs installed after the operator
//! started (or removed while it runs) are noticed without a restart, the waiting objects go on by
//! themselves, `engine: Auto` moves from ClusterPolicy to CEL without a gap, and at rest the operator
//! stays quiet (requests per minute measured; `REGISTRY_OPERATOR_REST_WINDOW_SECS` lengthens the
//! window, default 20 s).

use std::time::{Duration, Instant};

use crate::support::cluster::{ControlPlane, Upstream};
use crate::support::scenario::*;
use serde_json::{Value, json};

const NS: &str = "registry";
const T: Duration = Duration::from_secs(60);

fn image_policy(engine: &str) -> Value {
    json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": "ai-workloads"},
        "spec": {"engine": engine, "allowedRegistries": ["ghcr.io/ai-platform"],
                 "rules": {"disallowLatestTag": {}, "restrictRegistries": {}}},
    })
}

fn harbor_registry() -> Value {
    json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "platform", "namespace": NS},
        "spec": {"mode": "Harbor", "host": "harbor.ai-platform.localhost",
                 "harbor": {"database": {"managed": {"instances": 1}}}},
    })
}

fn policy_reason(server: &ControlPlane) -> Option<String> {
    let policy = server.get_object("imagepolicies", "", "ai-workloads")?;
    condition(&policy, "Ready")?["reason"]
        .as_str()
        .map(str::to_string)
}

fn registry_reason(server: &ControlPlane) -> Option<String> {
    let registry = server.get_object("registries", NS, "platform")?;
    condition(&registry, "Ready")?["reason"]
        .as_str()
        .map(str::to_string)
}

fn wait_reason(what: &str, reason: &str, read: impl Fn() -> Option<String>) {
    wait_for(&format!("{what} {reason}"), T, || {
        read().filter(|r| r == reason).map(|_| ())
    });
}

/// Requests the operator sends in `window` once nothing changes: (requests, writes, per minute).
fn at_rest(server: &ControlPlane, window: Duration) -> (usize, usize, f64) {
    settle_writes(server);
    server.reset_log();
    std::thread::sleep(window);
    let log = server.request_log();
    println!("requests at rest: {:?}", log.counts());
    let requests: usize = log.counts().values().sum();
    let writes = log.writes().len();
    (
        requests,
        writes,
        requests as f64 * 60.0 / window.as_secs_f64(),
    )
}

fn rest_window() -> Duration {
    Duration::from_secs(
        std::env::var("REGISTRY_OPERATOR_REST_WINDOW_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20),
    )
}

#[test]
fn kyverno_and_cnpg_installed_after_the_operator_need_no_restart() {
    let Some(server) = ControlPlane::builder().start() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    // A long resync: only the CRD watch can make the waiting objects go on within the test.
    let mut operator = Operator::start(&server, logs.path(), &["--resync", "10m"]);
    let pid = operator.pid();
    wait_for("operator ready", T, || {
        operator.http_get("/readyz").filter(|r| r.0 == 200)
    });
    server.put_object(image_policy("Auto"));
    server.put_object(harbor_registry());
    wait_reason("ImagePolicy", "KyvernoNotInstalled", || {
        policy_reason(&server)
    });
    wait_reason("Registry", "CNPGNotInstalled", || registry_reason(&server));
    let (requests, writes, per_minute) = at_rest(&server, rest_window());
    println!(
        "FIGURES without optional kinds: {requests} requests ({writes} writes) in {:?}: {per_minute:.1}/min",
        rest_window()
    );
    assert_eq!(writes, 0, "nothing to write while waiting");

    let installed = Instant::now();
    server.install(Upstream::Kyverno);
    wait_for("CEL policies applied", T, || {
        (server.list_objects("validatingpolicies", None).len() == 4).then_some(())
    });
    let policies_after = installed.elapsed();
    mark_policies_ready(&server);
    wait_reason("ImagePolicy", "PoliciesReady", || policy_reason(&server));

    let installed = Instant::now();
    server.install(Upstream::Cnpg);
    wait_for("managed database Cluster", T, || {
        server.get_object("clusters", NS, "platform-harbor-db")
    });
    let cluster_after = installed.elapsed();
    server.patch_status(
        "clusters",
        NS,
        "platform-harbor-db",
        json!({"conditions": [{"type": "Ready", "status": "True", "reason": "ClusterIsReady", "message": "", "lastTransitionTime": "2026-12-03T00:00:00Z"}]}),
    );
    wait_for("Registry Ready", T, || {
        mark_children_ready(&server, NS, "platform");
        (registry_reason(&server)? == "Available").then_some(())
    });
    assert!(operator.is_running(), "no restart, no crash");
    assert_eq!(operator.pid(), pid);
    let (requests, writes, per_minute) = at_rest(&server, rest_window());
    println!(
        "FIGURES with Kyverno and CNPG installed: {requests} requests ({writes} writes) in {:?}: {per_minute:.1}/min; policies applied {policies_after:?} after Kyverno's CRDs, Cluster {cluster_after:?} after CNPG's",
        rest_window()
    );
    assert_eq!(writes, 0, "nothing written at rest");
    assert!(
        per_minute <= 30.0,
        "{per_minute} requests per minute at rest"
    );
}

#[test]
fn auto_moves_from_cluster_policy_to_cel_without_a_gap() {
    let Some(server) = ControlPlane::builder()
        .with(Upstream::KyvernoClusterPolicyOnly)
        .start()
    else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &["--resync", "10m"]);
    server.put_object(image_policy("Auto"));
    wait_for("two ClusterPolicies", T, || {
        (server.list_objects("clusterpolicies", None).len() == 2).then_some(())
    });
    mark_policies_ready(&server);
    wait_reason("ImagePolicy", "PoliciesReady", || policy_reason(&server));

    server.install(Upstream::KyvernoCelOnly);
    // Until Kyverno reports the CEL policies ready, the ClusterPolicies stay.
    wait_for("CEL policies beside the ClusterPolicies", T, || {
        (server.list_objects("validatingpolicies", None).len() == 4).then_some(())
    });
    let kept_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < kept_until {
        assert_eq!(
            server.list_objects("clusterpolicies", None).len(),
            2,
            "the old flavour is kept while the new one is not ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let policy = server
        .get_object("imagepolicies", "", "ai-workloads")
        .unwrap();
    assert_eq!(condition(&policy, "Progressing").unwrap()["status"], "True");

    mark_policies_ready(&server);
    wait_for("ClusterPolicies pruned, CEL ready", T, || {
        let policy = server.get_object("imagepolicies", "", "ai-workloads")?;
        (server.list_objects("clusterpolicies", None).is_empty()
            && policy["status"]["engine"] == "CEL"
            && condition(&policy, "Ready")?["reason"] == "PoliciesReady")
            .then_some(())
    });
    assert_eq!(server.list_objects("validatingpolicies", None).len(), 4);
}

#[test]
fn removed_crds_are_reported_without_crash_or_busy_loop() {
    let Some(server) = ControlPlane::builder()
        .with(Upstream::Kyverno)
        .with(Upstream::Cnpg)
        .start()
    else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let mut operator = Operator::start(&server, logs.path(), &["--resync", "10m"]);
    server.put_object(image_policy("CEL"));
    server.put_object(harbor_registry());
    wait_for("CEL policies", T, || {
        (server.list_objects("validatingpolicies", None).len() == 4).then_some(())
    });
    wait_for("managed database Cluster", T, || {
        server.get_object("clusters", NS, "platform-harbor-db")
    });

    server.remove_group("policies.kyverno.io");
    server.remove_group("kyverno.io");
    wait_reason("ImagePolicy", "KyvernoNotInstalled", || {
        policy_reason(&server)
    });
    server.remove_group("postgresql.cnpg.io");
    // The kind's watch stops and every Registry is looked at again: the kind is reported missing.
    wait_reason("Registry", "CNPGNotInstalled", || registry_reason(&server));
    let (requests, writes, per_minute) = at_rest(&server, rest_window());
    println!(
        "FIGURES after the optional CRDs were deleted: {requests} requests ({writes} writes) in {:?}: {per_minute:.1}/min",
        rest_window()
    );
    assert!(operator.is_running(), "no crash");
    assert_eq!(writes, 0);
    assert!(per_minute <= 30.0, "no busy loop: {per_minute}/min");

    // Installed again: the ImagePolicy goes on by itself.
    server.install(Upstream::Kyverno);
    wait_for("CEL policies again", T, || {
        (server.list_objects("validatingpolicies", None).len() == 4).then_some(())
    });
}
