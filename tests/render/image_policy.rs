//! ImagePolicy rendering: golden snapshots of both Kyverno flavours, strict upstream-schema checks, and
//! the generated image rules evaluated against Pods (wildcards for ClusterPolicy, CEL for ValidatingPolicy).
//! The fixtures and render helpers are in `image_policy_fixtures.rs`. Offline: it must not start a
//! control plane or the Kyverno CLI.

use super::image_policy_fixtures::{
    ENDPOINT, cases, checked, objects, observed, policy_from, rendered, sample, with_engine, yaml,
};
use crate::support::common;
use crate::support::policy::*;
use registry_operator::crd::{ChosenEngine, ImagePolicy, PolicyEngine};
use registry_operator::render::{self, RenderError, RenderedPolicy};
use serde_json::{Value, json};

#[test]
fn golden_snapshots_of_both_flavours() {
    for (name, policy) in cases() {
        for (engine, flavour) in [
            (PolicyEngine::ClusterPolicy, "cluster_policy"),
            (PolicyEngine::Cel, "cel"),
        ] {
            insta::assert_snapshot!(
                format!("{name}__{flavour}"),
                yaml(&rendered(&policy, engine))
            );
        }
    }
}

#[test]
fn every_generated_policy_is_valid_against_strict_upstream_schemas() {
    let Some(dir) = kyverno_schema_dir() else {
        return;
    };
    let schemas = [
        (
            "ClusterPolicy",
            common::strict_schema(&dir.join("kyverno.io_clusterpolicies.yaml"), "v1"),
        ),
        (
            "ValidatingPolicy",
            common::strict_schema(
                &dir.join("policies.kyverno.io_validatingpolicies.yaml"),
                "v1",
            ),
        ),
        (
            "ImageValidatingPolicy",
            common::strict_schema(
                &dir.join("policies.kyverno.io_imagevalidatingpolicies.yaml"),
                "v1",
            ),
        ),
    ];
    // The strict schema must catch a misspelt field, or this test proves nothing.
    let typo = json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "x"},
        "spec": {"rules": [{"name": "r", "match": {"any": []}, "validate": {"failureActoin": "Audit"}}]}});
    assert!(!schema_errors(&schemas[0].1, &typo).is_empty());
    let mut checked = 0;
    for (name, policy) in cases() {
        for engine in [PolicyEngine::ClusterPolicy, PolicyEngine::Cel] {
            for mut object in objects(&rendered(&policy, engine)) {
                drop_nulls(&mut object);
                let kind = object["kind"].as_str().expect("kind").to_string();
                let schema = &schemas
                    .iter()
                    .find(|(k, _)| *k == kind)
                    .expect("known kind")
                    .1;
                let errors = schema_errors(schema, &object);
                assert!(errors.is_empty(), "{name} {kind}: {errors:#?}");
                assert_eq!(
                    object["apiVersion"],
                    if kind == "ClusterPolicy" {
                        "kyverno.io/v1"
                    } else {
                        "policies.kyverno.io/v1"
                    }
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 18, "only {checked} objects checked");
}

fn restricting_policy() -> ImagePolicy {
    policy_from(json!({
        "registryRef": {"name": "platform", "namespace": "registry"},
        "allowedRegistries": ["ghcr.io/my-org", "192.168.1.10:5000"],
        "namespaces": ["ai-inference", "ai-apps"],
        "failureAction": "Enforce",
        "rules": {"disallowLatestTag": {}, "restrictRegistries": {}},
    }))
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// `(image, passes disallowLatestTag, passes restrictRegistries)` with endpoint harbor.ai-platform.localhost
/// plus allowedRegistries ghcr.io/my-org and 192.168.1.10:5000.
fn image_table() -> Vec<(String, bool, bool)> {
    let d = DIGEST;
    let rows: Vec<(String, bool, bool)> = vec![
        ("nginx".into(), false, false),
        ("nginx:latest".into(), false, false),
        ("nginx:1.25".into(), true, false),
        ("library/nginx:1.25".into(), true, false),
        ("nginx:latest-alpine".into(), true, false),
        (format!("nginx@{d}"), true, false),
        (format!("nginx:latest@{d}"), true, false),
        ("docker.io/library/nginx".into(), false, false),
        ("docker.io/library/nginx:latest".into(), false, false),
        ("docker.io/library/nginx:1.25".into(), true, false),
        (format!("docker.io/library/nginx@{d}"), true, false),
        ("harbor.ai-platform.localhost/ai/app:1.0".into(), true, true),
        ("harbor.ai-platform.localhost/ai/app".into(), false, true),
        (
            "harbor.ai-platform.localhost/ai/app:latest".into(),
            false,
            true,
        ),
        (
            format!("harbor.ai-platform.localhost/ai/app@{d}"),
            true,
            true,
        ),
        (
            "harbor.ai-platform.localhost/ai/team/nested/app:v2".into(),
            true,
            true,
        ),
        (
            "harbor.ai-platform.localhost/app:latest-cuda".into(),
            true,
            true,
        ),
        ("harbor.ai-platform.localhost/".into(), false, false),
        (
            "harbor.ai-platform.localhost.evil.com/x:1".into(),
            true,
            false,
        ),
        ("harbor.ai-platform.localhostx/y:1".into(), true, false),
        ("xharbor.ai-platform.localhost/x:1".into(), true, false),
        (
            "evil.com/harbor.ai-platform.localhost/x:1".into(),
            true,
            false,
        ),
        ("harbor.ai-platform.localhost:5000/x:1".into(), true, false),
        ("HARBOR.ai-platform.localhost/x:1".into(), true, false),
        ("k3d-registry:5000/app".into(), false, false),
        ("k3d-registry:5000/app:1.0".into(), true, false),
        ("k3d-registry:5000/app:latest".into(), false, false),
        (format!("k3d-registry:5000/app@{d}"), true, false),
        ("k3d-registry:5000/team/nested/app".into(), false, false),
        ("localhost:5000/app".into(), false, false),
        ("localhost:5000/app:dev".into(), true, false),
        ("192.168.1.10:5000/team/app:1.2".into(), true, true),
        ("192.168.1.10:5000/team/app".into(), false, true),
        ("192.168.1.10:5000/team/app:latest".into(), false, true),
        (format!("192.168.1.10:5000/team/app@{d}"), true, true),
        ("192.168.1.10/team/app:1.2".into(), true, false),
        ("192.168.1.100:5000/team/app:1".into(), true, false),
        ("192.168.1.10:50000/team/app:1".into(), true, false),
        ("ghcr.io/my-org/app:1".into(), true, true),
        ("ghcr.io/my-org/sub/app:1".into(), true, true),
        ("ghcr.io/my-org/app".into(), false, true),
        ("ghcr.io/my-orgx/app:1".into(), true, false),
        ("ghcr.io/my-org:1".into(), true, false),
        ("ghcr.io/other/app:1".into(), true, false),
        ("quay.io/org/app:v1.2.3".into(), true, false),
        ("registry.k8s.io/pause:3.9".into(), true, false),
        ("gcr.io/distroless/static:nonroot".into(), true, false),
        ("app:".into(), false, false),
    ];
    assert!(rows.len() >= 40);
    rows
}

/// Each generated policy's verdict for one Pod, keyed by rule slug.
fn verdicts(
    rendered: &RenderedPolicy,
    pod: &Value,
    namespace: &str,
) -> Vec<(String, Option<bool>)> {
    objects(rendered)
        .iter()
        .map(|object| {
            let slug = object["metadata"]["labels"]["app.kubernetes.io/component"]
                .as_str()
                .expect("component")
                .to_string();
            let verdict = match rendered.engine {
                ChosenEngine::ClusterPolicy => cluster_policy_admits(object, pod, namespace),
                ChosenEngine::Cel => validating_policy_admits(object, pod, namespace),
            };
            (slug, verdict)
        })
        .collect()
}

fn verdict(rendered: &RenderedPolicy, slug: &str, pod: &Value, namespace: &str) -> Option<bool> {
    verdicts(rendered, pod, namespace)
        .into_iter()
        .find(|(s, _)| s == slug)
        .expect("slug")
        .1
}

#[test]
fn image_table_decides_the_same_in_both_flavours() {
    let policy = restricting_policy();
    for engine in [PolicyEngine::ClusterPolicy, PolicyEngine::Cel] {
        let rendered = rendered(&policy, engine);
        for (image, latest_ok, registry_ok) in image_table() {
            let pod = pod("ai-apps", &[&image], &[], &[]);
            assert_eq!(
                verdict(&rendered, "disallow-latest-tag", &pod, "ai-apps"),
                Some(latest_ok),
                "{engine:?} latest {image}"
            );
            assert_eq!(
                verdict(&rendered, "restrict-registries", &pod, "ai-apps"),
                Some(registry_ok),
                "{engine:?} registry {image}"
            );
        }
    }
}

#[test]
fn every_container_list_is_checked_in_both_flavours() {
    let policy = restricting_policy();
    let good = "harbor.ai-platform.localhost/ai/app:1.0";
    for engine in [PolicyEngine::ClusterPolicy, PolicyEngine::Cel] {
        let rendered = rendered(&policy, engine);
        for bad in [
            "harbor.ai-platform.localhost/ai/app:latest",
            "k3d-registry:5000/app",
        ] {
            let pods = [
                ("containers", pod("ai-apps", &[good, bad], &[], &[])),
                ("initContainers", pod("ai-apps", &[good], &[bad], &[])),
                (
                    "ephemeralContainers",
                    pod("ai-apps", &[good], &[good], &[bad]),
                ),
            ];
            for (list, pod) in pods {
                assert_eq!(
                    verdict(&rendered, "disallow-latest-tag", &pod, "ai-apps"),
                    Some(false),
                    "{engine:?} {list} {bad}"
                );
            }
        }
        let all_good = pod("ai-apps", &[good], &[good], &[good]);
        assert_eq!(
            verdict(&rendered, "disallow-latest-tag", &all_good, "ai-apps"),
            Some(true)
        );
        assert_eq!(
            verdict(&rendered, "restrict-registries", &all_good, "ai-apps"),
            Some(true)
        );
        let foreign_init = pod("ai-apps", &[good], &["docker.io/library/busybox:1.36"], &[]);
        assert_eq!(
            verdict(&rendered, "restrict-registries", &foreign_init, "ai-apps"),
            Some(false),
            "{engine:?}"
        );
    }
}

#[test]
fn excluded_and_unselected_namespaces_are_not_checked() {
    let bad = pod("x", &["nginx:latest"], &[], &[]);
    // Selected and excluded: the exclusion wins.
    let mut selected_but_excluded = restricting_policy();
    selected_but_excluded
        .spec
        .namespaces
        .push("monitoring".to_string());
    selected_but_excluded.spec.exclude_namespaces = Some(vec!["monitoring".to_string()]);
    // Naming a platform namespace in `namespaces` is the explicit opt-in to checking it.
    let mut opted_in = restricting_policy();
    opted_in.spec.namespaces.push("kube-system".to_string());
    for engine in [PolicyEngine::ClusterPolicy, PolicyEngine::Cel] {
        let rendered = rendered(&selected_but_excluded, engine);
        assert_eq!(
            verdict(&rendered, "disallow-latest-tag", &bad, "ai-inference"),
            Some(false),
            "{engine:?}"
        );
        for namespace in [
            "default",
            "monitoring",
            "kube-system",
            "registry-system",
            "registry",
        ] {
            assert_eq!(
                verdict(&rendered, "disallow-latest-tag", &bad, namespace),
                None,
                "{engine:?} {namespace}"
            );
        }
        let rendered = self::rendered(&opted_in, engine);
        assert_eq!(
            verdict(&rendered, "disallow-latest-tag", &bad, "kube-system"),
            Some(false),
            "{engine:?}: kube-system opted in"
        );
        // No namespaces listed: everything but the platform's namespaces (kube-system, the
        // operator's registry-system, the Registry's registry) and the user's exclusions.
        let mut everywhere = restricting_policy();
        everywhere.spec.namespaces.clear();
        everywhere.spec.exclude_namespaces = Some(vec!["monitoring".to_string()]);
        let rendered = self::rendered(&everywhere, engine);
        assert_eq!(
            verdict(&rendered, "disallow-latest-tag", &bad, "default"),
            Some(false),
            "{engine:?}"
        );
        for namespace in ["monitoring", "kube-system", "registry-system", "registry"] {
            assert_eq!(
                verdict(&rendered, "disallow-latest-tag", &bad, namespace),
                None,
                "{engine:?} {namespace}: a user's exclusions add to the platform's"
            );
        }
    }
}

#[test]
fn engine_auto_follows_what_is_served() {
    let policy = sample();
    // Both served: the CEL kinds (ClusterPolicy is deprecated by Kyverno).
    assert_eq!(
        checked(&policy, &observed(true, true)).engine,
        ChosenEngine::Cel
    );
    let cp = checked(&policy, &observed(true, false));
    assert_eq!(cp.engine, ChosenEngine::ClusterPolicy);
    assert_eq!(
        cp.policy_names,
        [
            "ai-workloads-disallow-latest-tag",
            "ai-workloads-restrict-registries",
            "ai-workloads-require-signatures"
        ]
    );
    assert_eq!(cp.allowed_registries, [ENDPOINT]);
    let cel = checked(&policy, &observed(false, true));
    assert_eq!(cel.engine, ChosenEngine::Cel);
    let kinds: Vec<&str> = cel
        .objects
        .iter()
        .map(|o| o.resource.kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "ValidatingPolicy",
            "ValidatingPolicy",
            "ValidatingPolicy",
            "ValidatingPolicy",
            "ImageValidatingPolicy"
        ]
    );
    let none = render::image_policy(&policy, &observed(false, false));
    assert!(
        matches!(none, Err(RenderError::KyvernoNotInstalled(_))),
        "{none:?}"
    );
    let wanted_cel = render::image_policy(
        &with_engine(policy, PolicyEngine::Cel),
        &observed(true, false),
    );
    assert!(
        matches!(wanted_cel, Err(RenderError::KyvernoNotInstalled(_))),
        "{wanted_cel:?}"
    );
}

#[test]
fn owner_reference_and_labels_are_set() {
    let mut policy = sample();
    policy.metadata.uid = Some("1234".to_string());
    let rendered = checked(&policy, &observed(true, false));
    for object in &rendered.objects {
        let owner = &object
            .object
            .metadata
            .owner_references
            .as_ref()
            .expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("ImagePolicy", "1234", Some(true))
        );
        let labels = object.object.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels["registry.aisp.dev/owner-kind"], "ImagePolicy");
        assert_eq!(labels["registry.aisp.dev/owner-namespace"], "");
        assert!(object.namespace().is_none());
    }
}

