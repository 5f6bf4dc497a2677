//! What a switch pass reports, before the flip (Pending → Copying → Freezing → CatchingUp →
//! Verifying, or Failed) and after it (Switched → Grace → Retired): the status, its conditions and
//! when to look again. Pure: the pod count is read by the controller and passed in; writes nothing.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::runtime::controller::Action;

use super::migration::MigrationStep;
use super::outcome::{Outcome, Steady, status_base, steady, waiting_on};
use crate::crd::{
    CatchUpCounts, DEFAULT_MIGRATION_GRACE, MigrationPhase, MigrationStatus, Reason, Registry,
    RegistryMode, RegistryPhase, RegistryStatus, condition,
};
use crate::migrate::Report;
use crate::reconcile::children::ChildStores;
use crate::reconcile::context::Settings;
use crate::reconcile::status::DesiredCondition;
use crate::render::Rendered;
use crate::render::migration::JobKind;

/// A switch pass before the flip, after both sides were applied.
pub(super) struct Switching {
    pub(super) from: RegistryMode,
    pub(super) to: RegistryMode,
    /// The target side's render and why it is not ready yet.
    pub(super) target: Rendered,
    pub(super) target_waiting: Vec<String>,
    /// The side that still serves.
    pub(super) source: Rendered,
    /// What this pass does.
    pub(super) step: MigrationStep,
}

impl Switching {
    /// The Job whose counts the status reports: the one that finished in this pass.
    pub(super) fn finished_job(&self) -> Option<&str> {
        self.step.finished.as_ref().map(|(_, name)| name.as_str())
    }
}

/// A pass in the grace window, after both sides were applied.
pub(super) struct Grace {
    /// The side that serves now, reported as a steady pass.
    pub(super) steady: Steady,
    /// The side switched away from, still served read-only.
    pub(super) old_mode: RegistryMode,
    pub(super) old_host: String,
}

/// Running pods whose images name the old host, counted by the controller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct PodCount {
    pub(super) pods: u64,
    /// The first few, `namespace/name`.
    pub(super) examples: Vec<String>,
}

/// `spec.migration.grace` (validated by the schema; an unreadable value counts as the default).
pub(super) fn grace_of(registry: &Registry) -> Duration {
    let text = registry
        .spec
        .migration
        .as_ref()
        .and_then(|m| m.grace.clone())
        .unwrap_or_else(|| DEFAULT_MIGRATION_GRACE.to_string());
    if text == "0" {
        return Duration::ZERO;
    }
    humantime::parse_duration(&text)
        .unwrap_or_else(|_| humantime::parse_duration(DEFAULT_MIGRATION_GRACE).unwrap_or_default())
}

/// Whether the pods should be counted in this pass (never counted, or longer ago than the interval).
pub(super) fn pods_due(registry: &Registry, now: Timestamp, interval: Duration) -> bool {
    let counted = registry
        .status
        .as_ref()
        .and_then(|s| s.migration.as_ref())
        .and_then(|m| m.pods_counted_at.as_deref())
        .and_then(|t| t.parse::<Timestamp>().ok());
    counted.is_none_or(|at| {
        now.duration_since(at) >= SignedDuration::try_from(interval).unwrap_or_default()
    })
}

fn phase_reason(phase: MigrationPhase) -> Reason {
    match phase {
        MigrationPhase::Pending => Reason::ProvisioningTarget,
        MigrationPhase::Copying => Reason::Copying,
        MigrationPhase::Freezing => Reason::Freezing,
        MigrationPhase::CatchingUp => Reason::CatchingUp,
        MigrationPhase::Verifying => Reason::Verifying,
        MigrationPhase::Switched => Reason::Switched,
        MigrationPhase::Grace => Reason::Grace,
        MigrationPhase::Retired => Reason::Retired,
        MigrationPhase::Failed => Reason::MigrationFailed,
    }
}

