//! The CEL flavour (Kyverno >= 1.17): a `ValidatingPolicy` per image rule, an `ImageValidatingPolicy`
//! for signatures and one per attestation (each has a single policy-wide action). Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::cluster_policy::{LATEST_MESSAGE, builder_id_path, severities_above};
use super::image_rules::{
    ALL_CONTAINERS_CEL, REGISTRY_CEL, TAG_CEL, cel_string_literal, registry_prefixes_cel,
};
use super::{
    Context, DISALLOW_LATEST_TAG, EPHEMERAL_REGISTRY, EPHEMERAL_TAG, REQUIRE_SIGNATURES,
    RESTRICT_REGISTRIES, message,
};
use crate::crd::{AttestationRule, SignatureRule};
use crate::render::kyverno::cel_policy::{
    CelValidation, CosignAttestor, CosignKey, CosignKeyless, CosignTransparencyLog, Enabled,
    Evaluation, ImageAttestation, ImageAttestor, ImageReferenceMatch, ImageValidatingPolicy,
    ImageValidatingPolicySpec, InToto, KeylessIdentity, MatchConstraints, ResourceRule,
    ValidatingPolicy, ValidatingPolicySpec, ValidationConfigurations, Variable,
};
use crate::render::kyverno::{
    FailureAction, WebhookConfiguration, image_validating_policy_resource,
    validating_policy_resource,
};
use crate::render::{RenderError, RenderedObject};

const NAMESPACE_LABEL: &str = "kubernetes.io/metadata.name";
/// The containers `kubectl debug` adds, the object of a `pods/ephemeralcontainers` request.
const EPHEMERAL_CONTAINERS_CEL: &str =
    "has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers : []";

/// What a policy matches. Kyverno generates the pod-controller rules (Deployment, StatefulSet,
/// DaemonSet, ReplicaSet, Job, CronJob) of a policy only when its resource rules name `pods` alone,
/// so the ephemeral-containers subresource gets a policy of its own (`-ephemeral-*`).
#[derive(Clone, Copy)]
enum Target {
    Pods,
    EphemeralContainers,
}
const ATTESTOR: &str = "signer";
const ALL_IMAGES_CEL: &str = "(has(images.containers) ? images.containers : []) + (has(images.initContainers) ? images.initContainers : []) + (has(images.ephemeralContainers) ? images.ephemeralContainers : [])";

/// Build the CEL policies of every rule that is set, plus warnings for settings this API lacks.
pub(super) fn render(
    context: &Context<'_>,
) -> Result<(Vec<RenderedObject>, Vec<String>), RenderError> {
    let rules = &context.policy.spec.rules;
    let mut objects = Vec::new();
    let mut warnings = Vec::new();
    if let Some(rule) = &rules.disallow_latest_tag {
        let validation = CelValidation {
            expression: format!("variables.allContainers.all(c, {TAG_CEL})"),
            message: message(rule.message.as_deref(), LATEST_MESSAGE),
        };
        objects.extend(pods_and_ephemeral(
            context,
            [DISALLOW_LATEST_TAG, EPHEMERAL_TAG],
            context.action(rule.failure_action),
            Vec::new(),
            validation,
        )?);
    }
    if let Some(rule) = &rules.restrict_registries {
        let default = format!(
            "Images must come from {}.",
            context.allowed_registries.join(", ")
        );
        let validation = CelValidation {
            expression: format!("variables.allContainers.all(c, {REGISTRY_CEL})"),
            message: message(rule.message.as_deref(), &default),
        };
        let prefixes = Variable {
            name: "allowedPrefixes".to_string(),
            expression: registry_prefixes_cel(&context.allowed_registries),
        };
        objects.extend(pods_and_ephemeral(
            context,
            [RESTRICT_REGISTRIES, EPHEMERAL_REGISTRY],
            context.action(rule.failure_action),
            vec![prefixes],
            validation,
        )?);
    }
    if let Some(signatures) = &rules.require_signatures {
        if signatures.cosign_oci11 {
            warnings.push("spec.rules.requireSignatures.cosignOCI11: ImageValidatingPolicy has no such switch; ignored".to_string());
        }
        let validation = CelValidation {
            expression: format!(
                "variables.allImages.all(image, verifyImageSignatures(image, [attestors.{ATTESTOR}]) > 0)"
            ),
            message: "Images must carry a valid cosign signature from the configured signer."
                .to_string(),
        };
        let mut policy = image_policy(
            context,
            REQUIRE_SIGNATURES,
            signatures,
            signatures.mutate_digest,
            None,
            vec![validation],
        );
        objects.push(RenderedObject::from_parts(
            image_validating_policy_resource(),
            std::mem::take(&mut policy.metadata),
            serde_json::to_value(&policy)?,
        )?);
        for (i, attestation) in rules.attestations.iter().enumerate() {
            let slug = format!("attestation-{i}");
            let mut policy = image_policy(
                context,
                &slug,
                signatures,
                false,
                Some(attestation),
                attestation_validations(attestation),
            );
            objects.push(RenderedObject::from_parts(
                image_validating_policy_resource(),
                std::mem::take(&mut policy.metadata),
                serde_json::to_value(&policy)?,
            )?);
        }
    }
    Ok((objects, warnings))
}

