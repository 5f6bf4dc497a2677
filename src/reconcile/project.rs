//! The RegistryProject controller. A pass is: read (the Registry from the watch cache, Harbor's
//! project, quota and robots as admin, the stored robot credentials) → plan (pure,
//! `harbor::plan`) → send the planned Harbor writes → the tag policies (`policies`) → write the
//! robot Secrets (`secrets`: create or update; copies whose entry went are deleted) → one status
//! write. The finalizer (`cleanup`) deletes the robots, the Secrets, and the project when it is
//! empty or `retention: Delete` (then a proxy cache's registry endpoint). Besides its own changes, a
//! pass is triggered by a change of a proxy cache's credentials Secret (`credential_watch`) and
//! every resync. It must never log a secret or put one in a status or an Event;
//! decisions about Harbor's state live in `harbor::plan`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use super::context::Context;
use super::status::DesiredCondition;
use super::status_write::{self, ConditionedStatus};
use crate::crd::{
    Reason, Registry, RegistryMode, RegistryProject, RegistryProjectStatus, condition,
};
use crate::harbor::plan::{self, Observed, RobotRole, Write};
use crate::harbor::{HarborError, Secret};
use crate::reconcile::registry::harbor_api::admin_client as harbor_client;

mod cleanup;
pub(crate) mod credential_watch;
mod policies;
mod proxy;
mod secrets;

use cleanup::cleanup;
use secrets::{cached_secret, write_secrets};

/// Finalizer that removes the robots, the Secrets and (when empty or `retention: Delete`) the project.
pub(crate) const FINALIZER: &str = "registry.aisp.dev/harbor-project";
const CONTROLLER: &str = "registry-project";
/// Longest wait for the first list of the Registry and Secret caches.
const CACHE_SYNC_WAIT: Duration = Duration::from_secs(30);

/// What the RegistryProject controller shares between reconciles.
pub(crate) struct ProjectContext {
    /// Client, Secret cache, settings, metrics, events, backoff.
    pub(crate) base: Arc<Context>,
    /// The Registry controller's cache of Registries (read only).
    pub(crate) registries: Store<DeserializeGuard<Registry>>,
}

/// Why a pass failed; each is retried with backoff. Messages carry no secret.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProjectError {
    /// Harbor did not answer or refused (the status says which).
    #[error("Harbor: {0}")]
    Harbor(String),
    /// Writing, reading or deleting a Secret failed.
    #[error("{0}")]
    Secret(String),
    /// Writing the status failed.
    #[error("writing status: {0}")]
    Status(#[from] kube::Error),
    /// Adding or removing the finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// The watch caches have not completed their first list.
    #[error("watch caches not synced after {0:?}")]
    CachesNotSynced(Duration),
}

impl ProjectError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Harbor(_) => "HarborFailed",
            Self::Secret(_) => "SecretFailed",
            Self::Status(_) => "StatusFailed",
            Self::Finalizer(_) => "FinalizerFailed",
            Self::CachesNotSynced(_) => "CachesNotSynced",
        }
    }
}

status_write::conditioned_status!(RegistryProjectStatus);

fn project_id(project: &RegistryProject) -> String {
    format!(
        "RegistryProject/{}/{}",
        project.namespace().unwrap_or_default(),
        project.name_any()
    )
}

/// Reconcile again only on spec, deletion or finalizer changes (status writes are ignored).
pub(crate) fn predicate(project: &DeserializeGuard<RegistryProject>) -> Option<u64> {
    let meta = project.meta();
    super::context::predicate_hash((
        meta.generation,
        meta.deletion_timestamp.is_some(),
        &meta.finalizers,
        &meta.uid,
    ))
}

