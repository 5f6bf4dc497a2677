//! Scenario tests of refused applies: the real kube-apiserver refuses one child (a
//! ValidatingAdmissionPolicy, enforced by kube-apiserver itself), the owner shows Ready=False with
//! reason ApplyFailed, an Event is written, the operator retries with backoff, and it recovers once
//! the policy's binding goes.

use std::time::Duration;

use crate::support::scenario::*;
use serde_json::{Value, json};

const NS: &str = "registry";
const T: Duration = Duration::from_secs(30);
/// How long apply attempts are counted while the refusal lasts.
const WINDOW: Duration = Duration::from_secs(5);
/// Backoff of the operator under test: 200 ms doubling to 2 s (a not-ready requeue is 300 ms).
const BACKOFF: [&str; 4] = ["--backoff-base", "200ms", "--backoff-max", "2s"];

/// A ValidatingAdmissionPolicy denying `kind` objects in `resource_rule` whose name ends with
/// `suffix` (only where `binding_match` selects), with `message` and `reason`; returns the binding's
/// name. Waits until the server enforces it: `probe` (a matching object) is refused. A probe the
/// server still admitted meanwhile is deleted again.
fn deny(
    server: &ControlPlane,
    name: &str,
    resource_rule: Value,
    suffix: &str,
    (message, reason): (&str, &str),
    binding_match: Value,
    probe: Value,
) -> String {
    server.put_object(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [resource_rule]},
            "validations": [{
                "expression": format!("!object.metadata.name.endsWith('{suffix}')"),
                "message": message,
                "reason": reason,
            }],
        },
    }));
    let binding = format!("{name}-binding");
    let mut spec = json!({"policyName": name, "validationActions": ["Deny"]});
    if !binding_match.is_null() {
        spec["matchResources"] = binding_match;
    }
    server.put_object(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": binding},
        "spec": spec,
    }));
    let probe_kind = probe["kind"].as_str().unwrap_or_default().to_string();
    let probe_ns = probe["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let probe_name = probe["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    wait_for(&format!("{name} enforced"), T, || {
        match server.try_put_object(probe.clone()) {
            Err(refused) if refused.contains(message) => Some(()),
            Err(other) => panic!("probe {probe_kind} {probe_name} refused otherwise: {other}"),
            Ok(_) => {
                server.delete_object(&probe_kind, &probe_ns, &probe_name);
                std::thread::sleep(Duration::from_millis(200));
                None
            }
        }
    });
    binding
}

/// Events (events.k8s.io) about `name` with `reason`, in `namespace` (None: everywhere).
fn events(server: &ControlPlane, namespace: Option<&str>, name: &str, reason: &str) -> Vec<Value> {
    server
        .list_objects("events.k8s.io/v1/events", namespace)
        .into_iter()
        .filter(|e| e["regarding"]["name"] == name && e["reason"] == reason)
        .collect()
}

/// Apply attempts (patches) of `kind` the operator sent during [`WINDOW`], all of them refused with
/// `code`.
fn attempts_over_window(server: &ControlPlane, kind: &str, code: u16) -> usize {
    server.reset_log();
    std::thread::sleep(WINDOW);
    let log = server.request_log();
    let attempts: Vec<_> = log
        .entries
        .iter()
        .filter(|e| e.verb == "patch" && e.kind.as_deref() == Some(kind))
        .collect();
    assert!(
        attempts.iter().all(|e| e.status == code),
        "every attempt refused with {code}: {attempts:?}"
    );
    attempts.len()
}

/// The backoff delays the operator logged for `object` after ApplyFailed (`retry_in`), in order.
fn logged_retry_delays(operator: &Operator, field: &str, object: &str) -> Vec<Duration> {
    operator
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"][field] == object && l["fields"]["reason"] == "ApplyFailed")
        .filter_map(|l| {
            // `Duration`'s Debug form: "200ms", "1.6s", "2s".
            let text = l["fields"]["retry_in"].as_str()?;
            let millis = match text.strip_suffix("ms") {
                Some(ms) => ms.parse::<f64>().ok()?,
                None => text.strip_suffix('s')?.parse::<f64>().ok()? * 1000.0,
            };
            Some(Duration::from_millis(millis as u64))
        })
        .collect()
}

/// Delays that start at the base (or one step above), never shrink and reach the cap of 2 s.
fn assert_backs_off(delays: &[Duration]) {
    assert!(
        delays
            .first()
            .is_some_and(|d| *d <= Duration::from_millis(400))
            && delays.windows(2).all(|w| w[0] <= w[1])
            && delays.last() == Some(&Duration::from_secs(2)),
        "doubling from 200ms to 2s: {delays:?}"
    );
}

