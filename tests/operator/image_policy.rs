//! Scenario tests of the ImagePolicy controller: the real binary against the real control plane, with
//! and without the Kyverno policy kinds served.

use std::time::Duration;

use crate::support;
use crate::support::cluster::{ControlPlane, Upstream};
use crate::support::scenario::*;
use serde_json::{Value, json};

const NS: &str = "registry";
const T: Duration = Duration::from_secs(30);
const K3D_ENDPOINT: &str = "platform-distribution.registry.svc.cluster.local:5000";
const HARBOR_HOST: &str = "harbor.ai-platform.localhost";

/// The real control plane with our CRDs and the given Kyverno kinds.
fn server_with(kyverno: &[Upstream]) -> Option<ControlPlane> {
    let mut builder = ControlPlane::builder();
    for set in kyverno {
        builder = builder.with(*set);
    }
    builder.start()
}

fn all_kyverno_kinds() -> Vec<Upstream> {
    vec![Upstream::Kyverno]
}

fn image_policy(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "registry.aisp.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": name},
        "spec": spec,
    })
}

fn policy_condition(server: &ControlPlane, name: &str, type_: &str) -> Option<Value> {
    condition(&server.get_object("imagepolicies", "", name)?, type_)
}

fn wait_reason(server: &ControlPlane, name: &str, reason: &str) -> Value {
    wait_for(
        &format!("ImagePolicy {name} Ready reason {reason}"),
        T,
        || {
            let ready = policy_condition(server, name, "Ready")?;
            (ready["reason"] == reason).then_some(ready)
        },
    )
}

/// Every allowed-image pattern of a restrict-registries ClusterPolicy, as one string.
fn allowed_patterns(cluster_policy: &Value) -> String {
    cluster_policy["spec"]["rules"][0]["validate"]["pattern"].to_string()
}

