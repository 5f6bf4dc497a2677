//! The phases of a mode switch before the flip (Copying → Freezing → CatchingUp → Verifying): which
//! Job runs, where it reaches each side, its backoff after a failure, whether the old side is frozen,
//! and when the endpoint may flip, all decided from the recorded phase and the watch caches; plus
//! reading the counts a finished Job reports. Applies nothing itself.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::DynamicObject;
use tracing::warn;

use crate::crd::{MigrationPhase, Registry, RegistryMode};
use crate::reconcile::children::{ChildStores, readiness};
use crate::reconcile::context::{Context, backoff_delay};
use crate::render::migration::{
    self, JobKind, MigrationEndpoint, MigrationPlan, SecretCredentials,
};
use crate::render::{self, RenderError, Rendered, RenderedObject};

/// Where `migrate` reaches one side from inside the cluster, and its credentials: for Harbor, the
/// short-lived migration robot of the switch (see `robot`), never `admin`.
fn endpoint_of(registry: &Registry, mode: RegistryMode, rendered: &Rendered) -> MigrationEndpoint {
    match mode {
        RegistryMode::K3d => {
            let hosted = rendered
                .objects
                .iter()
                .any(|o| o.resource.kind == "Service");
            let host = if hosted {
                render::k3d_service_host(
                    &registry.name_any(),
                    &registry.namespace().unwrap_or_default(),
                )
            } else {
                rendered.endpoint.clone().unwrap_or_default()
            };
            MigrationEndpoint {
                mode,
                url: format!("http://{host}"),
                credentials: None,
                ca: None,
            }
        }
        // Harbor always serves TLS; with the generated certificate, the Job trusts the exported CA.
        RegistryMode::Harbor => MigrationEndpoint {
            mode,
            url: format!("https://{}", rendered.endpoint.clone().unwrap_or_default()),
            credentials: Some(SecretCredentials::robot(registry)),
            ca: rendered
                .secret_copies
                .first()
                .map(|copy| (copy.config_map.clone(), copy.key.clone())),
        },
    }
}

/// Where a switch stands before the flip, as its status recorded it: the phase to resume (the failed
/// one while `Failed`) and that phase's failed attempts. A record of an earlier, finished switch
/// (`Switched`, `Grace`, `Retired`) means this switch starts from the beginning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub(crate) stage: MigrationPhase,
    pub(crate) failed: bool,
    pub(crate) failed_attempts: u32,
}

/// Read [`Recorded`] from a Registry's status.
pub(crate) fn recorded(registry: &Registry) -> Recorded {
    let migration = registry.status.as_ref().and_then(|s| s.migration.as_ref());
    let failed_attempts = migration.and_then(|m| m.failed_attempts).unwrap_or(0);
    let fresh = Recorded {
        stage: MigrationPhase::Pending,
        failed: false,
        failed_attempts: 0,
    };
    match migration.and_then(|m| m.phase) {
        None | Some(MigrationPhase::Switched | MigrationPhase::Grace | MigrationPhase::Retired) => {
            fresh
        }
        Some(MigrationPhase::Failed) => Recorded {
            stage: migration
                .and_then(|m| m.failed_phase)
                .unwrap_or(MigrationPhase::Copying),
            failed: true,
            failed_attempts,
        },
        Some(stage) => Recorded {
            stage,
            failed: false,
            failed_attempts,
        },
    }
}

/// Whether the serving side is rendered read-only: from the freeze until the flip.
pub(crate) fn source_frozen(recorded: &Recorded) -> bool {
    matches!(
        recorded.stage,
        MigrationPhase::Freezing | MigrationPhase::CatchingUp | MigrationPhase::Verifying
    )
}

/// Where the freeze of the serving side stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Freeze {
    /// Read-only and rolled out (or, for Harbor, set through its API).
    Done,
    /// Not yet: the message says what it waits for.
    Pending(String),
    /// The serving side cannot be made read-only by the operator; the message says why.
    Unsupported(String),
}

