//! Shared pieces of Harbor rendering: the resolved settings (`Ctx`), names, URLs, Redis and database
//! targets (and their env), and builders for metadata, pods, services, resources and the database CA;
//! the generic env, probe, volume and mount builders of `render::builders` are re-exported for the
//! components. Pure; no I/O or randomness.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, StatefulSet, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PersistentVolumeClaim, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use sha2::{Digest, Sha256};

use super::versions::{self, Release};
use crate::crd::{
    CaBundleSecretRef, DEFAULT_HARBOR_VERSION, HarborExpose, HarborResources, HarborSpec,
    RedisMode, Registry, SecretKeyRef, SslMode, VolumeSpec,
};
pub(super) use crate::render::builders::{
    config_map_volume, container_security, empty_dir, env, env_from_secret, http_probe, mount,
    port, pvc, pvc_volume, read_only_mount, secret_volume,
};
use crate::render::builders::{pvc_spec, resources, runtime_default};
use crate::render::labels::Owner;
use crate::render::owner_reference;

/// Registry and organisation of Harbor's images, fully qualified (`docker.io`, never implied).
pub(super) const HARBOR_IMAGE_PREFIX: &str = "docker.io/goharbor";
/// `app.kubernetes.io/name` of every Harbor object.
pub(super) const APP: &str = "harbor";
/// uid/gid of Harbor's photon images (user `harbor`/`scanner` in the upstream Dockerfiles).
pub(super) const HARBOR_UID: i64 = 10000;
/// uid/gid of `redis-photon` (user `redis`) and `valkey-photon` (user `valkey`): both 999:999 in
/// Harbor's `make/photon/{redis,valkey}/Dockerfile.base`.
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

/// Directory of extra trusted CAs in Harbor's images (`install_cert.sh`).
pub(super) const CUSTOM_CA_DIR: &str = "/harbor_cust_cert";
/// File name of the database CA in [`CUSTOM_CA_DIR`].
pub(super) const DATABASE_CA_FILE: &str = "database-ca.crt";
const DATABASE_CA_VOLUME: &str = "database-ca";
/// Pod-template annotation: SHA-256 of the configuration files a pod mounts (ConfigMap data), so a
/// changed configuration rolls the pods (harbor-helm's `checksum/configmap`).
pub const CONFIG_CHECKSUM_ANNOTATION: &str = "registry.aisp.dev/config-sha256";

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
    /// What this Harbor release needs that others do not (cache image, providers).
    pub release: Release,
    pub host: String,
    pub expose: HarborExpose,
    pub external_url: String,
    pub database: DatabaseTarget,
    pub redis: RedisTarget,
    /// Components held at the running version while an upgrade is in progress.
    held: Option<Held>,
}

/// The running version an upgrade holds components at.
struct Held {
    version: String,
    release: Release,
    core_upgraded: bool,
}

/// Where Harbor's PostgreSQL is and how to log in (the password only as a Secret reference).
pub(super) struct DatabaseTarget {
    pub host: String,
    pub port: i32,
    pub database: String,
    pub username: String,
    pub ssl_mode: &'static str,
    pub password: SecretKeyRef,
    /// CA of the database's server certificate (external database with verify-ca/verify-full).
    pub ca_bundle: Option<CaBundleSecretRef>,
}

