//! Harbor mode against upstream Harbor: for every release we accept, the images Harbor publishes at
//! that tag; core's environment against harbor-helm's templates; the registry config, database TLS,
//! config checksums, Ingress annotations and the managed database's connection limit. Each table
//! names its source.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use registry_operator::crd::{DEFAULT_HARBOR_VERSION, Registry};
use registry_operator::render::{
    self, HARBOR_CONFIG_CHECKSUM_ANNOTATION, HarborObserved, Observed, Rendered, RenderedObject,
};
use serde_json::Value;

fn registry(yaml: &str) -> Registry {
    yaml_serde::from_str(yaml).expect("fixture parses")
}

fn harbor(name: &str, harbor: &str) -> Registry {
    registry(&format!(
        "apiVersion: registry.aisp.dev/v1alpha1\nkind: Registry\nmetadata: {{ name: {name}, namespace: registry }}\nspec:\n  mode: Harbor\n  host: harbor.example.com\n  harbor: {harbor}\n"
    ))
}

fn rendered(registry: &Registry) -> Rendered {
    registry_operator::validate::registry(registry).expect("valid");
    let observed = Observed {
        harbor: HarborObserved {
            database_ready: true,
            components_exist: false,
        },
        ..Default::default()
    };
    render::registry(registry, &observed).expect("renders")
}

fn json(object: &RenderedObject) -> Value {
    serde_json::to_value(&object.object).expect("json")
}

/// Pod templates of every Deployment and StatefulSet, by object key.
fn templates(rendered: &Rendered) -> BTreeMap<String, PodTemplateSpec> {
    rendered
        .objects
        .iter()
        .filter(|o| matches!(o.resource.kind.as_str(), "Deployment" | "StatefulSet"))
        .map(|o| {
            let value = serde_json::to_value(&o.object).expect("json");
            let template = serde_json::from_value(value["spec"]["template"].clone()).expect("pod");
            (o.key(), template)
        })
        .collect()
}

fn pod(rendered: &Rendered, kind: &str, name: &str) -> PodSpec {
    templates(rendered)[&format!("{kind}/registry/{name}")]
        .spec
        .clone()
        .expect("pod spec")
}

/// `(name, value)` of one container's env; values from secrets are `<secret>/<key>`.
fn env(pod: &PodSpec, container: &str) -> BTreeMap<String, String> {
    pod.containers
        .iter()
        .find(|c| c.name == container)
        .and_then(|c| c.env.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let value = e.value.unwrap_or_else(|| {
                let secret = e.value_from.and_then(|v| v.secret_key_ref).expect("secret");
                format!("{}/{}", secret.name, secret.key)
            });
            (e.name, value)
        })
        .collect()
}

/// Every Harbor release we accept (tags v2.9.0 … v2.15.2 of github.com/goharbor/harbor) and the
/// cache image its `make/photon/` builds: `redis/` (goharbor/redis-photon) at every tag up to
/// v2.15.1 and on the whole 2.14 line; `valkey/` (goharbor/valkey-photon) at v2.15.2, where
/// `redis/` is gone. Every other component keeps its directory at every tag (core, portal,
/// jobservice, registry → registry-photon, registryctl, trivy-adapter → trivy-adapter-photon,
/// exporter).
const RELEASES: &[(&str, &str)] = &[
    ("2.9.0", "redis-photon"),
    ("2.9.1", "redis-photon"),
    ("2.9.2", "redis-photon"),
    ("2.9.3", "redis-photon"),
    ("2.9.4", "redis-photon"),
    ("2.9.5", "redis-photon"),
    ("2.10.0", "redis-photon"),
    ("2.10.1", "redis-photon"),
    ("2.10.2", "redis-photon"),
    ("2.10.3", "redis-photon"),
    ("2.11.0", "redis-photon"),
    ("2.11.1", "redis-photon"),
    ("2.11.2", "redis-photon"),
    ("2.12.0", "redis-photon"),
    ("2.12.1", "redis-photon"),
    ("2.12.2", "redis-photon"),
    ("2.12.3", "redis-photon"),
    ("2.12.4", "redis-photon"),
    ("2.13.0", "redis-photon"),
    ("2.13.1", "redis-photon"),
    ("2.13.2", "redis-photon"),
    ("2.13.3", "redis-photon"),
    ("2.13.4", "redis-photon"),
    ("2.13.5", "redis-photon"),
    ("2.14.0", "redis-photon"),
    ("2.14.1", "redis-photon"),
    ("2.14.2", "redis-photon"),
    ("2.14.3", "redis-photon"),
    ("2.14.4", "redis-photon"),
    ("2.15.0", "redis-photon"),
    ("2.15.1", "redis-photon"),
    ("2.15.2", "valkey-photon"),
];

