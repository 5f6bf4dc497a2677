//! Request and response bodies of the Harbor endpoints the client uses. Each struct names its swagger
//! definition; only the fields we use are modelled (unknown response fields are ignored, request fields
//! left `None` are not sent). Harbor's JSON is snake_case throughout.

use serde::{Deserialize, Serialize};

/// A secret string (a password, a robot secret): serialized as itself, but `Debug` prints `<redacted>`
/// and there is no `Display`, so it cannot end up in a log line or an error by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value, for the one place that must send or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

/// Swagger `ProjectReq`: the body of `createProject` and `updateProject`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ProjectReq {
    /// Required on create; ignored by Harbor on update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ProjectMetadata>,
    /// Bytes; `-1` for unlimited. Only read on create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_limit: Option<i64>,
    /// The registry endpoint (see [`Registry`]) this project caches: set only for proxy-cache projects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<i64>,
}

/// Swagger `ProjectMetadata`. Harbor keeps these as strings: booleans are `"true"` / `"false"`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ProjectMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public: Option<String>,
    /// Cosign signatures required to pull.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_content_trust_cosign: Option<String>,
    /// Prevent pulls of images with vulnerabilities at or above [`ProjectMetadata::severity`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prevent_vul: Option<String>,
    /// `none`, `low`, `medium`, `high`, `critical`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Scan images on push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_scan: Option<String>,
    /// The id of the project's tag retention policy (set by Harbor on `createRetention`; never sent).
    #[serde(default, skip_serializing)]
    pub retention_id: Option<String>,
}

/// Harbor's string form of a metadata boolean.
pub fn metadata_bool(value: bool) -> String {
    if value { "true" } else { "false" }.to_string()
}

/// Swagger `Project` (an item of `listProjects`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Project {
    pub project_id: i64,
    pub name: String,
    /// Non-zero for a proxy-cache project.
    #[serde(default)]
    pub registry_id: Option<i64>,
    #[serde(default)]
    pub repo_count: Option<i64>,
    #[serde(default)]
    pub metadata: Option<ProjectMetadata>,
}

/// Swagger `ProjectSummary` (`getProjectSummary`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ProjectSummary {
    #[serde(default)]
    pub repo_count: i64,
}

/// Swagger `Configurations`: the body of `updateConfigurations` (only what the operator changes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Configurations {
    /// Harbor refuses pushes, deletions and GC while `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// Swagger `ConfigurationsResponse` (`getConfigurations`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ConfigurationsResponse {
    #[serde(default)]
    pub read_only: Option<BoolConfigItem>,
}

/// Swagger `BoolConfigItem`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct BoolConfigItem {
    #[serde(default)]
    pub value: bool,
    #[serde(default)]
    pub editable: bool,
}

/// Swagger `Schedule`: the body of `createGCSchedule` / `updateGCSchedule`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Schedule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleObj>,
    /// GC parameters, e.g. `delete_untagged` (bool), `workers` (1–5), `dry_run` (bool).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Swagger `ScheduleObj`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ScheduleObj {
    /// `Hourly`, `Daily`, `Weekly`, `Custom` (with `cron`), `Manual`, `None`, `Schedule`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Six fields, seconds first (`0 0 3 * * *`), for `Custom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Set by Harbor in responses; never sent.
    #[serde(default, skip_serializing)]
    pub next_scheduled_time: Option<String>,
}

/// Swagger `GCHistory`: what `getGCSchedule` answers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct GcHistory {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub schedule: Option<ScheduleObj>,
    /// The parameters as a JSON string (Harbor's representation).
    #[serde(default)]
    pub job_parameters: Option<String>,
}

/// Swagger `RobotCreate`: the body of `CreateRobot`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct RobotCreate {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `project` or `system`.
    pub level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable: Option<bool>,
    /// Days; `-1` never expires.
    pub duration: i64,
    pub permissions: Vec<RobotPermission>,
}

/// Swagger `RobotPermission`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct RobotPermission {
    /// `project` (or `system`).
    pub kind: String,
    /// The project name (`*` for all projects).
    pub namespace: String,
    pub access: Vec<Access>,
}

/// Swagger `Access`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Access {
    /// e.g. `repository`.
    pub resource: String,
    /// e.g. `pull`, `push`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
}

impl RobotPermission {
    /// Repository permissions on one project: `actions` such as `["pull"]` or `["pull", "push"]`.
    pub fn repository(project: &str, actions: &[&str]) -> Self {
        RobotPermission {
            kind: "project".to_string(),
            namespace: project.to_string(),
            access: actions
                .iter()
                .map(|action| Access {
                    resource: "repository".to_string(),
                    action: (*action).to_string(),
                    effect: None,
                })
                .collect(),
        }
    }
}

/// Swagger `RobotCreated`: `CreateRobot`'s answer, the only time Harbor reveals the secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct RobotCreated {
    pub id: i64,
    /// The full name to log in with, e.g. `robot$team-a+pull`.
    pub name: String,
    pub secret: Secret,
    /// Unix seconds; `-1` never.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// Swagger `Robot` (an item of `ListRobot`; Harbor never lists secrets).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Robot {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub disable: bool,
    #[serde(default)]
    pub duration: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub permissions: Vec<RobotPermission>,
}

