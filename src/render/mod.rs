//! Pure builders: from a custom resource plus what was observed in the cluster to the objects the
//! operator applies. Render never touches a client, a clock or randomness, and never imports `reconcile`.

mod builders;
pub mod generated;
mod harbor;
mod k3d;
pub mod k3s;
pub mod kyverno;
pub mod labels;
pub mod migration;
mod object;
pub mod observed;
pub mod policy;

pub use generated::{
    GeneratedSecret, Issuer, PLACEHOLDER, SecretCopy, SecretGenerator, placeholder_secrets,
};
pub use harbor::CONFIG_CHECKSUM_ANNOTATION as HARBOR_CONFIG_CHECKSUM_ANNOTATION;
pub use harbor::admin_password_ref as harbor_admin_password_ref;
pub use harbor::api_url as harbor_api_url;
pub use harbor::cluster_resource as cnpg_cluster_resource;
pub use harbor::component_name as harbor_component_name;
pub use harbor::{backup_resource as cnpg_backup_resource, upgrade_backup_name};
pub use harbor::{
    database_resource as cnpg_database_resource,
    database_role_resource as cnpg_database_role_resource,
    scheduled_backup_resource as cnpg_scheduled_backup_resource,
};
pub use k3d::gc::GC_COMPONENT as K3D_GC_COMPONENT;
pub use k3d::object_name as k3d_object_name;
pub use k3d::service_host as k3d_service_host;
pub use k3d::{
    DEFAULT_DISTRIBUTION_IMAGE, DEFAULT_NODE_PORT, LocalRegistryHosting, READ_ONLY_ENV,
    needs_node_port_census,
};
pub use object::{RenderedObject, apply_rank, sort_for_apply};
pub use observed::{HarborObserved, NodePortsObserved, Observed, ObservedConfigMap};
pub use policy::{PolicyObserved, RenderedPolicy};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

use crate::crd::{ImagePolicy, Reason, Registry, RegistryMode};
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

impl RenderError {
    /// The condition reason of a refusal someone must act on (the user, or the cluster's admin), or
    /// `None` for an internal error (a bug, never shown as a condition).
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Self::Invalid(_) => Some(Reason::InvalidSpec),
            Self::KyvernoNotInstalled(_) => Some(Reason::KyvernoNotInstalled),
            Self::InvalidEndpoint(_) => Some(Reason::InvalidEndpoint),
            Self::NoAllowedRegistries => Some(Reason::WaitingForRegistryEndpoint),
            Self::Serialize(_) | Self::Yaml(_) => None,
        }
    }
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
    /// `spec.k3d.nodePort` is used by another Service: the controller applies nothing and reports it
    /// (Ready=False, Degraded=True, reason `NodePortConflict`); the message names both.
    pub node_port_conflict: Option<String>,
    /// ConfigMap keys the controller fills with public parts of generated Secrets (the exported CA).
    pub secret_copies: Vec<SecretCopy>,
}

/// Which mode a render is for, and at which host: the spec's, or (during a switch, or while a
/// downgrade is refused) the mode that still serves, at the host it serves at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The mode whose children are rendered.
    pub mode: RegistryMode,
    /// `host[:port]` clients use (`spec.host` for the spec's mode).
    pub host: Option<String>,
    /// A switch away from this side froze it: a hosted k3d registry is rendered read-only.
    pub frozen: bool,
    /// A Harbor upgrade in progress holds components at the running version.
    pub hold: Option<HarborHold>,
}

/// Where a Harbor upgrade stands, as render needs it: which components still run `running`, and
/// whether the pre-upgrade database Backup is rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HarborHold {
    /// The version that runs now; components not yet upgraded keep its images.
    pub running: String,
    /// Core (which migrates the database schema when it starts) already gets the new version.
    pub core_upgraded: bool,
    /// Render the on-demand CNPG `Backup` of the managed database for this upgrade.
    pub backup: bool,
}

impl Target {
    /// What the spec asks for: `spec.mode` at `spec.host`.
    pub fn of_spec(registry: &Registry) -> Self {
        Self {
            mode: registry.spec.mode,
            host: registry.spec.host.clone(),
            frozen: false,
            hold: None,
        }
    }
}

/// Render a Registry: validate, then build every child for its mode.
pub fn registry(registry: &Registry, observed: &Observed) -> Result<Rendered, RenderError> {
    registry_for(registry, &Target::of_spec(registry), observed)
}

/// Render a Registry for `target` (its mode and host); the rest of the spec is the Registry's own.
pub fn registry_for(
    registry: &Registry,
    target: &Target,
    observed: &Observed,
) -> Result<Rendered, RenderError> {
    let host = target.host.as_deref();
    validate::registry_as(registry, target.mode, host)?;
    let mut rendered = match target.mode {
        RegistryMode::K3d => k3d::render(registry, host, target.frozen, observed)?,
        RegistryMode::Harbor => harbor::render(registry, host, target.hold.as_ref(), observed)?,
    };
    sort_for_apply(&mut rendered.objects);
    if !target.frozen
        && target.mode == registry.spec.mode
        && let (Some(yaml), Some(endpoint), Some((old, prefix))) = (
            rendered.k3s_registries_yaml.as_deref(),
            rendered.endpoint.as_deref(),
            switched_from(registry, target.mode),
        )
    {
        let mut registries = k3s::Registries::from_yaml(yaml)?;
        registries.alias(&old, endpoint, &prefix);
        rendered.k3s_registries_yaml = Some(registries.to_yaml()?);
    }
    Ok(rendered)
}

/// After a switch flipped to `mode`: the old host nodes may still be asked for, and the project put
/// before its repositories (Harbor's, when switching to Harbor).
fn switched_from(registry: &Registry, mode: RegistryMode) -> Option<(String, String)> {
    let migration = registry.status.as_ref()?.migration.as_ref()?;
    let after_flip = matches!(
        migration.phase?,
        crate::crd::MigrationPhase::Switched
            | crate::crd::MigrationPhase::Grace
            | crate::crd::MigrationPhase::Retired
    );
    let old = migration.source.clone()?;
    (after_flip && migration.from_mode? != mode).then(|| {
        let prefix = match mode {
            RegistryMode::Harbor => migration::destination_project(registry, mode),
            RegistryMode::K3d => String::new(),
        };
        (old, prefix)
    })
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
