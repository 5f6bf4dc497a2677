//! The pure plan of a `RegistryProject`: from its spec and what Harbor holds (project, metadata,
//! quota, robots) and what the operator stored (robot credentials), the minimal list of Harbor writes
//! (none when equal), and the Secrets to write. No client, clock or randomness here: the controller
//! reads, passes `now`, and sends what this returns.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use serde_json::{Value, json};

use super::types::{
    Project, ProjectMetadata, ProjectReq, Quota, Robot, RobotCreate, RobotPermission, metadata_bool,
};
use crate::crd::{NamespacedSecretRef, RegistryProject};
use crate::render::labels::Owner;

/// Annotation on a robot's credentials Secret: Harbor's id of the robot the secret belongs to.
pub const ROBOT_ID: &str = "registry.aisp.dev/robot-id";
/// Annotation on a robot's credentials Secret: when its secret was created or refreshed (RFC 3339).
pub const REFRESHED_AT: &str = "registry.aisp.dev/robot-refreshed-at";
/// Owner kind label value of everything a RegistryProject writes.
pub const OWNER_KIND: &str = "RegistryProject";
/// Key of the robot's name in its credentials Secret.
pub const USERNAME_KEY: &str = "username";
/// Key of the robot's secret in its credentials Secret.
pub const PASSWORD_KEY: &str = "password";

/// The spec breaks a rule the CRD's CEL also states; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PlanError {
    pub field: String,
    pub message: String,
}

/// Which robot account: pull (for `pullSecrets`) or push (for `pushSecret`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RobotRole {
    Pull,
    Push,
}

impl RobotRole {
    /// The name given to Harbor (its full name is `robot$<project>+<short>`).
    pub const fn short(self) -> &'static str {
        match self {
            RobotRole::Pull => "pull",
            RobotRole::Push => "push",
        }
    }

    /// Repository actions granted on the project.
    pub const fn actions(self) -> &'static [&'static str] {
        match self {
            RobotRole::Pull => &["pull"],
            RobotRole::Push => &["pull", "push"],
        }
    }

    /// The full name Harbor gives the robot.
    pub fn full_name(self, project: &str) -> String {
        format!("robot${project}+{}", self.short())
    }
}

/// What the spec asks of Harbor, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub project_name: String,
    pub public: bool,
    pub auto_scan: bool,
    pub require_cosign: bool,
    /// Harbor's severity word when pulls of vulnerable images are prevented.
    pub prevent_severity: Option<&'static str>,
    /// Bytes; `-1` unlimited.
    pub storage_limit: i64,
    pub robots: Vec<RobotRole>,
    /// Seconds between robot secret refreshes.
    pub rotation: Option<i64>,
}

/// A robot's credentials the operator stored (its credentials Secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub robot_id: i64,
    /// Unix seconds of the last create or refresh.
    pub refreshed_at: i64,
}

/// What was read before planning.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub project: Option<Project>,
    pub quota: Option<Quota>,
    pub robots: BTreeMap<RobotRole, Robot>,
    pub stored: BTreeMap<RobotRole, Stored>,
    /// Unix seconds.
    pub now: i64,
}

/// One write to Harbor, in the order they must be sent.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    CreateProject(ProjectReq),
    /// Only the metadata keys that differ.
    UpdateProject(ProjectReq),
    UpdateQuota {
        id: i64,
        storage: i64,
    },
    DeleteRobot {
        role: RobotRole,
        id: i64,
    },
    CreateRobot {
        role: RobotRole,
        body: RobotCreate,
    },
    RefreshRobot {
        role: RobotRole,
        id: i64,
    },
}

