//! The pull path's cluster side: what render needs to know (the registry Service's NodePort and, while
//! it is not settled, every other Service's; `kube-system/coredns-custom`), the public parts of
//! generated Secrets copied into ConfigMaps (the exported CA), and the shared ConfigMaps outside the
//! Registry's namespace that the finalizer removes when they are this Registry's.

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, ApiResource, ListParams};
use kube::{Client, ResourceExt};
use serde_json::Value;

use crate::crd::{AdoptPolicy, Registry};
use crate::reconcile::children::ChildStores;
use crate::render::{self, NodePortsObserved, ObservedConfigMap, RenderedObject, SecretCopy};

/// ConfigMaps outside the Registry's namespace a Registry may write (no owner reference possible):
/// the KEP-1755 announcement and k3s' CoreDNS extension. The finalizer deletes those labelled as
/// this Registry's; someone else's are never touched.
pub const SHARED_CONFIG_MAPS: [(&str, &str); 2] = [
    ("kube-public", "local-registry-hosting"),
    ("kube-system", "coredns-custom"),
];

/// Why reading or copying failed (transient).
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Reading from the API server failed.
    #[error("reading {what}: {source}")]
    Read { what: String, source: kube::Error },
    /// A generated Secret lacks the key whose public value a ConfigMap exports.
    #[error("Secret {secret} has no key {key} yet")]
    Missing { secret: String, key: String },
}

/// Whether a K3d Registry adopts the announced registry (then it runs no Service and needs no port).
pub fn adopts(registry: &Registry, hosting: Option<&render::observed::ObservedHosting>) -> bool {
    let adopt = registry
        .spec
        .k3d
        .as_ref()
        .map(|k| k.adopt)
        .unwrap_or_default();
    adopt == AdoptPolicy::Auto && hosting.is_some_and(|h| h.written_by.is_none())
}

/// The NodePort of the registry's Service (from the watch cache) and, only while that port is not
/// settled, the NodePorts of every other Service in the cluster (one list, no watch).
pub async fn node_ports(
    registry: &Registry,
    client: &Client,
    stores: &ChildStores,
) -> Result<NodePortsObserved, AccessError> {
    let namespace = registry.namespace().unwrap_or_default();
    let name = render::k3d_object_name(&registry.name_any());
    let current = own_node_port(registry, stores);
    let mut taken = BTreeMap::new();
    let spec = registry.spec.k3d.as_ref();
    if render::needs_node_port_census(spec, current) {
        // Our own Services are cached: when one of them holds the port this one wants, that is the
        // answer, without listing every Service in the cluster (a burst of new Registries would list
        // them once each, issue 17). Only a port none of ours holds needs the list.
        let wanted = spec
            .and_then(|k3d| k3d.node_port)
            .unwrap_or(render::DEFAULT_NODE_PORT);
        let cached = stores
            .all_of(&ApiResource::erase::<Service>(&()))
            .into_iter()
            .filter_map(|service| service.try_parse::<Service>().ok());
        note_node_ports(&mut taken, cached, (&namespace, &name));
        if taken.contains_key(&wanted) {
            return Ok(NodePortsObserved { current, taken });
        }
        let services: Api<Service> = Api::all(client.clone());
        let list = services
            .list(&ListParams::default())
            .await
            .map_err(|source| AccessError::Read {
                what: "Services (their NodePorts)".to_string(),
                source,
            })?;
        note_node_ports(&mut taken, list, (&namespace, &name));
        let mut claims = CLAIMS.lock().unwrap_or_else(|p| p.into_inner());
        claim(
            &mut claims,
            wanted,
            &format!("{namespace}/{name}"),
            Instant::now(),
            &mut taken,
        );
    }
    Ok(NodePortsObserved { current, taken })
}

/// The NodePort of the registry's own Service, as the cache (or our apply just now) shows it.
fn own_node_port(registry: &Registry, stores: &ChildStores) -> Option<i32> {
    let namespace = registry.namespace().unwrap_or_default();
    let name = render::k3d_object_name(&registry.name_any());
    stores
        .get(&ApiResource::erase::<Service>(&()), Some(&namespace), &name)
        .and_then(|service| {
            service
                .data
                .pointer("/spec/ports/0/nodePort")
                .and_then(Value::as_i64)
        })
        .and_then(|port| i32::try_from(port).ok())
}

/// Whether a K3d render lacks its `registries.yaml` snippet only because its Service's NodePort is
/// the API server's to allocate and no Service has one yet.
pub fn awaits_allocated_port(
    target: &render::Target,
    observed: &render::Observed,
    rendered: &render::Rendered,
) -> bool {
    target.mode == crate::crd::RegistryMode::K3d
        && !rendered.adopted
        && rendered.k3s_registries_yaml.is_none()
        && observed.node_ports.current.is_none()
}

/// After the apply that created the Service: its `registries.yaml` snippet from the NodePort the API
/// server allocated (the apply's answer), so the pass that created it reports it, rather than the
/// next one woken by the Service's watch event (issue 17). Render runs again with that port; only
/// the snippet is taken (the Service names no port it allocated either way).
pub fn snippet_with_allocated_port(
    registry: &Registry,
    target: &render::Target,
    mut observed: render::Observed,
    rendered: &mut render::Rendered,
    stores: &ChildStores,
) {
    let Some(port) = own_node_port(registry, stores) else {
        return;
    };
    observed.node_ports.current = Some(port);
    if let Ok(again) = render::registry_for(registry, target, &observed) {
        rendered.k3s_registries_yaml = again.k3s_registries_yaml;
    }
}

