//! K3d mode: adopt the registry k3d announces (KEP-1755) or render a CNCF distribution registry
//! (Deployment, NodePort Service, PVC, KEP-1755 ConfigMap), optionally as a pull-through cache, and
//! the k3s `registries.yaml` that sends nodes to the NodePort on loopback. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PersistentVolumeClaim, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, ResourceRequirements, SecurityContext, Service, ServicePort, ServiceSpec, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use super::builders::{self, empty_dir, env, env_from_secret, mount, port, pvc_volume};
use super::k3s::Registries;
use super::labels::Owner;
use super::observed::NodePortsObserved;
use super::{Observed, RenderError, Rendered, RenderedObject, owner_reference};
use crate::crd::{AdoptPolicy, K3dSpec, Registry, VolumeSpec, default_k3d_volume};
use crate::validate::is_cluster_dns_name;

/// Image of the in-cluster registry when `spec.k3d.image` is unset (CNCF distribution, pinned).
pub const DEFAULT_DISTRIBUTION_IMAGE: &str = "docker.io/library/registry:2.8.3";
/// Namespace and name of the KEP-1755 ConfigMap.
pub const KEP_1755_NAMESPACE: &str = "kube-public";
/// Name of the KEP-1755 ConfigMap.
pub const KEP_1755_NAME: &str = "local-registry-hosting";
/// Data key of the KEP-1755 ConfigMap.
pub const KEP_1755_KEY: &str = "localRegistryHosting.v1";

/// NodePort of the in-cluster registry when `spec.k3d.nodePort` is unset and no other Service has it.
pub const DEFAULT_NODE_PORT: i32 = 30500;
/// Where the KEP-1755 announcement sends users whose pushes fail.
const HELP: &str = "https://github.com/kubernetes/enhancements/tree/master/keps/sig-cluster-lifecycle/generic/1755-communicating-a-local-registry";

const APP: &str = "distribution";
const COMPONENT: &str = "registry";
const PORT: i32 = 5000;
const DATA_DIR: &str = "/var/lib/registry";
/// Non-root uid/gid the distribution image runs as (the image's default is root, which it does not need).
const RUN_AS: i64 = 1000;

/// Pod Security "restricted" pod settings of the registry's pods (the uid/gid that owns the volume).
fn restricted_pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        fs_group: Some(RUN_AS),
        seccomp_profile: Some(builders::runtime_default()),
        ..Default::default()
    }
}

/// The `localRegistryHosting.v1` document of KEP-1755.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LocalRegistryHosting {
    /// Host clients on the machine running the cluster push to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Host the container runtime pulls from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_from_container_runtime: Option<String>,
    /// Host pods inside the cluster reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_from_cluster_network: Option<String>,
    /// Documentation link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl LocalRegistryHosting {
    /// The endpoint images are referenced by, in the order of preference the platform uses.
    pub fn endpoint(&self) -> Option<&str> {
        self.host_from_cluster_network
            .as_deref()
            .or(self.host_from_container_runtime.as_deref())
            .or(self.host.as_deref())
    }
}

/// A k3s `registries.yaml` for an adopted registry: image references naming `name` are pulled from
/// `runtime_host` over plain HTTP (k3d registries serve no TLS). `None` when the only host announced
/// is a cluster DNS name, which no node can resolve.
fn adopted_registries_yaml(
    name: &str,
    hosting: &LocalRegistryHosting,
) -> Result<Option<String>, RenderError> {
    let runtime_host = hosting
        .host_from_container_runtime
        .as_deref()
        .or(hosting.host.as_deref())
        .unwrap_or(name);
    if is_cluster_dns_name(runtime_host) {
        return Ok(None);
    }
    let mut registries = Registries::default();
    registries.mirror(name, &format!("http://{runtime_host}"));
    registries.to_yaml().map(Some)
}

