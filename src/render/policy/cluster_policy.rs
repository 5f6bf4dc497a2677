//! The `kyverno.io/v1` ClusterPolicy flavour: one ClusterPolicy per rule, per-rule `failureAction`,
//! validate rules as overlay patterns, signatures and attestations as verifyImages. Pure.

use serde_json::{Value, json};

use super::image_rules::{TAG_PATTERN, jmespath_raw_literal, registry_pattern};
use super::{Context, DISALLOW_LATEST_TAG, REQUIRE_SIGNATURES, RESTRICT_REGISTRIES, message};
use crate::crd::{AttestationRule, SignatureRule};
use crate::render::kyverno::cluster_policy::{
    AllConditions, Attestation, Attestor, AttestorSet, ClusterPolicy, ClusterPolicySpec, Condition,
    CtLog, ImageVerification, KeylessAttestor, MatchResources, Rekor, ResourceDescription,
    ResourceFilter, Rule, SecretReference, StaticKeyAttestor, Validation,
};
use crate::render::kyverno::{FailureAction, WebhookConfiguration, cluster_policy_resource};
use crate::render::{RenderError, RenderedObject};

/// Default message of disallowLatestTag.
pub const LATEST_MESSAGE: &str = "Images must use a tag other than latest, or a digest (containers, initContainers, ephemeralContainers).";

/// Build the ClusterPolicies of every rule that is set.
pub(super) fn render(context: &Context<'_>) -> Result<Vec<RenderedObject>, RenderError> {
    let rules = &context.policy.spec.rules;
    let mut policies = Vec::new();
    if let Some(rule) = &rules.disallow_latest_tag {
        let validation = Validation {
            failure_action: context.action(rule.failure_action),
            message: message(rule.message.as_deref(), LATEST_MESSAGE),
            pattern: every_image(TAG_PATTERN),
        };
        policies.push(validate_policy(context, DISALLOW_LATEST_TAG, validation));
    }
    if let Some(rule) = &rules.restrict_registries {
        let default = format!(
            "Images must come from {}.",
            context.allowed_registries.join(", ")
        );
        let validation = Validation {
            failure_action: context.action(rule.failure_action),
            message: message(rule.message.as_deref(), &default),
            pattern: every_image(&registry_pattern(&context.allowed_registries)),
        };
        policies.push(validate_policy(context, RESTRICT_REGISTRIES, validation));
    }
    if let Some(signatures) = &rules.require_signatures {
        policies.push(signature_policy(context, signatures, &rules.attestations));
    }
    policies
        .into_iter()
        .map(|mut policy| {
            let metadata = std::mem::take(&mut policy.metadata);
            RenderedObject::from_parts(
                cluster_policy_resource(),
                metadata,
                serde_json::to_value(&policy)?,
            )
        })
        .collect()
}

/// Overlay pattern: every container, init container and ephemeral container image matches `pattern`.
/// `=(...)` checks the optional lists only when present.
fn every_image(pattern: &str) -> Value {
    json!({
        "spec": {
            "containers": [{ "image": pattern }],
            "=(initContainers)": [{ "image": pattern }],
            "=(ephemeralContainers)": [{ "image": pattern }],
        }
    })
}

fn match_pods(context: &Context<'_>) -> (MatchResources, Option<MatchResources>) {
    let matched = MatchResources {
        any: vec![ResourceFilter {
            resources: ResourceDescription {
                kinds: vec!["Pod".to_string()],
                namespaces: context.namespaces.clone(),
            },
        }],
    };
    let excluded = (!context.exclude_namespaces.is_empty()).then(|| MatchResources {
        any: vec![ResourceFilter {
            resources: ResourceDescription {
                kinds: Vec::new(),
                namespaces: context.exclude_namespaces.clone(),
            },
        }],
    });
    (matched, excluded)
}

fn validate_policy(context: &Context<'_>, slug: &str, validation: Validation) -> ClusterPolicy {
    let (match_resources, exclude) = match_pods(context);
    ClusterPolicy {
        metadata: context.metadata(slug),
        spec: ClusterPolicySpec {
            background: true,
            webhook_configuration: None,
            rules: vec![Rule {
                name: slug.to_string(),
                match_resources,
                exclude,
                validate: Some(validation),
                verify_images: Vec::new(),
            }],
        },
    }
}

/// Kyverno's `rekor` and `ctlog` of an attestor, from `transparencyLog` and `keyless.rekorURL`.
fn transparency(signatures: &SignatureRule) -> (Option<Rekor>, Option<CtLog>) {
    let t = super::transparency(signatures);
    let rekor = (t.rekor_url.is_some() || t.ignore_tlog).then_some(Rekor {
        url: t.rekor_url,
        ignore_tlog: t.ignore_tlog,
    });
    let ctlog = t.ignore_sct.then_some(CtLog { ignore_sct: true });
    (rekor, ctlog)
}

