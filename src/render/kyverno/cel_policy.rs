//! `policies.kyverno.io/v1` ValidatingPolicy and ImageValidatingPolicy (CEL, Kyverno >= 1.17) as typed
//! structs. Data only; `render::policy` fills them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Serialize;

use super::WebhookConfiguration;

/// A ValidatingPolicy (apiVersion and kind are set from its ApiResource).
#[derive(Serialize, Clone, Debug)]
pub struct ValidatingPolicy {
    /// Name, labels, owner reference.
    pub metadata: ObjectMeta,
    /// The policy.
    pub spec: ValidatingPolicySpec,
}

/// `spec` of a ValidatingPolicy.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ValidatingPolicySpec {
    /// `Deny` or `Audit`.
    pub validation_actions: Vec<&'static str>,
    /// Admission and background evaluation.
    pub evaluation: Evaluation,
    /// Which requests are checked.
    pub match_constraints: MatchConstraints,
    /// Named sub-expressions, available as `variables.<name>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
    /// Expressions that must all be true.
    pub validations: Vec<CelValidation>,
}

/// An ImageValidatingPolicy.
#[derive(Serialize, Clone, Debug)]
pub struct ImageValidatingPolicy {
    /// Name, labels, owner reference.
    pub metadata: ObjectMeta,
    /// The policy.
    pub spec: ImageValidatingPolicySpec,
}

/// `spec` of an ImageValidatingPolicy.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ImageValidatingPolicySpec {
    /// `Deny` or `Audit`.
    pub validation_actions: Vec<&'static str>,
    /// Admission and background evaluation.
    pub evaluation: Evaluation,
    /// Admission webhook settings.
    pub webhook_configuration: WebhookConfiguration,
    /// Which requests are checked.
    pub match_constraints: MatchConstraints,
    /// Which images are verified.
    pub match_image_references: Vec<ImageReferenceMatch>,
    /// Trusted signers.
    pub attestors: Vec<ImageAttestor>,
    /// Attestations referred to by the validations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<ImageAttestation>,
    /// Digest handling.
    pub validation_configurations: ValidationConfigurations,
    /// Named sub-expressions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
    /// Expressions that must all be true.
    pub validations: Vec<CelValidation>,
}

/// Admission and background switches.
#[derive(Serialize, Clone, Debug)]
pub struct Evaluation {
    /// Background scans of existing resources.
    pub background: Enabled,
}

/// A switch.
#[derive(Serialize, Clone, Debug)]
pub struct Enabled {
    /// On or off.
    pub enabled: bool,
}

/// Kubernetes-style match constraints.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct MatchConstraints {
    /// Resources and operations.
    pub resource_rules: Vec<ResourceRule>,
    /// Namespaces, by their `kubernetes.io/metadata.name` label.
    pub namespace_selector: LabelSelector,
}

/// One resource rule.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRule {
    /// API groups (`""` for core).
    pub api_groups: Vec<&'static str>,
    /// API versions.
    pub api_versions: Vec<&'static str>,
    /// Operations.
    pub operations: Vec<&'static str>,
    /// Resources, e.g. `pods`.
    pub resources: Vec<&'static str>,
}

/// A named CEL expression.
#[derive(Serialize, Clone, Debug)]
pub struct Variable {
    /// Name.
    pub name: String,
    /// CEL expression.
    pub expression: String,
}

/// One validation.
#[derive(Serialize, Clone, Debug)]
pub struct CelValidation {
    /// CEL expression that must be true.
    pub expression: String,
    /// Static message (never evaluated).
    pub message: String,
}

/// A glob of image references.
#[derive(Serialize, Clone, Debug)]
pub struct ImageReferenceMatch {
    /// Glob.
    pub glob: String,
}

/// A named trusted signer.
#[derive(Serialize, Clone, Debug)]
pub struct ImageAttestor {
    /// Name used as `attestors.<name>`.
    pub name: String,
    /// Cosign settings.
    pub cosign: CosignAttestor,
}

/// Cosign key or keyless settings.
#[derive(Serialize, Clone, Debug)]
pub struct CosignAttestor {
    /// Public key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<CosignKey>,
    /// Keyless identities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyless: Option<CosignKeyless>,
    /// Transparency log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctlog: Option<CosignTransparencyLog>,
}

/// Inline PEM or a KMS reference (`k8s://namespace/name` reads the Secret's `cosign.pub`).
#[derive(Serialize, Clone, Debug)]
pub struct CosignKey {
    /// Inline PEM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// KMS URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms: Option<String>,
}

/// Keyless identities; one must match.
#[derive(Serialize, Clone, Debug)]
pub struct CosignKeyless {
    /// Identities.
    pub identities: Vec<KeylessIdentity>,
}

/// Issuer plus subject.
#[derive(Serialize, Clone, Debug)]
pub struct KeylessIdentity {
    /// OIDC issuer.
    pub issuer: String,
    /// Exact subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Subject regular expression.
    #[serde(rename = "subjectRegExp", skip_serializing_if = "Option::is_none")]
    pub subject_reg_exp: Option<String>,
}

/// Rekor and CT settings (`ctlog.url` is the Rekor URL in this API).
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct CosignTransparencyLog {
    /// Rekor URL (unset: the public Rekor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Skip the transparency-log check.
    #[serde(
        rename = "insecureIgnoreTlog",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub insecure_ignore_tlog: bool,
    /// Accept certificates without an SCT.
    #[serde(
        rename = "insecureIgnoreSCT",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub insecure_ignore_sct: bool,
}

/// A named attestation.
#[derive(Serialize, Clone, Debug)]
pub struct ImageAttestation {
    /// Name used as `attestations.<name>`.
    pub name: String,
    /// In-toto statement type.
    pub intoto: InToto,
}

/// In-toto predicate type.
#[derive(Serialize, Clone, Debug)]
pub struct InToto {
    /// Predicate type.
    #[serde(rename = "type")]
    pub predicate_type: String,
}

/// Digest handling.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ValidationConfigurations {
    /// Rewrite tags to digests.
    pub mutate_digest: bool,
    /// Require digests.
    pub verify_digest: bool,
    /// Fail images without signatures.
    pub required: bool,
}
