//! Harbor-mode settings of a `Registry`: version, images, database, Redis, storage, exposure, components.
//! Pure data and defaults; cross-field rules are CEL here and mirrored in `crate::validate`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CredentialsSecretRef, SecretKeyRef, VolumeSpec};

/// Harbor version rendered when `spec.harbor.version` is not set.
pub const DEFAULT_HARBOR_VERSION: &str = "2.15.2";

/// Harbor mode: the whole Harbor stack on CloudNativePG, Redis and PVC or S3 storage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.notary)").message("spec.harbor.notary: Notary was removed in Harbor 2.9; sign images with cosign and verify them with an ImagePolicy"))]
#[x_kube(validation = Rule::new("!has(self.chartmuseum)").message("spec.harbor.chartmuseum: ChartMuseum was removed in Harbor 2.8; Harbor stores Helm charts as OCI artifacts"))]
pub struct HarborSpec {
    /// Harbor version (image tag without the `v`), 2.9 or newer. Defaults to the tested 2.15 release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_VERSION))]
    #[x_kube(validation = Rule::new("self.matches('^v?[0-9]+\\\\.[0-9]+\\\\.[0-9]+$') && !self.matches('^v?(0|1)\\\\.') && !self.matches('^v?2\\\\.[0-8]\\\\.')").message("spec.harbor.version: must be a Harbor release 2.9.0 or newer, e.g. 2.15.2"))]
    pub version: Option<String>,
    /// Allow `version` to go below the running release (`status.harborVersion`). Harbor migrates its
    /// database forward only: set it once the database is restored from a backup taken before the
    /// upgrade. Defaults to `false` (the change is refused with `UpgradeRefused`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_downgrade: bool,
    /// Per-component image overrides (full references). Unset components use `docker.io/goharbor/<component>:v<version>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<HarborImages>,
    /// Pull secrets added to every Harbor pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::crd::schema::image_pull_secrets")]
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
    /// the Secret `<registry>-harbor-admin-secret` (key `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_password_secret_ref: Option<SecretKeyRef>,
    /// Maintenance switch, set through Harbor's configuration API once core runs: `true` makes Harbor
    /// read-only (pushes, deletions and GC refused; pulls served), `false` writable. Unset: the
    /// operator leaves Harbor's setting as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Harbor's garbage-collection schedule, kept through its API once core runs. Unset: the
    /// operator leaves Harbor's schedule as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc: Option<HarborGcSpec>,
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
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct HarborImages {
    /// harbor-core image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_IMAGE))]
    #[x_kube(validation = crate::crd::schema::image_reference("spec.harbor.images.core"))]
    pub core: Option<String>,
    /// harbor-portal image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_IMAGE))]
    #[x_kube(validation = crate::crd::schema::image_reference("spec.harbor.images.portal"))]
    pub portal: Option<String>,
    /// harbor-jobservice image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_IMAGE))]
    #[x_kube(validation = crate::crd::schema::image_reference("spec.harbor.images.jobservice"))]
    pub jobservice: Option<String>,
    /// registry-photon (distribution) image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_IMAGE))]
    #[x_kube(validation = crate::crd::schema::image_reference("spec.harbor.images.registry"))]
    pub registry: Option<String>,
    /// harbor-registryctl image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_IMAGE))]
    #[x_kube(validation = crate::crd::schema::image_reference("spec.harbor.images.registryctl"))]
    pub registryctl: Option<String>,
    /// trivy-adapter-photon image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_IMAGE))]
    #[x_kube(validation = crate::crd::schema::image_reference("spec.harbor.images.trivy"))]
    pub trivy: Option<String>,
    /// Redis image of the internal Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_IMAGE))]
    #[x_kube(validation = crate::crd::schema::image_reference("spec.harbor.images.redis"))]
    pub redis: Option<String>,
    /// harbor-exporter image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_IMAGE))]
    #[x_kube(validation = crate::crd::schema::image_reference("spec.harbor.images.exporter"))]
    pub exporter: Option<String>,
}

/// Harbor's PostgreSQL: set exactly one of `managed`, `external` or `cnpg`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.managed) ? 1 : 0) + (has(self.external) ? 1 : 0) + (has(self.cnpg) ? 1 : 0) == 1").message("spec.harbor.database: set exactly one of managed, external or cnpg"))]
#[x_kube(validation = Rule::new("!has(self.backup) || has(self.managed)").message("spec.harbor.database.backup: only for the managed Cluster (back up an external or existing CNPG cluster where it is defined)"))]
pub struct HarborDatabase {
    /// A CloudNativePG `Cluster` created and owned by the Registry (requires the CNPG operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedDatabase>,
    /// An existing PostgreSQL, e.g. the platform's CNPG at `postgresql-rw.storage.svc.cluster.local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalDatabase>,
    /// A database and role the operator declares on an existing CloudNativePG `Cluster` (the ADR's
    /// platform database) with CNPG's `Database` and `DatabaseRole` resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnpg: Option<CnpgDatabase>,
    /// Scheduled backups of the managed Cluster (a CNPG `ScheduledBackup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<DatabaseBackup>,
}

/// Harbor's database and role on an existing CloudNativePG cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CnpgDatabase {
    /// The CNPG `Cluster` (postgresql.cnpg.io/v1). The `Database`, `DatabaseRole` and a copy of the
    /// role's password Secret are created in its namespace; Harbor connects to `<name>-rw.<namespace>.svc`.
    pub cluster_ref: CnpgClusterRef,
    /// Name of the PostgreSQL database and of its owner role. Defaults to `harbor`; two Registries on
    /// one cluster need different names.
    #[serde(default = "default_cnpg_name")]
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z_][a-z0-9_]*$') && self != 'postgres' && self != 'streaming_replica' && !self.startsWith('pg_') && !self.startsWith('cnpg_')").message("spec.harbor.database.cnpg.name: lowercase letters, digits and '_', not starting with a digit; postgres, streaming_replica, pg_* and cnpg_* are reserved"))]
    pub name: String,
}

