//! K3d mode: adopt the registry k3d announces (KEP-1755) or render a CNCF distribution registry
//! (Deployment, Service, PVC, KEP-1755 ConfigMap), optionally as a pull-through cache. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext, Service, ServicePort,
    ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use super::labels::Owner;
use super::{Observed, RenderError, Rendered, RenderedObject, owner_reference};
use crate::crd::{AdoptPolicy, K3dSpec, Registry, VolumeSpec, default_k3d_volume};

/// Image of the in-cluster registry when `spec.k3d.image` is unset (CNCF distribution, pinned).
pub const DEFAULT_DISTRIBUTION_IMAGE: &str = "docker.io/library/registry:2.8.3";
/// Namespace and name of the KEP-1755 ConfigMap.
pub const KEP_1755_NAMESPACE: &str = "kube-public";
/// Name of the KEP-1755 ConfigMap.
pub const KEP_1755_NAME: &str = "local-registry-hosting";
/// Data key of the KEP-1755 ConfigMap.
pub const KEP_1755_KEY: &str = "localRegistryHosting.v1";

const APP: &str = "distribution";
const COMPONENT: &str = "registry";
const PORT: i32 = 5000;
const DATA_DIR: &str = "/var/lib/registry";
/// Non-root uid/gid the distribution image runs as (the image's default is root, which it does not need).
const RUN_AS: i64 = 1000;

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

#[derive(Serialize)]
struct K3sRegistries<'a> {
    mirrors: BTreeMap<&'a str, K3sMirror>,
}

#[derive(Serialize)]
struct K3sMirror {
    endpoint: Vec<String>,
}

/// A k3s `registries.yaml` that mirrors `endpoint` over plain HTTP (k3d registries serve no TLS).
fn k3s_registries_yaml(endpoint: &str) -> Result<String, RenderError> {
    let registries = K3sRegistries {
        mirrors: BTreeMap::from([(
            endpoint,
            K3sMirror {
                endpoint: vec![format!("http://{endpoint}")],
            },
        )]),
    };
    Ok(yaml_serde::to_string(&registries)?)
}

pub(super) fn render(registry: &Registry, observed: &Observed) -> Result<Rendered, RenderError> {
    let spec = registry.spec.k3d.clone().unwrap_or_default();
    let namespace = registry.namespace().unwrap_or_default();
    let name = registry.name_any();
    let owner = Owner {
        kind: "Registry",
        name: &name,
        namespace: Some(&namespace),
    };
    let mut warnings = Vec::new();

    if let Some(announced) = &observed.local_registry_hosting {
        let ours = announced
            .written_by
            .as_ref()
            .map(|(ns, n)| (ns.as_str(), n.as_str()));
        match ours {
            None if spec.adopt == AdoptPolicy::Auto => {
                let endpoint = registry
                    .spec
                    .host
                    .clone()
                    .or_else(|| announced.hosting.endpoint().map(str::to_string));
                let k3s_registries_yaml = endpoint.as_deref().map(k3s_registries_yaml).transpose()?;
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

    let object_name = format!("{name}-distribution");
    let service_host = format!("{object_name}.{namespace}.svc.cluster.local:{PORT}");
    let endpoint = registry
        .spec
        .host
        .clone()
        .unwrap_or_else(|| service_host.clone());
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
        ))?,
        RenderedObject::from_typed(deployment(
            meta(&object_name, &namespace, true),
            &owner,
            &spec,
            &object_name,
        ))?,
    ];
    let announce = match &observed.local_registry_hosting {
        None => true,
        Some(announced) => {
            announced.written_by.as_ref() == Some(&(namespace.clone(), name.clone()))
        }
    };
    if announce {
        let hosting = LocalRegistryHosting {
            host: Some(endpoint.clone()),
            host_from_container_runtime: None,
            host_from_cluster_network: Some(service_host),
            help: Some("https://github.com/kubernetes/enhancements/tree/master/keps/sig-cluster-lifecycle/generic/1755-communicating-a-local-registry".to_string()),
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
    Ok(Rendered {
        objects,
        k3s_registries_yaml: Some(k3s_registries_yaml(&endpoint)?),
        endpoint: Some(endpoint),
        adopted: false,
        warnings,
        ..Default::default()
    })
}

fn pvc(metadata: ObjectMeta, storage: Option<&VolumeSpec>) -> PersistentVolumeClaim {
    let storage = storage.cloned().unwrap_or_else(default_k3d_volume);
    PersistentVolumeClaim {
        metadata,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_string()]),
            storage_class_name: storage.storage_class_name,
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), storage.size)])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn service(metadata: ObjectMeta, selector: BTreeMap<String, String>) -> Service {
    Service {
        metadata,
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some("registry".to_string()),
                port: PORT,
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
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("10m".to_string())),
            ("memory".to_string(), Quantity("50Mi".to_string())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_string(),
            Quantity("64Mi".to_string()),
        )])),
        ..Default::default()
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        ..Default::default()
    }
}

fn env_from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_string(),
                key: key.to_string(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn probe(initial_delay: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/".to_string()),
            port: IntOrString::String("registry".to_string()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(10),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

/// Pod Security "restricted" container settings.
pub(crate) fn restricted_container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            ..Default::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn deployment(metadata: ObjectMeta, owner: &Owner<'_>, spec: &K3dSpec, claim: &str) -> Deployment {
    let mut environment = vec![
        env("REGISTRY_HTTP_ADDR", &format!(":{PORT}")),
        env("REGISTRY_STORAGE_DELETE_ENABLED", "true"),
        env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", DATA_DIR),
    ];
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
        name: "registry".to_string(),
        image: Some(
            spec.image
                .clone()
                .unwrap_or_else(|| DEFAULT_DISTRIBUTION_IMAGE.to_string()),
        ),
        image_pull_policy: Some("IfNotPresent".to_string()),
        ports: Some(vec![ContainerPort {
            name: Some("registry".to_string()),
            container_port: PORT,
            protocol: Some("TCP".to_string()),
            ..Default::default()
        }]),
        env: Some(environment),
        liveness_probe: Some(probe(10)),
        readiness_probe: Some(probe(2)),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        security_context: Some(restricted_container_security()),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "data".to_string(),
                mount_path: DATA_DIR.to_string(),
                ..Default::default()
            },
            VolumeMount {
                name: "tmp".to_string(),
                mount_path: "/tmp".to_string(),
                ..Default::default()
            },
        ]),
        ..Default::default()
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
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUN_AS),
                        run_as_group: Some(RUN_AS),
                        fs_group: Some(RUN_AS),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_string(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    containers: vec![container],
                    volumes: Some(vec![
                        Volume {
                            name: "data".to_string(),
                            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                claim_name: claim.to_string(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                        Volume {
                            name: "tmp".to_string(),
                            empty_dir: Some(EmptyDirVolumeSource::default()),
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
#[path = "k3d_tests.rs"]
mod tests;