/// One image rule as two ValidatingPolicies named by `slugs`: for pods (Kyverno adds its
/// pod-controller rules) and for the ephemeral-containers subresource.
fn pods_and_ephemeral(
    context: &Context<'_>,
    slugs: [&str; 2],
    action: FailureAction,
    variables: Vec<Variable>,
    validation: CelValidation,
) -> Result<Vec<RenderedObject>, RenderError> {
    let targets = [Target::Pods, Target::EphemeralContainers];
    slugs
        .into_iter()
        .zip(targets)
        .map(|(slug, target)| {
            let mut policy = validating_policy(
                context,
                slug,
                target,
                action,
                variables.clone(),
                validation.clone(),
            );
            RenderedObject::from_parts(
                validating_policy_resource(),
                std::mem::take(&mut policy.metadata),
                serde_json::to_value(&policy)?,
            )
        })
        .collect()
}

fn actions(action: FailureAction) -> Vec<&'static str> {
    match action {
        FailureAction::Enforce => vec!["Deny"],
        FailureAction::Audit => vec!["Audit"],
    }
}

/// Pods, or the ephemeral-containers subresource (whose object is the Pod), in the selected namespaces.
fn match_pods(context: &Context<'_>, target: Target) -> MatchConstraints {
    let mut expressions = Vec::new();
    if !context.namespaces.is_empty() {
        expressions.push(LabelSelectorRequirement {
            key: NAMESPACE_LABEL.to_string(),
            operator: "In".to_string(),
            values: Some(context.namespaces.clone()),
        });
    }
    if !context.exclude_namespaces.is_empty() {
        expressions.push(LabelSelectorRequirement {
            key: NAMESPACE_LABEL.to_string(),
            operator: "NotIn".to_string(),
            values: Some(context.exclude_namespaces.clone()),
        });
    }
    MatchConstraints {
        resource_rules: vec![ResourceRule {
            api_groups: vec![""],
            api_versions: vec!["v1"],
            operations: vec!["CREATE", "UPDATE"],
            resources: vec![match target {
                Target::Pods => "pods",
                Target::EphemeralContainers => "pods/ephemeralcontainers",
            }],
        }],
        namespace_selector: LabelSelector {
            match_expressions: Some(expressions),
            match_labels: None,
        },
    }
}

fn validating_policy(
    context: &Context<'_>,
    slug: &str,
    target: Target,
    action: FailureAction,
    extra_variables: Vec<Variable>,
    validation: CelValidation,
) -> ValidatingPolicy {
    let containers = match target {
        Target::Pods => ALL_CONTAINERS_CEL,
        Target::EphemeralContainers => EPHEMERAL_CONTAINERS_CEL,
    };
    let mut variables = vec![Variable {
        name: "allContainers".to_string(),
        expression: containers.to_string(),
    }];
    variables.extend(extra_variables);
    ValidatingPolicy {
        metadata: context.metadata(slug),
        spec: ValidatingPolicySpec {
            validation_actions: actions(action),
            evaluation: Evaluation {
                background: Enabled { enabled: true },
            },
            match_constraints: match_pods(context, target),
            variables,
            validations: vec![validation],
        },
    }
}

