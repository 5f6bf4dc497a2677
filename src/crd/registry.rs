//! The namespaced `Registry` kind: which registry the platform runs (k3d registry or Harbor) and its status.
//! Pure data and defaults; validation lives in `crate::validate`, behaviour in `render`/`reconcile`.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CredentialsSecretRef, HarborSpec, VolumeSpec};

/// The platform's container registry. `mode` selects what runs; changing it from `K3d` to `Harbor`
/// migrates every image before the old registry is retired.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "registry.aisp.dev",
    version = "v1alpha1",
    kind = "Registry",
    plural = "registries",
    shortname = "aisreg",
    category = "aisp",
    namespaced,
    status = "RegistryStatus",
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".status.endpoint"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("self.spec.mode != 'Harbor' || size(self.metadata.name) <= 39").message("metadata.name: must be at most 39 characters in Harbor mode (children such as <name>-harbor-jobservice are Services and StatefulSet revision labels must stay within 63 characters)"),
    validation = Rule::new("self.spec.mode != 'K3d' || size(self.metadata.name) <= 50").message("metadata.name: must be at most 50 characters in K3d mode (the Service <name>-distribution must be a DNS-1035 label of at most 63 characters)")
)]
#[x_kube(validation = Rule::new("self.mode != 'Harbor' || has(self.host)").message("spec.host: required when spec.mode is Harbor"))]
#[x_kube(validation = Rule::new("self.mode != 'Harbor' || !has(self.host) || !self.host.matches('^[^:]*[.](svc|cluster[.]local)(:[0-9]+)?$')").message("spec.host: must not be a cluster DNS name in Harbor mode (the nodes' container runtimes resolve names with the node's resolver, never cluster DNS)"))]
#[serde(rename_all = "camelCase")]
pub struct RegistrySpec {
    /// Which registry runs: `K3d` (the k3d registry, adopted or run in-cluster) or `Harbor` (the full stack).
    pub mode: RegistryMode,
    /// Host (and optional port) that clients and policies use, e.g. `harbor.ai-platform.localhost` or
    /// `k3d-myregistry:5000`. Optional in K3d mode (derived from the adopted registry or the Service);
    /// required in Harbor mode, where it is also the Ingress host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_HOST))]
    #[x_kube(validation = crate::crd::schema::matches("spec.host", crate::crd::schema::HOST, "a lowercase DNS name with an optional :port (1 to 65535)"))]
    pub host: Option<String>,
    /// Settings of K3d mode. In Harbor mode it still describes the old registry while a migration runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k3d: Option<K3dSpec>,
    /// Settings of Harbor mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harbor: Option<HarborSpec>,
    /// What happens to image data when the Registry is deleted or switched away from: `Retain` (default)
    /// keeps the PersistentVolumeClaims, `Delete` removes them.
    #[serde(default)]
    pub retention: Retention,
    /// How a mode switch copies images between registries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationSpec>,
}

/// Which registry implementation a Registry runs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RegistryMode {
    /// The tiny k3d registry: adopted when k3d announces one, else a CNCF distribution Deployment.
    K3d,
    /// Harbor: core, portal, jobservice, registry, Trivy, Redis and PostgreSQL.
    Harbor,
}

/// Fate of image data when it is no longer used.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Retention {
    /// Keep PersistentVolumeClaims (their owner reference is removed so they outlive the Registry).
    #[default]
    Retain,
    /// Delete PersistentVolumeClaims with the Registry or the retired mode.
    Delete,
}

