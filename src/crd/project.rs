//! The namespaced `RegistryProject` kind: a Harbor project (visibility, quota, scanning, cosign, tag
//! rules, proxy cache) with robot pull secrets copied into namespaces. Pure data, schema and CEL;
//! this module must not import `render` or `reconcile` (the plan is `render::project`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CredentialsSecretRef, Retention};

/// Harbor's project name rule (`src/common/utils`: lowercase letters and digits, single `.`, `_` or
/// `-` between them).
pub const HARBOR_PROJECT_NAME: &str = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$";
/// Longest Harbor project name.
pub const MAX_HARBOR_PROJECT_NAME: usize = 255;
/// A positive integer quantity of bytes: `10Gi`, `500Mi`, `1T`, `1073741824` (Harbor counts bytes).
pub const STORAGE_QUOTA: &str = r"^[1-9][0-9]{0,17}(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$";
/// A Go-style duration of hours, minutes and seconds, not zero: `720h`, `24h30m`.
pub const ROTATION: &str = r"^([0-9]+(h|m|s))+$";
/// A six-field cron (seconds first), as Harbor's schedules take it.
pub const CRON6: &str = r"^\S+( \S+){5}$";
/// Longest repository or tag pattern of an immutability or retention rule.
pub const MAX_PATTERN: usize = 256;

/// A Harbor project on a Harbor-mode Registry, reconciled through Harbor's API: settings, quota,
/// robot accounts whose credentials become `kubernetes.io/dockerconfigjson` Secrets in the listed
/// namespaces.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "registry.aisp.dev",
    version = "v1alpha1",
    kind = "RegistryProject",
    plural = "registryprojects",
    shortname = "aisproj",
    category = "aisp",
    namespaced,
    status = "RegistryProjectStatus",
    printcolumn = r#"{"name":"Project","type":"string","jsonPath":".status.projectName"}"#,
    printcolumn = r#"{"name":"Registry","type":"string","jsonPath":".spec.registryRef.name"}"#,
    printcolumn = r#"{"name":"ID","type":"integer","jsonPath":".status.projectId"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("size(self.metadata.name) <= 63").message("metadata.name: must be at most 63 characters: it is the owner label's value on the pull Secrets"),
    validation = Rule::new("has(self.spec.projectName) || self.metadata.name.matches('^[a-z0-9]+(?:[._-][a-z0-9]+)*$')").message("metadata.name: is not a Harbor project name (lowercase letters and digits, a single '.', '_' or '-' between them); set spec.projectName")
)]
#[x_kube(validation = Rule::new("!has(self.proxyCache) || !has(self.pushSecret)").message("spec.pushSecret: a proxy-cache project takes no pushes"))]
#[serde(rename_all = "camelCase")]
pub struct RegistryProjectSpec {
    /// The Harbor-mode Registry whose Harbor holds the project.
    pub registry_ref: ProjectRegistryRef,
    /// Name of the Harbor project; defaults to `metadata.name`. Harbor's rule: lowercase letters and
    /// digits, a single `.`, `_` or `-` between them, at most 255 characters. Changing it creates a
    /// new project (the old one is left as it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_HARBOR_PROJECT_NAME))]
    #[x_kube(validation = crate::crd::schema::matches("spec.projectName", HARBOR_PROJECT_NAME, "a Harbor project name (lowercase letters and digits, a single '.', '_' or '-' between them)"))]
    pub project_name: Option<String>,
    /// Anyone may pull without credentials (Harbor's `public`). Default `false`.
    #[serde(default)]
    pub public: bool,
    /// Storage quota in bytes as a quantity, e.g. `10Gi` (binary Ki..Pi or decimal k..P units).
    /// Unset: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::crd::schema::MAX_QUANTITY))]
    #[x_kube(validation = crate::crd::schema::matches("spec.storageQuota", STORAGE_QUOTA, "a whole quantity of bytes greater than zero such as 10Gi or 500Mi (units Ki, Mi, Gi, Ti, Pi, k, M, G, T, P)"))]
    pub storage_quota: Option<String>,
    /// Scan every image on push (Harbor's `auto_scan`, needs Trivy). Default `false`.
    #[serde(default)]
    pub auto_scan: bool,
    /// Refuse pulls of images with vulnerabilities at or above a severity (Harbor's `prevent_vul`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prevent_vulnerable: Option<PreventVulnerable>,
    /// Only cosign-signed images may be pulled (Harbor's `enable_content_trust_cosign`).
    #[serde(default)]
    pub require_cosign: bool,
    /// Tag immutability rules: matching tags can be neither overwritten nor deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 15))]
    pub immutability: Vec<ImmutabilityRule>,
    /// Tag retention: what Harbor keeps on its schedule (everything else is deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_retention: Option<TagRetention>,
    /// Make the project a pull-through cache of an upstream registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_cache: Option<ProxyCache>,
    /// Secrets of type `kubernetes.io/dockerconfigjson` to write, one per entry, with the credentials
    /// of the project's pull robot (`robot$<project>+pull`, pull permission only). An entry removed
    /// removes its Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::crd::schema::MAX_LIST))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["namespace", "name"]))]
    pub pull_secrets: Vec<NamespacedSecretRef>,
    /// Refresh the robot secrets this often, e.g. `720h` (hours, minutes, seconds); every copy is
    /// updated. Unset: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = crate::crd::schema::matches("spec.robotSecretRotation", ROTATION, "a duration such as 720h or 24h30m (hours, minutes, seconds; not 0)"))]
    #[x_kube(validation = Rule::new("!self.matches('^(0+(h|m|s))+$')").message("spec.robotSecretRotation: must be longer than 0"))]
    pub robot_secret_rotation: Option<String>,
    /// A Secret with the credentials of a push robot (`robot$<project>+push`, pull and push), for CI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_secret: Option<NamespacedSecretRef>,
    /// What deleting this resource does to the Harbor project: `Retain` (default) deletes it only when
    /// it holds no repository; `Delete` deletes it (Harbor refuses while repositories remain).
    #[serde(default)]
    pub retention: Retention,
}

