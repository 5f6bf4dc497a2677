//! A Registry pass up to its apply: observe what render needs, render the plan's target (and, during
//! a switch, the mode that still serves), create generated Secrets, decide the migration step. Ends in
//! either an outcome that applies nothing or the objects to apply; applies and writes no status itself.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use tracing::info;

use super::error::{ReconcileError, registry_id};
use super::migration::{Freeze, StepInput};
use super::outcome::{self, Outcome, Steady};
use super::plan::Plan;
use super::switch_status::{Grace, Switching};
use super::upgrade::Upgrading;
use super::{access, gc_window, harbor, harbor_api, migration, robot};
use crate::crd::{MigrationPhase, Registry, RegistryMode};
use crate::reconcile::context::Context;
use crate::render::observed::ObservedHosting;
use crate::render::{self, Observed, RenderError, RenderedObject};

/// Where a pass goes after preparing.
pub(super) enum Pass {
    /// Nothing is applied; report this.
    Report(Box<Outcome>),
    /// Apply `desired` (and prune the rest), then report on it.
    Apply {
        desired: Vec<RenderedObject>,
        /// Names the step in the log.
        what: &'static str,
        then: Then,
    },
}

/// How a pass that applied reports.
pub(super) enum Then {
    Steady(Box<Steady>),
    Switch(Box<Switching>),
    Grace(Box<Grace>),
    Upgrade(Box<Upgrading>),
}

/// What render needs to know of the cluster to render `registry` in `mode`, and what was wrong with
/// the KEP-1755 announcement (if anything).
async fn observe(
    registry: &Registry,
    mode: RegistryMode,
    ctx: &Context,
) -> Result<(Observed, Option<String>), ReconcileError> {
    let mut observed = Observed::default();
    let mut problem = None;
    match mode {
        RegistryMode::K3d => {
            let announced = announcement(ctx).await?;
            if let Some(config_map) = announced {
                match ObservedHosting::from_config_map(&config_map) {
                    Ok(hosting) => observed.local_registry_hosting = Some(hosting),
                    Err(message) => problem = Some(message),
                }
            }
            if !access::adopts(registry, observed.local_registry_hosting.as_ref()) {
                observed.node_ports =
                    access::node_ports(registry, &ctx.client, &ctx.stores).await?;
            }
        }
        RegistryMode::Harbor => {
            observed.harbor = harbor::observe(registry, &ctx.client, &ctx.stores).await;
            observed.coredns_custom = access::coredns_custom(&ctx.client).await?;
        }
    }
    Ok((observed, problem))
}

/// The KEP-1755 announcement, from its watch cache; read from the API server only while that cache
/// has not completed its first list (just after a start).
async fn announcement(ctx: &Context) -> Result<Option<ConfigMap>, ReconcileError> {
    let cache = &ctx.announcement;
    if tokio::time::timeout(ANNOUNCEMENT_SYNC_WAIT, cache.wait_until_ready())
        .await
        .is_ok_and(|ready| ready.is_ok())
    {
        let key = ObjectRef::new(ANNOUNCEMENT.1).within(ANNOUNCEMENT.0);
        return Ok(cache.get(&key).map(|c| (*c).clone()));
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ANNOUNCEMENT.0);
    config_maps
        .get_opt(ANNOUNCEMENT.1)
        .await
        .map_err(|source| ReconcileError::Read {
            what: "kube-public/local-registry-hosting",
            source,
        })
}

