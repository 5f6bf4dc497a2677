//! Garbage collection of the hosted K3d registry (`spec.k3d.gc`): a CronJob running distribution's
//! `registry garbage-collect` against the registry's volume, with a ConfigMap holding the collector's
//! configuration (storage only, so it does not depend on the image's own config file). Pure.
//!
//! Distribution's collector must not run while images are pushed: a blob uploaded during the mark
//! phase but not yet referenced is swept. So each Job is created suspended: the operator makes the
//! registry read-only, waits for that rollout, then releases the Job, and makes the registry
//! writable again once it finished (`reconcile::registry::gc_window`). `concurrencyPolicy: Forbid`
//! keeps two collections from overlapping.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{APP, DATA_DIR, data_mount, distribution_container, pod_spec};
use crate::crd::{K3dGcSpec, K3dSpec};
use crate::render::builders::{config_map_volume, pvc_volume, read_only_mount};
use crate::render::labels::Owner;
use crate::render::{RenderError, RenderedObject};

/// `app.kubernetes.io/component` of the collector's objects (never the registry's: the Service
/// must not send traffic to a collector pod).
pub const GC_COMPONENT: &str = "gc";
/// Where the collector's configuration is mounted.
pub const GC_CONFIG_DIR: &str = "/etc/registry-gc";
/// File name of the collector's configuration in [`GC_CONFIG_DIR`] and key of the ConfigMap.
pub const GC_CONFIG_FILE: &str = "config.yml";

/// The collector's configuration: the registry's filesystem storage with deletes enabled (as the
/// Deployment runs it). The environment overrides the image's config the same way
/// (`REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY`), so both read one directory.
pub fn gc_config() -> String {
    format!(
        "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {DATA_DIR}\n  delete:\n    enabled: true\n"
    )
}

/// `registry garbage-collect [--delete-untagged] <config>`: the container's command.
pub fn gc_command(gc: &K3dGcSpec) -> Vec<String> {
    let mut command = vec!["registry".to_string(), "garbage-collect".to_string()];
    if gc.delete_untagged {
        command.push("--delete-untagged".to_string());
    }
    command.push(format!("{GC_CONFIG_DIR}/{GC_CONFIG_FILE}"));
    command
}

/// The ConfigMap and the CronJob, both named by `metadata` (`<registry>-distribution-gc`).
pub(super) fn objects(
    gc: &K3dGcSpec,
    spec: &K3dSpec,
    owner: &Owner<'_>,
    mut metadata: ObjectMeta,
    claim: &str,
) -> Result<Vec<RenderedObject>, RenderError> {
    metadata.labels = Some(owner.labels(APP, GC_COMPONENT));
    let name = metadata.name.clone().unwrap_or_default();
    let config_map = ConfigMap {
        metadata: metadata.clone(),
        data: Some(BTreeMap::from([(GC_CONFIG_FILE.to_string(), gc_config())])),
        ..Default::default()
    };
    let container = Container {
        command: Some(gc_command(gc)),
        volume_mounts: Some(vec![
            data_mount(),
            read_only_mount("config", GC_CONFIG_DIR, None),
        ]),
        ..distribution_container("garbage-collect", spec)
    };
    let pod = PodSpec {
        restart_policy: Some("Never".to_string()),
        ..pod_spec(
            container,
            vec![
                pvc_volume("data", claim),
                config_map_volume("config", &name),
            ],
        )
    };
    let cron_job = CronJob {
        metadata: metadata.clone(),
        spec: Some(CronJobSpec {
            schedule: gc.schedule.clone(),
            // Never two collectors at once, and never a late run outside the chosen window.
            concurrency_policy: Some("Forbid".to_string()),
            starting_deadline_seconds: Some(600),
            successful_jobs_history_limit: Some(1),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: metadata.labels.clone(),
                    ..Default::default()
                }),
                spec: Some(JobSpec {
                    backoff_limit: Some(1),
                    // Released by the operator once the registry is read-only.
                    suspend: Some(true),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: metadata.labels.clone(),
                            ..Default::default()
                        }),
                        spec: Some(pod),
                    },
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(vec![
        RenderedObject::from_typed(config_map)?,
        RenderedObject::from_typed(cron_job)?,
    ])
}
