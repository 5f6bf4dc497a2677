//! The cluster-scoped `ImagePolicy` kind: supply-chain rules that become Kyverno policies.
//! Pure data and defaults; validation lives in `crate::validate`, rendering in `render::policy`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::FailureAction;

/// Image supply-chain rules (no `latest`, signatures, attestations, allowed registries) for chosen
/// namespaces, rendered as Kyverno policies that follow the referenced Registry's endpoint.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "registry.aisp.dev",
    version = "v1alpha1",
    kind = "ImagePolicy",
    plural = "imagepolicies",
    shortname = "aisipol",
    category = "aisp",
    status = "ImagePolicyStatus",
    printcolumn = r#"{"name":"Registry","type":"string","jsonPath":".spec.registryRef.name"}"#,
    printcolumn = r#"{"name":"Engine","type":"string","jsonPath":".status.engine"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("size(self.metadata.name) <= 43").message("metadata.name: must be at most 43 characters: its Kyverno policies are named <name>-<rule> and Kyverno refuses policy names over 63 characters")
)]
#[x_kube(validation = Rule::new("!has(self.rules.restrictRegistries) || has(self.registryRef) || (has(self.allowedRegistries) && size(self.allowedRegistries) > 0)").message("spec.rules.restrictRegistries: needs spec.registryRef or spec.allowedRegistries"))]
#[x_kube(validation = Rule::new("!has(self.rules.attestations) || size(self.rules.attestations) == 0 || has(self.rules.requireSignatures)").message("spec.rules.attestations: needs spec.rules.requireSignatures, whose keys or keyless identity verify the attestations"))]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicySpec {
    /// The Registry whose current endpoint images must come from; the policies follow it when it moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_ref: Option<RegistryRef>,
    /// Further allowed registry hosts or prefixes, e.g. `ghcr.io/my-org`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::crd::schema::allowed_registries")]
    pub allowed_registries: Vec<String>,
    /// Namespaces the rules apply to, e.g. `ai-inference`, `ai-apps`. Empty means every namespace
    /// that is not excluded. The platform's own namespaces (`kube-system`, the operator's, the
    /// referenced Registry's) are checked only when listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::crd::schema::namespaces")]
    pub namespaces: Vec<String>,
    /// Further namespaces never checked. `kube-system`, the operator's namespace and the referenced
    /// Registry's namespace are always excluded too, unless listed in `namespaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::schema::exclude_namespaces")]
    pub exclude_namespaces: Option<Vec<String>>,
    /// Default reaction of every rule: `Audit` (report, default) or `Enforce` (reject).
    #[serde(default)]
    pub failure_action: FailureAction,
    /// Which Kyverno policy kinds to generate: `Auto` (the CEL kinds when served, else ClusterPolicy),
    /// `ClusterPolicy`, or `CEL` (ValidatingPolicy and ImageValidatingPolicy).
    #[serde(default)]
    pub engine: PolicyEngine,
    /// The rules; each is off unless set.
    #[serde(default)]
    pub rules: PolicyRules,
}

/// Reference to a Registry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryRef {
    /// Name of the Registry.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Namespace of the Registry.
    #[schemars(length(min = 1, max = crate::crd::schema::MAX_DNS_LABEL))]
    #[x_kube(validation = crate::crd::schema::matches("spec.registryRef.namespace", crate::crd::schema::DNS_LABEL, "a namespace name (lowercase letters, digits and '-')"))]
    pub namespace: String,
}

/// Which Kyverno policy kinds are generated.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum PolicyEngine {
    /// The CEL kinds (ValidatingPolicy, ImageValidatingPolicy) if served, else `ClusterPolicy`.
    #[default]
    Auto,
    /// `kyverno.io/v1` ClusterPolicy (Kyverno 1.13 or newer).
    ClusterPolicy,
    /// `policies.kyverno.io/v1` ValidatingPolicy and ImageValidatingPolicy (Kyverno 1.17 or newer).
    #[serde(rename = "CEL")]
    Cel,
}

/// The policy kinds actually generated.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ChosenEngine {
    /// ClusterPolicy.
    ClusterPolicy,
    /// ValidatingPolicy and ImageValidatingPolicy.
    #[serde(rename = "CEL")]
    Cel,
}

/// The supply-chain rules.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRules {
    /// Reject `:latest` and untagged images (digests are allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disallow_latest_tag: Option<BasicRule>,
    /// Allow only images from the Registry's endpoint and `allowedRegistries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restrict_registries: Option<BasicRule>,
    /// Require cosign signatures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_signatures: Option<SignatureRule>,
    /// Require in-toto attestations, verified with the `requireSignatures` identity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::crd::schema::MAX_ATTESTATIONS))]
    pub attestations: Vec<AttestationRule>,
}

/// A rule with nothing to configure but its reaction and message.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct BasicRule {
    /// Overrides `spec.failureAction` for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_action: Option<FailureAction>,
    /// Message shown on violation; plain text (`{{` is rejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    #[x_kube(validation = crate::crd::schema::no_kyverno_expression("message"))]
    pub message: Option<String>,
}