fn assert_refusal_condition(object: &Value, child: &str, code: &str, message: &str) -> Value {
    let ready = condition(object, "Ready").expect("Ready condition");
    assert_eq!(ready["status"], "False", "{ready}");
    assert_eq!(ready["reason"], "ApplyFailed", "{ready}");
    let text = ready["message"].as_str().unwrap_or_default();
    assert!(
        text.starts_with(&format!(
            "{child}: the API server refused the apply ({code}"
        )),
        "{text}"
    );
    assert!(text.contains(message), "the server's message: {text}");
    assert!(text.chars().count() < 700, "trimmed: {text}");
    let generation = &object["metadata"]["generation"];
    assert_eq!(&object["status"]["observedGeneration"], generation);
    assert_eq!(&ready["observedGeneration"], generation);
    let degraded = condition(object, "Degraded").expect("Degraded condition");
    assert_eq!(
        (degraded["status"].as_str(), degraded["reason"].as_str()),
        (Some("True"), Some("ApplyFailed"))
    );
    ready
}

#[test]
fn a_refused_child_shows_in_the_registry_status_backs_off_and_recovers() {
    let Some(server) = server() else {
        return;
    };
    let message = "test policy: Services named *-distribution are not allowed in this namespace";
    let binding = deny(
        &server,
        "deny-distribution-services",
        json!({"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["services"]}),
        "-distribution",
        (message, "Invalid"),
        json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NS}}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "probe-distribution", "namespace": NS},
            "spec": {"ports": [{"port": 80}]}}),
    );
    let logs = tempfile::tempdir().unwrap();
    let operator = Operator::start(&server, logs.path(), &BACKOFF);
    server.put_object(k3d_registry(NS, "platform", json!({"adopt": "Never"})));

    let child = "Service registry/platform-distribution";
    let registry = wait_for("Registry Ready=False ApplyFailed", T, || {
        let r = server.get_object("registries", NS, "platform")?;
        (condition(&r, "Ready")?["reason"] == "ApplyFailed").then_some(r)
    });
    let ready = assert_refusal_condition(&registry, child, "422 Invalid", message);
    assert_eq!(registry["status"]["phase"], "Degraded");
    assert!(
        server
            .get_object("services", NS, "platform-distribution")
            .is_none()
    );
    eprintln!("Ready condition while refused: {}", ready["message"]);

    let event = wait_for("ApplyFailed Event", T, || {
        events(&server, Some(NS), "platform", "ApplyFailed")
            .into_iter()
            .next()
    });
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["regarding"]["kind"], "Registry");
    assert!(
        event["note"].as_str().unwrap_or_default().contains(child),
        "{event}"
    );

    // Backoff: 200 ms doubling to 2 s gives at most 6 attempts in 5 s (a fixed 300 ms requeue
    // would give 16); the refusal never stops the retries either.
    let attempts = attempts_over_window(&server, "Service", 422);
    eprintln!("apply attempts of the refused Service in {WINDOW:?}: {attempts}");
    assert!((2..=7).contains(&attempts), "{attempts} attempts");
    let delays = logged_retry_delays(&operator, "registry", "registry/platform");
    eprintln!("logged retry delays: {delays:?}");
    assert_backs_off(&delays);
    let published = events(&server, Some(NS), "platform", "ApplyFailed");
    assert!(
        published.len() == 1 && published[0]["series"].is_null(),
        "one Event when the condition changed, none per retry: {published:?}"
    );
    assert!(operator.metric_total("registry_operator_reconcile_failures_total") >= 2.0);

    // A spec edit while refused: the condition describes the new generation.
    server.merge_patch_object(
        "registries",
        NS,
        "platform",
        json!({"spec": {"k3d": {"image": "mirror.local/registry:2.8.3"}}}),
    );
    let edited = wait_for("generation 2 observed", T, || {
        let r = server.get_object("registries", NS, "platform")?;
        (r["status"]["observedGeneration"] == 2).then_some(r)
    });
    assert_refusal_condition(&edited, child, "422 Invalid", message);

    // The cause goes: the next retry (within the 2 s backoff) applies everything.
    server.delete_object("validatingadmissionpolicybindings", "", &binding);
    wait_for("Service created", T, || {
        server.get_object("services", NS, "platform-distribution")
    });
    wait_for("Deployment created", T, || {
        server.get_object("deployments", NS, "platform-distribution")
    });
    mark_k3d_children_ready(&server, NS, "platform");
    let recovered = wait_for("Registry Ready=True", T, || {
        let r = server.get_object("registries", NS, "platform")?;
        (condition(&r, "Ready")?["status"] == "True").then_some(r)
    });
    assert_eq!(recovered["status"]["phase"], "Ready");
    assert_eq!(
        recovered["status"]["observedGeneration"],
        recovered["metadata"]["generation"]
    );
    let conditions = recovered["status"]["conditions"].as_array().unwrap();
    assert!(
        conditions.iter().all(|c| c["reason"] != "ApplyFailed"),
        "ApplyFailed cleared: {conditions:?}"
    );
    assert_eq!(
        condition(&recovered, "Degraded").unwrap()["status"],
        "False"
    );
    wait_for("Available Event", T, || {
        events(&server, Some(NS), "platform", "Available")
            .into_iter()
            .next()
    });
}

