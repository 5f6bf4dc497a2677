//! The ImagePolicy controller. A pass is: which Kyverno kinds are served (kept current by
//! `discovery`) → read the Registry endpoint (watch cache) → render → one apply-and-prune (sparing
//! the previous policy flavour until Kyverno reports the new one ready) → one status write from the
//! pass's outcome. Renders nothing itself and never GETs what a watch cache already holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::core::object::HasStatus;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use tracing::{debug, info, warn};

use super::apply::{self, ApplyError, ChildKey};
use super::context::{Context, Settings};
use super::kyverno::{PolicyReadiness, policy_readiness};
use super::status::DesiredCondition;
use super::status_write;
use crate::crd::{ImagePolicy, ImagePolicyStatus, Meaning, Reason, Registry, Retention, condition};
use crate::render::labels::Owner;
use crate::render::policy::follow;
use crate::render::{self, PolicyObserved, RenderError, RenderedPolicy};

const CONTROLLER: &str = "image-policy";
/// Longest wait for the first list of the Registry and Kyverno caches before a reconcile gives up.
const CACHE_SYNC_WAIT: Duration = Duration::from_secs(30);
const INSTALL_KYVERNO: &str = "install Kyverno 1.13 or newer (kyverno.io/v1 ClusterPolicy) or 1.17 or newer (policies.kyverno.io/v1 ValidatingPolicy and ImageValidatingPolicy)";

/// What the ImagePolicy controller shares between reconciles, on top of the common [`Context`].
pub(crate) struct PolicyContext {
    /// Client, child caches (Kyverno kinds while served), served kinds, settings, metrics, events.
    pub(crate) base: Arc<Context>,
    /// Watch cache of Registries, fed by the same stream that triggers on endpoint changes, so a
    /// reconcile triggered by a change always reads the changed endpoint.
    pub(crate) registries: Store<DeserializeGuard<Registry>>,
}

/// Why an ImagePolicy reconcile failed; all are transient and retried with backoff.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PolicyReconcileError {
    /// Applying or pruning the generated policies failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Writing the status failed.
    #[error("writing status: {0}")]
    Status(kube::Error),
    /// Render failed for a reason that is not the user's (a bug).
    #[error("render: {0}")]
    Render(RenderError),
    /// The Registry or Kyverno watch caches have not completed their first list yet.
    #[error("watch caches not synced after {0:?}")]
    CachesNotSynced(Duration),
}

impl PolicyReconcileError {
    /// Short CamelCase reason for metrics.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Apply(_) => "ApplyFailed",
            Self::Status(_) => "StatusFailed",
            Self::Render(_) => "RenderFailed",
            Self::CachesNotSynced(_) => "CachesNotSynced",
        }
    }
}

/// Backoff key of an ImagePolicy (kept apart from Registry keys, which are `namespace/name`).
fn policy_id(policy: &ImagePolicy) -> String {
    format!("ImagePolicy/{}", policy.name_any())
}

/// Controller entry point: skips objects that do not deserialize (logged), reconciles the rest.
pub(crate) async fn reconcile_guarded(
    guard: Arc<DeserializeGuard<ImagePolicy>>,
    ctx: Arc<PolicyContext>,
) -> Result<Action, PolicyReconcileError> {
    match &guard.0 {
        Ok(policy) => {
            debug!(image_policy = %policy.name_any(), "pass");
            let started = Instant::now();
            let result = reconcile(policy, &ctx).await;
            ctx.base
                .metrics
                .reconciled(CONTROLLER, started.elapsed().as_secs_f64());
            if result.is_ok() {
                ctx.base.reset_backoff(&policy_id(policy));
            }
            result
        }
        Err(invalid) => {
            warn!(name = ?invalid.metadata.name, error = %invalid.error, "ImagePolicy does not deserialize; skipped until it changes");
            Ok(Action::await_change())
        }
    }
}

