//! Harbor-mode settings of a `Registry`: version, images, database, Redis, storage, exposure, components.
//! Pure data and defaults; cross-field rules are CEL here and mirrored in `crate::validate`.

use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CredentialsSecretRef, SecretKeyRef, VolumeSpec};

/// Harbor version rendered when `spec.harbor.version` is not set.
pub const DEFAULT_HARBOR_VERSION: &str = "2.15.3";

/// Harbor mode: the whole Harbor stack on CloudNativePG, Redis and PVC or S3 storage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.notary)").message("spec.harbor.notary: Notary was removed in Harbor 2.9; sign images with cosign and verify them with an ImagePolicy"))]
#[x_kube(validation = Rule::new("!has(self.chartmuseum)").message("spec.harbor.chartmuseum: ChartMuseum was removed in Harbor 2.8; Harbor stores Helm charts as OCI artifacts"))]
pub struct HarborSpec {
    /// Harbor version (image tag without the `v`), 2.9 or newer. Defaults to the tested 2.15 release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^v?[0-9]+\\\\.[0-9]+\\\\.[0-9]+$') && !self.matches('^v?(0|1)\\\\.') && !self.matches('^v?2\\\\.[0-8]\\\\.')").message("spec.harbor.version: must be a Harbor release 2.9.0 or newer, e.g. 2.15.3"))]
    pub version: Option<String>,
    /// Per-component image overrides (full references). Unset components use `goharbor/<component>:v<version>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<HarborImages>,
    /// Pull secrets added to every Harbor pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(s, size(s.name) > 0)").message("spec.harbor.imagePullSecrets: every entry needs a Secret name"))]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// PostgreSQL: a CloudNativePG cluster the operator manages (default) or an existing database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<HarborDatabase>,
    /// Redis: an internal StatefulSet (default) or an existing Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<HarborRedis>,
    /// Where image data lives: a PersistentVolumeClaim (default, 50Gi) or S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<HarborStorage>,
    /// How Harbor is reached from outside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<HarborExpose>,
    /// The Trivy vulnerability scanner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trivy: Option<TrivySpec>,
    /// The Prometheus exporter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporter: Option<ExporterSpec>,
    /// The job service's log volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobservice: Option<JobserviceSpec>,
    /// Secret holding the admin password. Unset: the operator generates one once and keeps it in
    /// the Secret `<registry>-harbor-admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_password_secret_ref: Option<SecretKeyRef>,
    /// Per-component resource overrides; unset components use the platform's sizing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<HarborResources>,
    /// Not supported: Notary was removed in Harbor 2.9. Present only to reject it with a clear message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notary: Option<RemovedComponent>,
    /// Not supported: ChartMuseum was removed in Harbor 2.8. Present only to reject it with a clear message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chartmuseum: Option<RemovedComponent>,
}

/// A Harbor component that no longer exists; any value is rejected.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RemovedComponent {
    /// Ignored; the component cannot be enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Full image references overriding the defaults, per component.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct HarborImages {
    /// harbor-core image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<String>,
    /// harbor-portal image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal: Option<String>,
    /// harbor-jobservice image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobservice: Option<String>,
    /// registry-photon (distribution) image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// harbor-registryctl image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registryctl: Option<String>,
    /// trivy-adapter-photon image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trivy: Option<String>,
    /// Redis image of the internal Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
    /// harbor-exporter image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporter: Option<String>,
}

/// Harbor's PostgreSQL: set exactly one of `managed` or `external`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.managed) != has(self.external)").message("spec.harbor.database: set exactly one of managed or external"))]
pub struct HarborDatabase {
    /// A CloudNativePG `Cluster` created and owned by the Registry (requires the CNPG operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedDatabase>,
    /// An existing PostgreSQL, e.g. the platform's CNPG at `postgresql-rw.storage.svc.cluster.local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalDatabase>,
}

/// A CloudNativePG cluster for Harbor.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedDatabase {
    /// PostgreSQL instances (1 primary plus replicas). Defaults to 1.
    #[serde(default = "default_instances")]
    #[schemars(range(min = 1, max = 9))]
    pub instances: i32,
    /// Volume of each instance. Defaults to 10Gi.
    #[serde(default = "default_database_volume")]
    pub storage: VolumeSpec,
}

fn default_instances() -> i32 {
    1
}

fn default_database_volume() -> VolumeSpec {
    VolumeSpec::sized("10Gi")
}

impl Default for ManagedDatabase {
    fn default() -> Self {
        Self {
            instances: default_instances(),
            storage: default_database_volume(),
        }
    }
}

/// An existing PostgreSQL database.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalDatabase {
    /// Host name of the database service.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("!self.contains('/')").message("spec.harbor.database.external.host: must be a host name or IP address without scheme, port or path (the port goes in spec.harbor.database.external.port)"))]
    pub host: String,
    /// Port. Defaults to 5432.
    #[serde(default = "default_postgres_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Database name. Defaults to `registry`.
    #[serde(default = "default_database_name")]
    pub database: String,
    /// User Harbor connects as.
    #[schemars(length(min = 1))]
    pub username: String,
    /// Secret key holding that user's password.
    pub password_secret_ref: SecretKeyRef,
    /// TLS mode of the connection. Defaults to `require`.
    #[serde(default)]
    pub ssl_mode: SslMode,
}

