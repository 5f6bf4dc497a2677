//! `kyverno.io/v1` ClusterPolicy as typed structs: validate rules (pattern) and verifyImages rules,
//! using per-rule `failureAction` (Kyverno >= 1.13). Data only; `render::policy` fills them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

use super::{FailureAction, WebhookConfiguration};

/// A ClusterPolicy (apiVersion and kind are set from its ApiResource).
#[derive(Serialize, Clone, Debug)]
pub struct ClusterPolicy {
    /// Name, labels, owner reference.
    pub metadata: ObjectMeta,
    /// The policy.
    pub spec: ClusterPolicySpec,
}

/// `spec` of a ClusterPolicy.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPolicySpec {
    /// Also scan existing resources (background reports).
    pub background: bool,
    /// Admission webhook settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_configuration: Option<WebhookConfiguration>,
    /// The rules.
    pub rules: Vec<Rule>,
}

/// One rule.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Rule name, unique in the policy.
    pub name: String,
    /// Which resources the rule applies to.
    #[serde(rename = "match")]
    pub match_resources: MatchResources,
    /// Which resources it skips.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude: Option<MatchResources>,
    /// A validate rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validate: Option<Validation>,
    /// A verifyImages rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub verify_images: Vec<ImageVerification>,
}

/// `match` / `exclude`: any of the filters.
#[derive(Serialize, Clone, Debug)]
pub struct MatchResources {
    /// Filters; one matching is enough.
    pub any: Vec<ResourceFilter>,
}

/// One filter.
#[derive(Serialize, Clone, Debug)]
pub struct ResourceFilter {
    /// Resource description.
    pub resources: ResourceDescription,
}

/// Kinds and namespaces.
#[derive(Serialize, Clone, Debug)]
pub struct ResourceDescription {
    /// Kinds, e.g. `Pod`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Namespace names (wildcards allowed by Kyverno; we only emit plain names).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
}

/// A validate rule.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// Per-rule reaction.
    pub failure_action: FailureAction,
    /// Message on violation (never carries `{{ }}` expressions).
    pub message: String,
    /// Overlay pattern the resource must match.
    pub pattern: Value,
}

/// A verifyImages entry.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ImageVerification {
    /// Per-rule reaction.
    pub failure_action: FailureAction,
    /// Signature format.
    #[serde(rename = "type")]
    pub verification_type: &'static str,
    /// Images checked (Kyverno wildcards).
    pub image_references: Vec<String>,
    /// Who must have signed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attestors: Vec<AttestorSet>,
    /// Attestations that must be present.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<Attestation>,
    /// Rewrite tags to digests.
    pub mutate_digest: bool,
    /// Require digests.
    pub verify_digest: bool,
    /// Fail when no signature is found.
    pub required: bool,
    /// Look up signatures as OCI 1.1 referrers.
    #[serde(rename = "cosignOCI11", skip_serializing_if = "std::ops::Not::not")]
    pub cosign_oci11: bool,
}

/// A set of attestors of which `count` (default all) must verify.
#[derive(Serialize, Clone, Debug)]
pub struct AttestorSet {
    /// The attestors.
    pub entries: Vec<Attestor>,
}

/// One attestor: keys or keyless.
#[derive(Serialize, Clone, Debug)]
pub struct Attestor {
    /// Public keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<StaticKeyAttestor>,
    /// Keyless identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyless: Option<KeylessAttestor>,
}

/// Cosign public keys inline or from a Secret.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct StaticKeyAttestor {
    /// PEM public key(s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_keys: Option<String>,
    /// Secret holding `cosign.pub`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretReference>,
    /// Rekor transparency log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rekor: Option<Rekor>,
    /// Certificate transparency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctlog: Option<CtLog>,
}

/// Secret name and namespace.
#[derive(Serialize, Clone, Debug)]
pub struct SecretReference {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
}

/// Keyless (Fulcio) identity.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct KeylessAttestor {
    /// OIDC issuer.
    pub issuer: String,
    /// Exact subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Subject regular expression.
    #[serde(rename = "subjectRegExp", skip_serializing_if = "Option::is_none")]
    pub subject_reg_exp: Option<String>,
    /// Rekor transparency log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rekor: Option<Rekor>,
    /// Certificate transparency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctlog: Option<CtLog>,
}

/// Rekor settings.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Rekor {
    /// Rekor URL (unset: the public Rekor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Skip the transparency-log check.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ignore_tlog: bool,
}

/// Certificate-transparency settings.
#[derive(Serialize, Clone, Debug)]
pub struct CtLog {
    /// Accept certificates without an SCT.
    #[serde(rename = "ignoreSCT")]
    pub ignore_sct: bool,
}

/// An in-toto attestation with conditions on its predicate.
#[derive(Serialize, Clone, Debug)]
pub struct Attestation {
    /// Predicate type (`type`; `predicateType` is deprecated upstream).
    #[serde(rename = "type")]
    pub attestation_type: String,
    /// Who must have signed the attestation.
    pub attestors: Vec<AttestorSet>,
    /// Conditions on the predicate (JMESPath keys evaluated against it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<AllConditions>,
}

/// All conditions must hold.
#[derive(Serialize, Clone, Debug)]
pub struct AllConditions {
    /// The conditions.
    pub all: Vec<Condition>,
}

/// One condition.
#[derive(Serialize, Clone, Debug)]
pub struct Condition {
    /// JMESPath expression in `{{ }}` built only from our own text and checked literals.
    pub key: String,
    /// Operator, e.g. `Equals`.
    pub operator: &'static str,
    /// Expected value.
    pub value: Value,
    /// Message when it fails.
    pub message: String,
}
