//! The reporting half of a mode switch: apply both sides, prune neither, write the switch status and
//! the `Switched` Event. Decisions come from `switch`; this file only carries them out.

use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use super::context::Context;
use super::harbor;
use super::registry::{
    ReconcileError, apply_and_prune, registry_id, status_base, waiting_on, write_status,
};
use super::status::DesiredCondition;
use super::switch::MigrationStep;
use crate::crd::{
    MigrationPhase, MigrationStatus, Registry, RegistryMode, RegistryPhase, RegistryStatus,
    condition,
};
use crate::render;

/// Everything a switch pass decided.
pub(super) struct SwitchOutcome {
    pub(super) from: RegistryMode,
    pub(super) to: RegistryMode,
    pub(super) source: render::Rendered,
    pub(super) step: Option<MigrationStep>,
    pub(super) target_waiting: Vec<String>,
}

/// Apply both sides (the old registry keeps serving), prune nothing of either, then report the
/// switch; the endpoint flips only once the migration Job succeeded.
pub(super) async fn finish_switch(
    registry: &Registry,
    ctx: &Context,
    target: &render::Rendered,
    desired: Vec<render::RenderedObject>,
    outcome: SwitchOutcome,
) -> Result<Action, ReconcileError> {
    let id = registry_id(registry);
    let created = harbor::ensure_secrets(&ctx.client, registry, &target.generated_secrets).await?;
    if !created.is_empty() {
        info!(registry = %id, secrets = ?created, "generated secrets created (values are never logged)");
    }
    apply_and_prune(registry, ctx, &desired, "switch: children reconciled").await?;
    let namespace = registry.namespace().unwrap_or_default();
    let serving_waiting = waiting_on(&outcome.source, ctx);
    let serving_ready = serving_waiting.is_empty();
    let succeeded = outcome.step.as_ref().is_some_and(|s| s.succeeded);
    let failed = outcome
        .step
        .as_ref()
        .is_some_and(|s| s.phase == MigrationPhase::Failed);
    let (phase, reason, message) = match &outcome.step {
        None => (
            MigrationPhase::Pending,
            "ProvisioningTarget",
            format!(
                "provisioning {:?}: {}",
                outcome.to,
                outcome.target_waiting.join("; ")
            ),
        ),
        Some(step) if step.succeeded => {
            (MigrationPhase::Succeeded, "Switched", step.message.clone())
        }
        Some(step) if step.phase == MigrationPhase::Failed => (
            MigrationPhase::Failed,
            "MigrationFailed",
            step.message.clone(),
        ),
        Some(step) => (step.phase, "Migrating", step.message.clone()),
    };
    let (endpoint, mode) = if succeeded {
        (target.endpoint.clone(), outcome.to)
    } else {
        (outcome.source.endpoint.clone(), outcome.from)
    };
    let mut current_migration = registry
        .status
        .as_ref()
        .and_then(|s| s.migration.clone())
        .unwrap_or_default();
    let finished = outcome
        .step
        .as_ref()
        .filter(|s| matches!(s.phase, MigrationPhase::Succeeded | MigrationPhase::Failed));
    if let Some(step) = finished
        && let Some(report) = job_report(ctx, &namespace, step.job.name()).await
    {
        current_migration.repositories = Some(report.repositories);
        current_migration.tags = Some(report.tags);
        current_migration.blobs_copied = Some(report.blobs_copied);
        current_migration.blobs_skipped = Some(report.blobs_skipped);
        current_migration.bytes_copied = Some(report.bytes_copied);
    }
    let migration = MigrationStatus {
        phase: Some(phase),
        source: outcome.source.endpoint.clone(),
        destination: target.endpoint.clone(),
        job_name: outcome.step.as_ref().map(|s| s.job.name().to_string()),
        failed_attempts: outcome
            .step
            .as_ref()
            .map(|s| s.failed_attempts)
            .or(current_migration.failed_attempts),
        message: Some(message.clone()),
        ..current_migration
    };
    let conditions = vec![
        DesiredCondition::new(
            condition::READY,
            serving_ready,
            if serving_ready {
                "Available"
            } else {
                "Provisioning"
            },
            if serving_ready {
                format!("serving at {}", endpoint.as_deref().unwrap_or("-"))
            } else {
                serving_waiting.join("; ")
            },
        ),
        DesiredCondition::new(condition::PROGRESSING, !succeeded, reason, message.clone()),
        DesiredCondition::new(
            condition::DEGRADED,
            failed,
            if failed {
                "MigrationFailed"
            } else {
                "AsExpected"
            },
            if failed {
                message.clone()
            } else {
                String::new()
            },
        ),
        DesiredCondition::new(
            condition::MIGRATING,
            phase == MigrationPhase::Running,
            reason,
            message.clone(),
        ),
    ];
    let status = RegistryStatus {
        phase: Some(if succeeded {
            RegistryPhase::Ready
        } else if failed {
            RegistryPhase::Degraded
        } else {
            RegistryPhase::Migrating
        }),
        endpoint,
        mode: Some(mode),
        k3s_registries_yaml: if succeeded {
            target.k3s_registries_yaml.clone()
        } else {
            outcome.source.k3s_registries_yaml.clone()
        },
        harbor_version: target
            .harbor_version
            .clone()
            .or(outcome.source.harbor_version.clone()),
        migration: Some(migration),
        ..status_base(registry)
    };
    write_status(registry, ctx, status, &conditions).await?;
    if succeeded {
        let event = KubeEvent {
            type_: EventType::Normal,
            reason: "Switched".to_string(),
            note: Some(format!(
                "now serving {:?} at {}; every image copied and verified",
                outcome.to,
                target.endpoint.as_deref().unwrap_or("-")
            )),
            action: "Migrate".to_string(),
            secondary: None,
        };
        if let Err(e) = ctx
            .recorder
            .publish(&event, &registry.object_ref(&()))
            .await
        {
            warn!(registry = %id, error = %e, "publishing event failed");
        }
        info!(registry = %id, to = ?outcome.to, "switched; the old registry is retired on the next pass");
        // The status flip does not retrigger (status changes pass no predicate): come back now.
        return Ok(Action::requeue(std::time::Duration::from_millis(100)));
    }
    Ok(Action::requeue(
        outcome
            .step
            .and_then(|s| s.requeue)
            .unwrap_or(ctx.settings.requeue_not_ready),
    ))
}

/// The counts a finished migration Job left in its termination message; `None` when unavailable
/// (counts are informational, never a reason to fail).
async fn job_report(ctx: &Context, namespace: &str, job: &str) -> Option<crate::migrate::Report> {
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(ctx.client.clone(), namespace);
    let params =
        kube::api::ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}"));
    let list = match pods.list(&params).await {
        Ok(list) => list,
        Err(error) => {
            warn!(job, %error, "reading the migration Job's pods failed; counts left out");
            return None;
        }
    };
    tracing::debug!(job, pods = list.items.len(), "read migration Job pods");
    list.items.iter().find_map(|pod| {
        let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
        statuses.iter().find_map(|c| {
            let message = c.state.as_ref()?.terminated.as_ref()?.message.as_deref()?;
            serde_json::from_str(message).ok()
        })
    })
}
