//! `Observed`: what the reconciler read from the cluster and hands to render (render reads nothing itself).
//! Plain data plus parsing of observed objects; no client.

use k8s_openapi::api::core::v1::ConfigMap;

use super::k3d::{KEP_1755_KEY, LocalRegistryHosting};
use super::labels;

/// Facts about the cluster that render needs.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The KEP-1755 `kube-public/local-registry-hosting` ConfigMap, if it exists.
    pub local_registry_hosting: Option<ObservedHosting>,
}

/// The KEP-1755 announcement and who wrote it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedHosting {
    /// Parsed `localRegistryHosting.v1` value.
    pub hosting: LocalRegistryHosting,
    /// `(namespace, name)` of the Registry that wrote it, when this operator wrote it; `None` when
    /// someone else (k3d) did.
    pub written_by: Option<(String, String)>,
}

impl ObservedHosting {
    /// Read the KEP-1755 ConfigMap. `Err` names the key when its content is not valid YAML.
    pub fn from_config_map(config_map: &ConfigMap) -> Result<Self, String> {
        let raw = config_map
            .data
            .as_ref()
            .and_then(|d| d.get(KEP_1755_KEY))
            .ok_or_else(|| {
                format!("kube-public/local-registry-hosting: key {KEP_1755_KEY} missing")
            })?;
        let hosting: LocalRegistryHosting = yaml_serde::from_str(raw)
            .map_err(|e| format!("kube-public/local-registry-hosting: {KEP_1755_KEY}: {e}"))?;
        let object_labels = config_map.metadata.labels.clone().unwrap_or_default();
        let ours = object_labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str)
            == Some(labels::MANAGER);
        let written_by = match (
            ours,
            object_labels.get(labels::OWNER_NAMESPACE),
            object_labels.get(labels::OWNER_NAME),
        ) {
            (true, Some(ns), Some(name)) => Some((ns.clone(), name.clone())),
            _ => None,
        };
        Ok(Self {
            hosting,
            written_by,
        })
    }
}
