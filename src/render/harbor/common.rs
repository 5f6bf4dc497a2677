//! Shared pieces of Harbor rendering: the resolved settings (`Ctx`), names, URLs, Redis and database
//! targets, and builders for metadata, pods, services, volumes and env. Pure; no I/O or randomness.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, KeyToPath, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecretVolumeSource, SecurityContext,
    Service, ServicePort, ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use crate::crd::{
    DEFAULT_HARBOR_VERSION, HarborExpose, HarborSpec, RedisMode, Registry, SecretKeyRef, SslMode,
    VolumeSpec,
};
use crate::render::labels::Owner;
use crate::render::{RenderError, owner_reference};

/// `app.kubernetes.io/name` of every Harbor object.
pub(super) const APP: &str = "harbor";
/// uid/gid of Harbor's photon images (user `harbor`/`scanner` in the upstream Dockerfiles).
pub(super) const HARBOR_UID: i64 = 10000;
/// uid/gid of `redis-photon` (user `redis`, chowned 999:999 upstream).
pub(super) const REDIS_UID: i64 = 999;
/// Port Harbor's HTTP components listen on inside the pod.
pub(super) const HTTP_PORT: i32 = 8080;
/// Port of core, portal and jobservice Services (as in the upstream chart).
pub(super) const SERVICE_PORT: i32 = 80;
/// Port of the registry.
pub(super) const REGISTRY_PORT: i32 = 5000;
/// Port of Redis.
pub(super) const REDIS_PORT: i32 = 6379;
/// Port of the exporter's metrics.
pub(super) const EXPORTER_PORT: i32 = 8001;
/// Registry user core and jobservice authenticate to the registry as (not a secret).
pub(super) const REGISTRY_USER: &str = "harbor_registry_user";
/// Env var holding the Redis password, expanded by the kubelet inside Redis URLs (`$(REDIS_PASSWORD)`).
pub(super) const REDIS_PASSWORD_ENV: &str = "REDIS_PASSWORD";

/// Redis DB indexes Harbor's components use (as Harbor assigns them).
pub(super) mod redis_db {
    pub const CORE: u8 = 0;
    pub const JOBSERVICE: u8 = 1;
    pub const REGISTRY: u8 = 2;
    pub const TRIVY: u8 = 5;
}

/// The resolved Harbor settings of one Registry.
pub(super) struct Ctx<'a> {
    pub registry: &'a Registry,
    pub spec: HarborSpec,
    pub name: String,
    pub namespace: String,
    pub version: String,
    pub host: String,
    pub expose: HarborExpose,
    pub external_url: String,
    pub database: DatabaseTarget,
    pub redis: RedisTarget,
}

/// Where Harbor's PostgreSQL is and how to log in (the password only as a Secret reference).
pub(super) struct DatabaseTarget {
    pub host: String,
    pub port: i32,
    pub database: String,
    pub username: String,
    pub ssl_mode: &'static str,
    pub password: SecretKeyRef,
}

/// Where Harbor's Redis is; URLs carry `$(REDIS_PASSWORD)` when a password Secret is referenced.
pub(super) struct RedisTarget {
    pub addr: String,
    pub sentinel_master_set: Option<String>,
    pub password: Option<SecretKeyRef>,
}

impl RedisTarget {
    /// `redis[+sentinel]://[:$(REDIS_PASSWORD)@]addr[/master]/db[?idle_timeout_seconds=30]`.
    pub fn url(&self, db: u8, idle_timeout: bool) -> String {
        let scheme = if self.sentinel_master_set.is_some() {
            "redis+sentinel"
        } else {
            "redis"
        };
        let credentials = if self.password.is_some() {
            format!(":$({REDIS_PASSWORD_ENV})@")
        } else {
            String::new()
        };
        let master = self
            .sentinel_master_set
            .as_ref()
            .map(|m| format!("/{m}"))
            .unwrap_or_default();
        let query = if idle_timeout {
            "?idle_timeout_seconds=30"
        } else {
            ""
        };
        format!("{scheme}://{credentials}{}{master}/{db}{query}", self.addr)
    }

    /// The `REDIS_PASSWORD` env var; must precede any env var whose value uses [`Self::url`].
    pub fn password_env(&self) -> Option<EnvVar> {
        self.password
            .as_ref()
            .map(|p| env_from_secret(REDIS_PASSWORD_ENV, &p.name, &p.key))
    }
}

fn ssl_mode(mode: SslMode) -> &'static str {
    match mode {
        SslMode::Disable => "disable",
        SslMode::Require => "require",
        SslMode::VerifyCa => "verify-ca",
        SslMode::VerifyFull => "verify-full",
    }
}

