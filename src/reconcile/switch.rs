//! A mode switch (K3d → Harbor, or back with `allowDowngrade`): which mode serves, the migration Job
//! attempts with backoff, and when the endpoint may flip. Decides; applies nothing itself.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::DynamicObject;

use super::children::ChildStores;
use super::context::backoff_delay;
use crate::crd::{MigrationPhase, Registry, RegistryMode};
use crate::render::migration::{self, MigrationEndpoint, MigrationPlan};
use crate::render::{self, RenderError, Rendered, RenderedObject};

/// What the spec asks relative to what serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The serving mode is the spec's mode.
    Steady,
    /// Harbor → K3d without `spec.migration.allowDowngrade`: keep serving Harbor.
    DowngradeRefused,
    /// Copy from `from` to `to`, then flip.
    Switch {
        from: RegistryMode,
        to: RegistryMode,
    },
}

/// The mode that serves images now: `status.mode`, or the spec's mode for a new Registry.
pub fn serving_mode(registry: &Registry) -> RegistryMode {
    registry
        .status
        .as_ref()
        .and_then(|s| s.mode)
        .unwrap_or(registry.spec.mode)
}

/// Decide the plan for a Registry.
pub fn plan(registry: &Registry) -> Plan {
    let serving = serving_mode(registry);
    let wanted = registry.spec.mode;
    let downgrade_allowed = registry
        .spec
        .migration
        .as_ref()
        .is_some_and(|m| m.allow_downgrade);
    match (serving, wanted) {
        (a, b) if a == b => Plan::Steady,
        (RegistryMode::Harbor, RegistryMode::K3d) if !downgrade_allowed => Plan::DowngradeRefused,
        (from, to) => Plan::Switch { from, to },
    }
}

/// The Registry as it would be in `mode` (for rendering the side that serves or is the target).
pub fn with_mode(registry: &Registry, mode: RegistryMode) -> Registry {
    let mut copy = registry.clone();
    copy.spec.mode = mode;
    copy
}

/// The Registry as the mode that serves now: that mode, at the host it serves at (`spec.host` may
/// already name the target, e.g. Harbor's host, while the old registry keeps serving).
pub fn as_serving(registry: &Registry) -> Registry {
    let mut copy = with_mode(registry, serving_mode(registry));
    if let Some(endpoint) = registry.status.as_ref().and_then(|s| s.endpoint.clone()) {
        copy.spec.host = Some(endpoint);
    }
    copy
}

/// Where `migrate` reaches one side from inside the cluster, and its credentials.
fn endpoint_of(registry: &Registry, mode: RegistryMode, rendered: &Rendered) -> MigrationEndpoint {
    match mode {
        RegistryMode::K3d => {
            let hosted = rendered
                .objects
                .iter()
                .any(|o| o.resource.kind == "Service");
            let host = if hosted {
                format!(
                    "{}-distribution.{}.svc.cluster.local:5000",
                    registry.name_any(),
                    registry.namespace().unwrap_or_default()
                )
            } else {
                rendered.endpoint.clone().unwrap_or_default()
            };
            MigrationEndpoint {
                url: format!("http://{host}"),
                admin_password: None,
            }
        }
        RegistryMode::Harbor => {
            let tls = registry
                .spec
                .harbor
                .as_ref()
                .and_then(|h| h.expose.as_ref())
                .is_some_and(|e| e.tls_secret_name.is_some());
            let scheme = if tls { "https" } else { "http" };
            MigrationEndpoint {
                url: format!(
                    "{scheme}://{}",
                    rendered.endpoint.clone().unwrap_or_default()
                ),
                admin_password: Some(render::harbor_admin_password_ref(registry)),
            }
        }
    }
}

/// Where the copy stands after looking at the Jobs.
#[derive(Debug)]
pub struct MigrationStep {
    /// The Job to keep or create in this pass.
    pub job: RenderedObject,
    /// Phase for `status.migration`.
    pub phase: MigrationPhase,
    /// Failed attempts so far.
    pub failed_attempts: u32,
    /// Every tag is copied and verified: the endpoint may flip.
    pub succeeded: bool,
    /// Human-readable detail.
    pub message: String,
    /// When to look again.
    pub requeue: Option<Duration>,
}

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