/// The Registry a project lives in.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectRegistryRef {
    /// Name of the Registry.
    #[schemars(length(min = 1, max = crate::crd::schema::MAX_DNS_SUBDOMAIN))]
    #[x_kube(validation = crate::crd::schema::matches("spec.registryRef.name", crate::crd::schema::DNS_SUBDOMAIN, "a Registry name (lowercase letters, digits, '-' and '.')"))]
    pub name: String,
    /// Namespace of the Registry; defaults to the RegistryProject's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = crate::crd::schema::MAX_DNS_LABEL))]
    #[x_kube(validation = crate::crd::schema::matches("spec.registryRef.namespace", crate::crd::schema::DNS_LABEL, "a namespace name (lowercase letters, digits and '-')"))]
    pub namespace: Option<String>,
}

/// A Secret in a namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedSecretRef {
    /// Namespace of the Secret.
    #[schemars(length(min = 1, max = crate::crd::schema::MAX_DNS_LABEL))]
    #[x_kube(validation = crate::crd::schema::matches("namespace", crate::crd::schema::DNS_LABEL, "a namespace name (lowercase letters, digits and '-')"))]
    pub namespace: String,
    /// Name of the Secret.
    #[schemars(length(min = 1, max = crate::crd::schema::MAX_DNS_SUBDOMAIN))]
    #[x_kube(validation = crate::crd::schema::matches("name", crate::crd::schema::DNS_SUBDOMAIN, "a Secret name (lowercase letters, digits, '-' and '.')"))]
    pub name: String,
}

/// Refuse pulls of vulnerable images.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreventVulnerable {
    /// Lowest severity that blocks a pull.
    pub severity: VulnerabilitySeverity,
}

/// A vulnerability severity as Harbor ranks them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum VulnerabilitySeverity {
    /// Low and above.
    Low,
    /// Medium and above.
    Medium,
    /// High and above.
    High,
    /// Critical only.
    Critical,
}