impl<'a> Ctx<'a> {
    pub fn new(registry: &'a Registry) -> Self {
        let spec = registry.spec.harbor.clone().unwrap_or_default();
        let name = registry.name_any();
        let namespace = registry.namespace().unwrap_or_default();
        let version = spec
            .version
            .clone()
            .unwrap_or_else(|| DEFAULT_HARBOR_VERSION.to_string());
        let version = version.strip_prefix('v').unwrap_or(&version).to_string();
        let host = registry.spec.host.clone().unwrap_or_default();
        let expose = spec.expose.clone().unwrap_or_default();
        let scheme = if expose.tls_secret_name.is_some() {
            "https"
        } else {
            "http"
        };
        let external_url = format!("{scheme}://{host}");
        let database = match spec.database.as_ref().and_then(|d| d.external.clone()) {
            Some(external) => DatabaseTarget {
                host: external.host,
                port: external.port,
                database: external.database,
                username: external.username,
                ssl_mode: ssl_mode(external.ssl_mode),
                password: external.password_secret_ref,
            },
            None => {
                let cluster = database_cluster_name(&name);
                DatabaseTarget {
                    host: format!("{cluster}-rw"),
                    port: 5432,
                    database: MANAGED_DATABASE.to_string(),
                    username: MANAGED_OWNER.to_string(),
                    ssl_mode: "require",
                    password: SecretKeyRef {
                        name: format!("{cluster}-app"),
                        key: "password".to_string(),
                    },
                }
            }
        };
        let redis = match spec.redis.as_ref().and_then(|r| r.external.clone()) {
            Some(external) => RedisTarget {
                addr: external.addr,
                sentinel_master_set: (external.mode == RedisMode::Sentinel)
                    .then_some(external.sentinel_master_set)
                    .flatten(),
                password: external.password_secret_ref,
            },
            None => RedisTarget {
                addr: format!("{name}-harbor-redis:{REDIS_PORT}"),
                sentinel_master_set: None,
                password: None,
            },
        };
        Self {
            registry,
            spec,
            name,
            namespace,
            version,
            host,
            expose,
            external_url,
            database,
            redis,
        }
    }

    pub fn owner(&self) -> Owner<'_> {
        Owner {
            kind: "Registry",
            name: &self.name,
            namespace: Some(&self.namespace),
        }
    }

    /// `<registry>-harbor-<component>`: the name of a component's objects.
    pub fn object_name(&self, component: &str) -> String {
        format!("{}-harbor-{component}", self.name)
    }

    /// In-cluster `http://` URL of a component's Service.
    pub fn service_url(&self, component: &str, port: Option<i32>) -> String {
        match port {
            Some(port) => format!("http://{}:{port}", self.object_name(component)),
            None => format!("http://{}", self.object_name(component)),
        }
    }

    pub fn meta(&self, component: &str) -> ObjectMeta {
        self.meta_named(&self.object_name(component), component)
    }

    pub fn meta_named(&self, name: &str, component: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.owner().labels(APP, component)),
            owner_references: owner_reference(self.registry).map(|o| vec![o]),
            ..Default::default()
        }
    }

    /// `goharbor/<repository>:v<version>` unless overridden.
    pub fn image(
        &self,
        repository: &str,
        override_image: impl Fn(&crate::crd::HarborImages) -> Option<String>,
    ) -> String {
        self.spec
            .images
            .as_ref()
            .and_then(override_image)
            .unwrap_or_else(|| format!("goharbor/{repository}:v{}", self.version))
    }

    pub fn trivy_enabled(&self) -> bool {
        self.spec.trivy.as_ref().is_none_or(|t| t.enabled)
    }

    pub fn exporter_enabled(&self) -> bool {
        self.spec.exporter.as_ref().is_some_and(|e| e.enabled)
    }

    /// Pod template of a component: restricted pod security context, pull secrets, no API token.
    pub fn pod_template(
        &self,
        component: &str,
        run_as: i64,
        containers: Vec<Container>,
        volumes: Vec<Volume>,
    ) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(self.owner().labels(APP, component)),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                automount_service_account_token: Some(false),
                enable_service_links: Some(false),
                image_pull_secrets: (!self.spec.image_pull_secrets.is_empty())
                    .then(|| self.spec.image_pull_secrets.clone()),
                security_context: Some(PodSecurityContext {
                    run_as_non_root: Some(true),
                    run_as_user: Some(run_as),
                    run_as_group: Some(run_as),
                    fs_group: Some(run_as),
                    seccomp_profile: Some(runtime_default()),
                    ..Default::default()
                }),
                containers,
                volumes: (!volumes.is_empty()).then_some(volumes),
                ..Default::default()
            }),
        }
    }

    pub fn service(&self, component: &str, ports: &[(&str, i32, i32)]) -> Service {
        Service {
            metadata: self.meta(component),
            spec: Some(ServiceSpec {
                selector: Some(self.owner().pod_selector(APP, component)),
                ports: Some(
                    ports
                        .iter()
                        .map(|(name, port, target)| ServicePort {
                            name: Some(name.to_string()),
                            port: *port,
                            target_port: Some(IntOrString::Int(*target)),
                            protocol: Some("TCP".to_string()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Label every Harbor-owned generated Secret carries.
    pub fn secret_labels(&self) -> BTreeMap<String, String> {
        self.owner().labels(APP, "secrets")
    }
}

/// A config file body that depends on no input, from its once-built `cache`; should building it ever
/// fail, `build` runs again so the caller gets the error itself (errors are not `Clone`).
pub(super) fn constant_config(
    cache: &LazyLock<Option<String>>,
    build: fn() -> Result<String, RenderError>,
) -> Result<String, RenderError> {
    match cache.as_ref() {
        Some(body) => Ok(body.clone()),
        None => build(),
    }
}

/// Database and owner of the managed CNPG cluster.
pub(super) const MANAGED_DATABASE: &str = "registry";
pub(super) const MANAGED_OWNER: &str = "harbor";

/// `<registry>-harbor-db`: the managed CNPG cluster.
pub(super) fn database_cluster_name(registry: &str) -> String {
    format!("{registry}-harbor-db")
}

pub(super) fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_string(),
        ..Default::default()
    }
}

/// Pod Security "restricted" container settings. `read_only_root` is false only for images that must
/// write to their root filesystem; each caller says why.
pub(super) fn container_security(read_only_root: bool) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(read_only_root),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            ..Default::default()
        }),
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    }
}

pub(super) fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.into()),
        ..Default::default()
    }
}