/// K3d mode: adopt the registry that k3d created, or run a CNCF distribution registry in-cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct K3dSpec {
    /// `Auto` (default) adopts the registry announced in `kube-public/local-registry-hosting`
    /// (KEP-1755) and deploys nothing; `Never` always runs the in-cluster registry.
    #[serde(default)]
    pub adopt: AdoptPolicy,
    /// Image of the in-cluster registry. Defaults to the CNCF distribution image `docker.io/library/registry:2.8.3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_IMAGE))]
    #[x_kube(validation = crate::crd::schema::image_reference("spec.k3d.image"))]
    pub image: Option<String>,
    /// Volume for the in-cluster registry's data. Defaults to 10Gi of the default StorageClass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<VolumeSpec>,
    /// Run the registry as a pull-through cache of a remote registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<K3dCacheSpec>,
    /// Resources of the registry container. Defaults to 50Mi request and 64Mi limit of memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::schema::resources")]
    pub resources: Option<ResourceRequirements>,
    /// NodePort (30000-32767) of the in-cluster registry's Service. Container runtimes on the nodes
    /// pull through it at `127.0.0.1:<nodePort>` (node resolvers cannot resolve cluster DNS names),
    /// and with a k3d port mapping your machine pushes to `localhost:<nodePort>`. Unset: 30500 when
    /// no other Service uses it, else a port the API server picks (shown in
    /// `status.k3sRegistriesYaml`); the port of a running registry never changes by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 30000, max = 32767))]
    pub node_port: Option<i32>,
    /// Garbage collection of the hosted registry's storage (a CronJob running distribution's
    /// `registry garbage-collect`). Unset: no collection; deleted images keep their space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc: Option<K3dGcSpec>,
    /// Maintenance switch of the hosted registry: `true` refuses pushes and deletes (distribution's
    /// `storage.maintenance.readonly`), pulls keep working; the Deployment rolls out to apply it.
    /// An adopted k3d registry runs outside the cluster and is not changed (a warning says so).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// Garbage collection of the hosted registry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct K3dGcSpec {
    /// CronJob schedule (five fields, or `@daily` and the like), e.g. `0 3 * * 0`. Pick a time with
    /// no pushes: distribution's collector must not run while images are pushed.
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new("self.matches('^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$') || self.matches('^[^ ]+( [^ ]+){4}$')").message("spec.k3d.gc.schedule: a CronJob schedule of five fields, e.g. '0 3 * * 0'"))]
    pub schedule: String,
    /// Also delete manifests no tag references (`--delete-untagged`). Defaults to `false`.
    #[serde(default)]
    pub delete_untagged: bool,
}

/// Whether an existing k3d registry is adopted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum AdoptPolicy {
    /// Adopt the registry announced by the KEP-1755 ConfigMap when there is one.
    #[default]
    Auto,
    /// Never adopt; always run the in-cluster registry.
    Never,
}

/// Pull-through cache settings of the in-cluster registry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct K3dCacheSpec {
    /// URL of the upstream registry, e.g. `https://registry-1.docker.io`.
    #[serde(rename = "remoteURL")]
    #[schemars(length(max = crate::crd::schema::MAX_URL))]
    #[x_kube(validation = crate::crd::schema::http_url("spec.k3d.cache.remoteURL"))]
    pub remote_url: String,
    /// Secret with the upstream registry's `username` and `password`; credentials are never inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
}

/// How a mode switch copies images.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationSpec {
    /// Allow switching from Harbor back to K3d (the same copy flow in reverse). Off by default because
    /// the k3d registry has no projects, scanning or access control.
    #[serde(default)]
    pub allow_downgrade: bool,
    /// Glob patterns of repositories to copy (e.g. `ai/*`); empty copies every repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1)))]
    pub repositories: Vec<String>,
    /// Harbor project that receives the copied repositories. Defaults to `library`.
    #[serde(default = "default_destination_project")]
    #[schemars(length(max = crate::crd::schema::MAX_DNS_LABEL))]
    #[x_kube(validation = crate::crd::schema::matches("spec.migration.destinationProject", crate::crd::schema::DNS_LABEL, "a lowercase Harbor project name (lowercase letters, digits and '-')"))]
    pub destination_project: String,
    /// How many blobs are copied at once. Defaults to 4.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 64))]
    pub concurrency: u32,
    /// How long after the endpoint flipped both hosts stay served and allowed by the ImagePolicies
    /// that follow this Registry (e.g. `24h`, `90m`, `1h30m`; `0` for none). Defaults to `24h`. The
    /// old registry is retired only after it, and only once no running pod uses the old host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = crate::crd::schema::matches("spec.migration.grace", "^(0|([0-9]+(h|m|s))+)$", "a duration such as 24h, 90m or 1h30m (0 for none)"))]
    pub grace: Option<String>,
    /// During the grace window, a generated Kyverno mutate policy rewrites images of the old host to
    /// the new one (with the Harbor project) in the pods of the namespaces of the ImagePolicies that
    /// follow this Registry, so workloads keep starting while their manifests are updated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rewrite_images: bool,
    /// Retire the old registry when the grace window ends even if running pods still use its host.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// The grace window when `spec.migration.grace` is not set.
pub const DEFAULT_MIGRATION_GRACE: &str = "24h";

fn default_destination_project() -> String {
    "library".to_string()
}

fn default_concurrency() -> u32 {
    4
}

impl Default for MigrationSpec {
    fn default() -> Self {
        Self {
            allow_downgrade: false,
            repositories: Vec::new(),
            destination_project: default_destination_project(),
            concurrency: default_concurrency(),
            grace: None,
            rewrite_images: false,
            force: false,
        }
    }
}