/// Checks the spec (as the CRD's CEL does) and states what Harbor should hold.
pub fn desired(project: &RegistryProject) -> Result<Desired, PlanError> {
    let spec = &project.spec;
    let project_name = project.project_name();
    if !is_project_name(&project_name) {
        return Err(PlanError {
            field: if spec.project_name.is_some() {
                "spec.projectName"
            } else {
                "metadata.name"
            }
            .to_string(),
            message: format!(
                "{project_name:?} is not a Harbor project name (lowercase letters and digits, a single '.', '_' or '-' between them)"
            ),
        });
    }
    let storage_limit = match &spec.storage_quota {
        None => -1,
        Some(text) => storage_bytes(text).ok_or_else(|| PlanError {
            field: "spec.storageQuota".to_string(),
            message: format!(
                "{text:?} is not a whole quantity of bytes greater than zero such as 10Gi or 500Mi"
            ),
        })?,
    };
    let rotation = match &spec.robot_secret_rotation {
        None => None,
        Some(text) => Some(rotation_seconds(text).ok_or_else(|| PlanError {
            field: "spec.robotSecretRotation".to_string(),
            message: format!(
                "{text:?} is not a duration such as 720h or 24h30m (hours, minutes, seconds; not 0)"
            ),
        })?),
    };
    let targets = spec.pull_secrets.iter().enumerate();
    let targets = targets.map(|(i, s)| (format!("spec.pullSecrets[{i}]"), s));
    for (path, target) in targets.chain(
        spec.push_secret
            .iter()
            .map(|s| ("spec.pushSecret".to_string(), s)),
    ) {
        check_secret_ref(&path, target)?;
    }
    let mut robots = Vec::new();
    if !spec.pull_secrets.is_empty() {
        robots.push(RobotRole::Pull);
    }
    if spec.push_secret.is_some() {
        robots.push(RobotRole::Push);
    }
    Ok(Desired {
        project_name,
        public: spec.public,
        auto_scan: spec.auto_scan,
        require_cosign: spec.require_cosign,
        prevent_severity: spec
            .prevent_vulnerable
            .as_ref()
            .map(|p| p.severity.harbor()),
        storage_limit,
        robots,
        rotation,
    })
}

/// A Secret reference's namespace and name, as the CRD's CEL checks them.
fn check_secret_ref(path: &str, target: &NamespacedSecretRef) -> Result<(), PlanError> {
    if !crate::validate::is_dns_label(&target.namespace) {
        return Err(PlanError {
            field: format!("{path}.namespace"),
            message: format!(
                "must be a namespace name (lowercase letters, digits and '-'), not {:?}",
                target.namespace
            ),
        });
    }
    if !crate::validate::is_dns_subdomain(&target.name) {
        return Err(PlanError {
            field: format!("{path}.name"),
            message: format!(
                "must be a Secret name (lowercase letters, digits, '-' and '.'), not {:?}",
                target.name
            ),
        });
    }
    Ok(())
}