#[test]
fn user_text_cannot_inject_kyverno_expressions() {
    let mut policy = restricting_policy();
    policy
        .spec
        .rules
        .disallow_latest_tag
        .as_mut()
        .expect("rule")
        .message = Some("no latest { {request.object.metadata.name} } $(./spec) {x}".to_string());
    for engine in [PolicyEngine::ClusterPolicy, PolicyEngine::Cel] {
        let text = yaml(&rendered(&policy, engine));
        let message = text
            .lines()
            .find(|l| l.contains("no latest"))
            .expect("message line");
        assert!(
            !message.contains('{') && !message.contains('}') && !message.contains("$("),
            "{engine:?}: {message}"
        );
    }
    policy
        .spec
        .rules
        .disallow_latest_tag
        .as_mut()
        .expect("rule")
        .message = Some("{{ request.object }}".to_string());
    let err = render::image_policy(&policy, &observed(true, true)).expect_err("rejected");
    assert!(
        err.to_string()
            .contains("spec.rules.disallowLatestTag.message"),
        "{err}"
    );
    let mut quoted = cases().remove(5).1;
    quoted.spec.rules.attestations[1].builder_id_pattern = Some("x') || true || ('".to_string());
    let err = render::image_policy(&quoted, &observed(true, true)).expect_err("rejected");
    assert!(err.to_string().contains("builderIdPattern"), "{err}");
}

