//! End to end through Kyverno's real admission controller (v1.19.1, built by
//! `tests/tools/build.sh kyverno`, run out of cluster against the real control plane): the operator
//! reconciles ImagePolicies, Kyverno's policy webhook admits the generated policies and Kyverno
//! reports them ready, the ImagePolicy's status follows that report, and then creates of Pods and
//! every pod controller are allowed or denied exactly as the verdict table says (the same cases
//! `tests/render/kyverno_verdicts.rs` runs through the CLI); signed images by tag are admitted
//! rewritten to their digest, unsigned ones denied. Both flavours.

use std::time::{Duration, Instant};

use crate::support;
use crate::support::cluster::ControlPlane;
use crate::support::scenario::*;
use crate::support::signing::SignedImages;
use crate::support::verdict_cases::{KINDS, NAMESPACES, image_policy, images, pod_spec, workload};
use serde_json::{Value, json};

/// Kyverno reports a new policy ready within seconds; generous for a loaded 2-core CI machine.
const T: Duration = Duration::from_secs(90);

fn kyverno_plane() -> Option<ControlPlane> {
    ControlPlane::builder().with_kyverno_admission().start()
}

/// How long the ImagePolicy may stay Ready while Kyverno reports one of its policies not ready:
/// Kyverno takes a policy back to not ready for a moment as it reconfigures its webhooks for the
/// policies that come after it (seen in CI: Ready, then `Not Ready`/`Failed` a second later), and the
/// operator follows after its debounce and a reconcile; generous for a loaded 2-core machine.
const FOLLOW: Duration = Duration::from_secs(10);

