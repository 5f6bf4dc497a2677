//! The steps of a Harbor version change, after each pass's apply: read-only on (through Harbor's
//! API) → the pre-upgrade database Backup completes (when backups are configured) → core at the new
//! version is ready (it migrates the schema) → every other component is ready → read-only off. Decides
//! the next step from the watch caches (pure) and makes the two read-only calls; renders nothing.

use std::time::Duration;

use kube::runtime::controller::Action;

use super::harbor_api;
use super::outcome::{Outcome, Steady, steady, waiting_on};
use crate::crd::{Reason, Registry, UpgradeStatus, UpgradeStep, condition};
use crate::reconcile::children::{ChildStores, readiness};
use crate::reconcile::context::Context;
use crate::reconcile::status::DesiredCondition;
use crate::render::{self, Rendered};

/// A pass of an upgrade, after its apply.
pub(super) struct Upgrading {
    pub(super) steady: Steady,
    pub(super) state: UpgradeStatus,
}

/// Where a step stands: done (the next state, or `None` when the upgrade is over), or waiting.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    Step(Option<UpgradeStatus>),
    Wait(String),
}

fn after(state: &UpgradeStatus, step: UpgradeStep) -> Next {
    Next::Step(Some(UpgradeStatus {
        step,
        message: None,
        ..state.clone()
    }))
}

/// The next step of the cache-driven steps (backup, core, components).
pub(super) fn next_step(
    registry: &Registry,
    state: &UpgradeStatus,
    rendered: &Rendered,
    stores: &ChildStores,
) -> Next {
    match state.step {
        UpgradeStep::ReadOnly | UpgradeStep::LeavingReadOnly => {
            Next::Wait("Harbor's read-only setting".to_string())
        }
        UpgradeStep::BackingUp => {
            let Some(backup) = rendered
                .objects
                .iter()
                .find(|o| o.resource.kind == "Backup")
            else {
                return after(state, UpgradeStep::Core);
            };
            let phase = stores.live(backup).and_then(|live| {
                live.data
                    .pointer("/status/phase")?
                    .as_str()
                    .map(str::to_string)
            });
            match phase.as_deref() {
                Some("completed") => after(state, UpgradeStep::Core),
                Some("failed") => Next::Wait(format!(
                    "Backup {} failed: see `kubectl describe backup {}`; delete it to take a new one, or set spec.harbor.version back",
                    backup.name(),
                    backup.name()
                )),
                other => Next::Wait(format!(
                    "Backup {} {}",
                    backup.name(),
                    other.unwrap_or("not started yet")
                )),
            }
        }
        UpgradeStep::Core => {
            let core_name =
                render::harbor_component_name(&kube::ResourceExt::name_any(registry), "core");
            let core = rendered
                .objects
                .iter()
                .find(|o| o.resource.kind == "Deployment" && o.name() == core_name);
            match core.map(|core| readiness(&core.resource.kind, stores.live(core).as_ref())) {
                Some(Some(Err(waiting))) => Next::Wait(format!("core: {waiting}")),
                _ => after(state, UpgradeStep::Components),
            }
        }
        UpgradeStep::Components => {
            let waiting = waiting_on(rendered, stores);
            if waiting.is_empty() {
                after(state, UpgradeStep::LeavingReadOnly)
            } else {
                Next::Wait(waiting.join("; "))
            }
        }
    }
}

/// Run this pass's step and report: the steady outcome (Ready follows the children) with the
/// upgrade's state, its step as `Progressing`'s message, and Harbor's refusal as `Degraded`.
pub(super) async fn report(registry: &Registry, ctx: &Context, pass: &Upgrading) -> Outcome {
    let state = &pass.state;
    let (next, problem) = match state.step {
        UpgradeStep::ReadOnly => match harbor_api::set_read_only(registry, ctx, true).await {
            Ok(_) => {
                let backup = registry
                    .spec
                    .harbor
                    .as_ref()
                    .and_then(|h| h.database.as_ref())
                    .is_some_and(|d| d.managed.is_some() && d.backup.is_some());
                let step = if backup {
                    UpgradeStep::BackingUp
                } else {
                    UpgradeStep::Core
                };
                (after(state, step), None)
            }
            Err(message) => (
                Next::Wait("making Harbor read-only".to_string()),
                Some(message),
            ),
        },
        UpgradeStep::LeavingReadOnly => {
            let keep = registry
                .spec
                .harbor
                .as_ref()
                .and_then(|h| h.read_only)
                .unwrap_or(false);
            match harbor_api::set_read_only(registry, ctx, keep).await {
                Ok(_) => (Next::Step(None), None),
                Err(message) => (
                    Next::Wait("lifting Harbor's read-only mode".to_string()),
                    Some(message),
                ),
            }
        }
        _ => (
            next_step(registry, state, &pass.steady.rendered, &ctx.stores),
            None,
        ),
    };
    outcome(registry, pass, next, problem, ctx)
}

fn outcome(
    registry: &Registry,
    pass: &Upgrading,
    next: Next,
    problem: Option<String>,
    ctx: &Context,
) -> Outcome {
    let mut outcome = steady(registry, &pass.steady, &ctx.stores, &ctx.settings);
    let state = &pass.state;
    let (upgrade, message, requeue) = match next {
        Next::Step(Some(next)) => {
            let message = format!(
                "upgrading Harbor {} → {}: {:?} done, next {:?}",
                state.from, state.to, state.step, next.step
            );
            (Some(next), message, Duration::from_millis(100))
        }
        Next::Step(None) => (
            None,
            format!("Harbor upgraded {} → {}", state.from, state.to),
            Duration::from_millis(100),
        ),
        Next::Wait(waiting) => {
            let message = format!(
                "upgrading Harbor {} → {}, step {:?}: waiting for {waiting}",
                state.from, state.to, state.step
            );
            (
                Some(UpgradeStatus {
                    message: Some(waiting),
                    ..state.clone()
                }),
                message,
                ctx.settings.requeue_not_ready,
            )
        }
    };
    let upgrading = upgrade.is_some();
    outcome.status.upgrade = upgrade;
    outcome.conditions.retain(|c| {
        c.type_ != condition::PROGRESSING && (problem.is_none() || c.type_ != condition::DEGRADED)
    });
    if upgrading {
        outcome.conditions.push(DesiredCondition::new(
            condition::PROGRESSING,
            true,
            Reason::Upgrading,
            message,
        ));
    } else {
        outcome.conditions.push(DesiredCondition::new(
            condition::PROGRESSING,
            false,
            Reason::Reconciled,
            message,
        ));
    }
    if let Some(problem) = problem {
        outcome.conditions.push(DesiredCondition::new(
            condition::DEGRADED,
            true,
            Reason::HarborUnavailable,
            problem,
        ));
    }
    outcome.action = Action::requeue(requeue);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_backup_object_the_backup_step_is_skipped() {
        let state = UpgradeStatus {
            from: "2.14.0".into(),
            to: "2.15.2".into(),
            step: UpgradeStep::BackingUp,
            message: None,
        };
        let registry = Registry::new(
            "platform",
            serde_json::from_value(serde_json::json!({"mode": "Harbor", "host": "h.example.com"}))
                .unwrap(),
        );
        let next = next_step(
            &registry,
            &state,
            &Rendered::default(),
            &ChildStores::default(),
        );
        assert_eq!(
            next,
            Next::Step(Some(UpgradeStatus {
                step: UpgradeStep::Core,
                ..state
            }))
        );
    }
}