/// Note in `taken` the NodePorts of `services` but the Registry's own (`own`: namespace, name).
fn note_node_ports(
    taken: &mut BTreeMap<i32, String>,
    services: impl IntoIterator<Item = Service>,
    own: (&str, &str),
) {
    for service in services {
        let other_namespace = service.namespace().unwrap_or_default();
        let other_name = service.name_any();
        if (other_namespace.as_str(), other_name.as_str()) == own {
            continue;
        }
        let ports = service.spec.and_then(|s| s.ports).unwrap_or_default();
        for port in ports.iter().filter_map(|p| p.node_port) {
            taken.insert(port, format!("{other_namespace}/{other_name}"));
        }
    }
}

/// NodePorts this process's renders chose for Services the cache does not show yet: port → the
/// Service (`namespace/name`) and when. Without them, Registries created together all find the
/// default port free and all apply it; the API server refuses all but one (422, "provided port is
/// already allocated") and those report ApplyFailed until a retry finds the port taken (issue 17:
/// a burst of new Registries). A claim lasts until [`CLAIM_TTL`]: by then the Service is cached (and
/// the cache answers) or its apply failed.
static CLAIMS: LazyLock<Mutex<HashMap<i32, (String, Instant)>>> = LazyLock::new(Mutex::default);
const CLAIM_TTL: Duration = Duration::from_secs(60);

/// Claim `wanted` for `service` unless it is `taken` or claimed by another Service (then it counts
/// as taken by that one).
fn claim(
    claims: &mut HashMap<i32, (String, Instant)>,
    wanted: i32,
    service: &str,
    now: Instant,
    taken: &mut BTreeMap<i32, String>,
) {
    claims.retain(|_, (_, at)| now.saturating_duration_since(*at) < CLAIM_TTL);
    match claims.get(&wanted) {
        Some((holder, _)) if holder != service => {
            taken.insert(wanted, holder.clone());
        }
        _ if !taken.contains_key(&wanted) => {
            claims.insert(wanted, (service.to_string(), now));
        }
        _ => {}
    }
}

/// `kube-system/coredns-custom`, if it exists.
pub async fn coredns_custom(client: &Client) -> Result<Option<ObservedConfigMap>, AccessError> {
    let (namespace, name) = SHARED_CONFIG_MAPS[1];
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let found = config_maps
        .get_opt(name)
        .await
        .map_err(|source| AccessError::Read {
            what: format!("{namespace}/{name}"),
            source,
        })?;
    Ok(found.as_ref().map(ObservedConfigMap::from_config_map))
}

/// Every value of a Secret, decoded (values are never logged).
pub fn secret_values(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .data
        .iter()
        .flatten()
        .filter_map(|(key, value)| {
            String::from_utf8(value.0.clone())
                .ok()
                .map(|v| (key.clone(), v))
        })
        .collect()
}

/// One key of a generated Secret: from the watch cache, else read directly (just created).
async fn secret_value(
    client: &Client,
    stores: &ChildStores,
    namespace: &str,
    secret: &str,
    key: &str,
) -> Result<String, AccessError> {
    let cached = stores
        .get(&ApiResource::erase::<Secret>(&()), Some(namespace), secret)
        .and_then(|object| {
            serde_json::from_value::<Secret>(serde_json::to_value(object).ok()?).ok()
        });
    let secret_object = match cached {
        Some(found) => Some(found),
        None => Api::<Secret>::namespaced(client.clone(), namespace)
            .get_opt(secret)
            .await
            .map_err(|source| AccessError::Read {
                what: format!("Secret {namespace}/{secret}"),
                source,
            })?,
    };
    secret_object
        .as_ref()
        .map(secret_values)
        .and_then(|mut values| values.remove(key))
        .ok_or_else(|| AccessError::Missing {
            secret: secret.to_string(),
            key: key.to_string(),
        })
}

/// Put the public values `copies` name (the CA certificate) into the rendered ConfigMaps, in place
/// of render's placeholder.
pub async fn fill_secret_copies(
    client: &Client,
    stores: &ChildStores,
    copies: &[SecretCopy],
    objects: &mut [RenderedObject],
) -> Result<(), AccessError> {
    for copy in copies {
        let value = secret_value(
            client,
            stores,
            &copy.namespace,
            &copy.secret,
            &copy.secret_key,
        )
        .await?;
        for object in objects.iter_mut().filter(|o| {
            o.resource.kind == "ConfigMap"
                && o.namespace() == Some(copy.namespace.as_str())
                && o.name() == copy.config_map
        }) {
            object.object.data["data"][copy.key.as_str()] = Value::String(value.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_claimed_by_one_new_service_counts_as_taken_for_the_others_until_it_expires() {
        let mut claims = HashMap::new();
        let start = Instant::now();
        let mut first = BTreeMap::new();
        claim(&mut claims, 30500, "ns/a-distribution", start, &mut first);
        assert!(first.is_empty(), "free: claimed, not taken");
        // Another Service wanting it now: taken, by the claimant.
        let mut second = BTreeMap::new();
        claim(&mut claims, 30500, "ns/b-distribution", start, &mut second);
        assert_eq!(
            second.get(&30500).map(String::as_str),
            Some("ns/a-distribution")
        );
        // The claimant asking again keeps it; a port somebody holds is not claimed.
        let mut again = BTreeMap::new();
        claim(&mut claims, 30500, "ns/a-distribution", start, &mut again);
        assert!(again.is_empty());
        let mut held = BTreeMap::from([(30600, "tools/gitea".to_string())]);
        claim(&mut claims, 30600, "ns/c-distribution", start, &mut held);
        assert!(!claims.contains_key(&30600));
        // Expired: free again for the next.
        let mut later = BTreeMap::new();
        claim(
            &mut claims,
            30500,
            "ns/b-distribution",
            start + CLAIM_TTL,
            &mut later,
        );
        assert!(later.is_empty());
        assert_eq!(claims[&30500].0, "ns/b-distribution");
    }
}