pub(super) fn env_from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
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

pub(super) fn http_probe(
    path: &str,
    port: &str,
    initial_delay: i32,
    failure_threshold: i32,
) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String(port.to_string()),
            scheme: Some("HTTP".to_string()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        failure_threshold: Some(failure_threshold),
        ..Default::default()
    }
}

pub(super) fn port(name: &str, container_port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_string()),
        container_port,
        protocol: Some("TCP".to_string()),
        ..Default::default()
    }
}

/// `requests` cpu+memory and a memory `limits`, unless the spec overrides the component.
pub(super) fn resources(
    overridden: Option<&ResourceRequirements>,
    cpu: &str,
    memory: &str,
    memory_limit: &str,
) -> ResourceRequirements {
    overridden.cloned().unwrap_or_else(|| ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.to_string())),
            ("memory".to_string(), Quantity(memory.to_string())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_string(),
            Quantity(memory_limit.to_string()),
        )])),
        ..Default::default()
    })
}

pub(super) fn mount(name: &str, path: &str, sub_path: Option<&str>) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        sub_path: sub_path.map(str::to_string),
        read_only: None,
        ..Default::default()
    }
}

pub(super) fn read_only_mount(name: &str, path: &str, sub_path: Option<&str>) -> VolumeMount {
    VolumeMount {
        read_only: Some(true),
        ..mount(name, path, sub_path)
    }
}

pub(super) fn config_map_volume(name: &str, config_map: &str) -> Volume {
    Volume {
        name: name.to_string(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A volume with selected keys of a Secret (`(key, path)`), files readable by the pod's group only.
pub(super) fn secret_volume(name: &str, secret: &str, items: &[(&str, &str)]) -> Volume {
    Volume {
        name: name.to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_string()),
            items: Some(
                items
                    .iter()
                    .map(|(key, path)| KeyToPath {
                        key: key.to_string(),
                        path: path.to_string(),
                        mode: None,
                    })
                    .collect(),
            ),
            default_mode: Some(0o440),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(super) fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }
}

pub(super) fn pvc_volume(name: &str, claim: &str) -> Volume {
    Volume {
        name: name.to_string(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(super) fn pvc_spec(volume: &VolumeSpec) -> PersistentVolumeClaimSpec {
    PersistentVolumeClaimSpec {
        access_modes: Some(vec!["ReadWriteOnce".to_string()]),
        storage_class_name: volume.storage_class_name.clone(),
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([(
                "storage".to_string(),
                volume.size.clone(),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(super) fn pvc(metadata: ObjectMeta, volume: &VolumeSpec) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata,
        spec: Some(pvc_spec(volume)),
        ..Default::default()
    }
}