/// Swagger `RobotSec`: the body and the answer of `RefreshSec`. Sent empty, Harbor generates the new
/// secret and answers it; the only other time Harbor reveals a robot secret is `CreateRobot`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct RobotSec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
}

/// Swagger `Quota` (an item of `listQuotas`): a project's hard limits, `storage` in bytes (`-1`
/// unlimited).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Quota {
    pub id: i64,
    #[serde(default)]
    pub hard: std::collections::BTreeMap<String, i64>,
}

impl Quota {
    /// The storage limit in bytes; `-1` when unlimited or not set.
    pub fn storage(&self) -> i64 {
        self.hard.get("storage").copied().unwrap_or(-1)
    }
}

/// Swagger `QuotaUpdateReq`: the body of `updateQuota`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct QuotaUpdateReq {
    pub hard: std::collections::BTreeMap<String, i64>,
}

/// Swagger `Registry`: a registry endpoint (the upstream of a proxy-cache project). The body of
/// `createRegistry` and an item of `listRegistries`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Registry {
    /// Set by Harbor; never sent.
    #[serde(default, skip_serializing)]
    pub id: Option<i64>,
    pub name: String,
    pub url: String,
    /// Harbor's adapter: `docker-hub`, `github-ghcr`, `quay`, `harbor`, `docker-registry`, …
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<RegistryCredential>,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Swagger `RegistryUpdate`: the body of `updateRegistry` (only what is sent is changed; the type
/// of an endpoint cannot change).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct RegistryUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_secret: Option<Secret>,
}

/// Swagger `RegistryCredential`. Harbor answers `access_secret` masked (`*****`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct RegistryCredential {
    /// `basic`.
    #[serde(rename = "type")]
    pub kind: String,
    pub access_key: String,
    pub access_secret: Secret,
}

/// Swagger `ImmutableSelector` and `RetentionSelector` (the same fields): a doublestar pattern.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Selector {
    /// `doublestar`.
    #[serde(default)]
    pub kind: String,
    /// `matches` / `excludes` for tags, `repoMatches` / `repoExcludes` for repositories.
    #[serde(default)]
    pub decoration: String,
    #[serde(default)]
    pub pattern: String,
    /// A JSON string, e.g. `{"untagged":false}` on a retention tag selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extras: Option<String>,
}

/// Swagger `ImmutableRule`: the body of `CreateImmuRule` / `UpdateImmuRule`, an item of
/// `ListImmuRules`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ImmutableRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(default)]
    pub disabled: bool,
    /// `immutable`.
    #[serde(default)]
    pub action: String,
    /// `immutable_template`.
    #[serde(default)]
    pub template: String,
    #[serde(default)]
    pub tag_selectors: Vec<Selector>,
    /// `repository` → its selectors.
    #[serde(default)]
    pub scope_selectors: std::collections::BTreeMap<String, Vec<Selector>>,
}

/// Swagger `RetentionPolicy`: the body of `createRetention` / `updateRetention`, the answer of
/// `getRetention`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct RetentionPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// `or`: an artifact any rule retains is kept.
    #[serde(default)]
    pub algorithm: String,
    #[serde(default)]
    pub rules: Vec<RetentionRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<RetentionRuleTrigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<RetentionPolicyScope>,
}

/// Swagger `RetentionRule`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct RetentionRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(default)]
    pub disabled: bool,
    /// `retain`.
    #[serde(default)]
    pub action: String,
    /// `latestPushedK` or `nDaysSinceLastPush` (the ones the operator uses).
    #[serde(default)]
    pub template: String,
    /// The template's number, keyed by the template's name.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub tag_selectors: Vec<Selector>,
    #[serde(default)]
    pub scope_selectors: std::collections::BTreeMap<String, Vec<Selector>>,
}

/// Swagger `RetentionRuleTrigger`: `Schedule` with `settings.cron`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct RetentionRuleTrigger {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Harbor's own bookkeeping (the schedule's job); never sent.
    #[serde(default, skip_serializing)]
    pub references: Option<serde_json::Value>,
}

/// Swagger `RetentionPolicyScope`: `project` and the project's id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct RetentionPolicyScope {
    pub level: String,
    #[serde(rename = "ref")]
    pub reference: i64,
}

/// Swagger `OverallHealthStatus` (`getHealth`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct OverallHealthStatus {
    /// `healthy` or `unhealthy`.
    pub status: String,
    #[serde(default)]
    pub components: Vec<ComponentHealthStatus>,
}

/// Swagger `ComponentHealthStatus`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ComponentHealthStatus {
    pub name: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Swagger `Errors` / `Error`: the body of every error Harbor answers.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct Errors {
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ErrorItem {
    #[serde(default)]
    pub message: String,
}