#[test]
fn version_matrix_images_follow_what_each_release_tag_builds() {
    assert!(
        RELEASES.iter().any(|(v, _)| *v == DEFAULT_HARBOR_VERSION),
        "the default version {DEFAULT_HARBOR_VERSION} must be a release that exists"
    );
    for (version, cache) in RELEASES {
        let rendered = rendered(&harbor(
            "v",
            &format!("{{ version: \"{version}\", exporter: {{ enabled: true }} }}"),
        ));
        let mut images = BTreeSet::new();
        for template in templates(&rendered).values() {
            for container in &template.spec.as_ref().expect("pod").containers {
                images.insert(container.image.clone().expect("image"));
            }
        }
        let expected: BTreeSet<String> = [
            "harbor-core",
            "harbor-portal",
            "harbor-jobservice",
            "registry-photon",
            "harbor-registryctl",
            "trivy-adapter-photon",
            "harbor-exporter",
            cache,
        ]
        .iter()
        .map(|repository| format!("docker.io/goharbor/{repository}:v{version}"))
        .collect();
        assert_eq!(images, expected, "Harbor {version}");
        // The probes must work with the image used: TCP, as harbor-helm's, never `redis-cli`
        // (valkey-photon ships only `valkey-cli`).
        let redis = pod(&rendered, "StatefulSet", "v-harbor-redis");
        let container = &redis.containers[0];
        for probe in [&container.readiness_probe, &container.liveness_probe] {
            let probe = probe.as_ref().expect("probe");
            assert!(
                probe.tcp_socket.is_some() && probe.exec.is_none(),
                "{version}: {probe:?}"
            );
        }
        assert_eq!(
            redis.security_context.as_ref().and_then(|s| s.run_as_user),
            Some(999)
        );
    }
}

/// harbor-helm v1.19.1 (Harbor 2.15.1, the newest chart), `templates/core/core-cm.yaml`, the core
/// Secret (`core-secret.yaml`, read through `envFrom`) and `core-dpl.yaml`'s `env`: every variable
/// the chart sets with its default values, and ours for it. `None`: the value is ours by design
/// (service names, secret references), checked only for presence.
const CHART_CORE_ENV: &[(&str, Option<&str>)] = &[
    ("PORT", Some("8080")),
    ("DATABASE_TYPE", Some("postgresql")),
    ("POSTGRESQL_HOST", None),
    ("POSTGRESQL_PORT", None),
    ("POSTGRESQL_USERNAME", None),
    ("POSTGRESQL_DATABASE", None),
    ("POSTGRESQL_SSLMODE", None),
    ("POSTGRESQL_MAX_IDLE_CONNS", Some("100")),
    ("POSTGRESQL_MAX_OPEN_CONNS", Some("900")),
    ("EXT_ENDPOINT", Some("https://harbor.example.com")),
    ("CORE_URL", Some("http://c-harbor-core:80")),
    ("JOBSERVICE_URL", Some("http://c-harbor-jobservice")),
    ("REGISTRY_URL", Some("http://c-harbor-registry:5000")),
    (
        "TOKEN_SERVICE_URL",
        Some("http://c-harbor-core:80/service/token"),
    ),
    ("CORE_LOCAL_URL", Some("http://127.0.0.1:8080")),
    ("WITH_TRIVY", Some("true")),
    ("TRIVY_ADAPTER_URL", Some("http://c-harbor-trivy:8080")),
    ("REGISTRY_STORAGE_PROVIDER_NAME", Some("filesystem")),
    ("LOG_LEVEL", Some("info")),
    ("CONFIG_PATH", Some("/etc/core/app.conf")),
    ("CHART_CACHE_DRIVER", Some("redis")),
    (
        "_REDIS_URL_CORE",
        Some("redis://c-harbor-redis:6379/0?idle_timeout_seconds=30"),
    ),
    (
        "_REDIS_URL_REG",
        Some("redis://c-harbor-redis:6379/2?idle_timeout_seconds=30"),
    ),
    ("PORTAL_URL", Some("http://c-harbor-portal")),
    (
        "REGISTRY_CONTROLLER_URL",
        Some("http://c-harbor-registry:8080"),
    ),
    ("REGISTRY_CREDENTIAL_USERNAME", Some("harbor_registry_user")),
    (
        "PERMITTED_REGISTRY_TYPES_FOR_PROXY_CACHE",
        Some(
            "docker-hub,harbor,azure-acr,ali-acr,aws-ecr,google-gcr,docker-registry,github-ghcr,jfrog-artifactory",
        ),
    ),
    (
        "REPLICATION_ADAPTER_WHITELIST",
        Some(
            "ali-acr,aws-ecr,azure-acr,docker-hub,docker-registry,github-ghcr,google-gcr,harbor,huawei-SWR,jfrog-artifactory,tencent-tcr,volcengine-cr",
        ),
    ),
    // metrics.enabled (our spec.harbor.exporter.enabled)
    ("METRIC_ENABLE", Some("true")),
    ("METRIC_PATH", Some("/metrics")),
    ("METRIC_PORT", Some("8001")),
    ("METRIC_NAMESPACE", Some("harbor")),
    ("METRIC_SUBSYSTEM", Some("core")),
    // core Secret (envFrom) and env
    (
        "HARBOR_ADMIN_PASSWORD",
        Some("c-harbor-admin-secret/password"),
    ),
    ("POSTGRESQL_PASSWORD", Some("c-harbor-db-app/password")),
    (
        "REGISTRY_CREDENTIAL_PASSWORD",
        Some("c-harbor-registry-secret/password"),
    ),
    ("CSRF_KEY", Some("c-harbor-core-secret/csrfKey")),
    ("CORE_SECRET", Some("c-harbor-core-secret/secret")),
    (
        "JOBSERVICE_SECRET",
        Some("c-harbor-jobservice-secret/secret"),
    ),
];