/// Waits until the ImagePolicy is Ready=True for its generation while every policy it generated
/// reports ready in Kyverno's own status (written by Kyverno, nobody else, in these tests), both at
/// once. Fails when the ImagePolicy stays Ready for [`FOLLOW`] while Kyverno says a policy is not.
fn wait_ready_as_kyverno_reports(server: &ControlPlane, name: &str) -> Vec<Value> {
    let deadline = Instant::now() + T;
    let mut disagreeing_since: Option<Instant> = None;
    loop {
        let policy = server.get_object("imagepolicies", "", name);
        match policy.as_ref().filter(|p| settled(p)) {
            Some(policy) => match generated_as_kyverno_reports(server, name, &policy["status"]) {
                Ok(objects) => return objects,
                Err(not_ready) => {
                    let since = *disagreeing_since.get_or_insert_with(Instant::now);
                    assert!(
                        since.elapsed() < FOLLOW,
                        "{not_ready}, yet the ImagePolicy has stayed Ready for {FOLLOW:?}"
                    );
                }
            },
            None => disagreeing_since = None,
        }
        assert!(
            Instant::now() < deadline,
            "ImagePolicy {name} not Ready with its policies after {T:?}: {}\n--- kyverno ---\n{}",
            policy.map(|p| p["status"].clone()).unwrap_or_default(),
            server.kyverno_log_tail(10)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The policies a Ready ImagePolicy's `status` names, as stored; `Err` names the first one Kyverno
/// does not report ready.
fn generated_as_kyverno_reports(
    server: &ControlPlane,
    name: &str,
    status: &Value,
) -> Result<Vec<Value>, String> {
    let generated = status["policies"].as_array().cloned().unwrap_or_default();
    assert!(
        !generated.is_empty(),
        "{name} generated no policy: {status}"
    );
    let resources: &[&str] = if status["engine"] == "CEL" {
        &["validatingpolicies", "imagevalidatingpolicies"]
    } else {
        &["clusterpolicies"]
    };
    generated
        .iter()
        .filter_map(Value::as_str)
        .map(|policy| {
            let (resource, object) = resources
                .iter()
                .find_map(|r| Some((*r, server.get_object(r, "", policy)?)))
                .unwrap_or_else(|| panic!("{name}: generated {policy} not found"));
            if kyverno_says_ready(&object) {
                Ok(object)
            } else {
                Err(format!(
                    "{name}: {resource}/{policy} is not ready in Kyverno's status: {}",
                    object["status"]
                ))
            }
        })
        .collect()
}

fn kyverno_says_ready(policy: &Value) -> bool {
    let status = &policy["status"];
    let condition_ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    condition_ready || status["conditionStatus"]["ready"] == true
}

/// Creates `object` as a user would; Ok(stored object) or Err(Kyverno's denial). Any other refusal
/// fails the test.
fn create(server: &ControlPlane, object: &Value) -> Result<Value, String> {
    match server.try_put_object(object.clone()) {
        Ok(stored) => Ok(stored),
        Err(e) if e.contains("denied the request") => Err(e),
        Err(e) => panic!(
            "{} {} refused, but not by an admission policy: {e}",
            object["kind"], object["metadata"]["name"]
        ),
    }
}

fn verdicts_through_admission(engine: &str) {
    let Some(server) = kyverno_plane() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    server.put_object(image_policy(
        "e",
        engine,
        &["apps", "apps-excluded"],
        &["apps-excluded"],
        "Enforce",
    ));
    server.put_object(image_policy("a", engine, &["audited"], &[], "Audit"));
    let started = Instant::now();
    for name in ["e", "a"] {
        let policies = wait_ready_as_kyverno_reports(&server, name);
        let kinds: Vec<&str> = policies.iter().filter_map(|p| p["kind"].as_str()).collect();
        let want = if engine == "CEL" {
            "ValidatingPolicy"
        } else {
            "ClusterPolicy"
        };
        assert!(kinds.contains(&want), "{engine} {name}: {kinds:?}");
    }
    let ready_after = started.elapsed();
    for (ns, _) in NAMESPACES {
        server
            .put_object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }

    let mut disagreements = Vec::new();
    let mut counted = (0, 0);
    let timing = Instant::now();
    for (ns, ns_case) in NAMESPACES {
        for (i, (label, image, tag_ok, registry_ok)) in images().iter().enumerate() {
            for kind in KINDS {
                for list in ["containers", "initContainers"] {
                    let name = format!("{}-{}-i{i}", kind.to_lowercase(), list.to_lowercase());
                    let object = workload(kind, &name, ns, pod_spec(list, image));
                    let admitted = create(&server, &object).is_ok();
                    let want = ns_case != "Enforce" || (*tag_ok && *registry_ok);
                    if admitted {
                        counted.0 += 1;
                    } else {
                        counted.1 += 1;
                    }
                    if admitted != want {
                        disagreements.push(format!(
                            "{engine}: {kind} in {ns} ({ns_case}), {list} {label} `{image}`: {} but the table says {}",
                            if admitted { "admitted" } else { "denied" },
                            if want { "admitted" } else { "denied" },
                        ));
                    }
                }
            }
        }
    }
    let creates = counted.0 + counted.1;
    eprintln!(
        "FIGURES kyverno admission {engine}: policies ready {ready_after:.1?} after apply; {creates} creates ({} admitted, {} denied) in {:.1?}; kyverno RSS {} MiB",
        counted.0,
        counted.1,
        timing.elapsed(),
        server.kyverno_rss_kib().unwrap_or(0) / 1024
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}\n--- kyverno ---\n{}",
        disagreements.len(),
        disagreements.join("\n"),
        server.kyverno_log_tail(20)
    );
    assert!(counted.1 > 0 && counted.0 > 0, "{counted:?}");

    // `kubectl debug` adds ephemeral containers through their own subresource.
    for (image, want) in [
        ("registry.example.com/ai/debug:1.0", true),
        ("registry.example.com/ai/debug:latest", false),
        ("ghcr.io/ai-platform/debug:1.0", false),
    ] {
        let pod = create(
            &server,
            &workload(
                "Pod",
                "debug-target",
                "apps",
                pod_spec("containers", "registry.example.com/ai/app:1.0"),
            ),
        )
        .expect("a compliant Pod is admitted");
        let mut pod = pod;
        pod["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": image}]);
        let answer = server.raw_request(
            http::Method::PUT,
            "/api/v1/namespaces/apps/pods/debug-target/ephemeralcontainers",
            Some(pod),
        );
        match (&answer, want) {
            (Ok(_), true) => {}
            (Err(e), false) if e.contains("denied the request") => {}
            _ => {
                panic!("{engine}: ephemeral container `{image}`: {answer:?}, want admitted={want}")
            }
        }
        server.delete_object("pods", "apps", "debug-target");
        wait_for("debug-target deleted", T, || {
            server
                .get_object("pods", "apps", "debug-target")
                .is_none()
                .then_some(())
        });
    }
}