#[test]
fn a_refused_kyverno_policy_shows_in_the_image_policy_status_and_recovers() {
    let Some(server) = ControlPlane::builder()
        .with(Upstream::KyvernoClusterPolicyOnly)
        .start()
    else {
        return;
    };
    let message = "test policy: restrict-registries ClusterPolicies need a change ticket";
    let probe_rule = json!({"name": "probe", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
        "validate": {"message": "probe", "pattern": {"metadata": {"name": "?*"}}}});
    let binding = deny(
        &server,
        "deny-restrict-registries",
        json!({"apiGroups": ["kyverno.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["clusterpolicies"]}),
        "-restrict-registries",
        (message, "Forbidden"),
        Value::Null,
        json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": "probe-restrict-registries"},
            "spec": {"rules": [probe_rule]}}),
    );
    let logs = tempfile::tempdir().unwrap();
    let operator = Operator::start(&server, logs.path(), &BACKOFF);
    server.put_object(json!({
        "apiVersion": "registry.aisp.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "ai-workloads"},
        "spec": {
            "allowedRegistries": ["ghcr.io/ai-platform"],
            "rules": {"disallowLatestTag": {}, "restrictRegistries": {}},
        },
    }));

    let child = "ClusterPolicy ai-workloads-restrict-registries";
    let policy = wait_for("ImagePolicy Ready=False ApplyFailed", T, || {
        let p = server.get_object("imagepolicies", "", "ai-workloads")?;
        (condition(&p, "Ready")?["reason"] == "ApplyFailed").then_some(p)
    });
    let ready = assert_refusal_condition(&policy, child, "403 Forbidden", message);
    eprintln!("Ready condition while refused: {}", ready["message"]);
    assert!(
        server
            .get_object("clusterpolicies", "", "ai-workloads-restrict-registries")
            .is_none()
    );

    // Events of a cluster-scoped object land in `default`.
    let event = wait_for("ApplyFailed Event", T, || {
        events(&server, None, "ai-workloads", "ApplyFailed")
            .into_iter()
            .next()
    });
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["regarding"]["kind"], "ImagePolicy");
    assert!(
        event["note"].as_str().unwrap_or_default().contains(child),
        "{event}"
    );

    let attempts = attempts_over_window(&server, "ClusterPolicy", 403);
    eprintln!("apply attempts of the refused ClusterPolicy in {WINDOW:?}: {attempts}");
    assert!((2..=7).contains(&attempts), "{attempts} attempts");
    assert_backs_off(&logged_retry_delays(
        &operator,
        "image_policy",
        "ai-workloads",
    ));
    let published = events(&server, None, "ai-workloads", "ApplyFailed");
    assert!(
        published.len() == 1 && published[0]["series"].is_null(),
        "{published:?}"
    );

    server.delete_object("validatingadmissionpolicybindings", "", &binding);
    wait_for("restrict-registries ClusterPolicy created", T, || {
        server.get_object("clusterpolicies", "", "ai-workloads-restrict-registries")
    });
    play_the_cluster(&server, NS);
    let recovered = wait_for("ImagePolicy Ready=True", T, || {
        let p = server.get_object("imagepolicies", "", "ai-workloads")?;
        (condition(&p, "Ready")?["status"] == "True").then_some(p)
    });
    assert_eq!(
        condition(&recovered, "Ready").unwrap()["reason"],
        "PoliciesReady"
    );
    assert_eq!(
        recovered["status"]["policies"].as_array().map(Vec::len),
        Some(2)
    );
    let conditions = recovered["status"]["conditions"].as_array().unwrap();
    assert!(
        conditions.iter().all(|c| c["reason"] != "ApplyFailed"),
        "ApplyFailed cleared: {conditions:?}"
    );
}
