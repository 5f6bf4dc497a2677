//! Pure builders: from a custom resource plus what was observed in the cluster to the objects the
//! operator applies. Render never touches a client, a clock or randomness, and never imports `reconcile`.

pub mod generated;
mod harbor;
mod k3d;
pub mod kyverno;
pub mod labels;
pub mod migration;
mod object;
pub mod observed;
pub mod policy;

pub use generated::{GeneratedSecret, PLACEHOLDER, SecretGenerator, placeholder_secrets};
pub use harbor::admin_password_ref as harbor_admin_password_ref;
pub use harbor::cluster_resource as cnpg_cluster_resource;
pub use k3d::{DEFAULT_DISTRIBUTION_IMAGE, LocalRegistryHosting};
pub use object::{RenderedObject, apply_rank, sort_for_apply};
pub use observed::{HarborObserved, Observed};
pub use policy::{PolicyObserved, RenderedPolicy};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

use crate::crd::{ImagePolicy, Registry, RegistryMode};
use crate::validate::{self, ValidationErrors};

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The spec breaks a rule; the message names the field.
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    /// An object could not be converted (a bug, not a user error).
    #[error("internal serialization error: {0}")]
    Serialize(#[from] serde_json::Error),
    /// YAML output failed (a bug, not a user error).
    #[error("internal YAML error: {0}")]
    Yaml(#[from] yaml_serde::Error),
    /// The Kyverno policy kinds needed are not served (controller: `Ready=False`, reason `KyvernoNotInstalled`).
    #[error("Kyverno is not installed: {0}")]
    KyvernoNotInstalled(&'static str),
    /// The referenced Registry reports an endpoint that cannot be used in a policy.
    #[error("the Registry's endpoint {0:?} is not a registry host[:port][/path]")]
    InvalidEndpoint(String),
    /// restrictRegistries has nothing to allow yet (the Registry has no endpoint and allowedRegistries is empty).
    #[error(
        "spec.rules.restrictRegistries: no allowed registry yet (the Registry has no endpoint and spec.allowedRegistries is empty)"
    )]
    NoAllowedRegistries,
}

/// Everything a Registry turns into.
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    /// Objects to apply, in apply order.
    pub objects: Vec<RenderedObject>,
    /// Where clients pull from once these objects are ready.
    pub endpoint: Option<String>,
    /// A k3s `registries.yaml` snippet pointing nodes at `endpoint`.
    pub k3s_registries_yaml: Option<String>,
    /// Whether an existing registry was adopted instead of deploying one.
    pub adopted: bool,
    /// Non-fatal findings worth a condition message (e.g. another Registry already announces itself).
    pub warnings: Vec<String>,
    /// Secrets the controller creates once if absent (never updated); values come from `crate::secrets`.
    pub generated_secrets: Vec<GeneratedSecret>,
    /// Harbor version these objects run (Harbor mode).
    pub harbor_version: Option<String>,
    /// What render holds back until the cluster catches up (e.g. Harbor core until its database is
    /// Ready); progress, not a fault.
    pub held_back: Option<String>,
}

/// Render a Registry: validate, then build every child for its mode.
pub fn registry(registry: &Registry, observed: &Observed) -> Result<Rendered, RenderError> {
    validate::registry(registry)?;
    let mut rendered = match registry.spec.mode {
        RegistryMode::K3d => k3d::render(registry, observed)?,
        RegistryMode::Harbor => harbor::render(registry, observed)?,
    };
    sort_for_apply(&mut rendered.objects);
    Ok(rendered)
}

/// Render an ImagePolicy into Kyverno policies of the engine that is served.
pub fn image_policy(
    policy: &ImagePolicy,
    observed: &PolicyObserved,
) -> Result<RenderedPolicy, RenderError> {
    policy::render(policy, observed)
}

/// Controller owner reference to `owner`, when it has a uid (objects read from a cluster do; a file
/// passed to `render` does not, and then no owner reference is set, like `helm template`).
pub fn owner_reference<K: Resource<DynamicType = ()>>(owner: &K) -> Option<OwnerReference> {
    owner.controller_owner_ref(&())
}

/// Serialize objects as one multi-document YAML stream.
pub fn to_yaml(objects: &[RenderedObject]) -> Result<String, RenderError> {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        let document = yaml_serde::to_string(&object.object)?;
        out.push_str(&document);
        if !document.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}