/// Controller entry point: skips objects that do not deserialize (logged), reconciles the rest.
pub(crate) async fn reconcile_guarded(
    guard: Arc<DeserializeGuard<RegistryProject>>,
    ctx: Arc<ProjectContext>,
) -> Result<Action, ProjectError> {
    let project = match &guard.0 {
        Ok(project) => Arc::new(project.clone()),
        Err(invalid) => {
            warn!(name = ?invalid.metadata.name, namespace = ?invalid.metadata.namespace, error = %invalid.error, "RegistryProject does not deserialize; skipped until it changes");
            return Ok(Action::await_change());
        }
    };
    let started = Instant::now();
    tokio::time::timeout(CACHE_SYNC_WAIT, async {
        let _ = ctx.registries.wait_until_ready().await;
        ctx.base.stores.wait_until_ready().await;
    })
    .await
    .map_err(|_| ProjectError::CachesNotSynced(CACHE_SYNC_WAIT))?;
    let api: Api<RegistryProject> = Api::namespaced(
        ctx.base.client.clone(),
        &project.namespace().unwrap_or_default(),
    );
    let result = finalizer(&api, FINALIZER, project.clone(), |event| async {
        match event {
            Finalizer::Apply(project) => pass(&project, &ctx).await,
            Finalizer::Cleanup(project) => cleanup(&project, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => ProjectError::Finalizer(other.to_string()),
    });
    ctx.base
        .metrics
        .reconciled(CONTROLLER, started.elapsed().as_secs_f64());
    if result.is_ok() {
        ctx.base.reset_backoff(&project_id(&project));
    }
    result
}

/// Failures back off per object (doubling, reset on success); counted and logged.
pub(crate) fn error_policy_guarded(
    guard: Arc<DeserializeGuard<RegistryProject>>,
    error: &ProjectError,
    ctx: Arc<ProjectContext>,
) -> Action {
    ctx.base.metrics.failed(CONTROLLER, error.reason());
    let id = format!(
        "RegistryProject/{}/{}",
        guard.namespace().unwrap_or_default(),
        guard.name_any()
    );
    let delay = ctx.base.next_backoff(&id);
    warn!(registry_project = %id, reason = error.reason(), error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// The Registry `spec.registryRef` names, from the Registry controller's cache.
fn registry_of(project: &RegistryProject, ctx: &ProjectContext) -> Option<Registry> {
    let reference = &project.spec.registry_ref;
    let namespace = reference
        .namespace
        .clone()
        .or_else(|| project.namespace())
        .unwrap_or_default();
    let guard = ctx
        .registries
        .get(&ObjectRef::new(&reference.name).within(&namespace))?;
    guard.0.as_ref().ok().cloned()
}

/// Ready, Progressing and Degraded for a pass that stops with `reason`.
fn stopped(reason: Reason, message: String) -> Vec<DesiredCondition> {
    let degraded = matches!(
        reason,
        Reason::HarborUnavailable | Reason::ApplyFailed | Reason::Conflict
    );
    vec![
        DesiredCondition::new(condition::READY, false, reason, message.clone()),
        DesiredCondition::new(
            condition::PROGRESSING,
            reason == Reason::WaitingForRegistry,
            if reason == Reason::WaitingForRegistry {
                reason
            } else {
                Reason::Reconciled
            },
            "",
        ),
        DesiredCondition::new(
            condition::DEGRADED,
            degraded,
            if degraded { reason } else { Reason::AsExpected },
            if degraded { message } else { String::new() },
        ),
    ]
}

async fn write_status(
    project: &RegistryProject,
    ctx: &ProjectContext,
    status: RegistryProjectStatus,
    conditions: &[DesiredCondition],
) -> Result<(), ProjectError> {
    let api: Api<RegistryProject> = Api::namespaced(
        ctx.base.client.clone(),
        &project.namespace().unwrap_or_default(),
    );
    // RegistryProjects are few and each pass talks to Harbor anyway: their first status is not held.
    status_write::write_status(
        &api,
        &ctx.base.recorder,
        project,
        status,
        conditions,
        Duration::ZERO,
    )
    .await?;
    Ok(())
}

/// The status fields a stopped pass keeps from the last successful one.
fn kept_status(project: &RegistryProject) -> RegistryProjectStatus {
    let current = project.status.clone().unwrap_or_default();
    RegistryProjectStatus {
        project_name: current.project_name,
        project_id: current.project_id,
        robot_secret_refreshed_at: current.robot_secret_refreshed_at,
        ..RegistryProjectStatus::default()
    }
}

/// The reason a Harbor error is reported with: unreachable or a server error is `HarborUnavailable`,
/// a refusal of what was sent is `ApplyFailed` (with Harbor's message).
fn harbor_reason(error: &HarborError) -> Reason {
    if error.is_transient() || matches!(error, HarborError::Unauthorized { .. }) {
        Reason::HarborUnavailable
    } else {
        Reason::ApplyFailed
    }
}

/// One pass (see the module documentation).
async fn pass(project: &RegistryProject, ctx: &ProjectContext) -> Result<Action, ProjectError> {
    let settings = &ctx.base.settings;
    let desired = match plan::desired(project) {
        Ok(desired) => desired,
        Err(error) => {
            let conditions = stopped(Reason::InvalidSpec, error.to_string());
            write_status(project, ctx, kept_status(project), &conditions).await?;
            return Ok(Action::await_change());
        }
    };
    let Some(registry) = registry_of(project, ctx) else {
        let reference = &project.spec.registry_ref;
        let message = format!(
            "spec.registryRef: no Registry {}/{}",
            reference
                .namespace
                .clone()
                .or_else(|| project.namespace())
                .unwrap_or_default(),
            reference.name
        );
        let conditions = stopped(Reason::WaitingForRegistry, message);
        write_status(project, ctx, kept_status(project), &conditions).await?;
        return Ok(Action::requeue(settings.requeue_not_ready));
    };
    if registry.spec.mode != RegistryMode::Harbor {
        let message = format!(
            "Registry {}/{} runs in K3d mode, which has no projects, robots or quotas; switch it to Harbor",
            registry.namespace().unwrap_or_default(),
            registry.name_any()
        );
        let conditions = stopped(Reason::NeedsHarbor, message);
        write_status(project, ctx, kept_status(project), &conditions).await?;
        return Ok(Action::requeue(settings.resync));
    }
    match sync(project, ctx, &registry, &desired).await {
        Ok((status, message)) => {
            let conditions = vec![
                DesiredCondition::new(condition::READY, true, Reason::ProjectReady, message),
                DesiredCondition::new(condition::PROGRESSING, false, Reason::Reconciled, ""),
                DesiredCondition::new(condition::DEGRADED, false, Reason::AsExpected, ""),
            ];
            write_status(project, ctx, status, &conditions).await?;
            Ok(Action::requeue(settings.resync))
        }
        Err((reason, message)) => {
            let conditions = stopped(reason, message.clone());
            if let Err(e) = write_status(project, ctx, kept_status(project), &conditions).await {
                warn!(registry_project = %project_id(project), error = %e, "reporting a Harbor failure failed");
            }
            Err(if message.starts_with("Secret ") {
                ProjectError::Secret(message)
            } else {
                ProjectError::Harbor(message)
            })
        }
    }
}

/// A robot's credentials known after the Harbor writes.
struct Credentials {
    robot_id: i64,
    username: String,
    secret: Secret,
    refreshed_at: i64,
}

/// Read Harbor, send the planned writes, write the Secrets. `Ok`: the status and Ready's message;
/// `Err`: the reason and message of the failure (no secret in it).
async fn sync(
    project: &RegistryProject,
    ctx: &ProjectContext,
    registry: &Registry,
    desired: &plan::Desired,
) -> Result<(RegistryProjectStatus, String), (Reason, String)> {
    let client = harbor_client(registry, &ctx.base)
        .await
        .map_err(|m| (Reason::HarborUnavailable, m))?;
    let harbor = |e: HarborError| (harbor_reason(&e), e.to_string());
    let name = &desired.project_name;
    let namespace = project.namespace().unwrap_or_default();
    let now = Timestamp::now().as_second();

    // Read.
    let mut observed = Observed {
        now,
        ..Observed::default()
    };
    observed.project = client.find_project(name).await.map_err(harbor)?;
    if let Some(found) = &observed.project {
        observed.quota = client
            .project_quota(found.project_id)
            .await
            .map_err(harbor)?;
    }
    let mut stored_secrets = BTreeMap::new();
    for role in [RobotRole::Pull, RobotRole::Push] {
        let full_name = role.full_name(name);
        let found = client
            .find_robots(&format!("{name}+{}", role.short()))
            .await
            .map_err(harbor)?;
        if let Some(robot) = found.into_iter().find(|r| r.name == full_name) {
            observed.robots.insert(role, robot);
        }
        let secret_name = plan::credentials_secret_name(project, role);
        if let Some((stored, username, secret)) = cached_secret(&ctx.base, &namespace, &secret_name)
            .as_ref()
            .and_then(plan::stored_credentials)
        {
            observed.stored.insert(role, stored);
            stored_secrets.insert(role, (username, Secret::new(secret)));
        }
    }

    // Plan and write to Harbor.
    let owner = format!("{namespace}/{}", project.name_any());
    let writes = plan::plan(desired, &observed, &owner);
    let mut fresh: BTreeMap<RobotRole, Credentials> = BTreeMap::new();
    let mut project_id = observed.project.as_ref().map(|p| p.project_id);
    let mut done = Vec::new();
    let found = observed.project.as_ref();
    let registry_id =
        proxy::ensure_endpoint(&client, &ctx.base, project, name, found, &mut done).await?;
    for write in &writes {
        match write {
            Write::CreateProject(req) => {
                let req = crate::harbor::ProjectReq {
                    registry_id,
                    ..req.clone()
                };
                project_id = Some(client.create_project(&req).await.map_err(harbor)?);
                done.push("project created".to_string());
            }
            Write::UpdateProject(req) => {
                client.update_project(name, req).await.map_err(harbor)?;
                done.push("project settings corrected".to_string());
            }
            Write::UpdateQuota { id, storage } => {
                client
                    .update_storage_quota(*id, *storage)
                    .await
                    .map_err(harbor)?;
                done.push("storage quota corrected".to_string());
            }
            Write::DeleteRobot { role, id } => {
                match client.delete_robot(*id).await {
                    Ok(()) | Err(HarborError::NotFound { .. }) => {}
                    Err(e) => return Err(harbor(e)),
                }
                done.push(format!("{} robot deleted", role.short()));
            }
            Write::CreateRobot { role, body } => {
                let created = client.create_robot(body).await.map_err(harbor)?;
                fresh.insert(
                    *role,
                    Credentials {
                        robot_id: created.id,
                        username: created.name,
                        secret: created.secret,
                        refreshed_at: now,
                    },
                );
                done.push(format!("{} robot created", role.short()));
            }
            Write::RefreshRobot { role, id } => {
                let secret = client.refresh_robot_secret(*id).await.map_err(harbor)?;
                fresh.insert(
                    *role,
                    Credentials {
                        robot_id: *id,
                        username: role.full_name(name),
                        secret,
                        refreshed_at: now,
                    },
                );
                done.push(format!("{} robot secret refreshed", role.short()));
            }
        }
    }
    if let Some(id) = project_id {
        let found = observed.project.as_ref();
        let changed = policies::sync_policies(&client, &project.spec, name, id, found)
            .await
            .map_err(harbor)?;
        done.extend(changed);
    }
    if !done.is_empty() {
        info!(registry_project = %owner, harbor_project = %name, changes = ?done, "Harbor project reconciled");
    }

    // Secrets: the credentials of each wanted robot and their copies.
    let host = registry.spec.host.clone().unwrap_or_default();
    let mut wanted: Vec<KubeSecret> = Vec::new();
    let mut refreshed: Vec<i64> = Vec::new();
    for role in &desired.robots {
        let credentials = match fresh.remove(role) {
            Some(c) => c,
            None => {
                let (Some(stored), Some((username, secret))) =
                    (observed.stored.get(role), stored_secrets.remove(role))
                else {
                    continue;
                };
                Credentials {
                    robot_id: stored.robot_id,
                    username,
                    secret,
                    refreshed_at: stored.refreshed_at,
                }
            }
        };
        let at = Timestamp::from_second(credentials.refreshed_at)
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .to_string();
        refreshed.push(credentials.refreshed_at);
        wanted.push(plan::credentials_secret(
            project,
            *role,
            &credentials.username,
            credentials.secret.expose(),
            credentials.robot_id,
            &at,
        ));
        let targets: Vec<_> = match role {
            RobotRole::Pull => project.spec.pull_secrets.clone(),
            RobotRole::Push => project.spec.push_secret.clone().into_iter().collect(),
        };
        for target in &targets {
            wanted.push(plan::docker_secret(
                project,
                target,
                &host,
                &credentials.username,
                credentials.secret.expose(),
            ));
        }
    }
    write_secrets(project, ctx, &wanted).await?;

    let status = RegistryProjectStatus {
        project_name: Some(name.clone()),
        project_id,
        robot_secret_refreshed_at: refreshed
            .iter()
            .min()
            .and_then(|t| Timestamp::from_second(*t).ok())
            .map(|t| t.to_string()),
        ..RegistryProjectStatus::default()
    };
    let copies = wanted.len().saturating_sub(desired.robots.len());
    let message = format!(
        "Harbor project {name} (id {}) on {host}; {copies} pull/push Secret(s) written",
        project_id.unwrap_or_default()
    );
    Ok((status, message))
}