/// Transient failures back off per object (reset on success); the failure is counted and logged.
pub(crate) fn error_policy_guarded(
    guard: Arc<DeserializeGuard<ImagePolicy>>,
    error: &PolicyReconcileError,
    ctx: Arc<PolicyContext>,
) -> Action {
    ctx.base.metrics.failed(CONTROLLER, error.reason());
    let name = guard.name_any();
    let delay = ctx.base.next_backoff(&format!("ImagePolicy/{name}"));
    warn!(image_policy = %name, reason = error.reason(), error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// What the policy follows of the Registry named by `spec.registryRef`, from the watch cache.
fn registry_follow(policy: &ImagePolicy, ctx: &PolicyContext) -> follow::RegistryFollow {
    let Some(reference) = policy.spec.registry_ref.as_ref() else {
        return follow::RegistryFollow::default();
    };
    ctx.registries
        .get(&ObjectRef::new(&reference.name).within(&reference.namespace))
        .and_then(|registry| registry.0.as_ref().ok().map(follow::follow))
        .unwrap_or_default()
}

/// What one pass writes and when it looks again (the same shape as a Registry pass's outcome).
struct Outcome {
    /// The status to write (conditions and `observedGeneration` are filled in when written).
    status: ImagePolicyStatus,
    /// The conditions, merged with the current ones when written.
    conditions: Vec<DesiredCondition>,
    /// When to reconcile again.
    action: Action,
}

/// One pass: the only place an ImagePolicy's policies are applied and pruned and its status written.
async fn reconcile(
    policy: &ImagePolicy,
    ctx: &PolicyContext,
) -> Result<Action, PolicyReconcileError> {
    // An empty cache would read as "no endpoint" and "nothing deployed": a restart would flap the
    // status and re-apply every policy.
    tokio::time::timeout(CACHE_SYNC_WAIT, async {
        let _ = ctx.registries.wait_until_ready().await;
        ctx.base.stores.wait_until_ready().await;
    })
    .await
    .map_err(|_| PolicyReconcileError::CachesNotSynced(CACHE_SYNC_WAIT))?;
    let served = ctx.base.served.borrow().kyverno();
    let followed = registry_follow(policy, ctx);
    let observed = PolicyObserved {
        registry_endpoint: followed.endpoint,
        previous_endpoint: followed.previous_endpoint,
        rewrite: followed.rewrite,
        cluster_policy_served: served.cluster_policy,
        cel_policies_served: served.cel_policies,
        operator_namespace: ctx.base.settings.operator_namespace.clone(),
    };
    let (outcome, failure) = match render::image_policy(policy, &observed) {
        Err(error) => (Some(not_rendered(policy, &ctx.base.settings, error)?), None),
        Ok(rendered) => {
            let unwatched: Vec<String> = rendered
                .objects
                .iter()
                .filter(|o| !ctx.base.stores.watches(&o.resource))
                .map(|o| o.resource.kind.clone())
                .collect();
            let name = policy.name_any();
            let owner = Owner::image_policy(&name);
            let keep = previous_flavour(&rendered, &owner, ctx);
            let owned = apply::Owned {
                owner,
                id: &policy_id(policy),
                retention: Retention::Delete,
                // Sparing the previous flavour was decided from its successor's readiness, read
                // before the apply: then a change during the apply must still trigger.
                reports_after: keep.is_empty(),
                keep,
            };
            match apply::apply_and_prune(
                &ctx.base,
                &owned,
                &rendered.objects,
                "policies reconciled",
            )
            .await
            {
                Ok(()) => (Some(applied(&rendered, ctx, &unwatched)), None),
                Err(error) => (refused(policy, &error), Some(error)),
            }
        }
    };
    let written = match &outcome {
        Some(outcome) => write_status(policy, ctx, outcome).await,
        None => Ok(None),
    };
    if let Some(error) = failure {
        if let Err(status_error) = written {
            warn!(image_policy = %policy.name_any(), error = %status_error, "reporting a refused apply failed");
        }
        return Err(PolicyReconcileError::Apply(error));
    }
    let held = written?;
    let action = outcome
        .expect("a pass without failure has an outcome")
        .action;
    // A held first status is written when it is no longer progress or its hold ends: look again then.
    Ok(held.map_or(action, Action::requeue))
}

/// The outcome after a successful apply: the status lists what was rendered, Ready mirrors Kyverno's
/// readiness of every generated policy.
fn applied(rendered: &RenderedPolicy, ctx: &PolicyContext, unwatched: &[String]) -> Outcome {
    let settings = &ctx.base.settings;
    let (conditions, ready) = rendered_conditions(rendered, ctx, unwatched);
    Outcome {
        status: ImagePolicyStatus {
            engine: Some(rendered.engine),
            policies: rendered.policy_names.clone(),
            allowed_registries: rendered.allowed_registries.clone(),
            ..ImagePolicyStatus::default()
        },
        conditions: conditions.into(),
        // Unwatched kinds have no cache to compare with, so each pass re-applies: keep those rare.
        action: Action::requeue(if ready || !unwatched.is_empty() {
            settings.resync
        } else {
            settings.requeue_not_ready
        }),
    }
}

/// Conditions after a successful apply: Ready mirrors Kyverno's readiness of every generated policy.
fn rendered_conditions(
    rendered: &RenderedPolicy,
    ctx: &PolicyContext,
    unwatched: &[String],
) -> ([DesiredCondition; 3], bool) {
    let mut pending = Vec::new();
    let mut failing = Vec::new();
    for object in &rendered.objects {
        match policy_readiness(&object.resource, ctx.base.stores.live(object).as_ref()) {
            PolicyReadiness::Ready => {}
            PolicyReadiness::NotReady(message) => failing.push(message),
            PolicyReadiness::Pending(message) => pending.push(message),
        }
    }
    let mut problems = rendered.warnings.clone();
    // A kind just served is watched within moments; its first list reconciles everything again.
    pending.extend(
        unwatched
            .iter()
            .map(|kind| format!("{kind}: starting to watch it (Kyverno was just installed)")),
    );
    problems.extend(failing.iter().cloned());
    let ready = pending.is_empty() && failing.is_empty() && unwatched.is_empty();
    let allowed = if rendered.allowed_registries.is_empty() {
        String::new()
    } else {
        format!(
            "; images allowed from {}",
            rendered.allowed_registries.join(", ")
        )
    };
    let (reason, message) = if ready {
        (
            Reason::PoliciesReady,
            format!("{} Kyverno policies ready{allowed}", rendered.objects.len()),
        )
    } else if !failing.is_empty() {
        (Reason::PolicyNotReady, failing.join("; "))
    } else {
        (
            Reason::WaitingForKyverno,
            waiting_message(rendered, unwatched),
        )
    };
    let progress = if pending.is_empty() {
        String::new()
    } else {
        waiting_message(rendered, unwatched)
    };
    let conditions = [
        DesiredCondition::new(condition::READY, ready, reason, message),
        DesiredCondition::new(
            condition::PROGRESSING,
            !pending.is_empty(),
            if pending.is_empty() {
                Reason::Reconciled
            } else {
                Reason::WaitingForKyverno
            },
            progress,
        ),
        DesiredCondition::new(
            condition::DEGRADED,
            !problems.is_empty(),
            if problems.is_empty() {
                Reason::AsExpected
            } else if !failing.is_empty() {
                Reason::PolicyNotReady
            } else {
                Reason::Warnings
            },
            problems.join("; "),
        ),
    ];
    (conditions, ready)
}

/// While Kyverno has not reported every generated policy ready: the same words from creation until
/// Ready (every generated policy named, not only those still pending), so each policy Kyverno
/// reports ready or first caches costs no status write of its own (issue 17: about one write per
/// ImagePolicy).
fn waiting_message(rendered: &RenderedPolicy, unwatched: &[String]) -> String {
    let policies: Vec<String> = rendered
        .objects
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o.resource.kind,
                o.object.metadata.name.as_deref().unwrap_or_default()
            )
        })
        .collect();
    let mut message = format!(
        "waiting for Kyverno to report {} ready",
        policies.join(", ")
    );
    for kind in unwatched {
        message.push_str(&format!(
            "; {kind}: starting to watch it (Kyverno was just installed)"
        ));
    }
    message
}