/// `(namespace, name)` of the KEP-1755 announcement.
pub(crate) const ANNOUNCEMENT: (&str, &str) = ("kube-public", "local-registry-hosting");
/// How long a reconcile waits for the announcement's cache after a start before asking the API server.
const ANNOUNCEMENT_SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything before the apply of one pass.
pub(super) async fn prepare(
    registry: &Registry,
    ctx: &Context,
    plan: &Plan,
) -> Result<Pass, ReconcileError> {
    if let Plan::UpgradeRefused(_, refusal) = plan {
        info!(registry = %registry_id(registry), message = %refusal.0, "version change refused; nothing applied");
        return Ok(Pass::Report(Box::new(outcome::upgrade_refused(
            registry,
            &refusal.0,
            ctx.settings.resync,
        ))));
    }
    let id = registry_id(registry);
    let mut target = plan.target().clone();
    // Garbage collection of the hosted k3d registry runs inside a read-only window.
    let gc_open = match plan {
        Plan::Steady(_) if target.mode == RegistryMode::K3d => {
            gc_window::open(registry, &ctx.stores)
        }
        _ => Vec::new(),
    };
    target.frozen |= !gc_open.is_empty();
    let target = &target;
    let (observed, observed_problem) = observe(registry, target.mode, ctx).await?;
    let mut rendered = match render::registry_for(registry, target, &observed) {
        Ok(rendered) => rendered,
        Err(RenderError::Invalid(errors)) => {
            let message = errors.to_string();
            info!(registry = %id, %message, "invalid spec; nothing applied");
            return Ok(Pass::Report(Box::new(outcome::invalid_spec(
                registry, message,
            ))));
        }
        Err(other) => return Err(ReconcileError::Render(other)),
    };
    if let Some(conflict) = &rendered.node_port_conflict {
        return Ok(Pass::Report(Box::new(outcome::node_port_conflict(
            registry,
            conflict,
            ctx.settings.resync,
        ))));
    }
    let missing = harbor::missing_cnpg_kinds(&rendered, &ctx.served.borrow());
    if !missing.is_empty() {
        return Ok(Pass::Report(Box::new(outcome::cnpg_missing(
            registry,
            &missing,
            ctx.settings.resync,
        ))));
    }
    if target.mode == RegistryMode::Harbor
        && let Some(absent) = harbor::absent_cnpg_cluster(registry, &ctx.client).await?
    {
        return Ok(Pass::Report(Box::new(outcome::cnpg_cluster_not_found(
            registry,
            &absent,
            ctx.settings.resync,
        ))));
    }
    let created =
        harbor::ensure_secrets(&ctx.client, registry, &rendered.generated_secrets).await?;
    if !created.is_empty() {
        info!(registry = %id, secrets = ?created, "generated secrets created (values are never logged)");
    }
    access::fill_secret_copies(
        &ctx.client,
        &ctx.stores,
        &rendered.secret_copies,
        &mut rendered.objects,
    )
    .await?;
    let waiting = outcome::waiting_on(&rendered, &ctx.stores);
    let (from, to) = match plan {
        Plan::Switch { from, to } => (from, to),
        Plan::Grace { old, .. } => {
            // The old side stays served (read-only) beside the new one until it is retired.
            let (old_observed, _) = observe(registry, old.mode, ctx).await?;
            let mut old_rendered = render::registry_for(registry, old, &old_observed)
                .map_err(ReconcileError::Render)?;
            access::fill_secret_copies(
                &ctx.client,
                &ctx.stores,
                &old_rendered.secret_copies,
                &mut old_rendered.objects,
            )
            .await?;
            let mut desired = rendered.objects.clone();
            desired.extend(old_rendered.objects.iter().cloned());
            return Ok(Pass::Apply {
                desired,
                what: "grace: both registries reconciled",
                then: Then::Grace(Box::new(Grace {
                    steady: Steady {
                        target: target.clone(),
                        rendered,
                        downgrade_refused: false,
                        observed_problem,
                        gc_open: Vec::new(),
                        awaiting_port: None,
                    },
                    old_mode: old.mode,
                    old_host: old.host.clone().unwrap_or_default(),
                })),
            });
        }
        Plan::Upgrade(_, state) => {
            return Ok(Pass::Apply {
                desired: rendered.objects.clone(),
                what: "upgrade: children reconciled",
                then: Then::Upgrade(Box::new(Upgrading {
                    steady: Steady {
                        target: target.clone(),
                        rendered,
                        downgrade_refused: false,
                        observed_problem,
                        gc_open: Vec::new(),
                        awaiting_port: None,
                    },
                    state: state.clone(),
                })),
            });
        }
        _ => {
            return Ok(Pass::Apply {
                desired: rendered.objects.clone(),
                what: "children reconciled",
                then: Then::Steady(Box::new(Steady {
                    target: target.clone(),
                    awaiting_port: access::awaits_allocated_port(target, &observed, &rendered)
                        .then(|| Box::new(observed.clone())),
                    rendered,
                    downgrade_refused: matches!(plan, Plan::DowngradeRefused(_)),
                    observed_problem,
                    gc_open,
                })),
            });
        }
    };
    // Both sides are applied and neither is pruned: the old registry serves until the flip.
    let (source_observed, _) = observe(registry, from.mode, ctx).await?;
    let mut source =
        render::registry_for(registry, from, &source_observed).map_err(ReconcileError::Render)?;
    // A Harbor source keeps its exported CA (the migration Job trusts it), not render's placeholder.
    access::fill_secret_copies(
        &ctx.client,
        &ctx.stores,
        &source.secret_copies,
        &mut source.objects,
    )
    .await?;
    let freeze = match (from.mode, migration::recorded(registry).stage) {
        (_, stage) if stage != MigrationPhase::Freezing => Freeze::Pending(String::new()),
        (RegistryMode::K3d, _) => migration::k3d_freeze(&source, &ctx.stores),
        (RegistryMode::Harbor, _) => match harbor_api::set_read_only(registry, ctx, true).await {
            Ok(_) => Freeze::Done,
            Err(message) => Freeze::Pending(format!("making Harbor read-only: {message}")),
        },
    };
    let mut step = migration::migration_step(&StepInput {
        registry,
        from: (from.mode, &source),
        to: (to.mode, &rendered),
        target_ready: waiting.is_empty(),
        freeze,
        stores: &ctx.stores,
        image: &ctx.settings.operator_image,
        backoff: (ctx.settings.backoff_base, ctx.settings.backoff_max),
        now: Timestamp::now(),
    })
    .map_err(ReconcileError::Render)?;
    let direction = match (from.mode, to.mode) {
        (_, RegistryMode::Harbor) => Some(robot::Direction::Into(
            render::migration::destination_project(registry, to.mode),
        )),
        (RegistryMode::Harbor, _) => Some(robot::Direction::OutOf),
        _ => None,
    };
    if let Some(direction) = direction.filter(|_| !step.jobs.is_empty()) {
        // The Jobs reach Harbor as the migration robot, created before the Job that needs it.
        let running = step.jobs.iter().any(|job| ctx.stores.live(job).is_some());
        if let Err(message) =
            robot::ensure(registry, ctx, &direction, running, Timestamp::now()).await
        {
            info!(registry = %id, %message, "migration robot not ready; no new Job in this pass");
            step.jobs.retain(|job| ctx.stores.live(job).is_some());
            if step.jobs.is_empty() {
                step.message = format!(
                    "{}; waiting for the migration robot: {message}",
                    step.message
                );
                step.requeue = Some(ctx.settings.requeue_not_ready);
            }
        }
    }
    let mut desired = rendered.objects.clone();
    desired.extend(step.jobs.iter().cloned());
    desired.extend(source.objects.iter().cloned());
    Ok(Pass::Apply {
        desired,
        what: "switch: children reconciled",
        then: Then::Switch(Box::new(Switching {
            from: from.mode,
            to: to.mode,
            target: rendered,
            target_waiting: waiting,
            source,
            step,
        })),
    })
}