/// What harbor-helm v1.19.1 can set for core that we leave out, and why.
const CHART_CORE_ENV_LEFT_OUT: &[(&str, &str)] = &[
    (
        "_REDIS_URL_HARBOR",
        "only with redis.*.harborDatabaseIndex, unset by default",
    ),
    (
        "_REDIS_URL_CACHE_LAYER",
        "only with redis.*.cacheLayerDatabaseIndex, unset by default",
    ),
    ("UAA_CA_ROOT", "UAA authentication is not offered"),
    (
        "HTTP_PROXY",
        "empty by default in the chart (proxy.httpProxy); no egress proxy option yet",
    ),
    ("HTTPS_PROXY", "same"),
    ("NO_PROXY", "only meaningful with a proxy"),
    (
        "GC_TIME_WINDOW_HOURS",
        "testing aid (core.gcTimeWindowHours)",
    ),
    (
        "TRACE_SERVICE_NAME",
        "only with trace.enabled; tracing is not offered",
    ),
    (
        "ARTIFACT_PULL_ASYNC_FLUSH_DURATION",
        "only with core.artifactPullAsyncFlushDuration",
    ),
    ("GDPR_DELETE_USER", "only with core.gdpr"),
    ("GDPR_AUDIT_LOGS", "only with core.gdpr"),
    ("CACHE_ENABLED", "only with cache.enabled, false by default"),
    ("CACHE_EXPIRE_HOURS", "only with cache.enabled"),
    (
        "QUOTA_UPDATE_PROVIDER",
        "only with core.quotaUpdateProvider",
    ),
    (
        "INTERNAL_TLS_ENABLED",
        "only with internalTLS.enabled; pod-to-pod TLS is not offered",
    ),
    (
        "CONFIG_OVERWRITE_JSON",
        "only with core.configureUserSettings",
    ),
];

/// Ours beyond the chart: where we mount the token key (no subPath, so a rewritten key reaches core).
const OURS_ONLY: &[&str] = &["TOKEN_PRIVATE_KEY_PATH"];

