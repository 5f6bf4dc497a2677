//! `kyverno.io/v1` ClusterPolicy with mutate rules (foreach lists patched by strategic merge, with
//! preconditions), as typed structs whose field names follow the upstream CRD. Data only: no rendering
//! logic here; `render::policy::rewrite` fills them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

use super::WebhookConfiguration;
use super::cluster_policy::MatchResources;

/// A ClusterPolicy of mutate rules (apiVersion and kind are set from its ApiResource).
#[derive(Serialize, Clone, Debug)]
pub struct MutateClusterPolicy {
    /// Name, labels, annotations, owner reference.
    pub metadata: ObjectMeta,
    /// The policy.
    pub spec: MutatePolicySpec,
}

/// `spec` of a mutate ClusterPolicy.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct MutatePolicySpec {
    /// Background processing (mutate rules act at admission; `false` keeps the report controller out).
    pub background: bool,
    /// Admission webhook settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_configuration: Option<WebhookConfiguration>,
    /// The rules.
    pub rules: Vec<MutateRule>,
}

/// One mutate rule.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct MutateRule {
    /// Rule name, unique in the policy.
    pub name: String,
    /// Which resources the rule applies to.
    #[serde(rename = "match")]
    pub match_resources: MatchResources,
    /// Which resources it skips.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude: Option<MatchResources>,
    /// Conditions on the admission request, checked before any mutation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preconditions: Option<Conditions>,
    /// The mutation.
    pub mutate: Mutation,
}

/// `any` (one must hold) and `all` (every one must hold) conditions.
#[derive(Serialize, Clone, Debug, Default)]
pub struct Conditions {
    /// One of these must hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<Precondition>,
    /// All of these must hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub all: Vec<Precondition>,
}

/// One condition: `key` (a `{{ }}` JMESPath expression) compared with `value` by `operator`.
#[derive(Serialize, Clone, Debug)]
pub struct Precondition {
    /// JMESPath expression in `{{ }}`, built only from our own text and checked literals.
    pub key: String,
    /// Operator, e.g. `Equals`.
    pub operator: &'static str,
    /// Expected value.
    pub value: Value,
}

/// `mutate`: per-element patches.
#[derive(Serialize, Clone, Debug)]
pub struct Mutation {
    /// One entry per list of elements.
    pub foreach: Vec<ForEachMutation>,
}

/// A strategic-merge patch applied once per element of `list` (bound to `element`) that meets the
/// preconditions. Only strategic merge: a JSON6902 patch turns off Kyverno's autogen for the policy.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ForEachMutation {
    /// JMESPath expression of the list, e.g. `request.object.spec.containers`.
    pub list: String,
    /// Conditions on each element.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preconditions: Option<Conditions>,
    /// The patch, with `{{ element... }}` variables.
    pub patch_strategic_merge: Value,
}