/// Observed state of a Registry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryStatus {
    /// `Ready`, `Progressing`, `Degraded` and the specific conditions (`DatabaseReady`, `Migrating`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` that this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The mode that currently serves images (differs from `spec.mode` while a switch runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RegistryMode>,
    /// Host (and port) clients pull from right now; ImagePolicies follow it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// One-word summary for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RegistryPhase>,
    /// A k3s `registries.yaml` snippet that points nodes at this registry, ready to paste.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k3s_registries_yaml: Option<String>,
    /// Harbor version running (Harbor mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harbor_version: Option<String>,
    /// When the managed Harbor database was last backed up (`spec.harbor.database.backup`), as
    /// CloudNativePG reports it on the Cluster (`status.lastSuccessfulBackup`, RFC 3339). CNPG does
    /// not set it for backups through a plugin (`method: ObjectStore`): see that Cluster's `Backup`s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_time: Option<String>,
    /// Progress of the last or current migration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationStatus>,
    /// A Harbor version change in progress (absent when none runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeStatus>,
}

/// A Harbor version change, step by step: read-only on → database backup (when configured) → core
/// (which migrates the schema) → the other components → read-only off.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStatus {
    /// The version running when the change started.
    pub from: String,
    /// The version asked for.
    pub to: String,
    /// The step in progress.
    pub step: UpgradeStep,
    /// What the step waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A step of a Harbor version change.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum UpgradeStep {
    /// Harbor is put in read-only mode through its API (pushes and deletes refused).
    ReadOnly,
    /// The managed database is backed up (a CloudNativePG `Backup`), when backups are configured.
    BackingUp,
    /// Core gets the new version first: it migrates the database schema when it starts.
    Core,
    /// Every other component gets the new version.
    Components,
    /// Read-only mode is lifted (unless `spec.harbor.readOnly` keeps it).
    LeavingReadOnly,
}

/// One-word summary of a Registry.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RegistryPhase {
    /// Children are being created or are not ready yet.
    Provisioning,
    /// Images are being copied to the new mode.
    Migrating,
    /// Serving images.
    Ready,
    /// Serving may be impaired; see conditions.
    Degraded,
    /// The spec is invalid; see the Ready condition.
    Invalid,
}

/// Progress of a migration between registries.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    /// Where the migration stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<MigrationPhase>,
    /// Registry host copied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Registry host copied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Name of the Job that runs the copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// Repositories copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<u64>,
    /// Tags copied and verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<u64>,
    /// Blobs uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blobs_copied: Option<u64>,
    /// Blobs that the destination already had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blobs_skipped: Option<u64>,
    /// Bytes uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_copied: Option<u64>,
    /// Failed attempts of the current phase so far (reset when a phase completes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_attempts: Option<u32>,
    /// Human-readable detail of where the switch stands or of the last failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The mode switched away from (kept serving, read-only, until it is retired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_mode: Option<RegistryMode>,
    /// The phase whose last attempt failed, while `phase` is `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_phase: Option<MigrationPhase>,
    /// Whether the old registry was made read-only (an adopted k3d registry outside the cluster
    /// cannot be; then the catch-up pass and the verification before the flip are what protect pushes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_frozen: Option<bool>,
    /// What the catch-up pass copied (only what changed since the bulk copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<CatchUpCounts>,
    /// When the endpoint flipped (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<String>,
    /// When the grace window ends (RFC 3339): both hosts are served and allowed until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_ends_at: Option<String>,
    /// Running pods whose images still name the old host (counted at most once a minute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_host_pods: Option<u64>,
    /// The first few of them, as `namespace/name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub old_host_pod_examples: Vec<String>,
    /// When the pods were last counted (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_counted_at: Option<String>,
}

/// Counts of the catch-up pass.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatchUpCounts {
    /// Tags checked (and copied when new or moved).
    pub tags: u64,
    /// Blobs uploaded (zero when nothing changed since the bulk copy).
    pub blobs_copied: u64,
    /// Bytes uploaded.
    pub bytes_copied: u64,
}

/// Where a switch stands. Each phase is resumed after an operator restart and never repeated once
/// it completed.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub enum MigrationPhase {
    /// The target is being provisioned; the old registry serves.
    Pending,
    /// Bulk copy (a migration Job); the old registry serves and still takes pushes.
    Copying,
    /// The old registry is made read-only, so a push fails loudly instead of being lost.
    Freezing,
    /// A second copy pass: only what changed since the bulk copy.
    CatchingUp,
    /// Every tag's digest is compared on both sides.
    Verifying,
    /// The endpoint flipped to the new registry.
    Switched,
    /// Both hosts are served and allowed until the grace window ends and no pod uses the old host.
    Grace,
    /// The old registry is removed (its data kept under `retention: Retain`).
    Retired,
    /// The last attempt of `failedPhase` failed; the old registry keeps serving; retried with backoff.
    Failed,
}

/// Default storage of the in-cluster k3d registry.
pub fn default_k3d_volume() -> VolumeSpec {
    VolumeSpec::sized("10Gi")
}