fn attestor(signatures: &SignatureRule) -> ImageAttestor {
    let key = signatures.keys.as_ref().map(|keys| CosignKey {
        data: keys.public_key.clone(),
        kms: keys
            .secret_ref
            .as_ref()
            .map(|s| format!("k8s://{}/{}", s.namespace, s.name)),
    });
    let keyless = signatures.keyless.as_ref().map(|k| CosignKeyless {
        identities: vec![KeylessIdentity {
            issuer: k.issuer.clone(),
            subject: k.subject.clone(),
            subject_reg_exp: k.subject_reg_exp.clone(),
        }],
    });
    let t = super::transparency(signatures);
    let ctlog =
        (t.rekor_url.is_some() || t.ignore_tlog || t.ignore_sct).then_some(CosignTransparencyLog {
            url: t.rekor_url,
            insecure_ignore_tlog: t.ignore_tlog,
            insecure_ignore_sct: t.ignore_sct,
        });
    ImageAttestor {
        name: ATTESTOR.to_string(),
        cosign: CosignAttestor {
            key,
            keyless,
            ctlog,
        },
    }
}

fn image_policy(
    context: &Context<'_>,
    slug: &str,
    signatures: &SignatureRule,
    mutate_digest: bool,
    attestation: Option<&AttestationRule>,
    validations: Vec<CelValidation>,
) -> ImageValidatingPolicy {
    let action = context.action(attestation.map_or(signatures.failure_action, |a| {
        a.failure_action.or(signatures.failure_action)
    }));
    ImageValidatingPolicy {
        metadata: context.metadata(slug),
        spec: ImageValidatingPolicySpec {
            validation_actions: actions(action),
            evaluation: Evaluation {
                background: Enabled { enabled: false },
            },
            webhook_configuration: WebhookConfiguration {
                failure_policy: None,
                timeout_seconds: 30,
            },
            match_constraints: match_pods(context, Target::Pods),
            match_image_references: context
                .signed_image_references()
                .into_iter()
                .map(|glob| ImageReferenceMatch { glob })
                .collect(),
            attestors: vec![attestor(signatures)],
            attestations: attestation
                .map(|a| ImageAttestation {
                    name: "statement".to_string(),
                    intoto: InToto {
                        predicate_type: a.predicate_type.clone(),
                    },
                })
                .into_iter()
                .collect(),
            validation_configurations: ValidationConfigurations {
                mutate_digest,
                verify_digest: signatures.verify_digest,
                required: true,
            },
            variables: vec![Variable {
                name: "allImages".to_string(),
                expression: ALL_IMAGES_CEL.to_string(),
            }],
            validations,
        },
    }
}

fn attestation_validations(attestation: &AttestationRule) -> Vec<CelValidation> {
    let payload = "extractPayload(image, attestations.statement)";
    let mut validations = vec![CelValidation {
        expression: format!(
            "variables.allImages.all(image, verifyAttestationSignatures(image, attestations.statement, [attestors.{ATTESTOR}]) > 0)"
        ),
        message: "Images must carry a signed attestation of the configured predicate type."
            .to_string(),
    }];
    if let Some(hours) = attestation.max_age_hours {
        // Kyverno's time library works on RFC 3339 strings.
        validations.push(CelValidation {
            expression: format!("variables.allImages.all(image, time_after({payload}.metadata.scanFinishedOn, time_add(time_now_utc(), '-{hours}h')))"),
            message: format!("The vulnerability scan must be at most {hours}h old."),
        });
    }
    if let Some(max) = attestation.max_severity {
        let above = severities_above(max);
        let finding_ok = if above.len() == 4 {
            "false".to_string()
        } else {
            let list: Vec<String> = above.iter().map(|s| format!("'{s}'")).collect();
            format!("!(v.Severity in [{}])", list.join(", "))
        };
        validations.push(CelValidation {
            expression: format!(
                "variables.allImages.all(image, !has({payload}.scanner.result.Results) || {payload}.scanner.result.Results.all(r, !has(r.Vulnerabilities) || r.Vulnerabilities.all(v, {finding_ok})))"
            ),
            message: format!("The vulnerability scan must report no finding above {max:?}."),
        });
    }
    if let Some(pattern) = &attestation.builder_id_pattern {
        validations.push(CelValidation {
            expression: format!(
                "variables.allImages.all(image, {payload}.{}.matches({}))",
                builder_id_path(&attestation.predicate_type),
                cel_string_literal(pattern)
            ),
            message:
                "The provenance builder id must match spec.rules.attestations[].builderIdPattern."
                    .to_string(),
        });
    }
    validations
}