/// The freeze of a k3d source from the watch cache: an adopted registry cannot be frozen; a hosted
/// one is frozen once its Deployment rolled out with distribution's read-only setting.
pub(super) fn k3d_freeze(source: &Rendered, stores: &ChildStores) -> Freeze {
    if source.adopted {
        return Freeze::Unsupported(
            "the adopted k3d registry runs outside the cluster and cannot be made read-only by the operator: \
             pushes to it after the bulk copy are picked up by the catch-up pass and by the final copy-and-verify before the flip"
                .to_string(),
        );
    }
    let Some(deployment) = source
        .objects
        .iter()
        .find(|o| o.resource.kind == "Deployment")
    else {
        return Freeze::Pending("the registry Deployment is not rendered".to_string());
    };
    let Some(live) = stores.live(deployment) else {
        return Freeze::Pending(format!(
            "Deployment {} not in the cache yet",
            deployment.name()
        ));
    };
    let env = live
        .data
        .pointer("/spec/template/spec/containers/0/env")
        .and_then(|e| e.as_array())
        .cloned()
        .unwrap_or_default();
    let read_only = env.iter().any(|e| e["name"] == render::READ_ONLY_ENV);
    let field = |pointer: &str| live.data.pointer(pointer).and_then(|v| v.as_i64());
    let wanted = field("/spec/replicas").unwrap_or(1);
    let updated = field("/status/updatedReplicas").unwrap_or(0);
    match readiness(&deployment.resource.kind, Some(&live)) {
        Some(Ok(())) if read_only && updated >= wanted => Freeze::Done,
        Some(Err(waiting)) => Freeze::Pending(format!("rolling out read-only: {waiting}")),
        _ => Freeze::Pending(format!(
            "rolling out read-only: Deployment {} {updated}/{wanted} replicas updated",
            deployment.name()
        )),
    }
}

/// What this pass does for a switch before the flip.
#[derive(Debug)]
pub(super) struct MigrationStep {
    /// Jobs to keep or create in this pass (a finished Job is kept until the status moved on, so a
    /// restart before the status write finds it again instead of running it twice).
    pub(super) jobs: Vec<RenderedObject>,
    /// Phase for `status.migration`.
    pub(super) phase: MigrationPhase,
    /// The phase that failed, while `phase` is `Failed`.
    pub(super) failed_phase: Option<MigrationPhase>,
    /// Failed attempts of the current phase.
    pub(super) failed_attempts: u32,
    /// Human-readable detail.
    pub(super) message: String,
    /// When to look again (`None`: the not-ready delay).
    pub(super) requeue: Option<Duration>,
    /// A Job finished in this pass: its kind and name (its counts go into the status).
    pub(super) finished: Option<(JobKind, String)>,
    /// Verified: the endpoint flips in this pass.
    pub(super) flip: bool,
    /// Whether the serving side was made read-only, once decided.
    pub(super) source_frozen: Option<bool>,
    /// The freeze is impossible (decided in this pass): worth a Warning Event.
    pub(super) freeze_unsupported: Option<String>,
}

impl MigrationStep {
    fn at(phase: MigrationPhase, failed_attempts: u32, message: String) -> Self {
        Self {
            jobs: Vec::new(),
            phase,
            failed_phase: None,
            failed_attempts,
            message,
            requeue: None,
            finished: None,
            flip: false,
            source_frozen: None,
            freeze_unsupported: None,
        }
    }
}

/// A status change the next pass acts on comes back at once (status changes pass no predicate).
const NEXT_PHASE: Duration = Duration::from_millis(100);

fn job_state(job: Option<&DynamicObject>) -> (bool, Option<Timestamp>) {
    let Some(job) = job else { return (false, None) };
    let succeeded = job
        .data
        .pointer("/status/succeeded")
        .and_then(|v| v.as_i64())
        .unwrap_or(0)
        >= 1;
    let failed_at = job
        .data
        .pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .and_then(|conditions| {
            conditions
                .iter()
                .find(|c| c["type"] == "Failed" && c["status"] == "True")
                .map(|c| {
                    c["lastTransitionTime"]
                        .as_str()
                        .and_then(|t| t.parse::<Timestamp>().ok())
                        .unwrap_or(Timestamp::UNIX_EPOCH)
                })
        });
    (succeeded, failed_at)
}