#[test]
fn cluster_policy_flavour_admits_and_denies_as_the_verdict_table_says() {
    verdicts_through_admission("ClusterPolicy");
}

#[test]
fn cel_flavour_admits_and_denies_as_the_verdict_table_says() {
    verdicts_through_admission("CEL");
}

#[test]
fn signed_images_by_tag_are_admitted_with_their_digest_unsigned_denied_in_both_flavours() {
    let dir = tempfile::tempdir().unwrap();
    let Some(images) = SignedImages::prepare(dir.path()) else {
        return;
    };
    let Some(server) = kyverno_plane() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    let host = images.registry.host();
    for engine in ["ClusterPolicy", "CEL"] {
        let ns = format!("signed-{}", engine.to_lowercase());
        server.put_object(
            json!({"apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy",
            "metadata": {"name": format!("s-{}", engine.to_lowercase())},
            "spec": {"engine": engine, "failureAction": "Enforce", "namespaces": [ns],
                "allowedRegistries": [host],
                "rules": {"requireSignatures": {"keys": {"publicKey": images.public_key},
                    "transparencyLog": {"ignoreTlog": true, "ignoreSCT": true}}}}}),
        );
    }
    // Every rule kind at once (keyless and attestations too), in a namespace nothing runs in: the
    // generated policies must pass Kyverno's own policy webhook and be reported ready.
    for engine in ["ClusterPolicy", "CEL"] {
        server.put_object(json!({"apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy",
            "metadata": {"name": format!("all-{}", engine.to_lowercase())},
            "spec": {"engine": engine, "failureAction": "Enforce", "namespaces": ["nobody"],
                "allowedRegistries": [host],
                "rules": {"disallowLatestTag": {}, "restrictRegistries": {},
                    "requireSignatures": {"keyless": {"issuer": "https://token.actions.githubusercontent.com",
                        "subjectRegExp": "^https://github\\.com/ai-platform/.+$"}},
                    "attestations": [{"predicateType": "https://slsa.dev/provenance/v0.2"}]}}}));
    }
    for engine in ["ClusterPolicy", "CEL"] {
        for name in ["s", "all"] {
            let generated = wait_ready_as_kyverno_reports(
                &server,
                &format!("{name}-{}", engine.to_lowercase()),
            );
            eprintln!(
                "{engine} {name}: {} policies ready as Kyverno reports",
                generated.len()
            );
        }
    }
    let signed_digest = images.signed.split_once('@').unwrap().1.to_string();
    for engine in ["ClusterPolicy", "CEL"] {
        let ns = format!("signed-{}", engine.to_lowercase());
        for kind in ["Pod", "Deployment"] {
            let name = format!("{}-signed", kind.to_lowercase());
            let object = workload(
                kind,
                &name,
                &ns,
                pod_spec("containers", &SignedImages::by_tag(&images.signed)),
            );
            let stored = create(&server, &object)
                .unwrap_or_else(|e| panic!("{engine}: signed {kind} by tag denied: {e}"));
            let spec = if kind == "Pod" {
                &stored["spec"]
            } else {
                &stored["spec"]["template"]["spec"]
            };
            let image = spec["containers"][0]["image"].as_str().unwrap_or_default();
            assert!(
                image.ends_with(&format!("@{signed_digest}")),
                "{engine}: signed {kind} by tag admitted as `{image}`, not pinned to {signed_digest}"
            );
            let by_digest = workload(
                kind,
                &format!("{name}-digest"),
                &ns,
                pod_spec("containers", &images.signed),
            );
            create(&server, &by_digest)
                .unwrap_or_else(|e| panic!("{engine}: signed {kind} by digest denied: {e}"));
            let unsigned = workload(
                kind,
                &format!("{}-unsigned", kind.to_lowercase()),
                &ns,
                pod_spec("containers", &SignedImages::by_tag(&images.unsigned)),
            );
            let denied = create(&server, &unsigned);
            assert!(
                denied.is_err(),
                "{engine}: unsigned {kind} admitted: {denied:?}"
            );
        }
    }
}

