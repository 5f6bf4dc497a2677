//! Whether a child's readiness change is news to its owner: a child that became ready while a
//! sibling (another child of the same owner) still is not changes nothing the owner reports but its
//! progress message, which the owner's own requeue of a not-ready pass (`run --requeue`) refreshes.
//! Only judges; `streams::child_changes` filters with it. Getting worse is always news.
//!
//! Why (issue 17): a Registry's claim is bound and its Deployment becomes available at different
//! moments (different controllers), and an ImagePolicy's two Kyverno policies are judged one after
//! the other: each such step cost the owner a reconcile before the last one made it Ready.

use std::collections::BTreeMap;

use kube::api::{ApiResource, DynamicObject};

use super::children::{self, ChildStores};
use super::kyverno::{self, PolicyReadiness};
use crate::render::labels;

/// Whether `object` is ready (`None`: its kind has no readiness the owner waits for).
fn is_ready(resource: &ApiResource, object: &DynamicObject) -> Option<bool> {
    if kyverno::is_policy_group(&resource.group) {
        return Some(kyverno::policy_readiness(resource, Some(object)) == PolicyReadiness::Ready);
    }
    children::readiness(&resource.kind, Some(object)).map(|ready| ready.is_ok())
}

/// Whether `object` (of `resource`) is ready while another child of its owner, in the caches, is
/// not: then this change needs no reconcile of the owner.
pub fn ready_while_a_sibling_waits(
    resource: &ApiResource,
    object: &DynamicObject,
    stores: &ChildStores,
) -> bool {
    if is_ready(resource, object) != Some(true) {
        return false;
    }
    let Some(own) = object.metadata.labels.as_ref() else {
        return false;
    };
    let owner: BTreeMap<String, String> = [
        labels::OWNER_KIND,
        labels::OWNER_NAMESPACE,
        labels::OWNER_NAME,
    ]
    .iter()
    .filter_map(|key| Some((key.to_string(), own.get(*key)?.clone())))
    .collect();
    if owner.len() < 3 {
        return false;
    }
    stores
        .labelled(&owner)
        .iter()
        .filter(|(kind, sibling)| {
            !(children::kind_key(kind) == children::kind_key(resource)
                && sibling.metadata.name == object.metadata.name
                && sibling.metadata.namespace == object.metadata.namespace)
        })
        .any(|(kind, sibling)| is_ready(kind, sibling) == Some(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::labels::Owner;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher;
    use serde_json::json;

    fn child(
        resource: &ApiResource,
        owner: &Owner,
        name: &str,
        data: serde_json::Value,
    ) -> DynamicObject {
        let mut object = DynamicObject::new(name, resource).within("registry");
        object.metadata.labels = Some(owner.selector_labels());
        object.metadata.generation = Some(1);
        object.data = data;
        object
    }

    #[test]
    fn a_child_getting_ready_is_news_only_when_no_sibling_still_waits() {
        let deployments = ApiResource::erase::<Deployment>(&());
        let claims = ApiResource::erase::<PersistentVolumeClaim>(&());
        let services = ApiResource::erase::<Service>(&());
        let stores = ChildStores::default();
        let mut writers = Vec::new();
        for resource in [&deployments, &claims, &services] {
            let writer = Writer::new(resource.clone());
            stores.insert(resource.clone(), writer.as_reader());
            writers.push(writer);
        }
        let owner = Owner::registry("r", "registry");
        let available = child(
            &deployments,
            &owner,
            "r-distribution",
            json!({
            "spec": {"replicas": 1}, "status": {"observedGeneration": 1, "availableReplicas": 1, "readyReplicas": 1}}),
        );
        let starting = child(
            &deployments,
            &owner,
            "r-distribution",
            json!({"spec": {"replicas": 1}}),
        );
        let pending = child(
            &claims,
            &owner,
            "r-distribution",
            json!({"status": {"phase": "Pending"}}),
        );
        let bound = child(
            &claims,
            &owner,
            "r-distribution",
            json!({"status": {"phase": "Bound"}}),
        );
        let service = child(&services, &owner, "r-distribution", json!({"spec": {}}));
        let other = Owner::registry("other", "registry");
        let others_claim = child(
            &claims,
            &other,
            "other-distribution",
            json!({"status": {"phase": "Pending"}}),
        );
        for (writer, object) in [
            (0, &available),
            (1, &pending),
            (2, &service),
            (1, &others_claim),
        ] {
            writers[writer].apply_watcher_event(&watcher::Event::Apply(object.clone()));
        }
        assert!(
            ready_while_a_sibling_waits(&deployments, &available, &stores),
            "the claim still waits"
        );
        assert!(
            !ready_while_a_sibling_waits(&deployments, &starting, &stores),
            "not ready: news"
        );
        assert!(
            !ready_while_a_sibling_waits(&claims, &pending, &stores),
            "not ready: news"
        );
        writers[1].apply_watcher_event(&watcher::Event::Apply(bound.clone()));
        assert!(
            !ready_while_a_sibling_waits(&claims, &bound, &stores),
            "the last one ready: the owner may be Ready now (another owner's claim does not count)"
        );
        assert!(!ready_while_a_sibling_waits(
            &deployments,
            &available,
            &stores
        ));
        // A Kyverno policy judged while its sibling is not yet.
        let policies = crate::render::kyverno::cluster_policy_resource();
        let writer = Writer::new(policies.clone());
        stores.insert(policies.clone(), writer.as_reader());
        let mut writer = writer;
        let ip = Owner::image_policy("ai");
        let policy = |name: &str, status: serde_json::Value| {
            let mut object = DynamicObject::new(name, &policies);
            object.metadata.labels = Some(ip.selector_labels());
            object.data = json!({"status": status});
            object
        };
        let judged = policy(
            "ai-a",
            json!({"conditions": [{"type": "Ready", "status": "True"}]}),
        );
        writer.apply_watcher_event(&watcher::Event::Apply(judged.clone()));
        writer.apply_watcher_event(&watcher::Event::Apply(policy("ai-b", json!({}))));
        assert!(ready_while_a_sibling_waits(&policies, &judged, &stores));
        let second = policy(
            "ai-b",
            json!({"conditions": [{"type": "Ready", "status": "True"}]}),
        );
        writer.apply_watcher_event(&watcher::Event::Apply(second.clone()));
        assert!(!ready_while_a_sibling_waits(&policies, &second, &stores));
    }
}
