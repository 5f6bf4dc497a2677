//! Small value types shared by the Registry and ImagePolicy APIs (secret references, storage, conditions).
//! Pure data; no behaviour beyond defaults.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Reference to one key of a Secret in the Registry's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret (same namespace as the Registry).
    pub name: String,
    /// Key inside the Secret that holds the value. Defaults to `password`.
    #[serde(default = "default_password_key")]
    pub key: String,
}

pub(crate) fn default_password_key() -> String {
    "password".to_string()
}

/// Reference to a Secret holding a username and a password.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    /// Name of the Secret (same namespace as the Registry).
    pub name: String,
    /// Key holding the username (or S3 access key id). Defaults to `username`.
    #[serde(default = "default_username_key")]
    pub username_key: String,
    /// Key holding the password (or S3 secret access key). Defaults to `password`.
    #[serde(default = "default_password_key")]
    pub password_key: String,
}

fn default_username_key() -> String {
    "username".to_string()
}

/// A persistent volume request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSpec {
    /// StorageClass of the PersistentVolumeClaim; empty means the cluster default (`local-path` on k3s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = crate::crd::schema::empty_or_dns_subdomain("storageClassName", "a StorageClass name"))]
    pub storage_class_name: Option<String>,
    /// Requested size, e.g. `10Gi`: a quantity greater than zero.
    #[schemars(schema_with = "crate::crd::schema::volume_size")]
    pub size: Quantity,
}

/// Ready, Progressing, Degraded and the specific condition types the operator reports.
pub mod condition {
    /// The object does what it was asked to do.
    pub const READY: &str = "Ready";
    /// The operator is still working towards the desired state.
    pub const PROGRESSING: &str = "Progressing";
    /// Something that used to work, or should work, is failing.
    pub const DEGRADED: &str = "Degraded";
    /// Harbor's PostgreSQL is ready.
    pub const DATABASE_READY: &str = "DatabaseReady";
    /// Harbor's Redis is ready.
    pub const CACHE_READY: &str = "CacheReady";
    /// The image storage is ready.
    pub const STORAGE_READY: &str = "StorageReady";
    /// Every Harbor component is available.
    pub const COMPONENTS_READY: &str = "ComponentsReady";
    /// A migration between registries is running.
    pub const MIGRATING: &str = "Migrating";
    /// A switch made the old registry read-only (`False` with `FreezeUnsupported` when it cannot).
    pub const SOURCE_FROZEN: &str = "SourceFrozen";
}

/// How a rule reacts to a violating resource (Kyverno `failureAction`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum FailureAction {
    /// Admit the resource and report the violation.
    #[default]
    Audit,
    /// Reject the resource.
    Enforce,
}

impl VolumeSpec {
    /// A volume of `size` on the default StorageClass.
    pub fn sized(size: &str) -> Self {
        Self {
            storage_class_name: None,
            size: Quantity(size.to_string()),
        }
    }
}