fn default_cnpg_name() -> String {
    "harbor".to_string()
}

/// Reference to a CNPG `Cluster`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CnpgClusterRef {
    /// Name of the Cluster.
    #[schemars(length(min = 1, max = 50))]
    #[x_kube(validation = crate::crd::schema::matches("spec.harbor.database.cnpg.clusterRef.name", crate::crd::schema::DNS_LABEL, "a CNPG Cluster name (lowercase letters, digits and '-')"))]
    pub name: String,
    /// Namespace of the Cluster.
    #[schemars(length(min = 1, max = crate::crd::schema::MAX_DNS_LABEL))]
    #[x_kube(validation = crate::crd::schema::matches("spec.harbor.database.cnpg.clusterRef.namespace", crate::crd::schema::DNS_LABEL, "a namespace name"))]
    pub namespace: String,
}

/// Harbor's garbage collection (its job service deletes blobs no artifact references).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HarborGcSpec {
    /// When to collect, in Harbor's six-field cron format (seconds first), e.g. `0 0 3 * * 6`.
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new("self.matches('^[^ ]+( [^ ]+){5}$')").message("spec.harbor.gc.schedule: six fields with seconds first (Harbor's cron format), e.g. '0 0 3 * * 6'"))]
    pub schedule: String,
    /// Also delete artifacts no tag references. Defaults to `false`.
    #[serde(default)]
    pub delete_untagged: bool,
}

