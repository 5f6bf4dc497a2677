//! Small typed serde structs for the Kyverno kinds the operator emits (ClusterPolicy, ValidatingPolicy,
//! ImageValidatingPolicy), with field names checked against the upstream CRDs. Data only: no rendering logic.

pub mod cel_policy;
pub mod cluster_policy;
pub mod mutate;

use kube::api::{ApiResource, GroupVersionKind};
use serde::Serialize;

/// `kyverno.io/v1` ClusterPolicy.
pub fn cluster_policy_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kyverno.io", "v1", "ClusterPolicy"),
        "clusterpolicies",
    )
}

/// `policies.kyverno.io/v1` ValidatingPolicy.
pub fn validating_policy_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("policies.kyverno.io", "v1", "ValidatingPolicy"),
        "validatingpolicies",
    )
}

/// `policies.kyverno.io/v1` ImageValidatingPolicy.
pub fn image_validating_policy_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("policies.kyverno.io", "v1", "ImageValidatingPolicy"),
        "imagevalidatingpolicies",
    )
}

/// Kyverno's per-rule reaction (`Audit` or `Enforce`), as spelled in the CRD enum.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureAction {
    /// Report only.
    Audit,
    /// Reject.
    Enforce,
}

/// Admission webhook settings of one policy.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookConfiguration {
    /// `Fail` or `Ignore` when Kyverno cannot answer (ClusterPolicy only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_policy: Option<&'static str>,
    /// Webhook timeout; image verification talks to registries and needs more than the default 10 s.
    pub timeout_seconds: i32,
}
