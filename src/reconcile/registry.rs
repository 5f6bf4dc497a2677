//! The Registry controller's reconcile: read → validate → render → apply → prune → status, plus the
//! finalizer that releases what owner references cannot (the KEP-1755 ConfigMap, retained PVCs).

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use tracing::{info, warn};

use super::apply::{self, ApplyError};
use super::children::readiness;
use super::context::Context;
use super::harbor;
use super::registry_switch::{SwitchOutcome, finish_switch};
use super::status::DesiredCondition;
use super::status_write;
use super::switch::{self, Plan};
use crate::crd::{Registry, RegistryPhase, RegistryStatus, Retention, condition};
use crate::render::labels::{self, Owner};
use crate::render::observed::ObservedHosting;
use crate::render::{self, Observed, RenderError};

/// Finalizer that runs [`cleanup`] before a Registry goes.
pub const FINALIZER: &str = "registry.aisp.dev/cleanup";
const CONTROLLER: &str = "registry";

/// Why a Registry reconcile failed; all are transient and retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Reading cluster state failed.
    #[error("reading {what}: {source}")]
    Read {
        what: &'static str,
        source: kube::Error,
    },
    /// Applying or pruning children failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Writing the status failed.
    #[error("writing status: {0}")]
    Status(kube::Error),
    /// Cleanup on deletion failed.
    #[error("cleanup: {0}")]
    Cleanup(kube::Error),
    /// The finalizer machinery failed (adding/removing the finalizer).
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// A Harbor step (generated Secrets) failed.
    #[error(transparent)]
    Harbor(#[from] super::harbor::HarborError),
    /// Render failed for a reason that is not the user's (a bug).
    #[error("render: {0}")]
    Render(RenderError),
}

impl ReconcileError {
    /// Short CamelCase reason for metrics and conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Read { .. } => "ReadFailed",
            Self::Apply(_) => "ApplyFailed",
            Self::Status(_) => "StatusFailed",
            Self::Cleanup(_) => "CleanupFailed",
            Self::Finalizer(_) => "FinalizerFailed",
            Self::Render(_) => "RenderFailed",
            Self::Harbor(_) => "SecretsFailed",
        }
    }
}

/// `namespace/name` of a Registry.
pub fn registry_id(registry: &Registry) -> String {
    format!(
        "{}/{}",
        registry.namespace().unwrap_or_default(),
        registry.name_any()
    )
}