/// Scheduled backups of the managed Cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.method != 'VolumeSnapshot' || has(self.volumeSnapshot)").message("spec.harbor.database.backup.volumeSnapshot: required when method is VolumeSnapshot (CNPG needs the VolumeSnapshotClass)"))]
#[x_kube(validation = Rule::new("self.method != 'ObjectStore' || has(self.objectStore)").message("spec.harbor.database.backup.objectStore: required when method is ObjectStore (the Barman Cloud ObjectStore to write to)"))]
pub struct DatabaseBackup {
    /// When to back up, in CloudNativePG's six-field cron format (seconds first), e.g. `0 0 3 * * *`.
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new("self.matches('^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$') || self.matches('^@every [0-9]') || self.matches('^[^ ]+( [^ ]+){5}$')").message("spec.harbor.database.backup.schedule: six fields with seconds first (CloudNativePG's format, not a five-field CronJob schedule), e.g. '0 0 3 * * *'"))]
    pub schedule: String,
    /// `VolumeSnapshot` (CSI snapshots of the instances' volumes) or `ObjectStore` (the Barman Cloud
    /// plugin, with continuous WAL archiving).
    pub method: BackupMethod,
    /// Settings of the `VolumeSnapshot` method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot: Option<VolumeSnapshotBackup>,
    /// Settings of the `ObjectStore` method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_store: Option<ObjectStoreBackup>,
}

/// How CNPG backs up the managed Cluster.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum BackupMethod {
    /// CSI volume snapshots (needs a CSI driver with snapshot support and a VolumeSnapshotClass).
    VolumeSnapshot,
    /// The Barman Cloud plugin (`barman-cloud.cloudnative-pg.io`) writing to an `ObjectStore`.
    ObjectStore,
}

/// The `VolumeSnapshot` method.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotBackup {
    /// VolumeSnapshotClass of the snapshots (the Cluster's `spec.backup.volumeSnapshot.className`).
    #[schemars(length(min = 1, max = crate::crd::schema::MAX_DNS_SUBDOMAIN))]
    #[x_kube(validation = crate::crd::schema::matches("spec.harbor.database.backup.volumeSnapshot.className", crate::crd::schema::DNS_SUBDOMAIN, "a VolumeSnapshotClass name"))]
    pub class_name: String,
}

/// The `ObjectStore` method.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStoreBackup {
    /// Name of a Barman Cloud `ObjectStore` (barmancloud.cnpg.io/v1) in the Registry's namespace,
    /// created by you (bucket, credentials, retention).
    #[schemars(length(min = 1, max = crate::crd::schema::MAX_DNS_SUBDOMAIN))]
    #[x_kube(validation = crate::crd::schema::matches("spec.harbor.database.backup.objectStore.name", crate::crd::schema::DNS_SUBDOMAIN, "an ObjectStore name"))]
    pub name: String,
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
#[x_kube(validation = Rule::new("!(has(self.sslMode) && (self.sslMode == 'verify-ca' || self.sslMode == 'verify-full')) || has(self.caBundleSecretRef)").message("spec.harbor.database.external.caBundleSecretRef: required when sslMode is verify-ca or verify-full (without the database's CA Harbor core cannot verify the server and exits at start)"))]
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
    /// TLS mode of the connection. Defaults to `require`. `verify-ca` and `verify-full` need
    /// `caBundleSecretRef`.
    #[serde(default)]
    pub ssl_mode: SslMode,
    /// Secret key holding the PEM CA certificate(s) that signed the database's server certificate
    /// (key defaults to `ca.crt`), e.g. CloudNativePG's `<cluster>-ca`. Mounted into
    /// `/harbor_cust_cert/` of core, jobservice and the exporter, whose entrypoint
    /// (`install_cert.sh`) adds it to the system trust store the database driver verifies against
    /// (harbor-helm's `caBundleSecretName`). Read at container start: restart core after a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_secret_ref: Option<CaBundleSecretRef>,
}

/// Reference to a Secret key holding PEM CA certificates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaBundleSecretRef {
    /// Name of the Secret (same namespace as the Registry).
    #[schemars(length(min = 1, max = crate::crd::schema::MAX_DNS_SUBDOMAIN))]
    pub name: String,
    /// Key holding the PEM certificates. Defaults to `ca.crt`.
    #[serde(default = "default_ca_key")]
    pub key: String,
}

