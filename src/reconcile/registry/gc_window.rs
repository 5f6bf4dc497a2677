//! The read-only window around garbage collection of the hosted K3d registry: the GC CronJob creates
//! its Jobs suspended; while such a Job has not finished, the registry is rendered read-only, and once
//! that rollout is done the Job is released (`spec.suspend: false`); when it finished, the registry is
//! rendered writable again. Reads the Job cache; writes only the Job's `suspend`. Renders nothing.

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use crate::crd::Registry;
use crate::reconcile::children::ChildStores;
use crate::render::labels::Owner;

/// A GC Job of this Registry that has not finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct OpenGc {
    pub(super) name: String,
    /// Still waiting for the read-only rollout.
    pub(super) suspended: bool,
}

/// The unfinished GC Jobs of `registry` in the cache (those its CronJob made).
pub(super) fn open(registry: &Registry, stores: &ChildStores) -> Vec<OpenGc> {
    let name = registry.name_any();
    let namespace = registry.namespace().unwrap_or_default();
    let mut labels = Owner::registry(&name, &namespace).selector_labels();
    labels.insert(
        "app.kubernetes.io/component".to_string(),
        crate::render::K3D_GC_COMPONENT.to_string(),
    );
    stores
        .labelled(&labels)
        .into_iter()
        .filter(|(resource, _)| resource.kind == "Job")
        .filter(|(_, job)| !finished(&job.data))
        .map(|(_, job)| OpenGc {
            name: job.metadata.name.clone().unwrap_or_default(),
            suspended: job.data.pointer("/spec/suspend") == Some(&serde_json::json!(true)),
        })
        .collect()
}

/// A Job with a `Complete` or `Failed` condition.
fn finished(job: &serde_json::Value) -> bool {
    job.pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
            })
        })
}

/// Let a suspended GC Job run (the registry is read-only now).
pub(super) async fn release(
    client: &kube::Client,
    namespace: &str,
    job: &str,
) -> Result<(), kube::Error> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    jobs.patch(
        job,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"suspend": false}})),
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_finished_by_its_complete_or_failed_condition() {
        assert!(!finished(&serde_json::json!({"status": {}})));
        assert!(finished(
            &serde_json::json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}})
        ));
        assert!(finished(
            &serde_json::json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}})
        ));
        assert!(!finished(
            &serde_json::json!({"status": {"conditions": [{"type": "Suspended", "status": "True"}]}})
        ));
    }
}