impl DatabaseTarget {
    /// The connection as a component's env: `<prefix>_HOST`, `_PORT`, `_USERNAME`, `_<database_key>`,
    /// `_SSLMODE` and the connection pool sizes of Harbor's installer (the password is a separate
    /// `secretKeyRef`).
    pub fn env(&self, prefix: &str, database_key: &str) -> [EnvVar; 7] {
        let name = |suffix: &str| format!("{prefix}_{suffix}");
        [
            env(&name("HOST"), self.host.clone()),
            env(&name("PORT"), self.port.to_string()),
            env(&name("USERNAME"), self.username.clone()),
            env(&name(database_key), self.database.clone()),
            env(&name("SSLMODE"), self.ssl_mode),
            env(&name("MAX_IDLE_CONNS"), "100"),
            env(&name("MAX_OPEN_CONNS"), "900"),
        ]
    }
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
        Self::at(registry, registry.spec.host.as_deref())
    }

    /// The context of `registry` served at `host` (the target's host, which may differ from
    /// `spec.host` while the old mode still serves).
    pub fn at(registry: &'a Registry, host: Option<&str>) -> Self {
        let spec = registry.spec.harbor.clone().unwrap_or_default();
        let name = registry.name_any();
        let namespace = registry.namespace().unwrap_or_default();
        let version = spec
            .version
            .clone()
            .unwrap_or_else(|| DEFAULT_HARBOR_VERSION.to_string());
        let version = version.strip_prefix('v').unwrap_or(&version).to_string();
        let host = host.unwrap_or_default().to_string();
        let expose = spec.expose.clone().unwrap_or_default();
        // TLS always: the user's certificate or one the operator generates (see `access`).
        let external_url = format!("https://{host}");
        let database = match spec.database.as_ref().and_then(|d| d.external.clone()) {
            Some(external) => DatabaseTarget {
                host: external.host,
                port: external.port,
                database: external.database,
                username: external.username,
                ssl_mode: ssl_mode(external.ssl_mode),
                password: external.password_secret_ref,
                ca_bundle: external.ca_bundle_secret_ref,
            },
            None if spec.database.as_ref().is_some_and(|d| d.cnpg.is_some()) => {
                let cnpg = spec.database.as_ref().and_then(|d| d.cnpg.clone());
                let cnpg = cnpg.expect("checked above");
                DatabaseTarget {
                    // CNPG's read-write Service of the existing cluster, across namespaces.
                    host: format!(
                        "{}-rw.{}.svc",
                        cnpg.cluster_ref.name, cnpg.cluster_ref.namespace
                    ),
                    port: 5432,
                    database: cnpg.name.clone(),
                    username: cnpg.name,
                    ssl_mode: "require",
                    password: SecretKeyRef {
                        name: format!("{name}-harbor-database-secret"),
                        key: "password".to_string(),
                    },
                    ca_bundle: None,
                }
            }
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
                    ca_bundle: None,
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
        let release = versions::release(&version);
        Self {
            registry,
            spec,
            name,
            namespace,
            version,
            release,
            host,
            expose,
            external_url,
            database,
            redis,
            held: None,
        }
    }

    /// The single-replica Deployment of a component; `recreate` when its pod holds a ReadWriteOnce
    /// volume (never two pods at once).
    pub fn deployment(
        &self,
        component: &str,
        recreate: bool,
        template: PodTemplateSpec,
    ) -> Deployment {
        Deployment {
            metadata: self.meta(component),
            spec: Some(DeploymentSpec {
                replicas: Some(1),
                revision_history_limit: Some(3),
                strategy: recreate.then(|| DeploymentStrategy {
                    type_: Some("Recreate".to_string()),
                    ..Default::default()
                }),
                selector: LabelSelector {
                    match_labels: Some(self.owner().pod_selector(APP, component)),
                    ..Default::default()
                },
                template,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The single-replica StatefulSet of a component (its headless Service has the component's name)
    /// with one volume claim template, `data`, of `volume`.
    pub fn stateful_set(
        &self,
        component: &str,
        template: PodTemplateSpec,
        volume: &VolumeSpec,
    ) -> StatefulSet {
        StatefulSet {
            metadata: self.meta(component),
            spec: Some(StatefulSetSpec {
                replicas: Some(1),
                service_name: Some(self.object_name(component)),
                selector: LabelSelector {
                    match_labels: Some(self.owner().pod_selector(APP, component)),
                    ..Default::default()
                },
                template,
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("data".to_string()),
                        labels: Some(self.owner().labels(APP, component)),
                        ..Default::default()
                    },
                    spec: Some(pvc_spec(volume)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub fn owner(&self) -> Owner<'_> {
        Owner::registry(&self.name, &self.namespace)
    }

    /// `<registry>-harbor-<component>`: the name of a component's objects.
    pub fn object_name(&self, component: &str) -> String {
        component_name(&self.name, component)
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

    /// Hold components at the running version while an upgrade is in progress (core first).
    pub fn holding(mut self, hold: Option<&crate::render::HarborHold>) -> Self {
        self.held = hold.map(|h| {
            let running = h
                .running
                .strip_prefix('v')
                .unwrap_or(&h.running)
                .to_string();
            let release = versions::release(&running);
            Held {
                version: running,
                release,
                core_upgraded: h.core_upgraded,
            }
        });
        self
    }

    /// The version a component runs in this render: the running one while an upgrade holds it.
    fn version_of(&self, core: bool) -> (&str, Release) {
        match &self.held {
            Some(held) if !(core && held.core_upgraded) => (&held.version, held.release),
            _ => (&self.version, self.release),
        }
    }

    /// The release whose settings core gets (the new one once core is upgraded).
    pub fn core_release(&self) -> Release {
        self.version_of(true).1
    }

    /// The release whose cache image runs (held with the other components during an upgrade).
    pub fn cache_release(&self) -> Release {
        self.version_of(false).1
    }

    /// `docker.io/goharbor/<repository>:v<version>` unless overridden: fully qualified, so policies
    /// matching on the registry host and runtimes without a default registry see where it comes from.
    pub fn image(
        &self,
        repository: &str,
        override_image: impl Fn(&crate::crd::HarborImages) -> Option<String>,
    ) -> String {
        let (version, _) = self.version_of(repository == "harbor-core");
        self.spec
            .images
            .as_ref()
            .and_then(override_image)
            .unwrap_or_else(|| format!("{HARBOR_IMAGE_PREFIX}/{repository}:v{version}"))
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

    /// The volume and mount of the database CA (`database.external.caBundleSecretRef`), if any: a
    /// directory mount (no subPath) at `/harbor_cust_cert`, whose `*.crt` files the image's
    /// entrypoint (`install_cert.sh`) appends to `/etc/pki/tls/certs/ca-bundle.crt` at start, the
    /// system roots Harbor's database driver (pgx) verifies `verify-ca`/`verify-full` against when no
    /// `sslrootcert` is set. harbor-helm's `caBundleSecretName` mounts the same directory.
    fn database_ca(&self) -> Option<(Volume, VolumeMount)> {
        let ca = self.database.ca_bundle.as_ref()?;
        Some((
            secret_volume(
                DATABASE_CA_VOLUME,
                &ca.name,
                &[(ca.key.as_str(), DATABASE_CA_FILE)],
            ),
            read_only_mount(DATABASE_CA_VOLUME, CUSTOM_CA_DIR, None),
        ))
    }

    /// A component's mounts and volumes, followed by the database CA's when there is one (see
    /// [`Self::database_ca`]): for the components that talk to the database.
    pub fn with_database_ca(
        &self,
        mut mounts: Vec<VolumeMount>,
        mut volumes: Vec<Volume>,
    ) -> (Vec<VolumeMount>, Vec<Volume>) {
        if let Some((volume, mount)) = self.database_ca() {
            mounts.push(mount);
            volumes.push(volume);
        }
        (mounts, volumes)
    }

    /// Resources of a container: the override `pick` finds in `spec.harbor.resources`, else
    /// `requests` of `cpu` and `memory` and a `memory_limit`.
    pub fn resources(
        &self,
        pick: impl Fn(&HarborResources) -> Option<&ResourceRequirements>,
        cpu: &str,
        memory: &str,
        memory_limit: &str,
    ) -> ResourceRequirements {
        let overridden = self.spec.resources.as_ref().and_then(pick);
        resources(overridden, cpu, memory, memory_limit)
    }

    /// How core and jobservice reach the registry: its API and controller URLs and the user they log
    /// in as (the password comes from the generated registry Secret).
    pub fn registry_client_env(&self) -> [EnvVar; 3] {
        [
            env(
                "REGISTRY_URL",
                self.service_url("registry", Some(REGISTRY_PORT)),
            ),
            env(
                "REGISTRY_CONTROLLER_URL",
                self.service_url("registry", Some(HTTP_PORT)),
            ),
            env("REGISTRY_CREDENTIAL_USERNAME", REGISTRY_USER),
        ]
    }

    /// Label every Harbor-owned generated Secret carries.
    pub fn secret_labels(&self) -> BTreeMap<String, String> {
        self.owner().labels(APP, "secrets")
    }
}

/// SHA-256 (hex) of configuration maps, stable across processes and releases: every entry as
/// length-prefixed key and value, maps in the given order, keys sorted (BTreeMap).
pub(super) fn config_checksum<'m>(
    maps: impl IntoIterator<Item = &'m BTreeMap<String, String>>,
) -> String {
    let mut hasher = Sha256::new();
    for map in maps {
        hasher.update((map.len() as u64).to_be_bytes());
        for (key, value) in map {
            for part in [key, value] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part.as_bytes());
            }
        }
    }
    hex::encode(hasher.finalize())
}

/// Put [`CONFIG_CHECKSUM_ANNOTATION`] on a pod template.
pub(super) fn with_config_checksum(
    mut template: PodTemplateSpec,
    checksum: String,
) -> PodTemplateSpec {
    template
        .metadata
        .get_or_insert_with(Default::default)
        .annotations
        .get_or_insert_with(Default::default)
        .insert(CONFIG_CHECKSUM_ANNOTATION.to_string(), checksum);
    template
}

/// Database and owner of the managed CNPG cluster.
pub(super) const MANAGED_DATABASE: &str = "registry";
pub(super) const MANAGED_OWNER: &str = "harbor";

/// `<registry>-harbor-<component>`: the name of a Harbor component's objects.
pub fn component_name(registry: &str, component: &str) -> String {
    format!("{registry}-harbor-{component}")
}

/// `<registry>-harbor-db`: the managed CNPG cluster.
pub(super) fn database_cluster_name(registry: &str) -> String {
    format!("{registry}-harbor-db")
}