/// `host[:port]` of a pull-through cache's upstream as image references name it (`docker.io` for
/// Docker Hub), so nodes pull those images through the cache.
fn upstream_registry(remote_url: &str) -> String {
    let without_scheme = remote_url
        .split_once("://")
        .map_or(remote_url, |(_, rest)| rest);
    let host = without_scheme.split('/').next().unwrap_or_default();
    match host {
        "registry-1.docker.io" | "index.docker.io" | "docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

/// The NodePort a hosted registry's Service gets.
#[derive(Clone, Debug, PartialEq, Eq)]
enum NodePort {
    /// This port, chosen by us (`spec.k3d.nodePort` or the default) and written in the Service.
    Fixed(i32),
    /// The API server picks one (the default was taken): the Service is applied without it, ever,
    /// so that learning the port does not change the render and cause a second apply (an update
    /// that leaves a NodePort out keeps the allocated one); known once the Service exists.
    Allocated(Option<i32>),
}

impl NodePort {
    /// The port, if known yet.
    fn known(&self) -> Option<i32> {
        match self {
            Self::Fixed(port) => Some(*port),
            Self::Allocated(port) => *port,
        }
    }

    /// What the Service's `nodePort` field says.
    fn written(&self) -> Option<i32> {
        match self {
            Self::Fixed(port) => Some(*port),
            Self::Allocated(_) => None,
        }
    }
}

/// `spec.k3d.nodePort`, else the port the Service already has, else [`DEFAULT_NODE_PORT`] unless
/// another Service holds it. `Err` names the Service holding an explicitly chosen port.
fn node_port(spec: &K3dSpec, observed: &NodePortsObserved) -> Result<NodePort, String> {
    match (spec.node_port, observed.current) {
        (Some(port), Some(current)) if port == current => Ok(NodePort::Fixed(port)),
        (Some(port), _) => match observed.taken.get(&port) {
            Some(holder) => Err(format!(
                "spec.k3d.nodePort: {port} is already used by Service {holder}; choose a free port between 30000 and 32767"
            )),
            None => Ok(NodePort::Fixed(port)),
        },
        (None, Some(DEFAULT_NODE_PORT)) => Ok(NodePort::Fixed(DEFAULT_NODE_PORT)),
        // Allocated by the API server, or chosen once by a `spec.k3d.nodePort` removed since:
        // either way the Service keeps it without our naming it.
        (None, Some(current)) => Ok(NodePort::Allocated(Some(current))),
        (None, None) if observed.taken.contains_key(&DEFAULT_NODE_PORT) => {
            Ok(NodePort::Allocated(None))
        }
        (None, None) => Ok(NodePort::Fixed(DEFAULT_NODE_PORT)),
    }
}

/// Whether the reconciler must read every Service's NodePort before rendering: only while the
/// Registry's own port is not settled (no Service yet, or `spec.k3d.nodePort` changed).
pub fn needs_node_port_census(spec: Option<&K3dSpec>, current: Option<i32>) -> bool {
    match spec.and_then(|s| s.node_port) {
        Some(port) => current != Some(port),
        None => current.is_none(),
    }
}

/// `<registry>-distribution`: the name of the hosted registry's Deployment, Service and claim.
pub fn object_name(registry: &str) -> String {
    format!("{registry}-distribution")
}

/// What pods use to reach the hosted registry: cluster DNS resolves its Service's name (Kyverno,
/// migration Jobs).
pub fn service_host(registry: &str, namespace: &str) -> String {
    format!(
        "{}.{namespace}.svc.cluster.local:{PORT}",
        object_name(registry)
    )
}

/// `frozen`: a switch away from this registry made it read-only (as `spec.k3d.readOnly` does); an
/// adopted registry outside the cluster cannot be, and the switch reports that itself.
pub(super) fn render(
    registry: &Registry,
    host: Option<&str>,
    frozen: bool,
    observed: &Observed,
) -> Result<Rendered, RenderError> {
    let mut spec = registry.spec.k3d.clone().unwrap_or_default();
    let asked_read_only = spec.read_only;
    spec.read_only |= frozen;
    let namespace = registry.namespace().unwrap_or_default();
    let name = registry.name_any();
    let owner = Owner::registry(&name, &namespace);
    let mut warnings = Vec::new();

    if let Some(announced) = &observed.local_registry_hosting {
        let ours = announced
            .written_by
            .as_ref()
            .map(|(ns, n)| (ns.as_str(), n.as_str()));
        match ours {
            None if spec.adopt == AdoptPolicy::Auto => {
                let endpoint = host
                    .map(str::to_string)
                    .or_else(|| announced.hosting.endpoint().map(str::to_string));
                let k3s_registries_yaml = match &endpoint {
                    Some(name) => adopted_registries_yaml(name, &announced.hosting)?,
                    None => None,
                };
                if asked_read_only {
                    warnings.push("spec.k3d.readOnly: the adopted k3d registry runs outside the cluster and is not made read-only; set it on that registry yourself".to_string());
                }
                return Ok(Rendered { objects: Vec::new(), endpoint, k3s_registries_yaml, adopted: true, warnings, ..Default::default() });
            }
            None => warnings.push(format!(
                "{KEP_1755_NAMESPACE}/{KEP_1755_NAME} was written by k3d and is left as it is (spec.k3d.adopt is Never)"
            )),
            Some(writer) if writer != (namespace.as_str(), name.as_str()) => warnings.push(format!(
                "{KEP_1755_NAMESPACE}/{KEP_1755_NAME} already announces Registry {}/{}; this Registry is not announced",
                writer.0, writer.1
            )),
            Some(_) => {}
        }
    }

    let object_name = object_name(&name);
    let service_host = service_host(&name, &namespace);
    let endpoint = host.map_or_else(|| service_host.clone(), str::to_string);
    let (port, node_port_conflict) = match node_port(&spec, &observed.node_ports) {
        Ok(port) => (port, None),
        Err(conflict) => (
            NodePort::Fixed(spec.node_port.unwrap_or(DEFAULT_NODE_PORT)),
            Some(conflict),
        ),
    };
    let known_port = port.known();
    let meta = |object_name: &str, object_namespace: &str, owned: bool| ObjectMeta {
        name: Some(object_name.to_string()),
        namespace: Some(object_namespace.to_string()),
        labels: Some(owner.labels(APP, COMPONENT)),
        owner_references: owned
            .then(|| owner_reference(registry))
            .flatten()
            .map(|o| vec![o]),
        ..Default::default()
    };

    let mut objects = vec![
        RenderedObject::from_typed(pvc(
            meta(&object_name, &namespace, true),
            spec.storage.as_ref(),
        ))?,
        RenderedObject::from_typed(service(
            meta(&object_name, &namespace, true),
            owner.pod_selector(APP, COMPONENT),
            port.written(),
        ))?,
        RenderedObject::from_typed(deployment(
            meta(&object_name, &namespace, true),
            &owner,
            &spec,
            &object_name,
        ))?,
    ];
    if let Some(gc) = &spec.gc {
        objects.extend(gc::objects(
            gc,
            &spec,
            &owner,
            meta(&format!("{object_name}-gc"), &namespace, true),
            &object_name,
        )?);
    }
    let announce = match &observed.local_registry_hosting {
        None => true,
        Some(announced) => {
            announced.written_by.as_ref() == Some(&(namespace.clone(), name.clone()))
        }
    };
    if announce {
        // Each KEP-1755 field carries what its audience can really use: the user's machine reaches
        // the NodePort through the k3d port mapping, containerd on every node through 127.0.0.1
        // (IPv4: kube-proxy serves NodePorts on the IPv4 loopback only), pods through cluster DNS.
        let hosting = LocalRegistryHosting {
            host: known_port.map(|p| format!("localhost:{p}")),
            host_from_container_runtime: known_port.map(|p| format!("127.0.0.1:{p}")),
            host_from_cluster_network: Some(service_host.clone()),
            help: Some(HELP.to_string()),
        };
        // Cross-namespace owner references are not allowed; the finalizer deletes this ConfigMap.
        let config_map = ConfigMap {
            metadata: meta(KEP_1755_NAME, KEP_1755_NAMESPACE, false),
            data: Some(BTreeMap::from([(
                KEP_1755_KEY.to_string(),
                yaml_serde::to_string(&hosting)?,
            )])),
            ..Default::default()
        };
        objects.push(RenderedObject::from_typed(config_map)?);
    }
    // Nodes cannot resolve cluster DNS: the names images use are mirrored to the NodePort on the
    // node's own loopback, where kube-proxy forwards to the registry.
    let k3s_registries_yaml = match known_port {
        Some(port) => {
            let node_endpoint = format!("http://127.0.0.1:{port}");
            let mut registries = Registries::default();
            registries
                .mirror(&endpoint, &node_endpoint)
                .mirror(&service_host, &node_endpoint);
            if let Some(cache) = &spec.cache {
                registries.mirror(&upstream_registry(&cache.remote_url), &node_endpoint);
            }
            Some(registries.to_yaml()?)
        }
        None => None,
    };
    Ok(Rendered {
        objects,
        k3s_registries_yaml,
        endpoint: Some(endpoint),
        adopted: false,
        warnings,
        node_port_conflict,
        ..Default::default()
    })
}

fn pvc(metadata: ObjectMeta, storage: Option<&VolumeSpec>) -> PersistentVolumeClaim {
    builders::pvc(
        metadata,
        &storage.cloned().unwrap_or_else(default_k3d_volume),
    )
}

/// The registry's Service: a ClusterIP for pods and a NodePort for the nodes' container runtimes
/// (`node_port` `None` lets the API server pick one).
fn service(
    metadata: ObjectMeta,
    selector: BTreeMap<String, String>,
    node_port: Option<i32>,
) -> Service {
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some("NodePort".to_string()),
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some("registry".to_string()),
                port: PORT,
                node_port,
                target_port: Some(IntOrString::String("registry".to_string())),
                protocol: Some("TCP".to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn default_resources() -> ResourceRequirements {
    builders::resources(None, "10m", "50Mi", "64Mi")
}

/// The registry's probe: `GET /` on the `registry` port (no scheme: HTTP is the default), 2 s timeout.
fn probe(initial_delay: i32) -> Probe {
    let mut probe = builders::http_probe("/", "registry", initial_delay, 3);
    if let Some(get) = probe.http_get.as_mut() {
        get.scheme = None;
    }
    probe.timeout_seconds = Some(2);
    probe
}

/// Pod Security "restricted" container settings (read-only root; `privileged` left unset).
pub(crate) fn restricted_container_security() -> SecurityContext {
    SecurityContext {
        privileged: None,
        ..builders::container_security(true)
    }
}

/// A container of the distribution image (`spec.k3d.image` or the pinned default) with its
/// resources and restricted security context; the registry and its collector add the rest.
fn distribution_container(name: &str, spec: &K3dSpec) -> Container {
    Container {
        name: name.to_string(),
        image: Some(
            spec.image
                .clone()
                .unwrap_or_else(|| DEFAULT_DISTRIBUTION_IMAGE.to_string()),
        ),
        image_pull_policy: Some("IfNotPresent".to_string()),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        security_context: Some(restricted_container_security()),
        ..Default::default()
    }
}

/// The registry's volume (`data`) mounted where distribution keeps its blobs.
fn data_mount() -> VolumeMount {
    mount("data", DATA_DIR, None)
}

/// A pod of the registry or its collector: no API token, no service links, restricted pod security.
fn pod_spec(container: Container, volumes: Vec<Volume>) -> PodSpec {
    PodSpec {
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(restricted_pod_security()),
        containers: vec![container],
        volumes: Some(volumes),
        ..Default::default()
    }
}

/// Environment variable of distribution's `storage.maintenance.readonly` (the maintenance switch).
pub const READ_ONLY_ENV: &str = "REGISTRY_STORAGE_MAINTENANCE_READONLY";
/// Its value when `spec.k3d.readOnly` is set.
pub const READ_ONLY_VALUE: &str = "{\"enabled\": true}";

fn deployment(metadata: ObjectMeta, owner: &Owner<'_>, spec: &K3dSpec, claim: &str) -> Deployment {
    let mut environment = vec![
        env("REGISTRY_HTTP_ADDR", format!(":{PORT}")),
        env("REGISTRY_STORAGE_DELETE_ENABLED", "true"),
        env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", DATA_DIR),
    ];
    if spec.read_only {
        // Distribution reads a YAML value for a map key from its environment.
        environment.push(env(READ_ONLY_ENV, READ_ONLY_VALUE));
    }
    if let Some(cache) = &spec.cache {
        environment.push(env("REGISTRY_PROXY_REMOTEURL", &cache.remote_url));
        if let Some(credentials) = &cache.credentials_secret_ref {
            environment.push(env_from_secret(
                "REGISTRY_PROXY_USERNAME",
                &credentials.name,
                &credentials.username_key,
            ));
            environment.push(env_from_secret(
                "REGISTRY_PROXY_PASSWORD",
                &credentials.name,
                &credentials.password_key,
            ));
        }
    }
    let container = Container {
        ports: Some(vec![port("registry", PORT)]),
        env: Some(environment),
        liveness_probe: Some(probe(10)),
        readiness_probe: Some(probe(2)),
        volume_mounts: Some(vec![data_mount(), mount("tmp", "/tmp", None)]),
        ..distribution_container("registry", spec)
    };
    let selector = owner.pod_selector(APP, COMPONENT);
    Deployment {
        metadata: metadata.clone(),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            // One writer per ReadWriteOnce volume: never run old and new pods side by side.
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".to_string()),
                ..Default::default()
            }),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: metadata.labels.clone(),
                    ..Default::default()
                }),
                spec: Some(pod_spec(
                    container,
                    vec![pvc_volume("data", claim), empty_dir("tmp")],
                )),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[path = "k3d_gc.rs"]
pub(crate) mod gc;

#[cfg(test)]
#[path = "k3d_tests.rs"]
mod tests;
