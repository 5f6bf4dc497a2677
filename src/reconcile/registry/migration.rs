//! The migration of a mode switch: where the copy Job reaches each side, which attempt runs, its
//! backoff after a failure, and when the endpoint may flip (decided from the Job in the watch cache);
//! plus reading the counts a finished Job reports. Applies nothing itself.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::DynamicObject;
use tracing::warn;

use crate::crd::{MigrationPhase, Registry, RegistryMode};
use crate::reconcile::children::ChildStores;
use crate::reconcile::context::{Context, backoff_delay};
use crate::render::migration::{self, MigrationEndpoint, MigrationPlan};
use crate::render::{self, RenderError, Rendered, RenderedObject};

/// Where `migrate` reaches one side from inside the cluster, and its credentials.
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
                admin_password: None,
                ca: None,
            }
        }
        // Harbor always serves TLS; with the generated certificate, the Job trusts the exported CA.
        RegistryMode::Harbor => MigrationEndpoint {
            mode,
            url: format!("https://{}", rendered.endpoint.clone().unwrap_or_default()),
            admin_password: Some(render::harbor_admin_password_ref(registry)),
            ca: rendered
                .secret_copies
                .first()
                .map(|copy| (copy.config_map.clone(), copy.key.clone())),
        },
    }
}

/// Where the copy stands after looking at the Jobs.
#[derive(Debug)]
pub(super) struct MigrationStep {
    /// The Job to keep or create in this pass.
    pub(super) job: RenderedObject,
    /// Phase for `status.migration`.
    pub(super) phase: MigrationPhase,
    /// Failed attempts so far.
    pub(super) failed_attempts: u32,
    /// Every tag is copied and verified: the endpoint may flip.
    pub(super) succeeded: bool,
    /// Human-readable detail.
    pub(super) message: String,
    /// When to look again.
    pub(super) requeue: Option<Duration>,
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
pub(super) fn migration_step(
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
                migration::job_name(registry, failed)
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
            args.contains("https://harbor.ai-platform.localhost"),
            "{args}"
        );
    }
}
