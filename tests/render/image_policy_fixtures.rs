//! The ImagePolicy fixtures and render helpers the `image_policy` tests use: the sample, a policy
//! from a spec, each rule alone (`cases`), what the operator observes, and rendering with the
//! apiserver's metadata rules checked. Holds no tests and must not decide any verdict of its own.

use crate::support::common;
use registry_operator::cli::{Manifest, read_manifests};
use registry_operator::crd::{ImagePolicy, PolicyEngine};
use registry_operator::render::{self, PolicyObserved, RenderedPolicy};
use serde_json::{Value, json};

pub(super) const ENDPOINT: &str = "harbor.ai-platform.localhost";

pub(super) fn sample() -> ImagePolicy {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/samples/imagepolicy.yaml");
    match read_manifests(&[path]).expect("sample").remove(0) {
        Manifest::ImagePolicy(policy) => *policy,
        other => panic!("unexpected {other:?}"),
    }
}

pub(super) fn policy_from(spec: Value) -> ImagePolicy {
    serde_json::from_value(json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": "p"}, "spec": spec,
    }))
    .expect("policy")
}

pub(super) fn observed(cluster_policy: bool, cel: bool) -> PolicyObserved {
    PolicyObserved {
        registry_endpoint: Some(ENDPOINT.to_string()),
        cluster_policy_served: cluster_policy,
        cel_policies_served: cel,
        operator_namespace: "registry-system".to_string(),
        ..Default::default()
    }
}

pub(super) fn with_engine(mut policy: ImagePolicy, engine: PolicyEngine) -> ImagePolicy {
    policy.spec.engine = engine;
    policy
}

pub(super) fn rendered(policy: &ImagePolicy, engine: PolicyEngine) -> RenderedPolicy {
    checked(&with_engine(policy.clone(), engine), &observed(true, true))
}

/// Render, then check every policy against the apiserver's metadata rules.
pub(super) fn checked(policy: &ImagePolicy, observed: &PolicyObserved) -> RenderedPolicy {
    let rendered = render::image_policy(policy, observed).expect("render");
    common::assert_all_valid_metadata(&rendered.objects);
    rendered
}

pub(super) fn yaml(rendered: &RenderedPolicy) -> String {
    render::to_yaml(&rendered.objects).expect("yaml")
}

pub(super) fn objects(rendered: &RenderedPolicy) -> Vec<Value> {
    rendered
        .objects
        .iter()
        .map(|o| serde_json::to_value(&o.object).expect("json"))
        .collect()
}

/// Each rule alone, plus the sample, as `(name, policy)`.
pub(super) fn cases() -> Vec<(&'static str, ImagePolicy)> {
    let base = json!({"registryRef": {"name": "platform", "namespace": "registry"}, "failureAction": "Enforce"});
    let with = |rules: Value| {
        let mut spec = base.clone();
        spec["rules"] = rules;
        policy_from(spec)
    };
    vec![
        ("sample", sample()),
        (
            "disallow_latest_tag",
            with(json!({"disallowLatestTag": {"failureAction": "Audit"}})),
        ),
        (
            "restrict_registries",
            with(json!({"restrictRegistries": {"message": "Only the platform registry."}})),
        ),
        (
            "require_signatures_key",
            with(json!({"requireSignatures": {
                "keys": {"publicKey": "-----BEGIN PUBLIC KEY-----\nPLACEHOLDER\n-----END PUBLIC KEY-----\n"},
                "cosignOCI11": true, "mutateDigest": false
            }})),
        ),
        (
            "require_signatures_secret",
            with(
                json!({"requireSignatures": {"keys": {"secretRef": {"name": "cosign", "namespace": "registry"}},
                "imageReferences": ["harbor.ai-platform.localhost/ai/*"]}}),
            ),
        ),
        (
            "attestations",
            with(json!({
                "requireSignatures": {"keyless": {"issuer": "https://token.actions.githubusercontent.com",
                    "subject": "https://github.com/ai-platform/build/.github/workflows/release.yaml@refs/heads/main"}},
                "attestations": [
                    {"predicateType": "https://cosign.sigstore.dev/attestation/vuln/v1", "maxAgeHours": 24, "maxSeverity": "Medium", "failureAction": "Audit"},
                    {"predicateType": "https://slsa.dev/provenance/v1", "builderIdPattern": "^https://github\\.com/ai-platform/.+$"}
                ]
            })),
        ),
        (
            "require_signatures_offline",
            with(json!({"requireSignatures": {
                "keys": {"publicKey": "-----BEGIN PUBLIC KEY-----\nPLACEHOLDER\n-----END PUBLIC KEY-----\n"},
                "transparencyLog": {"ignoreTlog": true, "ignoreSCT": true}
            }})),
        ),
        (
            "require_signatures_private_rekor",
            with(json!({"requireSignatures": {
                "keyless": {"issuer": "https://token.actions.githubusercontent.com", "subject": "ci@example.com"},
                "transparencyLog": {"rekorURL": "https://rekor.internal.example", "ignoreSCT": true}
            }})),
        ),
    ]
}