#[test]
fn pattern_operators_in_allowed_registries_are_rejected() {
    for registry in ["ghcr.io/a|*", "ghcr.io/a*", "ghcr.io/a&!x", "ghcr.io/A"] {
        let policy = policy_from(
            json!({"allowedRegistries": [registry], "rules": {"restrictRegistries": {}}}),
        );
        let err = render::image_policy(&policy, &observed(true, true)).expect_err(registry);
        assert!(
            err.to_string().contains("spec.allowedRegistries[0]"),
            "{registry}: {err}"
        );
    }
}

#[test]
fn missing_endpoint_leaves_only_allowed_registries_or_fails() {
    let mut no_endpoint = observed(true, true);
    no_endpoint.registry_endpoint = None;
    let rendered = checked(&restricting_policy(), &no_endpoint);
    assert_eq!(
        rendered.allowed_registries,
        ["ghcr.io/my-org", "192.168.1.10:5000"]
    );
    let err = render::image_policy(&sample(), &no_endpoint).expect_err("nothing to allow");
    assert!(matches!(err, RenderError::NoAllowedRegistries), "{err:?}");
}

#[test]
fn wildcard_matcher_follows_kyverno() {
    assert!(wildcard_match("*", ""));
    assert!(wildcard_match("a*b?d", "axxbcd"));
    assert!(!wildcard_match("?*", ""));
    assert!(
        wildcard_match("*:*", "k3d-registry:5000/app"),
        "the naive tag pattern lets a port through"
    );
    assert!(string_pattern("x", "a | !b"));
    assert!(!string_pattern("b", "a | !b"));
}