/// Live policies of the other flavour (the engine changed, e.g. `Auto` moving to CEL once Kyverno
/// serves it) that the prune spares until Kyverno reports every newly rendered policy ready, so the
/// cluster is never without a policy in between. Nothing is kept once the new flavour is ready.
fn previous_flavour(
    rendered: &RenderedPolicy,
    owner: &Owner<'_>,
    ctx: &PolicyContext,
) -> Vec<ChildKey> {
    let stores = &ctx.base.stores;
    let new_ready = rendered.objects.iter().all(|object| {
        policy_readiness(&object.resource, stores.live(object).as_ref()) == PolicyReadiness::Ready
    });
    if new_ready {
        return Vec::new();
    }
    let rendered_kinds: Vec<&str> = rendered
        .objects
        .iter()
        .map(|o| o.resource.kind.as_str())
        .collect();
    stores
        .labelled(&owner.selector_labels())
        .into_iter()
        .filter(|(resource, _)| !rendered_kinds.contains(&resource.kind.as_str()))
        .map(|(resource, live)| ChildKey::live(&resource, &live))
        .collect()
}

/// Render refused: the outcome reports why; nothing is applied or pruned. A render error that is not
/// the user's (a bug) is returned as the pass's error and writes no status.
fn not_rendered(
    policy: &ImagePolicy,
    settings: &Settings,
    error: RenderError,
) -> Result<Outcome, PolicyReconcileError> {
    let Some(reason) = error.reason() else {
        return Err(PolicyReconcileError::Render(error));
    };
    let (message, action) = match &error {
        RenderError::Invalid(errors) => (errors.to_string(), Action::await_change()),
        RenderError::KyvernoNotInstalled(what) => (
            format!("{what}; {INSTALL_KYVERNO}"),
            // Kyverno's CRDs appearing reconciles every ImagePolicy (see `discovery`).
            Action::requeue(settings.resync),
        ),
        RenderError::NoAllowedRegistries => (
            match &policy.spec.registry_ref {
                Some(r) => format!(
                    "spec.rules.restrictRegistries: Registry {}/{} has no status.endpoint yet",
                    r.namespace, r.name
                ),
                None => "spec.rules.restrictRegistries: no registry is allowed".to_string(),
            },
            Action::requeue(settings.requeue_not_ready),
        ),
        RenderError::InvalidEndpoint(endpoint) => (
            format!("the Registry's status.endpoint {endpoint:?} is not a registry host"),
            Action::requeue(settings.resync),
        ),
        RenderError::Serialize(_) | RenderError::Yaml(_) => {
            return Err(PolicyReconcileError::Render(error));
        }
    };
    info!(image_policy = %policy.name_any(), %reason, %message, "nothing applied");
    // Waiting is progress; a missing Kyverno or a bad endpoint is the cluster's fault (Degraded); an
    // invalid spec is the user's, as for Registries.
    let waiting = reason.meaning() == Meaning::Progressing;
    let degraded = reason.meaning() == Meaning::Degraded;
    let conditions = [
        DesiredCondition::new(condition::READY, false, reason, message.clone()),
        DesiredCondition::new(
            condition::PROGRESSING,
            waiting,
            reason,
            if waiting { message.as_str() } else { "" },
        ),
        DesiredCondition::new(
            condition::DEGRADED,
            degraded,
            reason,
            if degraded { message.as_str() } else { "" },
        ),
    ];
    let current = policy.status().cloned().unwrap_or_default();
    // Keep what is still deployed in the status: nothing was applied, nothing pruned.
    Ok(Outcome {
        status: ImagePolicyStatus {
            engine: current.engine,
            policies: current.policies,
            allowed_registries: current.allowed_registries,
            ..ImagePolicyStatus::default()
        },
        conditions: conditions.into(),
        action,
    })
}