/// Harbor's project name rule (`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`, at most 255 characters).
pub fn is_project_name(name: &str) -> bool {
    name.len() <= 255
        && name.split(['.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// `24h30m` → seconds, as `crd::ROTATION` admits it (numbers with `h`, `m` or `s`), above zero.
pub fn rotation_seconds(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        let value: i64 = std::mem::take(&mut number).parse().ok()?;
        total = total.checked_add(value.checked_mul(unit)?)?;
    }
    (number.is_empty() && total > 0).then_some(total)
}

/// `10Gi` → bytes, as `crd::STORAGE_QUOTA` admits them (a positive integer and an optional unit).
pub fn storage_bytes(text: &str) -> Option<i64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() || number.starts_with('0') || number.len() > 18 {
        return None;
    }
    let factor: i64 = match unit {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        _ => return None,
    };
    number.parse::<i64>().ok()?.checked_mul(factor)
}

/// The project metadata the spec asks for, complete.
fn metadata(desired: &Desired) -> ProjectMetadata {
    ProjectMetadata {
        public: Some(metadata_bool(desired.public)),
        enable_content_trust_cosign: Some(metadata_bool(desired.require_cosign)),
        prevent_vul: Some(metadata_bool(desired.prevent_severity.is_some())),
        severity: desired.prevent_severity.map(str::to_string),
        auto_scan: Some(metadata_bool(desired.auto_scan)),
        retention_id: None,
    }
}

/// The metadata keys whose value in Harbor differs from `want` (a missing boolean reads `false`);
/// `None` when none does.
fn metadata_diff(
    current: Option<&ProjectMetadata>,
    want: &ProjectMetadata,
) -> Option<ProjectMetadata> {
    let empty = ProjectMetadata::default();
    let current = current.unwrap_or(&empty);
    let boolean = |value: &Option<String>| value.as_deref().unwrap_or("false").to_string();
    let differs = |have: &Option<String>, want: &Option<String>| {
        want.as_ref()
            .is_some_and(|_| boolean(have) != boolean(want))
    };
    let mut diff = ProjectMetadata::default();
    if differs(&current.public, &want.public) {
        diff.public = want.public.clone();
    }
    if differs(
        &current.enable_content_trust_cosign,
        &want.enable_content_trust_cosign,
    ) {
        diff.enable_content_trust_cosign = want.enable_content_trust_cosign.clone();
    }
    if differs(&current.prevent_vul, &want.prevent_vul) {
        diff.prevent_vul = want.prevent_vul.clone();
    }
    if differs(&current.auto_scan, &want.auto_scan) {
        diff.auto_scan = want.auto_scan.clone();
    }
    if want.severity.is_some() && current.severity != want.severity {
        diff.severity = want.severity.clone();
    }
    (diff != empty).then_some(diff)
}

/// The robot body for `role` on `project`: never expires, repository actions of the role.
pub fn robot_body(role: RobotRole, project: &str, owner: &str) -> RobotCreate {
    RobotCreate {
        name: role.short().to_string(),
        description: Some(format!(
            "registry-operator: {} secrets of RegistryProject {owner}",
            role.short()
        )),
        level: "project".to_string(),
        disable: Some(false),
        duration: -1,
        permissions: vec![RobotPermission::repository(project, role.actions())],
    }
}

/// Whether a robot found in Harbor is usable as `role` on `project`: enabled, not expired, exactly
/// the role's repository actions on that project.
fn robot_as_wanted(robot: &Robot, role: RobotRole, project: &str, now: i64) -> bool {
    let wanted: BTreeSet<&str> = role.actions().iter().copied().collect();
    let expired = robot.expires_at.is_some_and(|t| t > 0 && t <= now);
    let permissions_match = matches!(robot.permissions.as_slice(), [permission]
        if permission.kind == "project"
            && permission.namespace == project
            && permission.access.iter().all(|a| a.resource == "repository")
            && permission.access.iter().map(|a| a.action.as_str()).collect::<BTreeSet<_>>() == wanted);
    !robot.disable && !expired && permissions_match
}

/// The writes that bring Harbor to `desired`, in order; empty when Harbor already matches.
pub fn plan(desired: &Desired, observed: &Observed, owner: &str) -> Vec<Write> {
    let mut writes = Vec::new();
    let want = metadata(desired);
    match &observed.project {
        None => writes.push(Write::CreateProject(ProjectReq {
            project_name: Some(desired.project_name.clone()),
            public: None,
            metadata: Some(want),
            storage_limit: Some(desired.storage_limit),
            registry_id: None,
        })),
        Some(project) => {
            if let Some(diff) = metadata_diff(project.metadata.as_ref(), &want) {
                writes.push(Write::UpdateProject(ProjectReq {
                    metadata: Some(diff),
                    ..ProjectReq::default()
                }));
            }
            if let Some(quota) = &observed.quota
                && quota.storage() != desired.storage_limit
            {
                writes.push(Write::UpdateQuota {
                    id: quota.id,
                    storage: desired.storage_limit,
                });
            }
        }
    }
    for role in [RobotRole::Pull, RobotRole::Push] {
        let found = observed.robots.get(&role);
        if !desired.robots.contains(&role) {
            if let Some(robot) = found {
                writes.push(Write::DeleteRobot { role, id: robot.id });
            }
            continue;
        }
        let create = Write::CreateRobot {
            role,
            body: robot_body(role, &desired.project_name, owner),
        };
        match found {
            None => writes.push(create),
            Some(robot) if !robot_as_wanted(robot, role, &desired.project_name, observed.now) => {
                writes.push(Write::DeleteRobot { role, id: robot.id });
                writes.push(create);
            }
            Some(robot) => {
                let stored = observed
                    .stored
                    .get(&role)
                    .filter(|s| s.robot_id == robot.id);
                let due = stored.is_none_or(|s| {
                    desired
                        .rotation
                        .is_some_and(|every| observed.now.saturating_sub(s.refreshed_at) >= every)
                });
                if due {
                    writes.push(Write::RefreshRobot { role, id: robot.id });
                }
            }
        }
    }
    writes
}

/// Labels of everything a RegistryProject writes (selected by its owner labels, like other children).
pub fn owner(project: &RegistryProject) -> Owner<'_> {
    Owner {
        kind: OWNER_KIND,
        name: project.metadata.name.as_deref().unwrap_or_default(),
        namespace: project.metadata.namespace.as_deref(),
    }
}