fn names(server: &ControlPlane, resource: &str) -> Vec<String> {
    server
        .list_objects(resource, None)
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn restrict_registries_follows_the_registry_from_k3d_to_harbor() {
    let Some(server) = server_with(&[Upstream::KyvernoClusterPolicyOnly]) else {
        return;
    };
    let Some(harbor) = harbor_for_switch(&server, NS) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    // No periodic resync within the test: only the Registry watch can carry the endpoint change.
    let _operator = Operator::start(
        &server,
        logs.path(),
        &["--resync", "1h", "--harbor-api-url", &harbor.url()],
    );
    server.put_object(k3d_registry(NS, "platform", json!({"adopt": "Never"})));
    server.put_object(image_policy(
        "ai-workloads",
        json!({
            "registryRef": {"name": "platform", "namespace": NS},
            "failureAction": "Enforce",
            "rules": {"restrictRegistries": {}},
        }),
    ));

    let first = wait_for("ClusterPolicy allowing the k3d endpoint", T, || {
        let policy =
            server.get_object("clusterpolicies", "", "ai-workloads-restrict-registries")?;
        allowed_patterns(&policy)
            .contains(K3D_ENDPOINT)
            .then_some(policy)
    });
    let owner = server
        .get_object("imagepolicies", "", "ai-workloads")
        .unwrap();
    assert_eq!(
        first["metadata"]["ownerReferences"][0]["uid"],
        owner["metadata"]["uid"]
    );
    assert!(
        first["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["manager"] == "registry-operator" && m["operation"] == "Apply"),
        "applied with server-side apply"
    );

    // Once Kyverno reports the policy ready, the ImagePolicy is only resynced hourly.
    server.patch_status(
        "clusterpolicies",
        "",
        "ai-workloads-restrict-registries",
        json!({"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "Ready", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
    );
    wait_reason(&server, "ai-workloads", "PoliciesReady");

    // The Registry moves to Harbor; its controller publishes the new endpoint in its status.
    server.merge_patch_object(
        "registries",
        NS,
        "platform",
        json!({"spec": {
            "mode": "Harbor",
            "k3d": null,
            "host": HARBOR_HOST,
            "migration": {"grace": "0"},
            "harbor": {
                "adminPasswordSecretRef": {"name": SWITCH_ADMIN_SECRET, "key": "password"},
                "database": {"external": {
                "host": "postgresql-rw.storage.svc.cluster.local",
                "username": "harbor",
                "passwordSecretRef": {"name": "harbor-database"},
            }}},
        }}),
    );
    let moved = wait_for("ClusterPolicy allowing only the Harbor host", T, || {
        complete_switch(&server);
        let policy =
            server.get_object("clusterpolicies", "", "ai-workloads-restrict-registries")?;
        let patterns = allowed_patterns(&policy);
        (patterns.contains(HARBOR_HOST) && !patterns.contains(K3D_ENDPOINT)).then_some(policy)
    });
    assert_eq!(
        server.get_object("registries", NS, "platform").unwrap()["status"]["endpoint"],
        HARBOR_HOST,
        "the endpoint came from the Registry controller, not from the test"
    );
    assert_eq!(
        moved["metadata"]["uid"], first["metadata"]["uid"],
        "updated in place"
    );
    let status = wait_for("status.allowedRegistries updated", T, || {
        let p = server.get_object("imagepolicies", "", "ai-workloads")?;
        (p["status"]["allowedRegistries"] == json!([HARBOR_HOST])).then_some(p)
    });
    assert_eq!(status["status"]["engine"], "ClusterPolicy");
}

#[test]
fn without_kyverno_the_policy_reports_it_and_registries_still_work() {
    let Some(server) = server_with(&[]) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(k3d_registry(NS, "platform", json!({"adopt": "Never"})));
    server.put_object(image_policy(
        "ai-workloads",
        json!({
            "registryRef": {"name": "platform", "namespace": NS},
            "rules": {"disallowLatestTag": {}, "restrictRegistries": {}},
        }),
    ));
    let ready = wait_reason(&server, "ai-workloads", "KyvernoNotInstalled");
    assert_eq!(ready["status"], "False");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("install Kyverno"),
        "{ready}"
    );

    wait_for("Deployment", T, || {
        server.get_object("deployments", NS, "platform-distribution")
    });
    mark_k3d_children_ready(&server, NS, "platform");
    wait_for("Registry Ready=True", T, || {
        let registry = server.get_object("registries", NS, "platform")?;
        (condition(&registry, "Ready")?["status"] == "True").then_some(())
    });
    assert_eq!(
        wait_reason(&server, "ai-workloads", "KyvernoNotInstalled")["status"],
        "False"
    );
}

#[test]
fn auto_engine_with_only_cel_kinds_generates_validating_policies() {
    let Some(server) = server_with(&[Upstream::KyvernoCelOnly]) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(image_policy(
        "ai-workloads",
        json!({
            "allowedRegistries": ["ghcr.io/ai-platform"],
            "rules": {
                "disallowLatestTag": {},
                "restrictRegistries": {},
                "requireSignatures": {"keyless": {
                    "issuer": "https://token.actions.githubusercontent.com",
                    "subjectRegExp": "^https://github\\.com/ai-platform/.+$",
                }},
            },
        }),
    ));
    let policy = wait_for("status.engine CEL", T, || {
        let p = server.get_object("imagepolicies", "", "ai-workloads")?;
        (p["status"]["engine"] == "CEL").then_some(p)
    });
    assert_eq!(
        names(&server, "validatingpolicies"),
        [
            "ai-workloads-disallow-latest-tag",
            "ai-workloads-ephemeral-registry",
            "ai-workloads-ephemeral-tag",
            "ai-workloads-restrict-registries"
        ]
    );
    assert_eq!(
        names(&server, "imagevalidatingpolicies"),
        ["ai-workloads-require-signatures"]
    );
    assert_eq!(
        policy["status"]["policies"].as_array().map(Vec::len),
        Some(5)
    );
    assert_eq!(
        condition(&policy, "Ready").unwrap()["reason"],
        "WaitingForKyverno",
        "not ready until Kyverno says so"
    );
}

#[test]
fn switching_engine_prunes_the_other_flavour_and_auto_prefers_cel() {
    let Some(server) = server_with(&all_kyverno_kinds()) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(image_policy(
        "ai-workloads",
        json!({
            "engine": "CEL",
            "allowedRegistries": ["ghcr.io/ai-platform"],
            "rules": {"disallowLatestTag": {}, "restrictRegistries": {}},
        }),
    ));
    // Two rules: each for pods (with Kyverno's pod-controller rules) and for ephemeral containers.
    wait_for("four ValidatingPolicies", T, || {
        (server.list_objects("validatingpolicies", None).len() == 4).then_some(())
    });
    assert!(server.list_objects("clusterpolicies", None).is_empty());

    server.merge_patch_object(
        "imagepolicies",
        "",
        "ai-workloads",
        json!({"spec": {"engine": "ClusterPolicy"}}),
    );
    // The CEL policies stay until Kyverno reports the ClusterPolicies ready (no gap).
    wait_for("two ClusterPolicies", T, || {
        (server.list_objects("clusterpolicies", None).len() == 2).then_some(())
    });
    assert_eq!(server.list_objects("validatingpolicies", None).len(), 4);
    mark_policies_ready(&server);
    wait_for("CEL policies pruned", T, || {
        server
            .list_objects("validatingpolicies", None)
            .is_empty()
            .then_some(())
    });
    assert_eq!(
        names(&server, "clusterpolicies"),
        [
            "ai-workloads-disallow-latest-tag",
            "ai-workloads-restrict-registries"
        ]
    );
    wait_for("status.engine ClusterPolicy", T, || {
        let p = server.get_object("imagepolicies", "", "ai-workloads")?;
        (p["status"]["engine"] == "ClusterPolicy").then_some(())
    });

    // `Auto` with every kind served picks the CEL kinds again (ClusterPolicy is deprecated).
    server.merge_patch_object(
        "imagepolicies",
        "",
        "ai-workloads",
        json!({"spec": {"engine": "Auto"}}),
    );
    wait_for("Auto chose CEL", T, || {
        (server.list_objects("validatingpolicies", None).len() == 4).then_some(())
    });
    assert_eq!(
        server.list_objects("clusterpolicies", None).len(),
        2,
        "kept until the CEL policies are ready"
    );
    mark_policies_ready(&server);
    wait_for("Auto chose CEL; ClusterPolicies pruned", T, || {
        let p = server.get_object("imagepolicies", "", "ai-workloads")?;
        (p["status"]["engine"] == "CEL"
            && server.list_objects("clusterpolicies", None).is_empty()
            && server.list_objects("validatingpolicies", None).len() == 4)
            .then_some(())
    });
}

#[test]
fn a_rule_switched_off_has_its_policy_pruned() {
    let Some(server) = server_with(&[Upstream::KyvernoClusterPolicyOnly]) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(image_policy(
        "ai-workloads",
        json!({
            "allowedRegistries": ["ghcr.io/ai-platform"],
            "rules": {"disallowLatestTag": {}, "restrictRegistries": {}},
        }),
    ));
    wait_for("two ClusterPolicies", T, || {
        (server.list_objects("clusterpolicies", None).len() == 2).then_some(())
    });
    let kept = server
        .get_object("clusterpolicies", "", "ai-workloads-restrict-registries")
        .unwrap();
    server.merge_patch_object(
        "imagepolicies",
        "",
        "ai-workloads",
        json!({"spec": {"rules": {"disallowLatestTag": null}}}),
    );
    wait_for("disallow-latest-tag pruned", T, || {
        server
            .get_object("clusterpolicies", "", "ai-workloads-disallow-latest-tag")
            .is_none()
            .then_some(())
    });
    let still = server
        .get_object("clusterpolicies", "", "ai-workloads-restrict-registries")
        .expect("the other rule's policy stays");
    assert_eq!(still["metadata"]["uid"], kept["metadata"]["uid"]);
    wait_for("status.policies updated", T, || {
        let p = server.get_object("imagepolicies", "", "ai-workloads")?;
        (p["status"]["policies"] == json!(["ai-workloads-restrict-registries"])).then_some(())
    });
}

#[test]
fn invalid_spec_is_reported_with_its_field_and_nothing_is_applied() {
    let Some(server) = server_with(&[Upstream::KyvernoClusterPolicyOnly]) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    // The CRD's CEL refuses it at admission, naming the field; nothing reaches the operator. (The
    // operator's own InvalidSpec path is shown by the Registry scenario: a glob only it can check.)
    let refused = server
        .try_put_object(image_policy(
            "broken",
            json!({"rules": {"disallowLatestTag": {"message": "bad {{ request.object.metadata.name }}"}}}),
        ))
        .expect_err("the API server refuses Kyverno variable syntax in a message");
    assert!(
        refused.contains("spec.rules.disallowLatestTag.message"),
        "{refused}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(server.get_object("imagepolicies", "", "broken").is_none());
    assert_eq!(server.request_log().count("patch", "ClusterPolicy"), 0);
    assert!(server.list_objects("clusterpolicies", None).is_empty());
}

#[test]
fn a_policy_waits_for_its_registry_endpoint_and_applies_nothing_meanwhile() {
    let Some(server) = server_with(&[Upstream::KyvernoClusterPolicyOnly]) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(image_policy(
        "ai-workloads",
        json!({
            "registryRef": {"name": "platform", "namespace": NS},
            "rules": {"disallowLatestTag": {}, "restrictRegistries": {}},
        }),
    ));
    let waiting = wait_reason(&server, "ai-workloads", "WaitingForRegistryEndpoint");
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .contains("registry/platform"),
        "{waiting}"
    );
    assert_eq!(
        policy_condition(&server, "ai-workloads", "Progressing").unwrap()["status"],
        "True"
    );
    assert!(server.list_objects("clusterpolicies", None).is_empty());

    server.put_object(k3d_registry(NS, "platform", json!({"adopt": "Never"})));
    let policy = wait_for("restrict-registries ClusterPolicy", T, || {
        server.get_object("clusterpolicies", "", "ai-workloads-restrict-registries")
    });
    assert!(allowed_patterns(&policy).contains(K3D_ENDPOINT));
}

#[test]
fn ready_mirrors_kyverno_and_steady_state_writes_nothing() {
    let Some(server) = server_with(&[Upstream::KyvernoClusterPolicyOnly]) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(image_policy(
        "ai-workloads",
        json!({
            "allowedRegistries": ["ghcr.io/ai-platform"],
            "rules": {"disallowLatestTag": {}, "restrictRegistries": {}},
        }),
    ));
    let waiting = wait_reason(&server, "ai-workloads", "WaitingForKyverno");
    assert_eq!(waiting["status"], "False");
    assert_eq!(
        policy_condition(&server, "ai-workloads", "Progressing").unwrap()["status"],
        "True"
    );

    let names = [
        "ai-workloads-disallow-latest-tag",
        "ai-workloads-restrict-registries",
    ];
    server.patch_status(
        "clusterpolicies",
        "",
        names[0],
        json!({"conditions": [{"type": "Ready", "status": "False", "reason": "Failed", "message": "webhook not configured", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
    );
    let failing = wait_reason(&server, "ai-workloads", "PolicyNotReady");
    assert!(
        failing["message"]
            .as_str()
            .unwrap()
            .contains("webhook not configured"),
        "{failing}"
    );
    for name in names {
        server.patch_status(
            "clusterpolicies",
            "",
            name,
            json!({"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "Ready", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
        );
    }
    let ready = wait_reason(&server, "ai-workloads", "PoliciesReady");
    assert_eq!(ready["status"], "True");
    let policy = server
        .get_object("imagepolicies", "", "ai-workloads")
        .unwrap();
    assert_eq!(policy["status"]["engine"], "ClusterPolicy");
    assert_eq!(policy["status"]["policies"], json!(names));
    assert_eq!(
        policy["status"]["allowedRegistries"],
        json!(["ghcr.io/ai-platform"])
    );
    assert_eq!(
        policy["status"]["observedGeneration"],
        policy["metadata"]["generation"]
    );
    assert_eq!(condition(&policy, "Degraded").unwrap()["status"], "False");

    // Three resync periods (--resync 1s) of a ready policy: reconciles run, nothing is written.
    settle_writes(&server);
    let before = policy_reconciles(&operator);
    server.reset_log();
    std::thread::sleep(Duration::from_millis(3500));
    let log = server.request_log();
    let writes = log.writes();
    assert_eq!(server.writes(), 0, "steady-state writes: {writes:?}");
    assert!(
        policy_reconciles(&operator) >= before + 2,
        "the policy was resynced meanwhile"
    );
}

/// `registry_operator_reconciles_total{controller="image-policy"}` from /metrics; 0 while the
/// endpoint does not answer yet.
fn policy_reconciles(operator: &Operator) -> u64 {
    let Some((_, metrics)) = operator.http_get("/metrics") else {
        return 0;
    };
    metrics
        .lines()
        .find(|l| l.starts_with("registry_operator_reconciles_total{controller=\"image-policy\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_restarted_operator_rewrites_nothing_for_a_ready_policy() {
    let Some(server) = server_with(&[Upstream::KyvernoClusterPolicyOnly]) else {
        return;
    };
    server.put_object(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "local-registry-hosting", "namespace": "kube-public"},
        "data": {"localRegistryHosting.v1": "host: localhost:5111\nhostFromContainerRuntime: k3d-myregistry:5000\nhostFromClusterNetwork: k3d-myregistry:5000\n"},
    }));
    let logs = tempfile::tempdir().unwrap();
    let mut operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(k3d_registry(NS, "platform", json!({})));
    server.put_object(image_policy(
        "ai-workloads",
        json!({
            "registryRef": {"name": "platform", "namespace": NS},
            "rules": {"restrictRegistries": {}},
        }),
    ));
    wait_for("ClusterPolicy allowing the adopted registry", T, || {
        let policy =
            server.get_object("clusterpolicies", "", "ai-workloads-restrict-registries")?;
        allowed_patterns(&policy)
            .contains("k3d-myregistry:5000")
            .then_some(())
    });
    server.patch_status(
        "clusterpolicies",
        "",
        "ai-workloads-restrict-registries",
        json!({"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "Ready", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
    );
    wait_reason(&server, "ai-workloads", "PoliciesReady");
    wait_for("Registry Ready=True", T, || {
        let registry = server.get_object("registries", NS, "platform")?;
        (condition(&registry, "Ready")?["status"] == "True").then_some(())
    });
    operator.kill();

    // A new process starts from empty caches; it must wait for them instead of re-applying. The
    // slow first list of ClusterPolicies opens the window where an unsynced cache looks empty.
    server.reset_log();
    server.set_faults(
        support::cluster::Faults::failing(0.0, &[])
            .verbs(&["list"])
            .kinds(&["ClusterPolicy"])
            .latency(Duration::from_millis(1500)),
    );
    let operator = Operator::start(&server, logs.path(), &[]);
    wait_for(
        "the restarted operator reconciled the policy twice",
        T,
        || (policy_reconciles(&operator) >= 2).then_some(()),
    );
    let log = server.request_log();
    let writes = log.writes();
    assert_eq!(server.writes(), 0, "writes after restart: {writes:?}");
    assert_eq!(
        wait_reason(&server, "ai-workloads", "PoliciesReady")["status"],
        "True"
    );
}

/// Play the cluster's part in a K3d → Harbor switch: Harbor's workloads become ready and the
/// migration Job succeeds (the endpoint flips only after a verified copy).
fn complete_switch(server: &ControlPlane) {
    complete_switch_jobs(server, NS, "platform");
}