/// A generated policy the API server refused shows in the status (Ready=False, reason `ApplyFailed`,
/// the policy and the server's message; what is still deployed stays listed); the pass returns the
/// error either way, so it backs off. `None` for a failure that is not a refusal (nothing written).
fn refused(policy: &ImagePolicy, error: &ApplyError) -> Option<Outcome> {
    let ApplyError::Refused(refusal) = error else {
        return None;
    };
    let current = policy.status().cloned().unwrap_or_default();
    Some(Outcome {
        conditions: refusal.conditions(&current.conditions),
        status: current,
        action: Action::await_change(),
    })
}

/// Write the status if it changed (see [`status_write::write_status`]); `Some(left)`: a fresh
/// ImagePolicy's first status held back for `left`.
async fn write_status(
    policy: &ImagePolicy,
    ctx: &PolicyContext,
    outcome: &Outcome,
) -> Result<Option<Duration>, PolicyReconcileError> {
    let api: Api<ImagePolicy> = Api::all(ctx.base.client.clone());
    status_write::write_status(
        &api,
        &ctx.base.recorder,
        policy,
        outcome.status.clone(),
        &outcome.conditions,
        ctx.base.settings.requeue_not_ready,
    )
    .await
    .map_err(PolicyReconcileError::Status)
}
