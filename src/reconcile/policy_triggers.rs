//! What triggers an ImagePolicy reconcile: which watch events of ImagePolicies, Registries and the
//! generated Kyverno policies reach the ImagePolicy controller, and which ImagePolicy each maps to.
//! Reconciles nothing.

use kube::api::DynamicObject;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use crate::crd::{ImagePolicy, Registry};
use crate::render::labels;
use crate::render::policy::follow;

/// The ImagePolicy owning a generated Kyverno policy, from its owner labels.
pub(crate) fn owning_image_policy(
    object: DynamicObject,
) -> Option<ObjectRef<DeserializeGuard<ImagePolicy>>> {
    let labels = object.metadata.labels.as_ref()?;
    if labels.get(labels::OWNER_KIND)? != "ImagePolicy" {
        return None;
    }
    Some(ObjectRef::new(labels.get(labels::OWNER_NAME)?))
}

/// Every ImagePolicy in `policies` whose `spec.registryRef` names `registry`.
pub(crate) fn policies_referencing(
    policies: &Store<DeserializeGuard<ImagePolicy>>,
    registry: &DeserializeGuard<Registry>,
) -> Vec<ObjectRef<DeserializeGuard<ImagePolicy>>> {
    let name = registry.name_any();
    let namespace = registry.namespace().unwrap_or_default();
    policies
        .state()
        .iter()
        .filter(|guard| {
            guard.0.as_ref().is_ok_and(|policy| {
                policy
                    .spec
                    .registry_ref
                    .as_ref()
                    .is_some_and(|r| r.name == name && r.namespace == namespace)
            })
        })
        .map(|guard| ObjectRef::from_obj(guard.as_ref()))
        .collect()
}

/// Registry events matter to ImagePolicies only when what they follow changes (the endpoint, the old
/// host of a grace window, the rewrite), a Registry appears, or it reports for the first time (the
/// policies that waited for it: [`waits_for_its_registry`]).
pub(crate) fn registry_endpoint_predicate(registry: &DeserializeGuard<Registry>) -> Option<u64> {
    let registry_ok = registry.0.as_ref().ok();
    let follow = registry_ok.map(follow::follow).map(|f| {
        (
            f.endpoint,
            f.previous_endpoint,
            f.rewrite.map(|r| (r.from_host, r.to_host, r.prefix)),
        )
    });
    let reported = registry_ok.map(|r| r.status.is_some());
    super::context::predicate_hash((&registry.meta().uid, follow, reported))
}

/// Whether an ImagePolicy's own change can wait for its Registry: the Registry is cached but has not
/// reported yet (no status). Its first status (the endpoint, or why there is none) triggers the
/// policy anyway ([`registry_endpoint_predicate`]), so a reconcile now would only find "no endpoint
/// yet" and run again then: one reconcile per policy fewer when policies and registries are created
/// together (issue 17). A policy being deleted, or whose Registry is not cached, does not wait.
pub(crate) fn waits_for_its_registry(
    policy: &DeserializeGuard<ImagePolicy>,
    registries: &Store<DeserializeGuard<Registry>>,
) -> bool {
    let Ok(policy) = &policy.0 else {
        return false;
    };
    let Some(reference) = policy.spec.registry_ref.as_ref() else {
        return false;
    };
    policy.meta().deletion_timestamp.is_none()
        && registries
            .get(&ObjectRef::new(&reference.name).within(&reference.namespace))
            .is_some_and(|registry| registry.0.as_ref().is_ok_and(|r| r.status.is_none()))
}