/// Name of the Secret (in the RegistryProject's namespace) holding a robot's credentials.
pub fn credentials_secret_name(project: &RegistryProject, role: RobotRole) -> String {
    format!("{}-harbor-{}", project.name_any(), role.short())
}

/// A robot's credentials Secret: Opaque, `username` and `password`, annotated with the robot's id and
/// when its secret was made; owned by the RegistryProject (same namespace).
pub fn credentials_secret(
    project: &RegistryProject,
    role: RobotRole,
    username: &str,
    secret: &str,
    robot_id: i64,
    refreshed_at: &str,
) -> KubeSecret {
    let data = [
        (
            USERNAME_KEY.to_string(),
            ByteString(username.as_bytes().to_vec()),
        ),
        (
            PASSWORD_KEY.to_string(),
            ByteString(secret.as_bytes().to_vec()),
        ),
    ];
    KubeSecret {
        metadata: ObjectMeta {
            name: Some(credentials_secret_name(project, role)),
            namespace: project.namespace(),
            labels: Some(owner(project).labels("harbor-project", "robot-credentials")),
            annotations: Some(
                [
                    (ROBOT_ID.to_string(), robot_id.to_string()),
                    (REFRESHED_AT.to_string(), refreshed_at.to_string()),
                ]
                .into_iter()
                .collect(),
            ),
            owner_references: crate::render::owner_reference(project).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_string()),
        data: Some(data.into_iter().collect()),
        ..KubeSecret::default()
    }
}

/// The `.dockerconfigjson` of `username`/`secret` at `host`.
pub fn docker_config_json(host: &str, username: &str, secret: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{secret}"));
    json!({"auths": {host: {"username": username, "password": secret, "auth": auth}}}).to_string()
}

/// A pull (or push) Secret in another namespace: `kubernetes.io/dockerconfigjson`, labelled with the
/// owner labels, no owner reference (it cannot cross namespaces; the finalizer deletes it).
pub fn docker_secret(
    project: &RegistryProject,
    target: &NamespacedSecretRef,
    host: &str,
    username: &str,
    secret: &str,
) -> KubeSecret {
    let config = docker_config_json(host, username, secret);
    KubeSecret {
        metadata: ObjectMeta {
            name: Some(target.name.clone()),
            namespace: Some(target.namespace.clone()),
            labels: Some(owner(project).labels("harbor-project", "pull-secret")),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".to_string()),
        data: Some(
            [(
                ".dockerconfigjson".to_string(),
                ByteString(config.into_bytes()),
            )]
            .into_iter()
            .collect(),
        ),
        ..KubeSecret::default()
    }
}

/// Whether a live Secret (as a JSON object) already is `desired`: same type and data, and every
/// label and annotation `desired` sets.
pub fn secret_matches(live: &Value, desired: &KubeSecret) -> bool {
    let want = serde_json::to_value(desired).unwrap_or_default();
    let subset = |key: &str| {
        want["metadata"][key]
            .as_object()
            .into_iter()
            .flatten()
            .all(|(k, v)| live["metadata"][key][k] == *v)
    };
    live["type"] == want["type"]
        && live["data"] == want["data"]
        && subset("labels")
        && subset("annotations")
}

/// The stored credentials of a credentials Secret (as a JSON object): robot id, refresh time (Unix
/// seconds), username and secret; `None` when incomplete.
pub fn stored_credentials(live: &Value) -> Option<(Stored, String, String)> {
    let annotation = |key: &str| live["metadata"]["annotations"][key].as_str();
    let robot_id = annotation(ROBOT_ID)?.parse().ok()?;
    let refreshed_at = annotation(REFRESHED_AT)?
        .parse::<k8s_openapi::jiff::Timestamp>()
        .ok()?
        .as_second();
    let value = |key: &str| {
        let text = live["data"][key].as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        String::from_utf8(bytes).ok()
    };
    Some((
        Stored {
            robot_id,
            refreshed_at,
        },
        value(USERNAME_KEY)?,
        value(PASSWORD_KEY)?,
    ))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