fn default_postgres_port() -> i32 {
    5432
}

fn default_database_name() -> String {
    "registry".to_string()
}

/// libpq `sslmode`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS without certificate verification.
    #[default]
    Require,
    /// TLS, server certificate signed by a trusted CA.
    VerifyCa,
    /// TLS, certificate and host name verified.
    VerifyFull,
}

/// Harbor's Redis: set at most one of `internal` (the default) or `external`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.internal) && has(self.external))").message("spec.harbor.redis: set only one of internal or external"))]
pub struct HarborRedis {
    /// A single-instance Redis StatefulSet owned by the Registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal: Option<InternalRedis>,
    /// An existing Redis (standalone or Sentinel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalRedis>,
}

/// The internal Redis.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalRedis {
    /// Volume for Redis data. Defaults to 1Gi.
    #[serde(default = "default_redis_volume")]
    pub storage: VolumeSpec,
}

fn default_redis_volume() -> VolumeSpec {
    VolumeSpec::sized("1Gi")
}

impl Default for InternalRedis {
    fn default() -> Self {
        Self {
            storage: default_redis_volume(),
        }
    }
}

/// An existing Redis.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'Cluster'").message("spec.harbor.redis.external.mode: Harbor does not support Redis Cluster; use Standalone or Sentinel"))]
#[x_kube(validation = Rule::new("self.mode != 'Sentinel' || has(self.sentinelMasterSet)").message("spec.harbor.redis.external.sentinelMasterSet: required when mode is Sentinel"))]
pub struct ExternalRedis {
    /// `host:port` of Redis, or a comma-separated list of Sentinels.
    #[schemars(length(min = 1))]
    pub addr: String,
    /// Topology of the Redis. Defaults to `Standalone`.
    #[serde(default)]
    pub mode: RedisMode,
    /// Sentinel master set name (Sentinel mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel_master_set: Option<String>,
    /// Secret key holding the Redis password, if Redis requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
}

/// Topology of an external Redis.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum RedisMode {
    /// One Redis server.
    #[default]
    Standalone,
    /// Redis Sentinel; requires `sentinelMasterSet`.
    Sentinel,
    /// Redis Cluster: not supported by Harbor, rejected.
    Cluster,
}

/// Harbor's image storage: set at most one of `pvc` (the default) or `s3`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.pvc) && has(self.s3))").message("spec.harbor.storage: set only one of pvc or s3"))]
pub struct HarborStorage {
    /// A PersistentVolumeClaim. Defaults to 50Gi of the default StorageClass (`local-path` on k3s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<VolumeSpec>,
    /// An S3-compatible bucket, e.g. SeaweedFS in-cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Storage>,
}

/// S3-compatible object storage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Storage {
    /// Endpoint URL, e.g. `http://seaweedfs-s3.storage.svc:8333`. Unset uses AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Region. Defaults to `us-east-1`.
    #[serde(default = "default_region")]
    pub region: String,
    /// Bucket name.
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// Secret with the access key id (`usernameKey`, default `username`) and secret key (`passwordKey`).
    pub credentials_secret_ref: CredentialsSecretRef,
    /// Serve blobs through Harbor instead of redirecting clients to S3. Defaults to `true`, which an
    /// in-cluster S3 (not reachable from clients) needs.
    #[serde(default = "default_true")]
    pub disable_redirect: bool,
}

fn default_region() -> String {
    "us-east-1".to_string()
}

fn default_true() -> bool {
    true
}

/// Exposure through an Ingress.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HarborExpose {
    /// IngressClass. Defaults to `traefik` (k3s).
    #[serde(default = "default_ingress_class")]
    pub ingress_class_name: String,
    /// TLS Secret for `spec.host`; unset serves plain HTTP and advertises `http://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret_name: Option<String>,
}

fn default_ingress_class() -> String {
    "traefik".to_string()
}

impl Default for HarborExpose {
    fn default() -> Self {
        Self {
            ingress_class_name: default_ingress_class(),
            tls_secret_name: None,
        }
    }
}

/// The Trivy scanner.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrivySpec {
    /// Run Trivy. Defaults to `true`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Volume for Trivy's vulnerability database cache. Defaults to 5Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<VolumeSpec>,
}

impl Default for TrivySpec {
    fn default() -> Self {
        Self {
            enabled: true,
            storage: None,
        }
    }
}

/// The Prometheus exporter.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExporterSpec {
    /// Run the exporter. Defaults to `false`.
    #[serde(default)]
    pub enabled: bool,
}

/// The job service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct JobserviceSpec {
    /// Volume for job logs. Defaults to 1Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<VolumeSpec>,
}

/// Per-component resource overrides.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct HarborResources {
    /// harbor-core (default 512Mi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<ResourceRequirements>,
    /// harbor-portal (default 256Mi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal: Option<ResourceRequirements>,
    /// harbor-jobservice (default 256Mi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobservice: Option<ResourceRequirements>,
    /// registry container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<ResourceRequirements>,
    /// registryctl container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registryctl: Option<ResourceRequirements>,
    /// Trivy adapter (default 1Gi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trivy: Option<ResourceRequirements>,
    /// Internal Redis (default 256Mi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<ResourceRequirements>,
    /// Exporter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporter: Option<ResourceRequirements>,
}
