//! The Registry controller. A pass is: plan (pure: which mode renders, at which host) → prepare
//! (observe, render, generated Secrets, migration step) → one apply-and-prune → one status write
//! from the pass's outcome; plus the finalizer. Decisions live in `plan`, `outcome` and `migration`;
//! this file only sequences them and must not decide what a status says.

pub(crate) mod access;
mod cleanup;
mod error;
mod gc_window;
pub(crate) mod harbor;
pub(crate) mod harbor_api;
mod migration;
mod outcome;
mod plan;
mod pods;
mod prepare;
mod robot;
mod switch_status;
mod upgrade;

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use super::apply;
use super::context::Context;
use super::status_write;
use crate::crd::{Reason, Registry, RegistryMode};
use crate::render::labels::Owner;
pub(crate) use error::{ReconcileError, registry_id};
use outcome::Outcome;
pub(crate) use prepare::ANNOUNCEMENT;
use prepare::{Pass, Then};

/// Finalizer that runs the cleanup before a Registry goes.
pub(crate) const FINALIZER: &str = "registry.aisp.dev/cleanup";
const CONTROLLER: &str = "registry";

/// Entry point called by the controller for every Registry event.
pub(crate) async fn reconcile(
    registry: Arc<Registry>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let namespace = registry.namespace().unwrap_or_default();
    let api: Api<Registry> = Api::namespaced(ctx.client.clone(), &namespace);
    let registry = match with_finalizer(&api, registry).await {
        Ok(registry) => registry,
        Err(error) => {
            ctx.metrics
                .reconciled(CONTROLLER, started.elapsed().as_secs_f64());
            return Err(error);
        }
    };
    let result = finalizer(&api, FINALIZER, registry.clone(), |event| async {
        match event {
            Finalizer::Apply(registry) => pass(&registry, &ctx).await,
            Finalizer::Cleanup(registry) => cleanup::cleanup(&registry, &ctx).await,
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

/// The Registry with our finalizer: added first when missing (and not deleting), so that this pass
/// goes on with it in place. kube-runtime's `finalizer` would add it and end the pass, leaving the
/// work to the reconcile the addition's echo triggers: one reconcile more per new Registry (issue
/// 17). The merge patch names the resourceVersion read, so a concurrent change fails it (409) and
/// the pass is retried with backoff.
async fn with_finalizer(
    api: &Api<Registry>,
    registry: Arc<Registry>,
) -> Result<Arc<Registry>, ReconcileError> {
    let meta = registry.meta();
    let has = meta.finalizers.iter().flatten().any(|f| f == FINALIZER);
    if has || meta.deletion_timestamp.is_some() {
        return Ok(registry);
    }
    let mut finalizers = meta.finalizers.clone().unwrap_or_default();
    finalizers.push(FINALIZER.to_string());
    let patch = serde_json::json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": meta.resource_version,
    }});
    api.patch(
        &registry.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(Arc::new)
    .map_err(|e| ReconcileError::Finalizer(format!("adding finalizer {FINALIZER}: {e}")))
}

/// Transient failures back off per object (reset on success); the failure is counted and logged.
pub(crate) fn error_policy(
    registry: Arc<Registry>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    ctx.metrics.failed(CONTROLLER, error.reason());
    let delay = ctx.next_backoff(&registry_id(&registry));
    warn!(registry = %registry_id(&registry), reason = error.reason(), error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// One pass: the only place a Registry's children are applied and pruned and its status written.
async fn pass(registry: &Registry, ctx: &Context) -> Result<Action, ReconcileError> {
    let plan = plan::plan(registry);
    tracing::debug!(registry = %registry_id(registry), ?plan, "pass");
    if !plan::switching_with_harbor(&plan)
        && let Err(message) =
            robot::release(registry, ctx, plan.target().mode == RegistryMode::Harbor).await
    {
        warn!(registry = %registry_id(registry), %message, "the migration robot is not deleted yet; retrying");
    }
    let (outcome, failure) = match prepare::prepare(registry, ctx, &plan).await? {
        Pass::Report(outcome) => (Some(*outcome), None),
        Pass::Apply {
            desired,
            what,
            then,
        } => {
            let id = registry_id(registry);
            let name = registry.name_any();
            let namespace = registry.namespace().unwrap_or_default();
            let owned = apply::Owned {
                owner: Owner::registry(&name, &namespace),
                id: &id,
                retention: registry.spec.retention,
                keep: Vec::new(),
                // A steady pass reports from the readiness of what it applies, read afterwards; a
                // render that held something back, a switch, a grace period or an upgrade decided
                // from children read before.
                reports_after: matches!(&then, Then::Steady(steady)
                    if steady.rendered.held_back.is_none() && steady.gc_open.is_empty()),
            };
            match apply::apply_and_prune(ctx, &owned, &desired, what).await {
                Ok(()) => (Some(report(registry, ctx, then).await), None),
                Err(error) => (outcome::refused(registry, &error), Some(error)),
            }
        }
    };
    let written = match &outcome {
        Some(outcome) => write_status(registry, ctx, outcome).await,
        None => Ok(None),
    };
    if let Some(error) = failure {
        if let Err(status_error) = written {
            warn!(registry = %registry_id(registry), error = %status_error, "reporting a refused apply failed");
        }
        return Err(ReconcileError::Apply(error));
    }
    let held = written?;
    let outcome = outcome.expect("a pass without failure has an outcome");
    if let Some(note) = outcome.switched {
        publish_switched(registry, ctx, note).await;
    }
    // A held first status is written when it is no longer progress or its hold ends: look again then.
    Ok(held.map_or(outcome.action, Action::requeue))
}

/// The outcome of a pass whose children were applied, from the watch caches (and, once a migration
/// Job finished, the counts it reported).
async fn report(registry: &Registry, ctx: &Context, then: Then) -> Outcome {
    match then {
        Then::Steady(mut steady) => {
            if let Some(observed) = steady.awaiting_port.take() {
                access::snippet_with_allocated_port(
                    registry,
                    &steady.target,
                    *observed,
                    &mut steady.rendered,
                    &ctx.stores,
                );
            }
            release_gc(registry, ctx, &steady).await;
            let mut outcome = outcome::steady(registry, &steady, &ctx.stores, &ctx.settings);
            if !steady.gc_open.is_empty() {
                outcome.action = Action::requeue(ctx.settings.requeue_not_ready);
            }
            if steady.target.mode == crate::crd::RegistryMode::Harbor
                && harbor_api::freeze_to_lift(registry)
            {
                // A switch away from Harbor set back after its freeze: Harbor takes pushes again.
                // Until that succeeds the switch's record stays, so the next pass tries again.
                match harbor_api::set_read_only(registry, ctx, false).await {
                    Ok(_) => {
                        info!(registry = %registry_id(registry), "switch cancelled: Harbor writable again")
                    }
                    Err(message) => {
                        warn!(registry = %registry_id(registry), %message, "Harbor API");
                        outcome.status.migration =
                            registry.status.as_ref().and_then(|s| s.migration.clone());
                        return outcome::harbor_api_failed(outcome, &message, &ctx.settings);
                    }
                }
            }
            let serving = outcome.status.phase == Some(crate::crd::RegistryPhase::Ready);
            if steady.target.mode != crate::crd::RegistryMode::Harbor
                || !serving
                || !harbor_api::wanted(registry)
            {
                return outcome;
            }
            match harbor_api::sync(registry, ctx).await {
                Ok(changed) => {
                    if !changed.is_empty() {
                        info!(registry = %registry_id(registry), ?changed, "Harbor settings kept through its API");
                    }
                    outcome
                }
                Err(message) => {
                    warn!(registry = %registry_id(registry), %message, "Harbor API");
                    outcome::harbor_api_failed(outcome, &message, &ctx.settings)
                }
            }
        }
        Then::Switch(switching) => {
            let namespace = registry.namespace().unwrap_or_default();
            let counts = match switching.finished_job() {
                Some(job) => migration::job_report(ctx, &namespace, job).await,
                None => None,
            };
            if let Some(why) = &switching.step.freeze_unsupported {
                publish(
                    registry,
                    ctx,
                    EventType::Warning,
                    Reason::FreezeUnsupported,
                    why,
                )
                .await;
            }
            switch_status::switch(
                registry,
                *switching,
                counts,
                &ctx.stores,
                &ctx.settings,
                Timestamp::now(),
            )
        }
        Then::Upgrade(upgrading) => upgrade::report(registry, ctx, &upgrading).await,
        Then::Grace(grace) => {
            let now = Timestamp::now();
            let count = if switch_status::pods_due(registry, now, ctx.settings.pod_count_interval) {
                tracing::debug!(registry = %registry_id(registry), host = %grace.old_host, "counting pods that use the old host");
                match pods::count_using_host(&ctx.client, &grace.old_host).await {
                    Ok(count) => {
                        tracing::debug!(registry = %registry_id(registry), pods = count.pods, "counted pods that use the old host");
                        Some(count)
                    }
                    Err(error) => {
                        warn!(registry = %registry_id(registry), %error, "counting pods on the old host failed; retried");
                        None
                    }
                }
            } else {
                None
            };
            let outcome =
                switch_status::grace(registry, &grace, count, &ctx.stores, &ctx.settings, now);
            if outcome.status.migration.as_ref().and_then(|m| m.phase)
                == Some(crate::crd::MigrationPhase::Retired)
            {
                let note = outcome
                    .status
                    .migration
                    .as_ref()
                    .and_then(|m| m.message.clone())
                    .unwrap_or_default();
                publish(registry, ctx, EventType::Normal, Reason::Retired, &note).await;
            }
            outcome
        }
    }
}

/// Release the suspended garbage-collection Jobs once the registry's read-only rollout is done (a
/// failure is logged and retried on the next pass).
async fn release_gc(registry: &Registry, ctx: &Context, steady: &outcome::Steady) {
    if !steady.gc_open.iter().any(|g| g.suspended)
        || migration::k3d_freeze(&steady.rendered, &ctx.stores) != migration::Freeze::Done
    {
        return;
    }
    let namespace = registry.namespace().unwrap_or_default();
    for gc in steady.gc_open.iter().filter(|g| g.suspended) {
        match gc_window::release(&ctx.client, &namespace, &gc.name).await {
            Ok(()) => {
                info!(registry = %registry_id(registry), job = %gc.name, "registry read-only: garbage collection released")
            }
            Err(error) => {
                warn!(registry = %registry_id(registry), job = %gc.name, %error, "releasing garbage collection failed; retried")
            }
        }
    }
}

/// Publish an Event on the Registry (a failure to publish is only logged).
async fn publish(registry: &Registry, ctx: &Context, type_: EventType, reason: Reason, note: &str) {
    let event = KubeEvent {
        type_,
        reason: reason.to_string(),
        note: Some(note.to_string()),
        action: "Migrate".to_string(),
        secondary: None,
    };
    if let Err(e) = ctx
        .recorder
        .publish(&event, &registry.object_ref(&()))
        .await
    {
        warn!(registry = %registry_id(registry), error = %e, "publishing event failed");
    }
}

/// Write the status if it changed (see [`status_write::write_status`]); `Some(left)`: a fresh
/// Registry's first status held back for `left`.
async fn write_status(
    registry: &Registry,
    ctx: &Context,
    outcome: &Outcome,
) -> Result<Option<std::time::Duration>, ReconcileError> {
    let api: Api<Registry> = Api::namespaced(
        ctx.client.clone(),
        &registry.namespace().unwrap_or_default(),
    );
    status_write::write_status(
        &api,
        &ctx.recorder,
        registry,
        outcome.status.clone(),
        &outcome.conditions,
        ctx.settings.requeue_not_ready,
    )
    .await
    .map_err(ReconcileError::Status)
}

/// The `Switched` Event of a flip (a failure to publish is only logged).
async fn publish_switched(registry: &Registry, ctx: &Context, note: String) {
    publish(registry, ctx, EventType::Normal, Reason::Switched, &note).await;
    info!(registry = %registry_id(registry), "switched; the old registry stays served read-only through the grace window");
}
