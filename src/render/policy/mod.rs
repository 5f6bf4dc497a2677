//! ImagePolicy to Kyverno policies: picks the engine, computes the allowed registries and namespaces,
//! then builds the ClusterPolicy or the CEL flavour. Pure; never reads the cluster or the clock.

mod cel;
mod cluster_policy;
pub mod follow;
pub mod image_rules;
pub mod rewrite;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;

use super::labels::Owner;
use super::{RenderError, RenderedObject, owner_reference};
use crate::crd::{ChosenEngine, FailureAction, ImagePolicy, PolicyEngine};
use crate::render::kyverno;
use crate::validate::{self, ValidationError, ValidationErrors};

/// The rule slugs, used in policy names and labels.
pub const DISALLOW_LATEST_TAG: &str = "disallow-latest-tag";
/// Slug of restrictRegistries.
pub const RESTRICT_REGISTRIES: &str = "restrict-registries";
/// CEL flavour only: the tag and registry rules for containers `kubectl debug` adds
/// (`pods/ephemeralcontainers`); the ClusterPolicy flavour checks them in its Pod rules.
pub const EPHEMERAL_TAG: &str = "ephemeral-tag";
pub const EPHEMERAL_REGISTRY: &str = "ephemeral-registry";
/// Slug of requireSignatures.
pub const REQUIRE_SIGNATURES: &str = "require-signatures";
/// Label value `app.kubernetes.io/name` of every generated policy.
const APP: &str = "image-policy";

/// What the controller read from the cluster for one ImagePolicy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyObserved {
    /// `status.endpoint` of the Registry named by `spec.registryRef`, when it has one.
    pub registry_endpoint: Option<String>,
    /// The Registry's old host while a switch's grace window runs (allowed beside the endpoint).
    pub previous_endpoint: Option<String>,
    /// The rewrite of the old host during the window (`spec.migration.rewriteImages`).
    pub rewrite: Option<rewrite::ImageRewrite>,
    /// `clusterpolicies.kyverno.io` v1 is served.
    pub cluster_policy_served: bool,
    /// `validatingpolicies` and `imagevalidatingpolicies` of `policies.kyverno.io` v1 are served.
    pub cel_policies_served: bool,
    /// Namespace the operator runs in (excluded unless `spec.namespaces` names it).
    pub operator_namespace: String,
}

/// Everything an ImagePolicy turns into.
#[derive(Clone, Debug)]
pub struct RenderedPolicy {
    /// Kyverno policies to apply (cluster-scoped).
    pub objects: Vec<RenderedObject>,
    /// Which flavour was generated.
    pub engine: ChosenEngine,
    /// Registry prefixes images may come from (the Registry's endpoint first).
    pub allowed_registries: Vec<String>,
    /// Names of the generated policies, in `objects` order.
    pub policy_names: Vec<String>,
    /// Settings Kyverno cannot express in the chosen flavour, for a condition message.
    pub warnings: Vec<String>,
}

/// Render an ImagePolicy: validate, choose the engine, build every policy.
pub fn render(
    policy: &ImagePolicy,
    observed: &PolicyObserved,
) -> Result<RenderedPolicy, RenderError> {
    validate::image_policy(policy)?;
    check_renderable(policy)?;
    let engine = choose_engine(policy.spec.engine, observed)?;
    let context = Context::new(policy, observed)?;
    let (mut objects, mut warnings) = match engine {
        ChosenEngine::ClusterPolicy => (cluster_policy::render(&context)?, Vec::new()),
        ChosenEngine::Cel => cel::render(&context)?,
    };
    if let Some(rewrite) = observed
        .rewrite
        .as_ref()
        .filter(|_| policy.spec.registry_ref.is_some())
    {
        if observed.cluster_policy_served {
            objects.push(rewrite::rewrite_policy(
                &context.policy_name(rewrite::RULE),
                Owner::image_policy(&context.name).labels(APP, rewrite::RULE),
                context.owner_reference.clone(),
                &context.namespaces,
                &context.exclude_namespaces,
                rewrite,
            )?);
        } else {
            warnings.push(format!(
                "the Registry's spec.migration.rewriteImages: images of {} are not rewritten, the mutate policy needs clusterpolicies.kyverno.io/v1, which is not served",
                rewrite.from_host
            ));
        }
    }
    let policy_names = objects.iter().map(|o| o.name().to_string()).collect();
    if let Some(keyless) = policy
        .spec
        .rules
        .require_signatures
        .as_ref()
        .and_then(|s| s.keyless.as_ref())
        && keyless.ctlog_url.is_some()
    {
        warnings.push(
            "spec.rules.requireSignatures.keyless.ctlogURL: Kyverno verifies SCTs with the CT log's public key, not a URL; ignored"
                .to_string(),
        );
    }
    Ok(RenderedPolicy {
        objects,
        engine,
        allowed_registries: context.allowed_registries.clone(),
        policy_names,
        warnings,
    })
}

