//! Counting the running pods whose images still name a host (the old registry during a switch's
//! grace window): a label-free, paginated Pod list of which only the image names are looked at and
//! only the count and a few names are kept. Decides nothing.

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use kube::api::{Api, ListParams};

use super::switch_status::PodCount;

/// How many `namespace/name` examples the status lists.
const EXAMPLES: usize = 5;
/// Pods per list page: bounds what is held in memory at once.
const PAGE: u32 = 250;

/// Whether `image` is pulled from `host` (`host/…`; a longer port or another host does not match).
pub(super) fn names_host(image: &str, host: &str) -> bool {
    image
        .strip_prefix(host)
        .is_some_and(|rest| rest.starts_with('/'))
}

fn images(spec: &PodSpec) -> impl Iterator<Item = &str> {
    let containers = spec.containers.iter().filter_map(|c| c.image.as_deref());
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .filter_map(|c| c.image.as_deref());
    let ephemeral = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .filter_map(|c| c.image.as_deref());
    containers.chain(init).chain(ephemeral)
}

/// Whether a pod still runs (or will) and names `host` in any of its images.
pub(super) fn uses_host(pod: &Pod, host: &str) -> bool {
    let finished = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Succeeded" || p == "Failed");
    !finished
        && pod
            .spec
            .as_ref()
            .is_some_and(|spec| images(spec).any(|image| names_host(image, host)))
}

/// Count the pods of every namespace that use `host`.
pub(super) async fn count_using_host(
    client: &kube::Client,
    host: &str,
) -> Result<PodCount, kube::Error> {
    let pods: Api<Pod> = Api::all(client.clone());
    let mut count = PodCount::default();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = pods.list(&params).await?;
        for pod in page.items.iter().filter(|pod| uses_host(pod, host)) {
            count.pods += 1;
            if count.examples.len() < EXAMPLES {
                count.examples.push(format!(
                    "{}/{}",
                    pod.metadata.namespace.as_deref().unwrap_or_default(),
                    pod.metadata.name.as_deref().unwrap_or_default()
                ));
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_images_of_exactly_that_host_count() {
        let host = "k3d-registry:5000";
        assert!(names_host("k3d-registry:5000/app:1", host));
        assert!(names_host("k3d-registry:5000/a/b@sha256:00", host));
        assert!(!names_host("k3d-registry:50000/app:1", host));
        assert!(!names_host("k3d-registry:5000", host));
        assert!(!names_host("docker.io/k3d-registry:5000/app", host));
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ai"},
            "spec": {"containers": [{"name": "a", "image": "ghcr.io/x:1"}],
                     "initContainers": [{"name": "i", "image": "k3d-registry:5000/init:1"}]},
            "status": {"phase": "Running"}
        }))
        .unwrap();
        assert!(uses_host(&pod, host));
        let mut done = pod.clone();
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(!uses_host(&done, host), "a finished pod pulls nothing");
    }
}