/// A switch pass before the flip: the old registry serves (Ready follows it) until every tag is
/// copied and verified; then the endpoint and mode flip, and the grace window starts.
pub(super) fn switch(
    registry: &Registry,
    pass: Switching,
    report: Option<Report>,
    stores: &ChildStores,
    settings: &Settings,
    now: Timestamp,
) -> Outcome {
    let step = &pass.step;
    let serving_waiting = waiting_on(&pass.source, stores);
    let serving_ready = serving_waiting.is_empty();
    let flipped = step.flip;
    let failed = step.phase == MigrationPhase::Failed;
    let mut message = step.message.clone();
    if step.phase == MigrationPhase::Pending && !pass.target_waiting.is_empty() {
        message = format!("{message}: {}", pass.target_waiting.join("; "));
    }
    let reason = phase_reason(step.phase);
    let current = registry
        .status
        .as_ref()
        .and_then(|s| s.migration.clone())
        .filter(|m| {
            !matches!(
                m.phase,
                Some(MigrationPhase::Switched | MigrationPhase::Grace | MigrationPhase::Retired)
            )
        })
        .unwrap_or_default();
    let mut migration = MigrationStatus {
        phase: Some(step.phase),
        failed_phase: step.failed_phase,
        failed_attempts: Some(step.failed_attempts),
        message: Some(message.clone()),
        source: pass.source.endpoint.clone(),
        destination: pass.target.endpoint.clone(),
        from_mode: Some(pass.from),
        job_name: step
            .jobs
            .first()
            .map(|j| j.name().to_string())
            .or(current.job_name.clone()),
        source_frozen: step.source_frozen.or(current.source_frozen),
        ..current
    };
    if let (Some(report), Some((kind, _))) = (report, &step.finished) {
        match kind {
            JobKind::Copy => {
                migration.repositories = Some(report.repositories);
                migration.tags = Some(report.tags);
                migration.blobs_copied = Some(report.blobs_copied);
                migration.blobs_skipped = Some(report.blobs_skipped);
                migration.bytes_copied = Some(report.bytes_copied);
            }
            JobKind::CatchUp | JobKind::CopyAndVerify => {
                migration.catch_up = Some(CatchUpCounts {
                    tags: report.tags,
                    blobs_copied: report.blobs_copied,
                    bytes_copied: report.bytes_copied,
                });
            }
            JobKind::Verify => migration.tags = Some(report.tags),
        }
    }
    if flipped {
        let ends = now
            .checked_add(SignedDuration::try_from(grace_of(registry)).unwrap_or_default())
            .unwrap_or(now);
        migration.switched_at = Some(now.to_string());
        migration.grace_ends_at = Some(ends.to_string());
    }
    let (endpoint, mode, k3s_registries_yaml) = if flipped {
        (
            pass.target.endpoint.clone(),
            pass.to,
            pass.target.k3s_registries_yaml.clone(),
        )
    } else {
        (
            pass.source.endpoint.clone(),
            pass.from,
            pass.source.k3s_registries_yaml.clone(),
        )
    };
    let (ready_reason, ready_message) = if serving_ready || flipped {
        (
            Reason::Available,
            format!("serving at {}", endpoint.as_deref().unwrap_or("-")),
        )
    } else {
        (Reason::Provisioning, serving_waiting.join("; "))
    };
    let (degraded_reason, degraded_message) = if failed {
        (Reason::MigrationFailed, message.clone())
    } else {
        (Reason::AsExpected, String::new())
    };
    let mut conditions = vec![
        DesiredCondition::new(
            condition::READY,
            serving_ready || flipped,
            ready_reason,
            ready_message,
        ),
        DesiredCondition::new(condition::PROGRESSING, true, reason, message.clone()),
        DesiredCondition::new(
            condition::DEGRADED,
            failed,
            degraded_reason,
            degraded_message,
        ),
        DesiredCondition::new(condition::MIGRATING, true, reason, message),
    ];
    if let Some(frozen) = migration.source_frozen {
        let (frozen_reason, frozen_message) = if frozen {
            (Reason::Ready, "the old registry is read-only".to_string())
        } else {
            (
                Reason::FreezeUnsupported,
                step.freeze_unsupported
                    .clone()
                    .unwrap_or_else(|| "the old registry could not be made read-only".to_string()),
            )
        };
        conditions.push(DesiredCondition::new(
            condition::SOURCE_FROZEN,
            frozen,
            frozen_reason,
            frozen_message,
        ));
    }
    let status = RegistryStatus {
        phase: Some(if flipped {
            RegistryPhase::Ready
        } else if failed {
            RegistryPhase::Degraded
        } else {
            RegistryPhase::Migrating
        }),
        endpoint,
        mode: Some(mode),
        k3s_registries_yaml,
        harbor_version: pass
            .target
            .harbor_version
            .clone()
            .or(pass.source.harbor_version.clone())
            .or(status_base(registry).harbor_version),
        migration: Some(migration),
        ..status_base(registry)
    };
    let action = Action::requeue(step.requeue.unwrap_or(settings.requeue_not_ready));
    let switched = flipped.then(|| {
        format!(
            "now serving {:?} at {}; every tag copied and verified; the old registry stays served read-only until the grace window ends",
            pass.to,
            pass.target.endpoint.as_deref().unwrap_or("-")
        )
    });
    Outcome {
        status,
        conditions,
        action,
        switched,
    }
}