/// The public Sigstore Rekor, Kyverno's documented default; its ClusterPolicy webhook refuses a
/// keyless attestor without a Rekor URL ("Either Rekor URL or roots are required").
pub const PUBLIC_REKOR: &str = "https://rekor.sigstore.dev";

/// Transparency-log settings of a signature rule, as both flavours need them: the Rekor URL
/// (`transparencyLog.rekorURL`, else `keyless.rekorURL`), ignore the log, ignore the SCT.
pub(crate) struct Transparency {
    pub rekor_url: Option<String>,
    pub ignore_tlog: bool,
    pub ignore_sct: bool,
}

pub(crate) fn transparency(signatures: &crate::crd::SignatureRule) -> Transparency {
    let tlog = signatures.transparency_log.clone().unwrap_or_default();
    let rekor_url = tlog.rekor_url.clone().or_else(|| {
        signatures
            .keyless
            .as_ref()
            .and_then(|k| k.rekor_url.clone())
    });
    Transparency {
        rekor_url,
        ignore_tlog: tlog.ignore_tlog,
        ignore_sct: tlog.ignore_sct,
    }
}

/// Which flavour to generate; `KyvernoNotInstalled` when the wanted kinds are not served.
pub fn choose_engine(
    wanted: PolicyEngine,
    observed: &PolicyObserved,
) -> Result<ChosenEngine, RenderError> {
    match wanted {
        // The CEL kinds first: Kyverno deprecates ClusterPolicy (its webhook warns on every
        // apply) and the CEL flavour gives the same verdicts (tests/render/kyverno_*.rs).
        PolicyEngine::Auto if observed.cel_policies_served => Ok(ChosenEngine::Cel),
        PolicyEngine::Auto if observed.cluster_policy_served => Ok(ChosenEngine::ClusterPolicy),
        PolicyEngine::Auto => Err(RenderError::KyvernoNotInstalled(
            "neither ClusterPolicy (kyverno.io/v1) nor ValidatingPolicy (policies.kyverno.io/v1) is served",
        )),
        PolicyEngine::ClusterPolicy if observed.cluster_policy_served => {
            Ok(ChosenEngine::ClusterPolicy)
        }
        PolicyEngine::ClusterPolicy => Err(RenderError::KyvernoNotInstalled(
            "spec.engine is ClusterPolicy but clusterpolicies.kyverno.io/v1 is not served",
        )),
        PolicyEngine::Cel if observed.cel_policies_served => Ok(ChosenEngine::Cel),
        PolicyEngine::Cel => Err(RenderError::KyvernoNotInstalled(
            "spec.engine is CEL but validatingpolicies/imagevalidatingpolicies.policies.kyverno.io/v1 are not served (Kyverno >= 1.17)",
        )),
    }
}