#[test]
fn core_environment_carries_every_variable_the_chart_sets() {
    let rendered = rendered(&harbor("c", "{ exporter: { enabled: true } }"));
    let ours = env(&pod(&rendered, "Deployment", "c-harbor-core"), "core");
    for (name, value) in CHART_CORE_ENV {
        let got = ours
            .get(*name)
            .unwrap_or_else(|| panic!("core lacks {name}"));
        if let Some(value) = value {
            assert_eq!(got, value, "{name}");
        }
    }
    let accounted: BTreeSet<&str> = CHART_CORE_ENV
        .iter()
        .map(|(n, _)| *n)
        .chain(OURS_ONLY.iter().copied())
        .collect();
    let extra: Vec<&String> = ours
        .keys()
        .filter(|k| !accounted.contains(k.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "core env not in the chart's table: {extra:?}"
    );
    for (name, _) in CHART_CORE_ENV_LEFT_OUT {
        assert!(!ours.contains_key(*name), "{name} is listed as left out");
    }
    assert_eq!(
        ours["TOKEN_PRIVATE_KEY_PATH"],
        "/etc/core/token-key/private_key.pem"
    );
}

/// Before 2.14 there is no REPLICATION_ADAPTER_WHITELIST, and the proxy-cache providers are Harbor's
/// of that release (`make/photon/prepare/templates/core/env.jinja` at v2.11.2 and v2.13.5).
#[test]
fn providers_follow_the_release() {
    for (version, providers) in [
        (
            "2.11.2",
            "docker-hub,harbor,azure-acr,aws-ecr,google-gcr,quay,docker-registry,github-ghcr,jfrog-artifactory",
        ),
        (
            "2.13.5",
            "docker-hub,harbor,azure-acr,ali-acr,aws-ecr,google-gcr,quay,docker-registry,github-ghcr,jfrog-artifactory",
        ),
    ] {
        let rendered = rendered(&harbor("c", &format!("{{ version: \"{version}\" }}")));
        let ours = env(&pod(&rendered, "Deployment", "c-harbor-core"), "core");
        assert_eq!(
            ours["PERMITTED_REGISTRY_TYPES_FOR_PROXY_CACHE"], providers,
            "{version}"
        );
        assert!(
            !ours.contains_key("REPLICATION_ADAPTER_WHITELIST"),
            "{version}"
        );
    }
    let rendered = rendered(&harbor("c", "{ version: \"2.14.0\" }"));
    let ours = env(&pod(&rendered, "Deployment", "c-harbor-core"), "core");
    assert!(ours["REPLICATION_ADAPTER_WHITELIST"].contains("docker-hub,docker-registry"));
}

#[test]
fn registry_config_has_no_notifications_endpoint() {
    let rendered = rendered(&harbor("r", "{}"));
    let config = &json(crate::support::common::find_rendered(
        &rendered,
        "ConfigMap",
        "r-harbor-registry",
    ))["data"]["config.yml"];
    let text = config.as_str().expect("config.yml");
    let parsed: Value = yaml_serde::from_str(text).expect("config.yml parses");
    assert!(parsed.get("notifications").is_none(), "{text}");
    assert!(!text.contains("/service/notifications"), "{text}");
}

const EXTERNAL_DB: &str = "{ database: { external: { host: pg.example.com, username: harbor, passwordSecretRef: { name: pg }, sslMode: SSLMODE CA } } }";

#[test]
fn verify_modes_need_a_ca_bundle_and_it_is_mounted_where_core_reads_it() {
    for mode in ["verify-ca", "verify-full"] {
        let without = harbor(
            "d",
            &EXTERNAL_DB.replace("SSLMODE", mode).replace(" CA", ""),
        );
        let error = registry_operator::validate::registry(&without)
            .expect_err("a verify mode without a CA is refused")
            .to_string();
        assert!(
            error.contains("spec.harbor.database.external.caBundleSecretRef: required when sslMode is verify-ca or verify-full"),
            "{error}"
        );
    }
    let require = harbor(
        "d",
        &EXTERNAL_DB.replace("SSLMODE", "require").replace(" CA", ""),
    );
    registry_operator::validate::registry(&require).expect("require needs no CA");

    let with = harbor(
        "d",
        &EXTERNAL_DB
            .replace("SSLMODE", "verify-full")
            .replace(" CA", ", caBundleSecretRef: { name: pg-ca } ")
            .replace("{ database", "{ exporter: { enabled: true }, database"),
    );
    let rendered = rendered(&with);
    for (kind, name, container) in [
        ("Deployment", "d-harbor-core", "core"),
        ("Deployment", "d-harbor-jobservice", "jobservice"),
        ("Deployment", "d-harbor-exporter", "exporter"),
    ] {
        let pod = pod(&rendered, kind, name);
        let mount = pod
            .containers
            .iter()
            .find(|c| c.name == container)
            .expect("container")
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == "/harbor_cust_cert")
            .unwrap_or_else(|| panic!("{name}: no CA mount"));
        assert_eq!(mount.sub_path, None, "{name}");
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .expect("volume");
        let secret = volume.secret.as_ref().expect("secret volume");
        assert_eq!(secret.secret_name.as_deref(), Some("pg-ca"));
        let items: Vec<(String, String)> = secret
            .items
            .iter()
            .flatten()
            .map(|i| (i.key.clone(), i.path.clone()))
            .collect();
        // install_cert.sh appends /harbor_cust_cert/*.crt to the system bundle pgx verifies against.
        assert_eq!(
            items,
            [("ca.crt".to_string(), "database-ca.crt".to_string())],
            "{name}"
        );
    }
    let core = env(&pod(&rendered, "Deployment", "d-harbor-core"), "core");
    assert_eq!(core["POSTGRESQL_SSLMODE"], "verify-full");
}

