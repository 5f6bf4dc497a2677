//! The watch of the KEP-1755 announcement `kube-public/local-registry-hosting` by name: its cache
//! (what K3d reconciles read instead of asking the API server) and the events that bring every K3d
//! Registry to look again when someone else (k3d) writes it. Decides nothing about adoption.

use futures::{Stream, TryStreamExt, future};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use super::registry::ANNOUNCEMENT;
use crate::crd::{Registry, RegistryMode};
use crate::reconcile::watch_backoff::watch_backoff;
use crate::render::labels;

/// The announcement's cache and its changes, minus those the operator wrote itself (the hosted
/// registry's own announcement: its owner is already triggered by the child watch).
pub(super) fn watch(
    client: &Client,
) -> (
    Store<ConfigMap>,
    impl Stream<Item = Result<ConfigMap, watcher::Error>> + Send + use<>,
) {
    let (store, writer) = reflector::store::<ConfigMap>();
    let stream = watcher(
        Api::<ConfigMap>::namespaced(client.clone(), ANNOUNCEMENT.0),
        watcher::Config::default().fields(&format!("metadata.name={}", ANNOUNCEMENT.1)),
    )
    .modify(super::lean)
    .backoff(watch_backoff())
    .reflect(writer)
    .touched_objects()
    .try_filter(|config_map| future::ready(!written_by_us(config_map)));
    (store, stream)
}

fn written_by_us(config_map: &ConfigMap) -> bool {
    config_map
        .labels()
        .get("app.kubernetes.io/managed-by")
        .is_some_and(|manager| manager == labels::MANAGER)
}

/// Every Registry in K3d mode (the ones that read the announcement).
pub(super) fn k3d_registries(
    registries: &Store<DeserializeGuard<Registry>>,
) -> Vec<ObjectRef<DeserializeGuard<Registry>>> {
    registries
        .state()
        .iter()
        .filter(|guard| {
            guard
                .0
                .as_ref()
                .is_ok_and(|registry| registry.spec.mode == RegistryMode::K3d)
        })
        .map(|guard| ObjectRef::from_obj(guard.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn only_an_announcement_written_by_someone_else_triggers() {
        let mut config_map = ConfigMap::default();
        assert!(!written_by_us(&config_map), "k3d's: unlabelled");
        config_map.metadata.labels = Some(BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_string(),
            labels::MANAGER.to_string(),
        )]));
        assert!(written_by_us(&config_map));
    }
}