/// ImagePolicies reconcile again on spec changes only (their own status writes are ignored).
pub(crate) fn image_policy_predicate(policy: &DeserializeGuard<ImagePolicy>) -> Option<u64> {
    let meta = policy.meta();
    super::context::predicate_hash((
        meta.generation,
        meta.deletion_timestamp.is_some(),
        &meta.uid,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ImagePolicySpec, RegistryStatus};
    use crate::render::labels::Owner;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    use kube::runtime::{reflector, watcher};
    use serde_json::json;

    fn registry(endpoint: Option<&str>, message: &str) -> DeserializeGuard<Registry> {
        let mut registry: Registry = serde_json::from_value(json!({
            "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
            "metadata": {"name": "platform", "namespace": "registry", "uid": "u1"},
            "spec": {"mode": "K3d"},
        }))
        .unwrap();
        registry.status = Some(RegistryStatus {
            endpoint: endpoint.map(str::to_string),
            conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                type_: "Ready".into(),
                status: "False".into(),
                reason: "Provisioning".into(),
                message: message.into(),
                observed_generation: None,
                last_transition_time: Time(Timestamp::UNIX_EPOCH),
            }],
            ..RegistryStatus::default()
        });
        DeserializeGuard(Ok(registry))
    }

    #[test]
    fn only_endpoint_changes_pass_the_registry_predicate() {
        let before = registry_endpoint_predicate(&registry(Some("a:5000"), "waiting"));
        let status_only = registry_endpoint_predicate(&registry(Some("a:5000"), "still waiting"));
        let moved = registry_endpoint_predicate(&registry(Some("harbor.localhost"), "waiting"));
        assert_eq!(before, status_only);
        assert_ne!(before, moved);
    }

    #[test]
    fn a_policy_waits_only_for_a_cached_registry_that_has_not_reported() {
        let (store, mut writer) = reflector::store::<DeserializeGuard<Registry>>();
        let policy = |registry: Option<&str>, deleting: bool| {
            let mut spec: ImagePolicySpec = serde_json::from_value(json!({})).unwrap();
            spec.registry_ref = registry.map(|name| crate::crd::RegistryRef {
                name: name.into(),
                namespace: "registry".into(),
            });
            let mut policy = ImagePolicy::new("p", spec);
            if deleting {
                policy.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
            }
            DeserializeGuard(Ok(policy))
        };
        let mut fresh = registry(None, "");
        if let Ok(registry) = &mut fresh.0 {
            registry.metadata.name = Some("fresh".into());
            registry.status = None;
        }
        writer.apply_watcher_event(&watcher::Event::Apply(fresh));
        writer.apply_watcher_event(&watcher::Event::Apply(registry(None, "failed")));
        assert!(waits_for_its_registry(
            &policy(Some("fresh"), false),
            &store
        ));
        // Reported (even without an endpoint), not cached, deleting, no registryRef: no waiting.
        assert!(!waits_for_its_registry(
            &policy(Some("platform"), false),
            &store
        ));
        assert!(!waits_for_its_registry(
            &policy(Some("absent"), false),
            &store
        ));
        assert!(!waits_for_its_registry(
            &policy(Some("fresh"), true),
            &store
        ));
        assert!(!waits_for_its_registry(&policy(None, false), &store));
        // A Registry's first report (here: no endpoint) passes the predicate, so the policy runs.
        let mut unreported = registry(None, "");
        if let Ok(registry) = &mut unreported.0 {
            registry.status = None;
        }
        assert_ne!(
            registry_endpoint_predicate(&unreported),
            registry_endpoint_predicate(&registry(None, "failed"))
        );
    }

    #[test]
    fn registry_events_map_to_the_policies_referencing_it() {
        let (store, mut writer) = reflector::store::<DeserializeGuard<ImagePolicy>>();
        let policy = |name: &str, registry: Option<(&str, &str)>| {
            let mut spec: ImagePolicySpec = serde_json::from_value(json!({})).unwrap();
            spec.registry_ref = registry.map(|(namespace, name)| crate::crd::RegistryRef {
                name: name.into(),
                namespace: namespace.into(),
            });
            DeserializeGuard(Ok(ImagePolicy::new(name, spec)))
        };
        for guard in [
            policy("follows", Some(("registry", "platform"))),
            policy("other-namespace", Some(("elsewhere", "platform"))),
            policy("static", None),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(guard));
        }
        let mapped: Vec<String> = policies_referencing(&store, &registry(None, ""))
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(mapped, ["follows"]);
    }

    #[test]
    fn generated_policies_map_to_their_image_policy_only() {
        let owner = Owner::image_policy("ai-workloads");
        let mut object = DynamicObject::new(
            "ai-workloads-restrict-registries",
            &crate::render::kyverno::cluster_policy_resource(),
        );
        object.metadata.labels = Some(owner.selector_labels());
        assert_eq!(
            owning_image_policy(object.clone()).map(|r| r.name),
            Some("ai-workloads".to_string())
        );
        let registry_owner = Owner::registry("ai-workloads", "registry");
        object.metadata.labels = Some(registry_owner.selector_labels());
        assert!(owning_image_policy(object).is_none());
    }
}