fn default_ca_key() -> String {
    "ca.crt".to_string()
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
    #[schemars(length(max = crate::crd::schema::MAX_DNS_SUBDOMAIN))]
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
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Storage {
    /// Endpoint URL, e.g. `http://seaweedfs-s3.storage.svc:8333`. Unset uses AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_URL))]
    #[x_kube(validation = crate::crd::schema::http_url("spec.harbor.storage.s3.endpoint"))]
    pub endpoint: Option<String>,
    /// Region. Defaults to `us-east-1`.
    #[serde(default = "default_region")]
    pub region: String,
    /// Bucket name.
    #[schemars(length(min = 3, max = 63))]
    #[x_kube(validation = crate::crd::schema::matches("spec.harbor.storage.s3.bucket", crate::crd::schema::DNS_SUBDOMAIN, "a bucket name of 3 to 63 lowercase letters, digits, '-' or '.'"))]
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
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HarborExpose {
    /// IngressClass. Defaults to `traefik` (k3s).
    #[serde(default = "default_ingress_class")]
    #[schemars(length(max = crate::crd::schema::MAX_DNS_SUBDOMAIN))]
    #[x_kube(validation = crate::crd::schema::matches("spec.harbor.expose.ingressClassName", crate::crd::schema::DNS_SUBDOMAIN, "an IngressClass name (lowercase letters, digits, '-' and '.')"))]
    pub ingress_class_name: String,
    /// TLS Secret (`tls.crt`, `tls.key`) for `spec.host`. Unset: the operator generates a CA
    /// (`<registry>-harbor-ca-secret`, exported in the ConfigMap `<registry>-harbor-ca` for nodes and
    /// Kyverno) and a serving certificate signed by it, once. Harbor is always served and advertised
    /// at `https://<host>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_DNS_SUBDOMAIN))]
    #[x_kube(validation = crate::crd::schema::matches("spec.harbor.expose.tlsSecretName", crate::crd::schema::DNS_SUBDOMAIN, "a Secret name (lowercase letters, digits, '-' and '.')"))]
    pub tls_secret_name: Option<String>,
    /// Cluster DNS name of the ingress controller's Service that serves `spec.host` inside the
    /// cluster. Pods (the migration Job, Kyverno) resolve `spec.host` to it through a CoreDNS
    /// rewrite the operator writes to `kube-system/coredns-custom` (k3s). Defaults to
    /// `traefik.kube-system.svc.cluster.local` when `ingressClassName` is `traefik`; for other
    /// classes no rewrite is written unless this is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_DNS_SUBDOMAIN))]
    #[x_kube(validation = crate::crd::schema::matches("spec.harbor.expose.ingressService", crate::crd::schema::DNS_SUBDOMAIN, "a DNS name such as traefik.kube-system.svc.cluster.local"))]
    pub ingress_service: Option<String>,
    /// Annotations of the Ingress (harbor-helm's `expose.ingress.annotations`), e.g. for
    /// ingress-nginx `nginx.ingress.kubernetes.io/proxy-body-size: "0"`: its default 1m body limit
    /// refuses image layer pushes. Traefik (k3s) has no body limit and needs none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ingress_annotations: BTreeMap<String, String>,
}

fn default_ingress_class() -> String {
    "traefik".to_string()
}

impl Default for HarborExpose {
    fn default() -> Self {
        Self {
            ingress_class_name: default_ingress_class(),
            tls_secret_name: None,
            ingress_service: None,
            ingress_annotations: BTreeMap::new(),
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
    #[schemars(schema_with = "crate::crd::schema::resources")]
    pub core: Option<ResourceRequirements>,
    /// harbor-portal (default 256Mi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::schema::resources")]
    pub portal: Option<ResourceRequirements>,
    /// harbor-jobservice (default 256Mi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::schema::resources")]
    pub jobservice: Option<ResourceRequirements>,
    /// registry container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::schema::resources")]
    pub registry: Option<ResourceRequirements>,
    /// registryctl container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::schema::resources")]
    pub registryctl: Option<ResourceRequirements>,
    /// Trivy adapter (default 1Gi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::schema::resources")]
    pub trivy: Option<ResourceRequirements>,
    /// Internal Redis (default 256Mi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::schema::resources")]
    pub redis: Option<ResourceRequirements>,
    /// Exporter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::schema::resources")]
    pub exporter: Option<ResourceRequirements>,
}