/// Entry point called by the controller for every Registry event.
pub async fn reconcile(
    registry: Arc<Registry>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let namespace = registry.namespace().unwrap_or_default();
    let api: Api<Registry> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, registry.clone(), |event| async {
        match event {
            Finalizer::Apply(registry) => apply_registry(&registry, &ctx).await,
            Finalizer::Cleanup(registry) => cleanup(&registry, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => ReconcileError::Finalizer(other.to_string()),
    });
    ctx.metrics
        .reconciled(CONTROLLER, started.elapsed().as_secs_f64());
    if result.is_ok() {
        ctx.reset_backoff(&registry_id(&registry));
    }
    result
}

/// Transient failures back off per object (reset on success); the failure is counted and logged.
pub fn error_policy(registry: Arc<Registry>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(CONTROLLER, error.reason());
    let delay = ctx.next_backoff(&registry_id(&registry));
    warn!(registry = %registry_id(&registry), reason = error.reason(), error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn read_observed(
    registry: &Registry,
    ctx: &Context,
) -> Result<(Observed, Option<String>), ReconcileError> {
    let mut observed = Observed::default();
    let mut problem = None;
    if registry.spec.mode == crate::crd::RegistryMode::K3d {
        let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), "kube-public");
        let announced = config_maps
            .get_opt("local-registry-hosting")
            .await
            .map_err(|source| ReconcileError::Read {
                what: "kube-public/local-registry-hosting",
                source,
            })?;
        if let Some(config_map) = announced {
            match ObservedHosting::from_config_map(&config_map) {
                Ok(hosting) => observed.local_registry_hosting = Some(hosting),
                Err(message) => problem = Some(message),
            }
        }
    }
    if registry.spec.mode == crate::crd::RegistryMode::Harbor {
        observed.harbor = super::harbor::observe(registry, &ctx.client, &ctx.stores).await;
    }
    Ok((observed, problem))
}

async fn apply_registry(registry: &Registry, ctx: &Context) -> Result<Action, ReconcileError> {
    let id = registry_id(registry);
    let plan = switch::plan(registry);
    // While a downgrade is refused, the serving mode keeps being rendered.
    let target = match plan {
        Plan::DowngradeRefused => switch::as_serving(registry),
        _ => registry.clone(),
    };
    let (observed, observed_problem) = read_observed(&target, ctx).await?;
    let rendered = match render::registry(&target, &observed) {
        Ok(rendered) => rendered,
        Err(RenderError::Invalid(errors)) => {
            let message = errors.to_string();
            let conditions = [
                DesiredCondition::new(condition::READY, false, "InvalidSpec", message.clone()),
                DesiredCondition::new(
                    condition::PROGRESSING,
                    false,
                    "InvalidSpec",
                    "waiting for the spec to be fixed",
                ),
                DesiredCondition::new(condition::DEGRADED, false, "InvalidSpec", ""),
            ];
            let status = RegistryStatus {
                phase: Some(RegistryPhase::Invalid),
                ..status_base(registry)
            };
            write_status(registry, ctx, status, &conditions).await?;
            info!(registry = %id, %message, "invalid spec; nothing applied");
            return Ok(Action::await_change());
        }
        Err(other) => return Err(ReconcileError::Render(other)),
    };

    if harbor::needs_cnpg(&rendered)
        && !ctx.stores.watches(&render::cnpg_cluster_resource())
        && !harbor::cnpg_served(&ctx.client).await
    {
        let message = "spec.harbor.database.managed needs CloudNativePG: install its operator (the postgresql.cnpg.io/v1 Cluster CRD) or set spec.harbor.database.external";
        let conditions = [
            DesiredCondition::new(condition::READY, false, "CNPGNotInstalled", message),
            DesiredCondition::new(
                condition::PROGRESSING,
                false,
                "CNPGNotInstalled",
                "nothing applied",
            ),
            DesiredCondition::new(condition::DEGRADED, false, "AsExpected", ""),
        ];
        let status = RegistryStatus {
            phase: Some(RegistryPhase::Degraded),
            ..status_base(registry)
        };
        write_status(registry, ctx, status, &conditions).await?;
        return Ok(Action::requeue(ctx.settings.resync));
    }
    let created =
        harbor::ensure_secrets(&ctx.client, registry, &rendered.generated_secrets).await?;
    if !created.is_empty() {
        info!(registry = %id, secrets = ?created, "generated secrets created (values are never logged)");
    }
    let waiting = waiting_on(&rendered, ctx);
    let mut desired = rendered.objects.clone();
    let mut migration = None;
    if let Plan::Switch { from, to } = plan {
        let old = switch::as_serving(registry);
        let (old_observed, _) = read_observed(&old, ctx).await?;
        let source = render::registry(&old, &old_observed).map_err(ReconcileError::Render)?;
        if waiting.is_empty() {
            let step = switch::migration_step(
                registry,
                (from, &source),
                (to, &rendered),
                &ctx.stores,
                &ctx.settings.operator_image,
                (ctx.settings.backoff_base, ctx.settings.backoff_max),
                Timestamp::now(),
            )
            .map_err(ReconcileError::Render)?;
            desired.push(step.job.clone());
            migration = Some(step);
        }
        desired.extend(source.objects.iter().cloned());
        let outcome = SwitchOutcome {
            from,
            to,
            source,
            step: migration,
            target_waiting: waiting.clone(),
        };
        return finish_switch(registry, ctx, &rendered, desired, outcome).await;
    }
    apply_and_prune(registry, ctx, &desired, "children reconciled").await?;

    let ready = waiting.is_empty();
    let mut warnings = rendered.warnings.clone();
    if plan == Plan::DowngradeRefused {
        warnings.push("spec.mode: switching from Harbor back to K3d is refused (the k3d registry has no projects, scanning or access control); set spec.migration.allowDowngrade: true to copy the images back, or set spec.mode back to Harbor".to_string());
    }
    warnings.extend(observed_problem);
    let ready_message = if ready {
        format!("serving at {}", rendered.endpoint.as_deref().unwrap_or("-"))
    } else {
        waiting.join("; ")
    };
    let held_for_database = rendered.held_back.is_some();
    let mut conditions = vec![
        DesiredCondition::new(
            condition::READY,
            ready,
            if ready {
                "Available"
            } else if held_for_database {
                "WaitingForDatabase"
            } else {
                "Provisioning"
            },
            ready_message,
        ),
        DesiredCondition::new(
            condition::PROGRESSING,
            !ready,
            if ready {
                "Reconciled"
            } else {
                "WaitingForChildren"
            },
            if ready {
                String::new()
            } else {
                waiting.join("; ")
            },
        ),
        DesiredCondition::new(
            condition::DEGRADED,
            !warnings.is_empty(),
            if warnings.is_empty() {
                "AsExpected"
            } else if plan == Plan::DowngradeRefused {
                "DowngradeRefused"
            } else {
                "Conflict"
            },
            warnings.join("; "),
        ),
    ];
    let status = RegistryStatus {
        phase: Some(if ready {
            RegistryPhase::Ready
        } else {
            RegistryPhase::Provisioning
        }),
        endpoint: rendered.endpoint.clone(),
        mode: Some(target.spec.mode),
        k3s_registries_yaml: rendered.k3s_registries_yaml.clone(),
        harbor_version: rendered.harbor_version.clone(),
        ..status_base(registry)
    };
    if target.spec.mode == crate::crd::RegistryMode::Harbor {
        conditions.extend(harbor::conditions(&target, &rendered, &ctx.stores));
    }
    write_status(registry, ctx, status, &conditions).await?;
    Ok(if ready {
        Action::requeue(ctx.settings.resync)
    } else {
        Action::requeue(ctx.settings.requeue_not_ready)
    })
}

/// Why children of `rendered` are not ready yet (empty when all are), including what render holds back.
pub(super) fn waiting_on(rendered: &render::Rendered, ctx: &Context) -> Vec<String> {
    let mut waiting: Vec<String> = rendered
        .objects
        .iter()
        .filter_map(|object| readiness(&object.resource, ctx.stores.live(object).as_ref()))
        .filter_map(Result::err)
        .collect();
    waiting.extend(rendered.held_back.clone());
    waiting
}

/// Status fields carried over from the current status (migration progress is owned elsewhere).
pub(super) fn status_base(registry: &Registry) -> RegistryStatus {
    let current = registry.status().cloned().unwrap_or_default();
    RegistryStatus {
        migration: current.migration,
        harbor_version: current.harbor_version,
        ..Default::default()
    }
}

/// Server-side apply `desired`, prune this Registry's children it no longer lists, count and log what
/// changed (`what` names the step in the log).
pub(super) async fn apply_and_prune(
    registry: &Registry,
    ctx: &Context,
    desired: &[render::RenderedObject],
    what: &str,
) -> Result<(), ReconcileError> {
    let id = registry_id(registry);
    let report = apply::apply_all(&ctx.client, &ctx.stores, desired).await?;
    for key in &report.applied {
        ctx.metrics
            .applied(key.split('/').next().unwrap_or_default());
    }
    let name = registry.name_any();
    let namespace = registry.namespace().unwrap_or_default();
    let owner = Owner {
        kind: "Registry",
        name: &name,
        namespace: Some(&namespace),
    };
    let pruned = apply::prune(
        &ctx.client,
        &ctx.stores,
        &owner.selector_labels(),
        desired,
        registry.spec.retention,
        &id,
    )
    .await?;
    if !report.applied.is_empty() || !pruned.is_empty() {
        info!(registry = %id, applied = ?report.applied, pruned = ?pruned, unchanged = report.unchanged, "{what}");
    }
    Ok(())
}

/// Write the status if it changed (see [`status_write::write_status`]).
pub(super) async fn write_status(
    registry: &Registry,
    ctx: &Context,
    status: RegistryStatus,
    desired: &[DesiredCondition],
) -> Result<(), ReconcileError> {
    let api: Api<Registry> = Api::namespaced(
        ctx.client.clone(),
        &registry.namespace().unwrap_or_default(),
    );
    status_write::write_status(&api, &ctx.recorder, registry, status, desired)
        .await
        .map_err(ReconcileError::Status)
}

/// Before the Registry goes: delete the KEP-1755 ConfigMap it wrote; keep (orphan) or delete its PVCs
/// per `retention`. Everything else goes by owner-reference garbage collection.
async fn cleanup(registry: &Registry, ctx: &Context) -> Result<Action, ReconcileError> {
    let id = registry_id(registry);
    let name = registry.name_any();
    let namespace = registry.namespace().unwrap_or_default();
    let owner = Owner {
        kind: "Registry",
        name: &name,
        namespace: Some(&namespace),
    };
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), "kube-public");
    if let Some(config_map) = config_maps
        .get_opt("local-registry-hosting")
        .await
        .map_err(ReconcileError::Cleanup)?
    {
        let labels = config_map.labels();
        let ours = labels.get(labels::OWNER_NAME) == Some(&name)
            && labels.get(labels::OWNER_NAMESPACE) == Some(&namespace);
        if ours {
            ignore_not_found(
                config_maps
                    .delete("local-registry-hosting", &DeleteParams::default())
                    .await
                    .map(|_| ()),
            )
            .map_err(ReconcileError::Cleanup)?;
        }
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
    let owned = claims
        .list(&kube::api::ListParams::default().labels(&owner.selector()))
        .await
        .map_err(ReconcileError::Cleanup)?;
    for claim in owned {
        let claim_name = claim.name_any();
        let result = match registry.spec.retention {
            Retention::Retain => claims
                .patch(
                    &claim_name,
                    &PatchParams::default(),
                    &Patch::Merge(apply::orphan_patch(&id)),
                )
                .await
                .map(|_| ()),
            Retention::Delete => claims
                .delete(&claim_name, &DeleteParams::default())
                .await
                .map(|_| ()),
        };
        ignore_not_found(result).map_err(ReconcileError::Cleanup)?;
        info!(registry = %id, claim = %claim_name, retention = ?registry.spec.retention, "released volume claim");
    }
    // A managed database goes with its owner unless retained: CloudNativePG would delete its volumes.
    if registry.spec.retention == Retention::Retain {
        for (resource, cluster) in ctx.stores.labelled(&owner.selector_labels()) {
            if resource.kind != "Cluster" {
                continue;
            }
            let cluster_name = cluster.metadata.name.clone().unwrap_or_default();
            let api: Api<kube::api::DynamicObject> =
                Api::namespaced_with(ctx.client.clone(), &namespace, &resource);
            let patch = Patch::Merge(apply::orphan_patch(&id));
            ignore_not_found(
                api.patch(&cluster_name, &PatchParams::default(), &patch)
                    .await
                    .map(|_| ()),
            )
            .map_err(ReconcileError::Cleanup)?;
            info!(registry = %id, cluster = %cluster_name, "released database cluster (retention Retain)");
        }
    }
    Ok(Action::await_change())
}

fn ignore_not_found(result: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match result {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other,
    }
}