/// A pass after the flip: the new side serves (reported as a steady pass); both hosts stay served
/// and allowed until the window ends and no running pod uses the old host (or `spec.migration.force`);
/// then the old side is retired (the next pass prunes it, keeping its data under `Retain`).
pub(super) fn grace(
    registry: &Registry,
    pass: &Grace,
    count: Option<PodCount>,
    stores: &ChildStores,
    settings: &Settings,
    now: Timestamp,
) -> Outcome {
    let mut outcome = steady(registry, &pass.steady, stores, settings);
    let mut migration = registry
        .status
        .as_ref()
        .and_then(|s| s.migration.clone())
        .unwrap_or_default();
    if let Some(count) = count {
        migration.old_host_pods = Some(count.pods);
        migration.old_host_pod_examples = count.examples;
        migration.pods_counted_at = Some(now.to_string());
    }
    let ends = migration
        .grace_ends_at
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .unwrap_or(now);
    let window_over = now >= ends;
    let force = registry.spec.migration.as_ref().is_some_and(|m| m.force);
    let pods = migration.old_host_pods;
    let retire = window_over && (force || pods == Some(0));
    let pods_text = match pods {
        Some(0) => format!("no running pod uses {}", pass.old_host),
        Some(n) => format!(
            "{n} running pod(s) still use {} (e.g. {})",
            pass.old_host,
            migration.old_host_pod_examples.join(", ")
        ),
        None => format!("pods using {} not counted yet", pass.old_host),
    };
    let (phase, message, requeue) = if retire {
        (
            MigrationPhase::Retired,
            format!(
                "the old {:?} registry at {} is retired ({}){}",
                pass.old_mode,
                pass.old_host,
                pods_text,
                if force && pods != Some(0) {
                    "; forced by spec.migration.force"
                } else {
                    ""
                }
            ),
            Duration::from_millis(100),
        )
    } else {
        let until_end = Duration::try_from(ends.duration_since(now)).unwrap_or_default();
        let wait = if window_over {
            settings.pod_count_interval
        } else {
            until_end.min(settings.pod_count_interval)
        };
        let window = if window_over {
            format!("the grace window ended at {ends}")
        } else {
            format!(
                "both {} and the new host are served and allowed until {ends}",
                pass.old_host
            )
        };
        (
            MigrationPhase::Grace,
            format!("{window}; {pods_text}"),
            wait.max(Duration::from_secs(1)),
        )
    };
    migration.phase = Some(phase);
    migration.message = Some(message.clone());
    let reason = phase_reason(phase);
    let retired = phase == MigrationPhase::Retired;
    outcome
        .conditions
        .retain(|c| c.type_ != condition::PROGRESSING);
    if !retired {
        outcome.conditions.push(DesiredCondition::new(
            condition::PROGRESSING,
            true,
            reason,
            message.clone(),
        ));
    } else {
        outcome.conditions.push(DesiredCondition::new(
            condition::PROGRESSING,
            false,
            reason,
            message.clone(),
        ));
    }
    outcome.conditions.push(DesiredCondition::new(
        condition::MIGRATING,
        !retired,
        reason,
        message,
    ));
    outcome.status.migration = Some(migration);
    let next = if outcome.status.phase == Some(RegistryPhase::Ready) {
        requeue
    } else {
        requeue.min(settings.requeue_not_ready)
    };
    outcome.action = Action::requeue(next);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{MigrationSpec, RegistrySpec, Retention};

    fn registry(grace: Option<&str>) -> Registry {
        Registry::new(
            "platform",
            RegistrySpec {
                mode: RegistryMode::Harbor,
                host: Some("harbor.example.com".into()),
                k3d: None,
                harbor: None,
                retention: Retention::Retain,
                migration: Some(MigrationSpec {
                    grace: grace.map(str::to_string),
                    ..Default::default()
                }),
            },
        )
    }

    #[test]
    fn grace_reads_go_style_durations_and_zero() {
        assert_eq!(grace_of(&registry(None)), Duration::from_secs(24 * 3600));
        assert_eq!(grace_of(&registry(Some("0"))), Duration::ZERO);
        assert_eq!(grace_of(&registry(Some("90m"))), Duration::from_secs(5400));
        assert_eq!(
            grace_of(&registry(Some("1h30m"))),
            Duration::from_secs(5400)
        );
        assert_eq!(grace_of(&registry(Some("45s"))), Duration::from_secs(45));
    }

    #[test]
    fn pods_are_counted_at_most_once_a_minute() {
        let now: Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let mut r = registry(None);
        let minute = Duration::from_secs(60);
        assert!(pods_due(&r, now, minute), "never counted");
        r.status = Some(RegistryStatus {
            migration: Some(MigrationStatus {
                pods_counted_at: Some("2026-12-03T09:59:30Z".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(!pods_due(&r, now, minute));
        assert!(pods_due(
            &r,
            "2026-12-03T10:00:31Z".parse().unwrap(),
            minute
        ));
    }
}