/// Decide the migration Job of this pass (the target is Ready): keep the running one, flip on
/// success, record a failure, or start the next attempt once its backoff has passed.
#[allow(clippy::too_many_arguments)]
pub fn migration_step(
    registry: &Registry,
    from: (RegistryMode, &Rendered),
    to: (RegistryMode, &Rendered),
    stores: &ChildStores,
    image: &str,
    backoff: (Duration, Duration),
    now: Timestamp,
) -> Result<MigrationStep, RenderError> {
    let failed_before = registry
        .status
        .as_ref()
        .and_then(|s| s.migration.as_ref())
        .and_then(|m| m.failed_attempts)
        .unwrap_or(0);
    let make = |attempt: u32| {
        migration::job(
            registry,
            &MigrationPlan {
                from: endpoint_of(registry, from.0, from.1),
                to: endpoint_of(registry, to.0, to.1),
                attempt,
                image: image.to_string(),
            },
        )
    };
    let lookup = |attempt: u32| {
        let job = make(attempt)?;
        let live = stores.live(&job);
        Ok::<_, RenderError>((job, live))
    };
    let (current, live) = lookup(failed_before + 1)?;
    let (succeeded, failed_at) = job_state(live.as_ref());
    if succeeded {
        return Ok(MigrationStep {
            job: current,
            phase: MigrationPhase::Succeeded,
            failed_attempts: failed_before,
            succeeded: true,
            message: "every tag copied and verified".into(),
            requeue: None,
        });
    }
    if failed_at.is_some() {
        let failed = failed_before + 1;
        return Ok(MigrationStep {
            job: current,
            phase: MigrationPhase::Failed,
            failed_attempts: failed,
            succeeded: false,
            message: format!(
                "migration Job {} failed (attempt {failed}); the old registry keeps serving; retrying with backoff",
                current_name(registry, failed)
            ),
            requeue: Some(backoff_delay(backoff.0, backoff.1, failed)),
        });
    }
    if live.is_none() && failed_before > 0 {
        // Start the next attempt only once the previous failure's backoff has passed.
        let (previous, previous_live) = lookup(failed_before)?;
        if let (_, Some(failed_at)) = job_state(previous_live.as_ref()) {
            let wait = backoff_delay(backoff.0, backoff.1, failed_before);
            let elapsed = Duration::try_from(now.duration_since(failed_at)).unwrap_or_default();
            if elapsed < wait {
                return Ok(MigrationStep {
                    job: previous,
                    phase: MigrationPhase::Failed,
                    failed_attempts: failed_before,
                    succeeded: false,
                    message: format!(
                        "attempt {} failed; next attempt in {:?}",
                        failed_before,
                        wait - elapsed
                    ),
                    requeue: Some(wait - elapsed),
                });
            }
        }
    }
    Ok(MigrationStep {
        job: current,
        phase: MigrationPhase::Running,
        failed_attempts: failed_before,
        succeeded: false,
        message: format!("copying images (attempt {})", failed_before + 1),
        requeue: None,
    })
}

fn current_name(registry: &Registry, attempt: u32) -> String {
    migration::job_name(registry, attempt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{MigrationSpec, MigrationStatus, RegistrySpec, RegistryStatus, Retention};

    fn registry(
        spec_mode: RegistryMode,
        serving: Option<RegistryMode>,
        allow_downgrade: bool,
    ) -> Registry {
        let mut registry = Registry::new(
            "platform",
            RegistrySpec {
                mode: spec_mode,
                host: Some("harbor.ai-platform.localhost".into()),
                k3d: None,
                harbor: None,
                retention: Retention::Retain,
                migration: Some(MigrationSpec {
                    allow_downgrade,
                    ..Default::default()
                }),
            },
        );
        registry.metadata.namespace = Some("registry".into());
        registry.status = Some(RegistryStatus {
            mode: serving,
            migration: Some(MigrationStatus::default()),
            ..Default::default()
        });
        registry
    }

    #[test]
    fn plans_follow_serving_mode_and_downgrade_flag() {
        assert_eq!(
            plan(&registry(RegistryMode::K3d, None, false)),
            Plan::Steady
        );
        assert_eq!(
            plan(&registry(
                RegistryMode::Harbor,
                Some(RegistryMode::Harbor),
                false
            )),
            Plan::Steady
        );
        assert_eq!(
            plan(&registry(
                RegistryMode::Harbor,
                Some(RegistryMode::K3d),
                false
            )),
            Plan::Switch {
                from: RegistryMode::K3d,
                to: RegistryMode::Harbor
            }
        );
        assert_eq!(
            plan(&registry(
                RegistryMode::K3d,
                Some(RegistryMode::Harbor),
                false
            )),
            Plan::DowngradeRefused
        );
        assert_eq!(
            plan(&registry(
                RegistryMode::K3d,
                Some(RegistryMode::Harbor),
                true
            )),
            Plan::Switch {
                from: RegistryMode::Harbor,
                to: RegistryMode::K3d
            }
        );
    }

    #[test]
    fn first_step_creates_attempt_one_from_k3d_service_to_harbor_with_admin_credentials() {
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
        let step = migration_step(
            &registry,
            (RegistryMode::K3d, &source),
            (RegistryMode::Harbor, &target),
            &ChildStores::default(),
            "ghcr.io/aisp/registry-operator:0.1.0",
            (Duration::from_secs(1), Duration::from_secs(60)),
            Timestamp::now(),
        )
        .unwrap();
        assert_eq!(step.phase, MigrationPhase::Running);
        assert_eq!(step.job.name(), "platform-migrate-1");
        let args =
            step.job.object.data["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
        assert!(
            args.contains("http://platform-distribution.registry.svc.cluster.local:5000"),
            "{args}"
        );
        assert!(
            args.contains("http://harbor.ai-platform.localhost"),
            "{args}"
        );
    }
}
