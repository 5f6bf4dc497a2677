//! Proptest strategies for typed ImagePolicy specs (basic rules, signatures, attestations) and what
//! the operator observes for them. Generates data only; asserts nothing.

use proptest::prelude::*;
use registry_operator::crd::*;
use registry_operator::render::PolicyObserved;

use super::{host, image, name, url, weird_text};

pub fn basic_rule() -> impl Strategy<Value = BasicRule> {
    (
        proptest::option::of(failure_action()),
        proptest::option::of(weird_text()),
    )
        .prop_map(|(failure_action, message)| BasicRule {
            failure_action,
            message,
        })
}

pub fn failure_action() -> impl Strategy<Value = FailureAction> {
    prop_oneof![Just(FailureAction::Audit), Just(FailureAction::Enforce)]
}

pub fn signature_rule() -> impl Strategy<Value = SignatureRule> {
    let pem = prop_oneof![
        Just("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n".to_string()),
        weird_text()
    ];
    let secret = (
        name(),
        name(),
        prop_oneof![Just("cosign.pub".to_string()), weird_text()],
    )
        .prop_map(|(name, namespace, key)| NamespacedSecretKeyRef {
            name,
            namespace,
            key,
        });
    let keys = (proptest::option::of(pem), proptest::option::of(secret)).prop_map(
        |(public_key, secret_ref)| KeyVerification {
            public_key,
            secret_ref,
        },
    );
    let keyless = (
        url(),
        proptest::option::of(weird_text()),
        proptest::option::of(weird_text()),
        proptest::option::of(url()),
        proptest::option::of(url()),
    )
        .prop_map(|(issuer, subject, subject_reg_exp, rekor_url, ctlog_url)| {
            KeylessVerification {
                issuer,
                subject,
                subject_reg_exp,
                rekor_url,
                ctlog_url,
            }
        });
    (
        proptest::option::of(failure_action()),
        proptest::collection::vec(prop_oneof![image(), weird_text()], 0..2),
        proptest::option::of(keys),
        proptest::option::of(keyless),
        any::<(bool, bool, bool)>(),
    )
        .prop_map(
            |(failure_action, image_references, keys, keyless, flags)| SignatureRule {
                failure_action,
                image_references,
                keys,
                keyless,
                transparency_log: None,
                cosign_oci11: flags.0,
                mutate_digest: flags.1,
                verify_digest: flags.2,
            },
        )
}

pub fn attestation() -> impl Strategy<Value = AttestationRule> {
    (
        prop_oneof![
            Just("https://slsa.dev/provenance/v1".to_string()),
            weird_text()
        ],
        proptest::option::of(failure_action()),
        proptest::option::of(0u32..1000),
        proptest::option::of(prop_oneof![
            Just(Severity::None),
            Just(Severity::Low),
            Just(Severity::Medium),
            Just(Severity::High),
            Just(Severity::Critical)
        ]),
        proptest::option::of(weird_text()),
    )
        .prop_map(
            |(predicate_type, failure_action, max_age_hours, max_severity, builder_id_pattern)| {
                AttestationRule {
                    predicate_type,
                    failure_action,
                    max_age_hours,
                    max_severity,
                    builder_id_pattern,
                }
            },
        )
}

pub fn image_policy() -> impl Strategy<Value = ImagePolicy> {
    let rules = (
        proptest::option::of(basic_rule()),
        proptest::option::of(basic_rule()),
        proptest::option::of(signature_rule()),
        proptest::collection::vec(attestation(), 0..3),
    )
        .prop_map(
            |(disallow_latest_tag, restrict_registries, require_signatures, attestations)| {
                PolicyRules {
                    disallow_latest_tag,
                    restrict_registries,
                    require_signatures,
                    attestations,
                }
            },
        );
    (
        name(),
        proptest::option::of((name(), name())),
        proptest::collection::vec(host(), 0..3),
        proptest::collection::vec(name(), 0..3),
        proptest::option::of(proptest::collection::vec(name(), 0..3)),
        failure_action(),
        prop_oneof![
            Just(PolicyEngine::Auto),
            Just(PolicyEngine::ClusterPolicy),
            Just(PolicyEngine::Cel)
        ],
        rules,
    )
        .prop_map(
            |(
                name,
                reference,
                allowed_registries,
                namespaces,
                exclude_namespaces,
                failure_action,
                engine,
                rules,
            )| {
                ImagePolicy::new(
                    &name,
                    ImagePolicySpec {
                        registry_ref: reference
                            .map(|(name, namespace)| RegistryRef { name, namespace }),
                        allowed_registries,
                        namespaces,
                        exclude_namespaces,
                        failure_action,
                        engine,
                        rules,
                    },
                )
            },
        )
}

pub fn policy_observed() -> impl Strategy<Value = PolicyObserved> {
    (
        proptest::option::of(prop_oneof![
            Just("k3d-registry.localhost:5000".to_string()),
            Just("harbor.ai-platform.localhost".to_string()),
            Just("harbor.example.com/library".to_string()),
        ]),
        "[a-z][a-z0-9-]{0,20}",
    )
        .prop_map(|(registry_endpoint, operator_namespace)| PolicyObserved {
            registry_endpoint,
            cluster_policy_served: true,
            cel_policies_served: true,
            operator_namespace,
            ..Default::default()
        })
}
