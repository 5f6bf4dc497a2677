//! `Observed`: what the reconciler read from the cluster and hands to render (render reads nothing itself).
//! Plain data plus parsing of observed objects; no client.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::k3d::{KEP_1755_KEY, LocalRegistryHosting};
use super::labels;

/// Facts about the cluster that render needs.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The KEP-1755 `kube-public/local-registry-hosting` ConfigMap, if it exists.
    pub local_registry_hosting: Option<ObservedHosting>,
    /// State of a Harbor Registry's database and components.
    pub harbor: HarborObserved,
    /// K3d mode: NodePorts of the in-cluster registry's Service and of the cluster's other Services.
    pub node_ports: NodePortsObserved,
    /// Harbor mode: `kube-system/coredns-custom` (k3s' CoreDNS extension point), if it exists.
    pub coredns_custom: Option<ObservedConfigMap>,
}

/// NodePorts, as the reconciler read them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodePortsObserved {
    /// The NodePort the registry's own Service has now (what the API server allocated), if any.
    pub current: Option<i32>,
    /// NodePorts of the cluster's other Services → `namespace/name`. Read only while the Registry's
    /// own port is not settled (see [`crate::render::needs_node_port_census`]); empty otherwise.
    pub taken: BTreeMap<i32, String>,
}

/// A shared ConfigMap outside the Registry's namespace and who wrote it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedConfigMap {
    /// `(namespace, name)` of the Registry that wrote it, when this operator did; `None` otherwise.
    pub written_by: Option<(String, String)>,
    /// Its data.
    pub data: BTreeMap<String, String>,
}

impl ObservedConfigMap {
    /// What render needs of a ConfigMap read from the cluster.
    pub fn from_config_map(config_map: &ConfigMap) -> Self {
        Self {
            written_by: written_by(config_map),
            data: config_map.data.clone().unwrap_or_default(),
        }
    }
}

/// `(namespace, name)` of the Registry whose owner labels an object carries, if this operator wrote it.
fn written_by(config_map: &ConfigMap) -> Option<(String, String)> {
    let object_labels = config_map.metadata.labels.as_ref()?;
    let ours = object_labels
        .get("app.kubernetes.io/managed-by")
        .map(String::as_str)
        == Some(labels::MANAGER);
    match (
        ours,
        object_labels.get(labels::OWNER_KIND).map(String::as_str),
        object_labels.get(labels::OWNER_NAMESPACE),
        object_labels.get(labels::OWNER_NAME),
    ) {
        (true, Some("Registry") | None, Some(ns), Some(name)) => Some((ns.clone(), name.clone())),
        _ => None,
    }
}

/// What render needs to know about a running Harbor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HarborObserved {
    /// The managed CNPG `Cluster` reports Ready (ignored for an external database).
    pub database_ready: bool,
    /// The core Deployment already exists: keep rendering it even if the database is not Ready now.
    pub components_exist: bool,
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
        Ok(Self {
            hosting,
            written_by: written_by(config_map),
        })
    }
}