/// Rules Kyverno imposes on top of the ImagePolicy schema.
fn check_renderable(policy: &ImagePolicy) -> Result<(), RenderError> {
    let mut errors = Vec::new();
    let rules = &policy.spec.rules;
    if let Some(secret) = rules
        .require_signatures
        .as_ref()
        .and_then(|s| s.keys.as_ref())
        .and_then(|k| k.secret_ref.as_ref())
        && secret.key != "cosign.pub"
    {
        errors.push(ValidationError {
            field: "spec.rules.requireSignatures.keys.secretRef.key".to_string(),
            message:
                "Kyverno reads the key cosign.pub of the Secret; store the PEM key under cosign.pub"
                    .to_string(),
        });
    }
    for (i, attestation) in rules.attestations.iter().enumerate() {
        if let Some(pattern) = &attestation.builder_id_pattern
            && image_rules::jmespath_raw_literal(pattern).is_none()
        {
            errors.push(ValidationError {
                field: format!("spec.rules.attestations[{i}].builderIdPattern"),
                message: "must not contain ' or end with a backslash".to_string(),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(errors).into())
    }
}

/// Everything the two flavours share, computed once.
pub(crate) struct Context<'a> {
    pub policy: &'a ImagePolicy,
    pub name: String,
    pub owner_reference: Option<OwnerReference>,
    /// Registry prefixes without trailing slash, endpoint first.
    pub allowed_registries: Vec<String>,
    /// Namespaces checked (empty: all).
    pub namespaces: Vec<String>,
    /// Namespaces never checked.
    pub exclude_namespaces: Vec<String>,
}

impl<'a> Context<'a> {
    fn new(policy: &'a ImagePolicy, observed: &PolicyObserved) -> Result<Self, RenderError> {
        let mut allowed_registries: Vec<String> = Vec::new();
        let endpoint = observed
            .registry_endpoint
            .as_deref()
            .filter(|_| policy.spec.registry_ref.is_some());
        if let Some(endpoint) = endpoint {
            let endpoint = endpoint.trim_end_matches('/');
            if !image_rules::is_registry_prefix(endpoint) {
                return Err(RenderError::InvalidEndpoint(endpoint.to_string()));
            }
            allowed_registries.push(endpoint.to_string());
            if let Some(previous) = observed.previous_endpoint.as_deref() {
                let previous = previous.trim_end_matches('/');
                if !image_rules::is_registry_prefix(previous) {
                    return Err(RenderError::InvalidEndpoint(previous.to_string()));
                }
                allowed_registries.push(previous.to_string());
            }
        }
        for registry in &policy.spec.allowed_registries {
            let registry = registry.trim_end_matches('/').to_string();
            if !allowed_registries.contains(&registry) {
                allowed_registries.push(registry);
            }
        }
        if policy.spec.rules.restrict_registries.is_some() && allowed_registries.is_empty() {
            return Err(RenderError::NoAllowedRegistries);
        }
        // The platform's own pods are never checked unless `spec.namespaces` names their namespace.
        let mut exclude_namespaces: Vec<String> = platform_namespaces(policy, observed)
            .into_iter()
            .filter(|n| !policy.spec.namespaces.contains(n))
            .collect();
        exclude_namespaces.extend(policy.spec.exclude_namespaces.iter().flatten().cloned());
        let exclude_namespaces = dedup(exclude_namespaces);
        let namespaces = dedup(
            policy
                .spec
                .namespaces
                .iter()
                .filter(|n| !exclude_namespaces.contains(n))
                .cloned()
                .collect(),
        );
        Ok(Self {
            policy,
            name: policy.name_any(),
            owner_reference: owner_reference(policy),
            allowed_registries,
            namespaces,
            exclude_namespaces,
        })
    }

    /// Name of the policy for one rule, e.g. `ai-workloads-disallow-latest-tag`.
    pub fn policy_name(&self, rule: &str) -> String {
        format!("{}-{rule}", self.name)
    }

    /// Metadata of the policy for one rule: labels and owner reference.
    pub fn metadata(&self, rule: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.policy_name(rule)),
            labels: Some(Owner::image_policy(&self.name).labels(APP, rule)),
            owner_references: self.owner_reference.clone().map(|r| vec![r]),
            ..ObjectMeta::default()
        }
    }

    /// A rule's reaction: its own, else the policy's.
    pub fn action(&self, own: Option<FailureAction>) -> kyverno::FailureAction {
        match own.unwrap_or(self.policy.spec.failure_action) {
            FailureAction::Audit => kyverno::FailureAction::Audit,
            FailureAction::Enforce => kyverno::FailureAction::Enforce,
        }
    }

    /// Images that must be signed: the user's references, else everything from the allowed registries,
    /// else every image.
    pub fn signed_image_references(&self) -> Vec<String> {
        let own = self
            .policy
            .spec
            .rules
            .require_signatures
            .as_ref()
            .map(|s| s.image_references.clone())
            .unwrap_or_default();
        if !own.is_empty() {
            return own;
        }
        if self.allowed_registries.is_empty() {
            return vec!["*".to_string()];
        }
        self.allowed_registries
            .iter()
            .map(|r| format!("{r}/*"))
            .collect()
    }
}