/// Cosign signature verification: set exactly one of `keys` or `keyless`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.keys) != has(self.keyless)").message("spec.rules.requireSignatures: set exactly one of keys or keyless"))]
#[x_kube(validation = Rule::new("!has(self.transparencyLog) || !has(self.transparencyLog.rekorURL) || !has(self.keyless) || !has(self.keyless.rekorURL)").message("spec.rules.requireSignatures: set the Rekor URL once, in transparencyLog.rekorURL or keyless.rekorURL"))]
pub struct SignatureRule {
    /// Overrides `spec.failureAction` for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_action: Option<FailureAction>,
    /// Images that must be signed (Kyverno wildcards). Unset: every image from the allowed registries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::crd::schema::image_references")]
    pub image_references: Vec<String>,
    /// Verify with cosign public keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<KeyVerification>,
    /// Verify keyless (Sigstore OIDC) signatures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyless: Option<KeylessVerification>,
    /// Transparency-log checks, for air-gapped platforms. Unset: cosign's defaults (the signature
    /// must be in the public Rekor, keyless certificates must carry an SCT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transparency_log: Option<TransparencyLog>,
    /// Look for signatures as OCI 1.1 referrers instead of `sha256-<digest>.sig` tags.
    #[serde(default, rename = "cosignOCI11")]
    pub cosign_oci11: bool,
    /// Rewrite admitted image tags to digests (Kyverno default `true`).
    #[serde(default = "default_true")]
    pub mutate_digest: bool,
    /// Require images to be referenced by digest after mutation (Kyverno default `true`).
    #[serde(default = "default_true")]
    pub verify_digest: bool,
}

fn default_true() -> bool {
    true
}

/// Transparency-log checks of cosign signatures: skip them (signed with `--tlog-upload=false`, no
/// Sigstore reachable) or use a private Rekor.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(self.ignoreTlog && has(self.rekorURL))").message("spec.rules.requireSignatures.transparencyLog: rekorURL is unused with ignoreTlog: true; set one of them"))]
pub struct TransparencyLog {
    /// Accept signatures with no Rekor entry (Kyverno `rekor.ignoreTlog` / `ctlog.insecureIgnoreTlog`).
    /// Anyone holding the key can then sign without a public record; use it only without Rekor.
    #[serde(default, rename = "ignoreTlog")]
    pub ignore_tlog: bool,
    /// Accept keyless certificates without a Signed Certificate Timestamp (Kyverno `ctlog.ignoreSCT` /
    /// `ctlog.insecureIgnoreSCT`); for a private Fulcio without a CT log.
    #[serde(default, rename = "ignoreSCT")]
    pub ignore_sct: bool,
    /// Private Rekor URL (https), e.g. `https://rekor.internal.example`. Unset: the public Sigstore Rekor.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "rekorURL")]
    #[schemars(length(max = crate::crd::schema::MAX_URL))]
    #[x_kube(validation = crate::crd::schema::matches("spec.rules.requireSignatures.transparencyLog.rekorURL", crate::crd::schema::HTTPS_URL, "an https:// URL, e.g. https://rekor.internal.example"))]
    #[x_kube(validation = crate::crd::schema::no_kyverno_expression("spec.rules.requireSignatures.transparencyLog.rekorURL"))]
    pub rekor_url: Option<String>,
}

/// Cosign public keys: set exactly one of `publicKey` or `secretRef`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.publicKey) != has(self.secretRef)").message("spec.rules.requireSignatures.keys: set exactly one of publicKey or secretRef"))]
pub struct KeyVerification {
    /// PEM-encoded public key(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_PEM))]
    #[x_kube(validation = Rule::new("self.contains('-----BEGIN PUBLIC KEY-----')").message("spec.rules.requireSignatures.keys.publicKey: must be a PEM public key (-----BEGIN PUBLIC KEY-----)"))]
    #[x_kube(validation = crate::crd::schema::no_kyverno_expression("spec.rules.requireSignatures.keys.publicKey"))]
    pub public_key: Option<String>,
    /// Secret holding the PEM public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<NamespacedSecretKeyRef>,
}

/// A key of a Secret in a given namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedSecretKeyRef {
    /// Secret name.
    #[schemars(length(max = crate::crd::schema::MAX_DNS_SUBDOMAIN))]
    #[x_kube(validation = crate::crd::schema::matches("spec.rules.requireSignatures.keys.secretRef.name", crate::crd::schema::DNS_SUBDOMAIN, "a Secret name (lowercase letters, digits, '-' and '.')"))]
    pub name: String,
    /// Secret namespace.
    #[schemars(length(max = crate::crd::schema::MAX_DNS_LABEL))]
    #[x_kube(validation = crate::crd::schema::matches("spec.rules.requireSignatures.keys.secretRef.namespace", crate::crd::schema::DNS_LABEL, "a namespace name (lowercase letters, digits and '-')"))]
    pub namespace: String,
    /// Key holding the PEM key: `cosign.pub`, the only key Kyverno reads (the default).
    #[serde(default = "default_cosign_key")]
    #[schemars(length(max = crate::crd::schema::MAX_DNS_SUBDOMAIN))]
    #[x_kube(validation = Rule::new("self == 'cosign.pub'").message("spec.rules.requireSignatures.keys.secretRef.key: Kyverno reads the key cosign.pub of the Secret; store the PEM key under cosign.pub"))]
    pub key: String,
}