impl VulnerabilitySeverity {
    /// Harbor's word (project metadata `severity`).
    pub const fn harbor(self) -> &'static str {
        match self {
            VulnerabilitySeverity::Low => "low",
            VulnerabilitySeverity::Medium => "medium",
            VulnerabilitySeverity::High => "high",
            VulnerabilitySeverity::Critical => "critical",
        }
    }
}

/// Tags matching both patterns (Harbor's doublestar patterns, e.g. `**`, `release-*`, `{a,b}`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImmutabilityRule {
    /// Repository pattern, e.g. `**` or `team-a/**`.
    #[schemars(length(min = 1, max = MAX_PATTERN))]
    pub repositories: String,
    /// Tag pattern, e.g. `v*`.
    #[schemars(length(min = 1, max = MAX_PATTERN))]
    pub tags: String,
}

/// Harbor's tag retention policy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagRetention {
    /// When Harbor runs it: six-field cron, seconds first, e.g. `0 0 2 * * *`.
    #[schemars(length(max = 128))]
    #[x_kube(validation = crate::crd::schema::matches("spec.tagRetention.schedule", CRON6, "a six-field cron, seconds first, such as 0 0 2 * * *"))]
    pub schedule: String,
    /// Rules; an artifact matching any rule is kept.
    #[schemars(length(min = 1, max = 15))]
    pub rules: Vec<RetentionRule>,
}

/// One retention rule: in matching repositories, keep matching tags by count or age.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.keepLast) != has(self.pushedWithinDays)").message("spec.tagRetention.rules: set exactly one of keepLast or pushedWithinDays"))]
pub struct RetentionRule {
    /// Repository pattern, e.g. `**`.
    #[schemars(length(min = 1, max = MAX_PATTERN))]
    pub repositories: String,
    /// Tag pattern, e.g. `**`.
    #[schemars(length(min = 1, max = MAX_PATTERN))]
    pub tags: String,
    /// Keep the N most recently pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub keep_last: Option<u32>,
    /// Keep those pushed within the last D days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36500))]
    pub pushed_within_days: Option<u32>,
}

/// A pull-through cache of an upstream registry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyCache {
    /// The upstream's URL, e.g. `https://registry-1.docker.io`.
    #[schemars(length(max = crate::crd::schema::MAX_URL))]
    #[x_kube(validation = crate::crd::schema::http_url("spec.proxyCache.endpoint"))]
    pub endpoint: String,
    /// Harbor's adapter for the upstream.
    pub provider: ProxyProvider,
    /// Secret (in the RegistryProject's namespace) with the upstream's username and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
}

/// Harbor's registry adapters a proxy cache may use (its adapter type names).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ProxyProvider {
    /// Docker Hub.
    #[serde(rename = "docker-hub")]
    DockerHub,
    /// GitHub's container registry.
    #[serde(rename = "github-ghcr")]
    GithubGhcr,
    /// Quay (Harbor 2.14 dropped it from the proxy-cache providers).
    #[serde(rename = "quay")]
    Quay,
    /// Another Harbor.
    #[serde(rename = "harbor")]
    Harbor,
    /// Any registry speaking the distribution API.
    #[serde(rename = "docker-registry")]
    DockerRegistry,
}

impl ProxyProvider {
    /// Harbor's adapter type name.
    pub const fn harbor(self) -> &'static str {
        match self {
            ProxyProvider::DockerHub => "docker-hub",
            ProxyProvider::GithubGhcr => "github-ghcr",
            ProxyProvider::Quay => "quay",
            ProxyProvider::Harbor => "harbor",
            ProxyProvider::DockerRegistry => "docker-registry",
        }
    }
}

/// What the operator last saw of the project.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryProjectStatus {
    /// Ready, Progressing and Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The Harbor project's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    /// Harbor's id of the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<i64>,
    /// When the robot secrets were last created or refreshed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robot_secret_refreshed_at: Option<String>,
}

impl RegistryProject {
    /// The Harbor project's name: `spec.projectName`, else `metadata.name`.
    pub fn project_name(&self) -> String {
        self.spec
            .project_name
            .clone()
            .or_else(|| self.metadata.name.clone())
            .unwrap_or_default()
    }
}