/// Everything the step of a switch reads.
pub(super) struct StepInput<'a> {
    pub(super) registry: &'a Registry,
    pub(super) from: (RegistryMode, &'a Rendered),
    pub(super) to: (RegistryMode, &'a Rendered),
    /// The target's children are ready.
    pub(super) target_ready: bool,
    /// The freeze of the serving side (looked at in `Freezing` only).
    pub(super) freeze: Freeze,
    pub(super) stores: &'a ChildStores,
    pub(super) image: &'a str,
    pub(super) backoff: (Duration, Duration),
    pub(super) now: Timestamp,
}

/// Decide this pass of a switch before the flip: provision, copy, freeze, catch up, verify, flip;
/// a failed Job is retried (a new attempt, named by its number) after its backoff.
pub(super) fn migration_step(input: &StepInput<'_>) -> Result<MigrationStep, RenderError> {
    let recorded = recorded(input.registry);
    let frozen_before = input
        .registry
        .status
        .as_ref()
        .and_then(|s| s.migration.as_ref())
        .and_then(|m| m.source_frozen);
    match recorded.stage {
        MigrationPhase::Pending if !input.target_ready => Ok(MigrationStep::at(
            MigrationPhase::Pending,
            0,
            format!("provisioning {:?}", input.to.0),
        )),
        MigrationPhase::Pending | MigrationPhase::Copying => job_pass(
            input,
            &recorded,
            JobKind::Copy,
            MigrationPhase::Copying,
            MigrationPhase::Freezing,
        ),
        MigrationPhase::Freezing => Ok(match &input.freeze {
            Freeze::Done => {
                let mut step = MigrationStep::at(
                    MigrationPhase::CatchingUp,
                    0,
                    "the old registry is read-only; catching up".to_string(),
                );
                step.source_frozen = Some(true);
                step.requeue = Some(NEXT_PHASE);
                step
            }
            Freeze::Pending(waiting) => {
                MigrationStep::at(MigrationPhase::Freezing, 0, waiting.clone())
            }
            Freeze::Unsupported(why) => {
                let mut step = MigrationStep::at(MigrationPhase::CatchingUp, 0, why.clone());
                step.source_frozen = Some(false);
                step.freeze_unsupported = Some(why.clone());
                step.requeue = Some(NEXT_PHASE);
                step
            }
        }),
        MigrationPhase::CatchingUp => job_pass(
            input,
            &recorded,
            JobKind::CatchUp,
            MigrationPhase::CatchingUp,
            MigrationPhase::Verifying,
        ),
        _ => {
            let kind = if frozen_before == Some(false) {
                JobKind::CopyAndVerify
            } else {
                JobKind::Verify
            };
            let mut step = job_pass(
                input,
                &recorded,
                kind,
                MigrationPhase::Verifying,
                MigrationPhase::Switched,
            )?;
            if step.phase == MigrationPhase::Switched {
                if input.target_ready {
                    step.flip = true;
                    step.message = "every tag copied and verified; the endpoint flipped".into();
                } else {
                    // Verified, but the new side is not serving right now: hold the flip.
                    step.phase = MigrationPhase::Verifying;
                    step.finished = None;
                    step.requeue = None;
                    step.message = format!(
                        "verified; waiting for {:?} to be ready before the flip",
                        input.to.0
                    );
                }
            }
            Ok(step)
        }
    }
}

/// One Job phase: keep the running attempt, advance on success, record a failure, or start the
/// next attempt once the previous failure's backoff has passed.
fn job_pass(
    input: &StepInput<'_>,
    recorded: &Recorded,
    kind: JobKind,
    phase: MigrationPhase,
    next: MigrationPhase,
) -> Result<MigrationStep, RenderError> {
    let registry = input.registry;
    // A record of an earlier phase (Pending) has no failures of this one.
    let failed_before = if recorded.stage == phase {
        recorded.failed_attempts
    } else {
        0
    };
    let make = |attempt: u32| {
        migration::job(
            registry,
            &MigrationPlan {
                kind,
                from: endpoint_of(registry, input.from.0, input.from.1),
                to: endpoint_of(registry, input.to.0, input.to.1),
                attempt,
                image: input.image.to_string(),
            },
        )
    };
    let lookup = |attempt: u32| {
        let job = make(attempt)?;
        let live = input.stores.live(&job);
        Ok::<_, RenderError>((job, live))
    };
    let (current, live) = lookup(failed_before + 1)?;
    let name = current.name().to_string();
    let (succeeded, failed_at) = job_state(live.as_ref());
    if succeeded {
        let mut step = MigrationStep::at(next, 0, format!("{} finished", name));
        step.jobs = vec![current];
        step.finished = Some((kind, name));
        step.requeue = Some(NEXT_PHASE);
        return Ok(step);
    }
    if failed_at.is_some() {
        let failed = failed_before + 1;
        let mut step = MigrationStep::at(
            MigrationPhase::Failed,
            failed,
            format!(
                "{phase:?}: Job {name} failed (attempt {failed}); the old registry keeps serving; retrying with backoff"
            ),
        );
        step.failed_phase = Some(phase);
        step.jobs = vec![current];
        step.finished = Some((kind, name));
        step.requeue = Some(backoff_delay(input.backoff.0, input.backoff.1, failed));
        return Ok(step);
    }
    if live.is_none() && failed_before > 0 {
        let (previous, previous_live) = lookup(failed_before)?;
        if let (_, Some(failed_at)) = job_state(previous_live.as_ref()) {
            let wait = backoff_delay(input.backoff.0, input.backoff.1, failed_before);
            let elapsed =
                Duration::try_from(input.now.duration_since(failed_at)).unwrap_or_default();
            if elapsed < wait {
                let mut step = MigrationStep::at(
                    MigrationPhase::Failed,
                    failed_before,
                    format!(
                        "{phase:?}: attempt {failed_before} failed; next attempt in {:?}",
                        wait - elapsed
                    ),
                );
                step.failed_phase = Some(phase);
                step.jobs = vec![previous];
                step.requeue = Some(wait - elapsed);
                return Ok(step);
            }
        }
    }
    let what = match kind {
        JobKind::Copy => "copying every image",
        JobKind::CatchUp => "copying what changed since the bulk copy",
        JobKind::Verify => "comparing every tag's digest on both sides",
        JobKind::CopyAndVerify => "copying what is new and comparing every tag's digest",
    };
    let mut step = MigrationStep::at(
        phase,
        failed_before,
        format!("{what} (Job {name}, attempt {})", failed_before + 1),
    );
    step.jobs = vec![current];
    Ok(step)
}

/// The counts a finished migration Job left in its termination message; `None` when unavailable
/// (counts are informational, never a reason to fail).
pub(super) async fn job_report(
    ctx: &Context,
    namespace: &str,
    job: &str,
) -> Option<crate::migrate::Report> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::registry::plan::tests::registry;

    #[test]
    fn first_step_creates_attempt_one_from_k3d_service_to_harbor_with_robot_credentials() {
        let registry = registry(RegistryMode::Harbor, Some(RegistryMode::K3d), false);
        let source = Rendered {
            objects: vec![
                RenderedObject::from_typed(k8s_openapi::api::core::v1::Service {
                    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                        name: Some("platform-distribution".into()),
                        namespace: Some("registry".into()),
                        ..Default::default()
                    },
                    ..Default::default()
                })
                .unwrap(),
            ],
            endpoint: Some("platform-distribution.registry.svc.cluster.local:5000".into()),
            ..Default::default()
        };
        let target = Rendered {
            endpoint: Some("harbor.ai-platform.localhost".into()),
            ..Default::default()
        };
        let stores = ChildStores::default();
        let step = migration_step(&StepInput {
            registry: &registry,
            from: (RegistryMode::K3d, &source),
            to: (RegistryMode::Harbor, &target),
            target_ready: true,
            freeze: Freeze::Pending(String::new()),
            stores: &stores,
            image: "ghcr.io/aisp/registry-operator:0.1.0",
            backoff: (Duration::from_secs(1), Duration::from_secs(60)),
            now: Timestamp::now(),
        })
        .unwrap();
        assert_eq!(step.phase, MigrationPhase::Copying);
        assert_eq!(step.jobs[0].name(), "platform-migrate-1");
        let args = step.jobs[0].object.data["spec"]["template"]["spec"]["containers"][0]["args"]
            .to_string();
        assert!(args.contains("--no-verify"), "{args}");
        assert!(
            args.contains("http://platform-distribution.registry.svc.cluster.local:5000"),
            "{args}"
        );
        assert!(
            args.contains("https://harbor.ai-platform.localhost"),
            "{args}"
        );
        let env = step.jobs[0].object.data["spec"]["template"]["spec"]["containers"][0]["env"]
            .to_string();
        assert!(
            env.contains(r#""key":"username","name":"platform-migration-robot""#),
            "{env}"
        );
        assert!(!env.contains("admin"), "never admin into Harbor: {env}");
    }
}