fn default_cosign_key() -> String {
    "cosign.pub".to_string()
}

/// Keyless (Fulcio certificate + Rekor) verification: set exactly one of `subject` or `subjectRegExp`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.subject) != has(self.subjectRegExp)").message("spec.rules.requireSignatures.keyless: set exactly one of subject or subjectRegExp"))]
pub struct KeylessVerification {
    /// OIDC issuer, e.g. `https://token.actions.githubusercontent.com`.
    #[schemars(length(min = 1, max = crate::crd::schema::MAX_URL))]
    #[x_kube(validation = crate::crd::schema::matches("spec.rules.requireSignatures.keyless.issuer", crate::crd::schema::HTTP_URL, "the OIDC issuer URL, e.g. https://token.actions.githubusercontent.com"))]
    #[x_kube(validation = crate::crd::schema::no_kyverno_expression("spec.rules.requireSignatures.keyless.issuer"))]
    pub issuer: String,
    /// Exact certificate subject, e.g. a workflow identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_TEXT))]
    #[x_kube(validation = crate::crd::schema::no_kyverno_expression("spec.rules.requireSignatures.keyless.subject"))]
    pub subject: Option<String>,
    /// Regular expression the certificate subject must match.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "subjectRegExp"
    )]
    #[schemars(length(max = crate::crd::schema::MAX_TEXT))]
    #[x_kube(validation = crate::crd::schema::no_kyverno_expression("spec.rules.requireSignatures.keyless.subjectRegExp"))]
    pub subject_reg_exp: Option<String>,
    /// Rekor transparency log URL. Defaults to the public Sigstore Rekor.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "rekorURL")]
    #[schemars(length(max = crate::crd::schema::MAX_URL))]
    #[x_kube(validation = crate::crd::schema::http_url("spec.rules.requireSignatures.keyless.rekorURL"))]
    #[x_kube(validation = crate::crd::schema::no_kyverno_expression("spec.rules.requireSignatures.keyless.rekorURL"))]
    pub rekor_url: Option<String>,
    /// Certificate Transparency log URL (Kyverno's `ctlog.url`).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ctlogURL")]
    #[schemars(length(max = crate::crd::schema::MAX_URL))]
    #[x_kube(validation = crate::crd::schema::http_url("spec.rules.requireSignatures.keyless.ctlogURL"))]
    #[x_kube(validation = crate::crd::schema::no_kyverno_expression("spec.rules.requireSignatures.keyless.ctlogURL"))]
    pub ctlog_url: Option<String>,
}

/// An in-toto attestation that images must carry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttestationRule {
    /// Predicate type, e.g. `https://cosign.sigstore.dev/attestation/vuln/v1` or `https://slsa.dev/provenance/v1`.
    #[schemars(length(min = 1, max = crate::crd::schema::MAX_TEXT))]
    #[x_kube(validation = crate::crd::schema::no_kyverno_expression("spec.rules.attestations[].predicateType"))]
    pub predicate_type: String,
    /// Overrides `spec.failureAction` for this attestation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_action: Option<FailureAction>,
    /// The scan must be at most this many hours old (vulnerability attestations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_age_hours: Option<u32>,
    /// No finding may be more severe than this (vulnerability attestations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_severity: Option<Severity>,
    /// Regular expression the provenance builder id must match (SLSA attestations); no `'`, and no
    /// backslash at the end (Kyverno reads it as a JMESPath raw string literal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_TEXT))]
    #[x_kube(validation = crate::crd::schema::no_kyverno_expression("spec.rules.attestations[].builderIdPattern"))]
    #[x_kube(validation = Rule::new(r#"!self.contains("'") && !self.endsWith('\\')"#).message("spec.rules.attestations[].builderIdPattern: must not contain ' or end with a backslash (Kyverno reads it as a JMESPath raw string)"))]
    pub builder_id_pattern: Option<String>,
}

/// Vulnerability severity.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub enum Severity {
    /// No finding allowed at all.
    None,
    /// LOW.
    Low,
    /// MEDIUM.
    Medium,
    /// HIGH.
    High,
    /// CRITICAL.
    Critical,
}

/// Observed state of an ImagePolicy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicyStatus {
    /// `Ready`, `Progressing`, `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` that this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Policy kinds generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<ChosenEngine>,
    /// Names of the generated Kyverno policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// Registry hosts the policies currently allow (the Registry's endpoint first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_registries: Vec<String>,
}