/// Namespaces whose pods the platform itself runs: `kube-system`, the operator's namespace and the
/// referenced Registry's (Harbor, Redis, CloudNativePG pods). Policies exclude them unless the user
/// opts in by naming one in `spec.namespaces`, so a policy can never block the registry it points to.
pub fn platform_namespaces(policy: &ImagePolicy, observed: &PolicyObserved) -> Vec<String> {
    let mut namespaces = vec![
        "kube-system".to_string(),
        observed.operator_namespace.clone(),
    ];
    if let Some(reference) = &policy.spec.registry_ref {
        namespaces.push(reference.namespace.clone());
    }
    dedup(namespaces)
}

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in list {
        if !item.is_empty() && !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Make user text inert in a Kyverno message: Kyverno substitutes `{{ ... }}` variables and `$(...)`
/// references in rule text, so braces are dropped and `$(` is broken up, whatever validation let through.
pub fn safe_message(text: &str) -> String {
    let without_braces: String = text.chars().filter(|c| *c != '{' && *c != '}').collect();
    without_braces.replace("$(", "$ (")
}

/// The message of a basic rule: the user's (made safe) or the default.
pub(crate) fn message(own: Option<&str>, default: &str) -> String {
    own.map(safe_message).unwrap_or_else(|| default.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(spec: serde_json::Value) -> ImagePolicy {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy",
            "metadata": {"name": "p"}, "spec": spec,
        }))
        .expect("policy")
    }

    fn excluded(spec: serde_json::Value) -> (Vec<String>, Vec<String>) {
        let observed = PolicyObserved {
            registry_endpoint: Some("harbor.localhost".into()),
            cluster_policy_served: true,
            cel_policies_served: true,
            operator_namespace: "registry-operator-system".into(),
            ..Default::default()
        };
        let policy = policy(spec);
        let context = Context::new(&policy, &observed).expect("context");
        (context.namespaces, context.exclude_namespaces)
    }

    #[test]
    fn platform_namespaces_are_excluded_even_with_own_exclusions() {
        let reference = serde_json::json!({"name": "platform", "namespace": "registry"});
        let (_, exclude) = excluded(serde_json::json!({"registryRef": reference, "rules": {}}));
        assert_eq!(
            exclude,
            ["kube-system", "registry-operator-system", "registry"]
        );
        let (_, exclude) = excluded(
            serde_json::json!({"registryRef": reference, "excludeNamespaces": ["monitoring"], "rules": {}}),
        );
        assert_eq!(
            exclude,
            [
                "kube-system",
                "registry-operator-system",
                "registry",
                "monitoring"
            ],
            "a user's list adds to the platform's, never replaces it"
        );
    }

    #[test]
    fn naming_a_platform_namespace_in_namespaces_opts_in() {
        let reference = serde_json::json!({"name": "platform", "namespace": "registry"});
        let (namespaces, exclude) = excluded(
            serde_json::json!({"registryRef": reference, "namespaces": ["registry", "ai-apps"], "rules": {}}),
        );
        assert_eq!(namespaces, ["registry", "ai-apps"]);
        assert_eq!(exclude, ["kube-system", "registry-operator-system"]);
    }

    #[test]
    fn every_policy_name_fits_kyverno_for_the_longest_image_policy_name() {
        for slug in [
            DISALLOW_LATEST_TAG,
            RESTRICT_REGISTRIES,
            REQUIRE_SIGNATURES,
            EPHEMERAL_TAG,
            EPHEMERAL_REGISTRY,
        ] {
            assert!(
                format!("-{slug}").len() <= validate::LONGEST_POLICY_SUFFIX,
                "{slug} is longer than validate allows for"
            );
        }
        // CEL attestation policies are `attestation-<index>`.
        assert!("-attestation-999999".len() <= validate::LONGEST_POLICY_SUFFIX);
    }
}