fn attestors(signatures: &SignatureRule) -> Vec<AttestorSet> {
    let (rekor, ctlog) = transparency(signatures);
    let keys = signatures.keys.as_ref().map(|keys| StaticKeyAttestor {
        public_keys: keys.public_key.clone(),
        secret: keys.secret_ref.as_ref().map(|s| SecretReference {
            name: s.name.clone(),
            namespace: s.namespace.clone(),
        }),
        rekor: rekor.clone(),
        ctlog: ctlog.clone(),
    });
    let keyless = signatures.keyless.as_ref().map(|k| KeylessAttestor {
        issuer: k.issuer.clone(),
        subject: k.subject.clone(),
        subject_reg_exp: k.subject_reg_exp.clone(),
        // Kyverno refuses a keyless attestor with no Rekor URL: name the public one it defaults to.
        rekor: Some(rekor.clone().map_or_else(
            || Rekor {
                url: Some(super::PUBLIC_REKOR.to_string()),
                ignore_tlog: false,
            },
            |r| Rekor {
                url: r.url.or_else(|| Some(super::PUBLIC_REKOR.to_string())),
                ..r
            },
        )),
        ctlog: ctlog.clone(),
    });
    vec![AttestorSet {
        entries: vec![Attestor { keys, keyless }],
    }]
}

fn signature_policy(
    context: &Context<'_>,
    signatures: &SignatureRule,
    attestations: &[AttestationRule],
) -> ClusterPolicy {
    let (match_resources, exclude) = match_pods(context);
    let references = context.signed_image_references();
    let signature_action = context.action(signatures.failure_action);
    let mut rules = vec![Rule {
        name: "verify-signatures".to_string(),
        match_resources: match_resources.clone(),
        exclude: exclude.clone(),
        validate: None,
        verify_images: vec![ImageVerification {
            failure_action: signature_action,
            verification_type: "Cosign",
            image_references: references.clone(),
            attestors: attestors(signatures),
            attestations: Vec::new(),
            mutate_digest: signatures.mutate_digest,
            verify_digest: signatures.verify_digest,
            required: true,
            cosign_oci11: signatures.cosign_oci11,
        }],
    }];
    let mut any_enforced = signature_action == FailureAction::Enforce;
    for (i, attestation) in attestations.iter().enumerate() {
        let action = context.action(attestation.failure_action);
        any_enforced |= action == FailureAction::Enforce;
        rules.push(Rule {
            name: format!("verify-attestation-{i}"),
            match_resources: match_resources.clone(),
            exclude: exclude.clone(),
            validate: None,
            verify_images: vec![ImageVerification {
                failure_action: action,
                verification_type: "Cosign",
                image_references: references.clone(),
                attestors: Vec::new(),
                attestations: vec![Attestation {
                    attestation_type: attestation.predicate_type.clone(),
                    attestors: attestors(signatures),
                    conditions: attestation_conditions(attestation),
                }],
                // The signature rule already rewrote the tag; a second rewrite would fight over the same field.
                mutate_digest: false,
                verify_digest: signatures.verify_digest,
                required: true,
                cosign_oci11: signatures.cosign_oci11,
            }],
        });
    }
    ClusterPolicy {
        metadata: context.metadata(REQUIRE_SIGNATURES),
        spec: ClusterPolicySpec {
            // Verification needs the admission request and registry access; background scans cannot mutate.
            background: false,
            webhook_configuration: Some(WebhookConfiguration {
                failure_policy: Some(if any_enforced { "Fail" } else { "Ignore" }),
                timeout_seconds: 30,
            }),
            rules,
        },
    }
}

/// Severities above `max`, as Trivy spells them.
pub(crate) fn severities_above(max: crate::crd::Severity) -> Vec<&'static str> {
    use crate::crd::Severity;
    [
        (Severity::Low, "LOW"),
        (Severity::Medium, "MEDIUM"),
        (Severity::High, "HIGH"),
        (Severity::Critical, "CRITICAL"),
    ]
    .into_iter()
    .filter(|(severity, _)| *severity > max)
    .map(|(_, name)| name)
    .collect()
}

/// JMESPath path of the SLSA builder id: v0.x predicates keep it at `builder.id`, v1 under `runDetails`.
pub(crate) fn builder_id_path(predicate_type: &str) -> &'static str {
    if predicate_type.contains("/provenance/v0.") {
        "builder.id"
    } else {
        "runDetails.builder.id"
    }
}

fn attestation_conditions(attestation: &AttestationRule) -> Vec<AllConditions> {
    let mut all = Vec::new();
    if let Some(hours) = attestation.max_age_hours {
        all.push(Condition {
            key: "{{ time_since('', metadata.scanFinishedOn, '') }}".to_string(),
            operator: "LessThanOrEquals",
            value: json!(format!("{hours}h")),
            message: format!("the vulnerability scan must be at most {hours}h old"),
        });
    }
    if let Some(max) = attestation.max_severity {
        let above = severities_above(max);
        let filter = if above.len() == 4 {
            // `None`: no finding at all, whatever its severity (UNKNOWN included).
            String::new()
        } else {
            let tests: Vec<String> = above.iter().map(|s| format!("Severity == '{s}'")).collect();
            format!(" | [?{}]", tests.join(" || "))
        };
        all.push(Condition {
            key: format!(
                "{{{{ scanner.result.Results[].Vulnerabilities[]{filter} | length(@) }}}}"
            ),
            operator: "Equals",
            value: json!(0),
            message: format!("the vulnerability scan must report no finding above {max:?}"),
        });
    }
    if let Some(pattern) = attestation
        .builder_id_pattern
        .as_deref()
        .and_then(jmespath_raw_literal)
    {
        all.push(Condition {
            key: format!(
                "{{{{ regex_match({pattern}, {}) }}}}",
                builder_id_path(&attestation.predicate_type)
            ),
            operator: "Equals",
            value: json!(true),
            message:
                "the provenance builder id must match spec.rules.attestations[].builderIdPattern"
                    .to_string(),
        });
    }
    if all.is_empty() {
        Vec::new()
    } else {
        vec![AllConditions { all }]
    }
}