/// Every pod that reads a ConfigMap carries a checksum of it: a changed configuration changes the pod
/// template, so the pods roll (files mounted with subPath never update in place).
#[test]
fn config_changes_roll_the_pods_that_read_them() {
    let checksums = |rendered: &Rendered| -> BTreeMap<String, String> {
        templates(rendered)
            .into_iter()
            .filter_map(|(key, template)| {
                let annotations = template.metadata?.annotations?;
                Some((
                    key,
                    annotations.get(HARBOR_CONFIG_CHECKSUM_ANNOTATION)?.clone(),
                ))
            })
            .collect()
    };
    let pvc = rendered(&harbor("p", "{}"));
    for (key, template) in templates(&pvc) {
        let pod = template.spec.clone().expect("pod");
        let config_volumes: BTreeSet<&str> = pod
            .volumes
            .iter()
            .flatten()
            .filter(|v| v.config_map.is_some())
            .map(|v| v.name.as_str())
            .collect();
        if !config_volumes.is_empty() {
            let annotation = checksums(&pvc).get(&key).cloned();
            let hash =
                annotation.unwrap_or_else(|| panic!("{key} reads a ConfigMap without a checksum"));
            assert!(
                hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                "{hash}"
            );
        }
    }
    let before = checksums(&pvc);
    assert_eq!(
        before.len(),
        4,
        "core, portal, jobservice, registry: {before:?}"
    );
    assert_eq!(before, checksums(&rendered(&harbor("p", "{}"))), "stable");
    let s3 = rendered(&harbor(
        "p",
        "{ storage: { s3: { bucket: images, credentialsSecretRef: { name: s3 } } } }",
    ));
    let after = checksums(&s3);
    let changed: Vec<&String> = before.keys().filter(|k| before[*k] != after[*k]).collect();
    assert_eq!(
        changed,
        ["Deployment/registry/p-harbor-registry"],
        "only the registry's config changed"
    );
}

/// The token key is mounted as a directory (no subPath), so its one-time PKCS#1 rewrite reaches core.
#[test]
fn token_key_mount_follows_secret_updates() {
    let rendered = rendered(&harbor("t", "{}"));
    let pod = pod(&rendered, "Deployment", "t-harbor-core");
    let mount = pod.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == "token-service-private-key")
        .expect("token key mount");
    assert_eq!(
        (mount.mount_path.as_str(), mount.sub_path.as_deref()),
        ("/etc/core/token-key", None)
    );
}

#[test]
fn ingress_annotations_are_set_and_checked() {
    let rendered = rendered(&harbor(
        "i",
        "{ expose: { ingressAnnotations: { nginx.ingress.kubernetes.io/proxy-body-size: \"0\" } } }",
    ));
    let ingress = &json(crate::support::common::find_rendered(
        &rendered,
        "Ingress",
        "i-harbor-ingress",
    ));
    assert_eq!(
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"],
        "0"
    );
    let bad = harbor(
        "i",
        "{ expose: { ingressAnnotations: { \"bad key!\": x } } }",
    );
    let error = registry_operator::validate::registry(&bad)
        .expect_err("refused")
        .to_string();
    assert!(
        error.contains("spec.harbor.expose.ingressAnnotations"),
        "{error}"
    );
}

/// PostgreSQL's default 100 connections are fewer than core's pool alone may open (900, as the chart
/// sets it); Harbor's own database image runs with 1024.
#[test]
fn managed_database_allows_harbors_connections() {
    let rendered = rendered(&harbor("m", "{}"));
    let cluster = &json(crate::support::common::find_rendered(
        &rendered,
        "Cluster",
        "m-harbor-db",
    ));
    assert_eq!(
        cluster["spec"]["postgresql"]["parameters"]["max_connections"],
        "1024"
    );
}