/// The policies follow the Registry through a K3d → Harbor switch, as Kyverno enforces them: before
/// the flip the k3d host is admitted and the Harbor host denied, after it the reverse.
#[test]
fn after_a_switch_kyverno_admits_the_new_host_and_denies_the_old_one() {
    const NS: &str = "registry";
    const K3D: &str = "platform-distribution.registry.svc.cluster.local:5000";
    const HARBOR: &str = "harbor.ai-platform.localhost";
    let Some(server) = ControlPlane::builder()
        .with(support::cluster::Upstream::Cnpg)
        .with_kyverno_admission()
        .start()
    else {
        return;
    };
    let Some(harbor) = harbor_for_switch(&server, NS) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &["--harbor-api-url", &harbor.url()]);
    server.put_object(k3d_registry(NS, "platform", json!({"adopt": "Never"})));
    wait_for("k3d Ready", T, || {
        mark_children_ready(&server, NS, "platform");
        let r = server.get_object("registries", NS, "platform")?;
        (condition(&r, "Ready")?["status"] == "True").then_some(())
    });
    server.put_object(
        json!({"apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": "ai-workloads"},
        "spec": {"registryRef": {"name": "platform", "namespace": NS}, "namespaces": ["ai-apps"],
            "failureAction": "Enforce", "rules": {"restrictRegistries": {}}}}),
    );
    wait_ready_as_kyverno_reports(&server, "ai-workloads");
    server.put_object(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ai-apps"}}),
    );
    let admitted = |host: &str, name: &str| {
        let pod = workload(
            "Pod",
            name,
            "ai-apps",
            pod_spec("containers", &format!("{host}/ai/app:1.0")),
        );
        create(&server, &pod).is_ok()
    };
    assert!(
        admitted(K3D, "before-k3d"),
        "k3d host denied before the switch"
    );
    assert!(
        !admitted(HARBOR, "before-harbor"),
        "Harbor host admitted before the switch"
    );

    // A grace window of 20 s, forced: the pods this test created still name the k3d host.
    server.merge_patch_object(
        "registries",
        NS,
        "platform",
        json!({"spec": {"migration": {"grace": "20s", "force": true}}}),
    );
    switch_to_harbor(&server, NS, "platform", HARBOR);
    wait_for("endpoint flipped to Harbor", T, || {
        complete_switch_jobs(&server, NS, "platform");
        let r = server.get_object("registries", NS, "platform")?;
        (r["status"]["endpoint"] == HARBOR).then_some(())
    });
    // The grace window: Kyverno admits both hosts.
    wait_for("ImagePolicy allows both hosts", T, || {
        let p = server.get_object("imagepolicies", "", "ai-workloads")?;
        (p["status"]["allowedRegistries"] == json!([HARBOR, K3D]) && settled(&p)).then_some(())
    });
    wait_ready_as_kyverno_reports(&server, "ai-workloads");
    let mut attempt = 0;
    wait_for("Kyverno admits the Harbor host during grace", T, || {
        attempt += 1;
        admitted(HARBOR, &format!("grace-harbor-{attempt}")).then_some(())
    });
    assert!(
        admitted(K3D, "grace-k3d"),
        "the old host is admitted during the grace window"
    );
    // `Switched` or `Grace`: both allow the two hosts (on a loaded 2-core machine the pass after the
    // flip may come late).
    let in_grace = server.get_object("registries", NS, "platform").unwrap();
    assert!(
        ["Switched", "Grace"].contains(
            &in_grace["status"]["migration"]["phase"]
                .as_str()
                .unwrap_or_default()
        ),
        "checked inside the window: {}",
        in_grace["status"]
    );
    wait_for("ImagePolicy allows only the Harbor host", T, || {
        let p = server.get_object("imagepolicies", "", "ai-workloads")?;
        (p["status"]["allowedRegistries"] == json!([HARBOR]) && settled(&p)).then_some(())
    });
    wait_ready_as_kyverno_reports(&server, "ai-workloads");
    // Kyverno picks a changed policy up asynchronously after reporting it ready: allow a moment.
    let mut attempt = 0;
    wait_for("Kyverno enforces the Harbor host", T, || {
        attempt += 1;
        admitted(HARBOR, &format!("after-harbor-{attempt}")).then_some(())
    });
    assert!(
        !admitted(K3D, "after-k3d"),
        "old k3d host admitted after the switch"
    );
}
