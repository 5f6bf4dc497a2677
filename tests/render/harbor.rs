//! Harbor-mode render tests: golden snapshots, CNPG schema (strict), k8s-openapi round trips, Pod
//! Security "restricted" field by field, and that no secret value reaches render output.

use crate::support::{common, restricted};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, PodSpec, Service};
use k8s_openapi::api::networking::v1::Ingress;
use registry_operator::crd::Registry;
use registry_operator::render::{
    self, HarborObserved, Observed, PLACEHOLDER, Rendered, RenderedObject,
};
use serde_json::Value;

fn registry(yaml: &str) -> Registry {
    yaml_serde::from_str(yaml).expect("fixture parses")
}

const MANAGED_PVC: &str = r#"
apiVersion: registry.aisp.dev/v1alpha1
kind: Registry
metadata: { name: platform, namespace: registry }
spec:
  mode: Harbor
  host: harbor.ai-platform.localhost
  harbor:
    database: { managed: { instances: 2, storage: { size: 20Gi, storageClassName: local-path } } }
    storage: { pvc: { size: 50Gi, storageClassName: local-path } }
    expose: { ingressClassName: traefik, tlsSecretName: harbor-tls }
"#;

const EXTERNAL_S3: &str = r#"
apiVersion: registry.aisp.dev/v1alpha1
kind: Registry
metadata: { name: platform, namespace: registry }
spec:
  mode: Harbor
  host: harbor.example.com
  harbor:
    database:
      external:
        host: postgresql-rw.storage.svc.cluster.local
        username: harbor
        passwordSecretRef: { name: harbor-database }
        sslMode: verify-full
        caBundleSecretRef: { name: harbor-database-ca }
    redis:
      external:
        addr: redis-sentinel.storage.svc:26379
        mode: Sentinel
        sentinelMasterSet: mymaster
        passwordSecretRef: { name: redis-auth, key: redis-password }
    storage:
      s3:
        endpoint: http://seaweedfs-s3.storage.svc:8333
        bucket: harbor-images
        credentialsSecretRef: { name: seaweedfs-s3, usernameKey: accessKey, passwordKey: secretKey }
    adminPasswordSecretRef: { name: harbor-admin-user, key: pw }
"#;

const TRIVY_OFF: &str = r#"
apiVersion: registry.aisp.dev/v1alpha1
kind: Registry
metadata: { name: small, namespace: registry }
spec:
  mode: Harbor
  host: harbor.localhost
  harbor:
    trivy: { enabled: false }
"#;

const CUSTOM_IMAGES: &str = r#"
apiVersion: registry.aisp.dev/v1alpha1
kind: Registry
metadata: { name: mirror, namespace: registry }
spec:
  mode: Harbor
  host: harbor.localhost:8443
  harbor:
    version: "2.14.1"
    imagePullSecrets: [{ name: mirror-pull }]
    images:
      core: mirror.local/goharbor/harbor-core:v2.14.1-patched
      portal: mirror.local/goharbor/harbor-portal:v2.14.1
      jobservice: mirror.local/goharbor/harbor-jobservice:v2.14.1
      registry: mirror.local/goharbor/registry-photon:v2.14.1
      registryctl: mirror.local/goharbor/harbor-registryctl:v2.14.1
      trivy: mirror.local/goharbor/trivy-adapter-photon:v2.14.1
      redis: mirror.local/goharbor/redis-photon:v2.14.1
      exporter: mirror.local/goharbor/harbor-exporter:v2.14.1
    exporter: { enabled: true }
    expose:
      ingressAnnotations: { nginx.ingress.kubernetes.io/proxy-body-size: "0" }
    resources:
      core: { requests: { memory: 1Gi, cpu: 500m }, limits: { memory: 2Gi } }
"#;

const FIXTURES: &[(&str, &str)] = &[
    ("managed_pvc", MANAGED_PVC),
    ("external_s3", EXTERNAL_S3),
    ("trivy_off", TRIVY_OFF),
    ("custom_images", CUSTOM_IMAGES),
];

fn ready() -> Observed {
    Observed {
        harbor: HarborObserved {
            database_ready: true,
            components_exist: false,
        },
        ..Default::default()
    }
}

fn render_fixture(yaml: &str) -> Rendered {
    render_checked(&registry(yaml), &ready())
}

/// Render, then check every object (placeholder Secrets included) against the apiserver's metadata rules.
fn render_checked(registry: &Registry, observed: &Observed) -> Rendered {
    let rendered = render::registry(registry, observed).expect("renders");
    common::assert_all_valid_metadata(&rendered.objects);
    common::assert_all_valid_metadata(
        &render::placeholder_secrets(&rendered.generated_secrets).expect("placeholders"),
    );
    rendered
}

fn typed<T: serde::de::DeserializeOwned>(object: &RenderedObject) -> T {
    serde_json::from_value(serde_json::to_value(&object.object).expect("json")).expect("typed")
}

fn pod_of_deployment(object: &RenderedObject) -> PodSpec {
    typed::<Deployment>(object)
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod spec")
}

fn env_value(pod: &PodSpec, container: &str, name: &str) -> Option<String> {
    pod.containers
        .iter()
        .find(|c| c.name == container)?
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)?
        .value
        .clone()
}

#[test]
fn golden_snapshots() {
    for (name, yaml) in FIXTURES {
        let rendered = render_fixture(yaml);
        let mut documents =
            render::placeholder_secrets(&rendered.generated_secrets).expect("placeholders");
        documents.extend(rendered.objects.clone());
        render::sort_for_apply(&mut documents);
        let yaml = render::to_yaml(&documents).expect("yaml");
        insta::assert_snapshot!(format!("harbor_{name}"), yaml);
    }
}

#[test]
fn managed_database_gates_core_and_jobservice_until_ready_or_existing() {
    let registry = registry(MANAGED_PVC);
    let waiting = render_checked(&registry, &Observed::default());
    let keys: Vec<String> = waiting.objects.iter().map(|o| o.key()).collect();
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("harbor-core") || k.contains("harbor-jobservice")),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k == "Cluster/registry/platform-harbor-db"),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k == "Deployment/registry/platform-harbor-registry"),
        "{keys:?}"
    );
    assert!(
        waiting
            .held_back
            .as_deref()
            .is_some_and(|w| w.contains("waiting for the database"))
    );
    assert!(
        waiting.warnings.is_empty(),
        "waiting is progress, not a warning"
    );

    let existing = Observed {
        harbor: HarborObserved {
            database_ready: false,
            components_exist: true,
        },
        ..Default::default()
    };
    let kept = render_checked(&registry, &existing);
    common::find_rendered(&kept, "Deployment", "platform-harbor-core");
    common::find_rendered(&kept, "Deployment", "platform-harbor-jobservice");
}

#[test]
fn external_database_does_not_wait_and_renders_no_cluster_nor_internal_redis() {
    let rendered = render_checked(&registry(EXTERNAL_S3), &Observed::default());
    common::find_rendered(&rendered, "Deployment", "platform-harbor-core");
    assert!(
        !rendered
            .objects
            .iter()
            .any(|o| o.resource.kind == "Cluster")
    );
    assert!(
        !rendered
            .objects
            .iter()
            .any(|o| o.name() == "platform-harbor-redis")
    );
    let pod = pod_of_deployment(common::find_rendered(
        &rendered,
        "Deployment",
        "platform-harbor-core",
    ));
    assert_eq!(
        env_value(&pod, "core", "POSTGRESQL_SSLMODE").as_deref(),
        Some("verify-full")
    );
    assert_eq!(
        env_value(&pod, "core", "POSTGRESQL_DATABASE").as_deref(),
        Some("registry")
    );
}

#[test]
fn managed_database_connects_to_cnpg_rw_service_with_app_secret() {
    let rendered = render_fixture(MANAGED_PVC);
    let pod = pod_of_deployment(common::find_rendered(
        &rendered,
        "Deployment",
        "platform-harbor-core",
    ));
    assert_eq!(
        env_value(&pod, "core", "POSTGRESQL_HOST").as_deref(),
        Some("platform-harbor-db-rw")
    );
    assert_eq!(
        env_value(&pod, "core", "POSTGRESQL_USERNAME").as_deref(),
        Some("harbor")
    );
    assert_eq!(
        env_value(&pod, "core", "POSTGRESQL_SSLMODE").as_deref(),
        Some("require")
    );
    let password = pod.containers[0]
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "POSTGRESQL_PASSWORD")
        .expect("password env");
    let selector = password
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("secretKeyRef");
    assert_eq!(
        (selector.name.as_str(), selector.key.as_str()),
        ("platform-harbor-db-app", "password")
    );
}

/// TLS always: with the user's Secret (MANAGED_PVC) or the generated one (TRIVY_OFF), Harbor
/// advertises exactly what the Ingress serves.
#[test]
fn external_url_matches_ingress_scheme_and_host() {
    for (yaml, core_name, expected, tls_secret) in [
        (
            MANAGED_PVC,
            "platform-harbor-core",
            "https://harbor.ai-platform.localhost",
            "harbor-tls",
        ),
        (
            TRIVY_OFF,
            "small-harbor-core",
            "https://harbor.localhost",
            "small-harbor-tls-",
        ),
    ] {
        let rendered = render_fixture(yaml);
        let pod = pod_of_deployment(common::find_rendered(&rendered, "Deployment", core_name));
        assert_eq!(
            env_value(&pod, "core", "EXT_ENDPOINT").as_deref(),
            Some(expected)
        );
        let ingress: Ingress = typed(
            rendered
                .objects
                .iter()
                .find(|o| o.resource.kind == "Ingress")
                .expect("ingress"),
        );
        let spec = ingress.spec.expect("spec");
        let host = spec
            .rules
            .as_ref()
            .and_then(|r| r[0].host.clone())
            .expect("host");
        assert_eq!(
            format!(
                "{}://{host}",
                if spec.tls.is_some() { "https" } else { "http" }
            ),
            expected
        );
        assert_eq!(spec.ingress_class_name.as_deref(), Some("traefik"));
        assert_eq!(rendered.endpoint.as_deref(), expected.split("://").nth(1));
        let secret = spec.tls.as_ref().unwrap()[0].secret_name.clone().unwrap();
        assert!(secret.starts_with(tls_secret), "{secret}");
    }
}

#[test]
fn redis_password_is_expanded_from_a_secret_reference_in_urls() {
    let rendered = render_fixture(EXTERNAL_S3);
    let pod = pod_of_deployment(common::find_rendered(
        &rendered,
        "Deployment",
        "platform-harbor-core",
    ));
    let env = pod.containers[0].env.clone().expect("env");
    let password_index = env
        .iter()
        .position(|e| e.name == "REDIS_PASSWORD")
        .expect("REDIS_PASSWORD");
    let url_index = env
        .iter()
        .position(|e| e.name == "_REDIS_URL_CORE")
        .expect("_REDIS_URL_CORE");
    assert!(
        password_index < url_index,
        "kubelet only expands variables defined earlier"
    );
    assert_eq!(
        env[url_index].value.as_deref(),
        Some(
            "redis+sentinel://:$(REDIS_PASSWORD)@redis-sentinel.storage.svc:26379/mymaster/0?idle_timeout_seconds=30"
        )
    );
    let selector = env[password_index]
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("secretKeyRef");
    assert_eq!(
        (selector.name.as_str(), selector.key.as_str()),
        ("redis-auth", "redis-password")
    );
}

#[test]
fn registry_config_uses_s3_with_redirect_disabled_and_credentials_from_env() {
    let rendered = render_fixture(EXTERNAL_S3);
    let config: ConfigMap = typed(common::find_rendered(
        &rendered,
        "ConfigMap",
        "platform-harbor-registry",
    ));
    let config: Value =
        yaml_serde::from_str(&config.data.expect("data")["config.yml"]).expect("yaml");
    assert_eq!(config["storage"]["s3"]["bucket"], "harbor-images");
    assert_eq!(config["storage"]["s3"]["region"], "us-east-1");
    assert_eq!(
        config["storage"]["s3"]["regionendpoint"],
        "http://seaweedfs-s3.storage.svc:8333"
    );
    assert_eq!(config["storage"]["redirect"]["disable"], true);
    assert_eq!(config["redis"]["sentinelMasterSet"], "mymaster");
    assert!(config["storage"].get("filesystem").is_none());
    assert!(
        !rendered
            .objects
            .iter()
            .any(|o| o.resource.kind == "PersistentVolumeClaim"
                && o.name() == "platform-harbor-registry")
    );
    let pod = pod_of_deployment(common::find_rendered(
        &rendered,
        "Deployment",
        "platform-harbor-registry",
    ));
    let env = pod.containers[0].env.clone().expect("env");
    let access = env
        .iter()
        .find(|e| e.name == "REGISTRY_STORAGE_S3_ACCESSKEY")
        .expect("access key env");
    let selector = access
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("secretKeyRef");
    assert_eq!(
        (selector.name.as_str(), selector.key.as_str()),
        ("seaweedfs-s3", "accessKey")
    );
}

#[test]
fn default_pvc_sizes_and_redis_db_indexes() {
    let size = |pvc: &PersistentVolumeClaim| {
        pvc.spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .map(|r| r["storage"].0.clone())
    };
    let rendered = render_fixture(TRIVY_OFF);
    let registry_pvc: PersistentVolumeClaim = typed(common::find_rendered(
        &rendered,
        "PersistentVolumeClaim",
        "small-harbor-registry",
    ));
    assert_eq!(size(&registry_pvc).as_deref(), Some("50Gi"));
    let jobservice_pvc: PersistentVolumeClaim = typed(common::find_rendered(
        &rendered,
        "PersistentVolumeClaim",
        "small-harbor-jobservice",
    ));
    assert_eq!(size(&jobservice_pvc).as_deref(), Some("1Gi"));
    assert!(
        !rendered.objects.iter().any(|o| o.name().contains("trivy")),
        "Trivy disabled"
    );
    let pod = pod_of_deployment(common::find_rendered(
        &rendered,
        "Deployment",
        "small-harbor-core",
    ));
    assert_eq!(
        env_value(&pod, "core", "WITH_TRIVY").as_deref(),
        Some("false")
    );
    assert_eq!(
        env_value(&pod, "core", "_REDIS_URL_CORE").as_deref(),
        Some("redis://small-harbor-redis:6379/0?idle_timeout_seconds=30")
    );
    assert_eq!(
        env_value(&pod, "core", "_REDIS_URL_REG").as_deref(),
        Some("redis://small-harbor-redis:6379/2?idle_timeout_seconds=30")
    );
    let pod = pod_of_deployment(common::find_rendered(
        &rendered,
        "Deployment",
        "small-harbor-jobservice",
    ));
    assert_eq!(
        env_value(&pod, "jobservice", "JOB_SERVICE_POOL_REDIS_URL").as_deref(),
        Some("redis://small-harbor-redis:6379/1")
    );

    let with_trivy = render_fixture(MANAGED_PVC);
    let trivy: StatefulSet = typed(common::find_rendered(
        &with_trivy,
        "StatefulSet",
        "platform-harbor-trivy",
    ));
    let pod = trivy
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .expect("pod");
    assert_eq!(
        env_value(&pod, "trivy", "SCANNER_REDIS_URL").as_deref(),
        Some("redis://platform-harbor-redis:6379/5?idle_timeout_seconds=30")
    );
    let claims = trivy
        .spec
        .and_then(|s| s.volume_claim_templates)
        .expect("claims");
    assert_eq!(size(&claims[0]).as_deref(), Some("5Gi"));
}

#[test]
fn images_default_to_version_and_follow_overrides() {
    let default = render_fixture(TRIVY_OFF);
    let pod = pod_of_deployment(common::find_rendered(
        &default,
        "Deployment",
        "small-harbor-core",
    ));
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("docker.io/goharbor/harbor-core:v2.15.2")
    );
    assert_eq!(
        default.harbor_version.as_deref(),
        Some(registry_operator::crd::DEFAULT_HARBOR_VERSION)
    );
    let custom = render_fixture(CUSTOM_IMAGES);
    let pod = pod_of_deployment(common::find_rendered(
        &custom,
        "Deployment",
        "mirror-harbor-core",
    ));
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("mirror.local/goharbor/harbor-core:v2.14.1-patched")
    );
    assert_eq!(
        pod.image_pull_secrets.as_ref().map(|s| s[0].name.as_str()),
        Some("mirror-pull")
    );
    let memory = pod.containers[0]
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .map(|r| r["memory"].0.clone());
    assert_eq!(memory.as_deref(), Some("1Gi"));
    common::find_rendered(&custom, "Deployment", "mirror-harbor-exporter");
    assert_eq!(custom.harbor_version.as_deref(), Some("2.14.1"));
}

#[test]
fn generated_secrets_cover_harbor_needs_and_admin_ref_skips_admin() {
    let rendered = render_fixture(MANAGED_PVC);
    let names: Vec<&str> = rendered
        .generated_secrets
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "platform-harbor-admin-secret",
            "platform-harbor-core-secret",
            "platform-harbor-token-secret",
            "platform-harbor-jobservice-secret",
            "platform-harbor-registry-secret"
        ]
    );
    let core = &rendered.generated_secrets[1];
    assert!(core.keys.contains(&(
        "secretKey".to_string(),
        render::SecretGenerator::Random { length: 16 }
    )));
    assert!(core.keys.contains(&(
        "csrfKey".to_string(),
        render::SecretGenerator::Random { length: 32 }
    )));
    let external = render_fixture(EXTERNAL_S3);
    assert!(
        !external
            .generated_secrets
            .iter()
            .any(|s| s.name.ends_with("-admin-secret"))
    );
    let pod = pod_of_deployment(common::find_rendered(
        &external,
        "Deployment",
        "platform-harbor-core",
    ));
    let admin = pod.containers[0]
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "HARBOR_ADMIN_PASSWORD")
        .expect("admin env");
    let selector = admin
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("secretKeyRef");
    assert_eq!(
        (selector.name.as_str(), selector.key.as_str()),
        ("harbor-admin-user", "pw")
    );
}

/// Every rendered object of a core kind deserializes into its k8s-openapi type and back unchanged.
#[test]
fn core_objects_round_trip_through_k8s_openapi_types() {
    fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(object: &RenderedObject) {
        let original = serde_json::to_value(&object.object).expect("json");
        let typed: T = serde_json::from_value(original.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", object.key()));
        assert_eq!(
            serde_json::to_value(&typed).expect("json"),
            original,
            "{} changed in a round trip",
            object.key()
        );
    }
    for (_, yaml) in FIXTURES {
        let rendered = render_fixture(yaml);
        let mut objects = rendered.objects.clone();
        objects.extend(
            render::placeholder_secrets(&rendered.generated_secrets).expect("placeholders"),
        );
        for object in &objects {
            match object.resource.kind.as_str() {
                "Deployment" => round_trip::<Deployment>(object),
                "StatefulSet" => round_trip::<StatefulSet>(object),
                "Service" => round_trip::<Service>(object),
                "ConfigMap" => round_trip::<ConfigMap>(object),
                "PersistentVolumeClaim" => round_trip::<PersistentVolumeClaim>(object),
                "Ingress" => round_trip::<Ingress>(object),
                "Secret" => round_trip::<k8s_openapi::api::core::v1::Secret>(object),
                "Cluster" => assert_eq!(object.resource.api_version, "postgresql.cnpg.io/v1"),
                other => panic!("unexpected kind {other}"),
            }
        }
    }
}

/// Containers that keep a writable root filesystem: Harbor's entrypoint (install_cert.sh) rewrites
/// /etc/pki/tls/certs/ca-bundle.crt at every start. Every other container runs read-only.
const WRITABLE_ROOT: &[&str] = &[
    "core",
    "jobservice",
    "registry",
    "registryctl",
    "trivy",
    "exporter",
];

#[test]
fn every_pod_meets_pod_security_restricted() {
    let mut pods = 0;
    for (fixture, yaml) in FIXTURES {
        let rendered = render_fixture(yaml);
        for object in &rendered.objects {
            let pod = match object.resource.kind.as_str() {
                "Deployment" => typed::<Deployment>(object)
                    .spec
                    .and_then(|s| s.template.spec),
                "StatefulSet" => typed::<StatefulSet>(object)
                    .spec
                    .and_then(|s| s.template.spec),
                _ => continue,
            }
            .expect("pod spec");
            pods += 1;
            let at = format!("{fixture}: {}", object.key());
            assert_eq!(pod.automount_service_account_token, Some(false), "{at}");
            restricted::assert_pod_restricted(&pod, &at, WRITABLE_ROOT);
        }
    }
    assert_eq!(
        pods, 23,
        "expected every component pod of the four fixtures"
    );
}

#[test]
fn render_output_holds_no_secret_values() {
    for (fixture, yaml) in FIXTURES {
        let rendered = render_fixture(yaml);
        assert!(
            !rendered.objects.iter().any(|o| o.resource.kind == "Secret"),
            "{fixture}: render must not emit Secrets"
        );
        let text = render::to_yaml(&rendered.objects).expect("yaml");
        for needle in [
            PLACEHOLDER,
            "BEGIN",
            "PRIVATE KEY",
            "$2b$",
            "$2y$",
            "Harbor12345",
            "not-a-secure-key",
            "harbor_registry_password",
        ] {
            assert!(
                !text.contains(needle),
                "{fixture}: render output contains {needle:?}"
            );
        }
        let mut sensitive_seen = 0;
        for object in &rendered.objects {
            let value = serde_json::to_value(&object.object).expect("json");
            for env in env_vars(&value) {
                let name = env["name"].as_str().unwrap_or_default();
                // A file path (TOKEN_PRIVATE_KEY_PATH) names where a secret is, not the secret.
                let path = name.ends_with("_PATH")
                    && env["value"].as_str().is_some_and(|v| v.starts_with('/'));
                if !path
                    && ["PASSWORD", "SECRET", "KEY"]
                        .iter()
                        .any(|s| name.contains(s))
                {
                    sensitive_seen += 1;
                    assert!(
                        env.get("value").is_none(),
                        "{fixture}: {} env {name} carries a literal value",
                        object.key()
                    );
                    assert!(
                        env["valueFrom"]["secretKeyRef"].is_object(),
                        "{fixture}: {} env {name} not from a Secret",
                        object.key()
                    );
                }
            }
        }
        assert!(
            sensitive_seen > 5,
            "{fixture}: expected secret references, saw {sensitive_seen}"
        );
    }
}

fn env_vars(value: &Value) -> Vec<&Value> {
    let mut found = Vec::new();
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("env", Value::Array(items)) => found.extend(items.iter()),
                    _ => found.extend(env_vars(child)),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| found.extend(env_vars(i))),
        _ => {}
    }
    found
}

#[test]
fn placeholder_secrets_carry_only_the_placeholder() {
    let rendered = render_fixture(MANAGED_PVC);
    let secrets = render::placeholder_secrets(&rendered.generated_secrets).expect("placeholders");
    let token = secrets
        .iter()
        .find(|s| s.name() == "platform-harbor-token-secret")
        .expect("token");
    let token: k8s_openapi::api::core::v1::Secret = typed(token);
    let data = token.string_data.expect("stringData");
    assert_eq!(data.keys().collect::<Vec<_>>(), ["tls.crt", "tls.key"]);
    assert!(data.values().all(|v| v == PLACEHOLDER));
}

// ---- CNPG schema (strict) ----

fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

#[test]
fn cnpg_clusters_validate_against_upstream_schema_strictly() {
    let Some(schemas) = common::shared_schemas() else {
        return;
    };
    let schema =
        common::strict_schema(&schemas.join("cnpg/postgresql.cnpg.io_clusters.yaml"), "v1");
    let validator = jsonschema::draft4::new(&schema).expect("schema compiles");
    let mut checked = 0;
    for (fixture, yaml) in FIXTURES {
        let rendered = render_fixture(yaml);
        for object in rendered
            .objects
            .iter()
            .filter(|o| o.resource.kind == "Cluster")
        {
            let mut value = serde_json::to_value(&object.object).expect("json");
            drop_nulls(&mut value);
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{fixture}: {}: {errors:#?}",
                object.key()
            );
            checked += 1;
        }
    }
    // Strictness must bite: an unknown field is rejected.
    let rendered = render_fixture(MANAGED_PVC);
    let mut typo = serde_json::to_value(
        &common::find_rendered(&rendered, "Cluster", "platform-harbor-db").object,
    )
    .expect("json");
    drop_nulls(&mut typo);
    typo["spec"]["bootstrap"]["initdb"]["ownr"] = Value::String("harbor".into());
    assert!(
        !validator.is_valid(&typo),
        "strict schema accepted an unknown field"
    );
    assert_eq!(
        checked, 3,
        "expected a Cluster in each managed-database fixture"
    );
}

const EXISTING_CNPG: &str = r#"
apiVersion: registry.aisp.dev/v1alpha1
kind: Registry
metadata: { name: platform, namespace: registry }
spec:
  mode: Harbor
  host: harbor.ai-platform.localhost
  harbor:
    database: { cnpg: { clusterRef: { name: postgresql, namespace: storage } } }
"#;

const BACKUP_SNAPSHOT: &str = r#"
apiVersion: registry.aisp.dev/v1alpha1
kind: Registry
metadata: { name: platform, namespace: registry }
spec:
  mode: Harbor
  host: harbor.ai-platform.localhost
  harbor:
    database:
      managed: {}
      backup: { schedule: "0 0 3 * * *", method: VolumeSnapshot, volumeSnapshot: { className: csi-snapclass } }
"#;

const BACKUP_OBJECT_STORE: &str = r#"
apiVersion: registry.aisp.dev/v1alpha1
kind: Registry
metadata: { name: platform, namespace: registry }
spec:
  mode: Harbor
  host: harbor.ai-platform.localhost
  harbor:
    database:
      managed: {}
      backup: { schedule: "0 0 3 * * *", method: ObjectStore, objectStore: { name: s3-store } }
"#;

/// Every CNPG object of the day-2 fixtures, checked against its upstream CRD schema (strict).
#[test]
fn day2_cnpg_objects_validate_against_upstream_schemas_strictly() {
    let Some(schemas) = common::shared_schemas() else {
        return;
    };
    let validators: Vec<(&str, jsonschema::Validator)> = [
        ("Cluster", "clusters"),
        ("Database", "databases"),
        ("DatabaseRole", "databaseroles"),
        ("ScheduledBackup", "scheduledbackups"),
    ]
    .into_iter()
    .map(|(kind, plural)| {
        let schema = common::strict_schema(
            &schemas.join(format!("cnpg/postgresql.cnpg.io_{plural}.yaml")),
            "v1",
        );
        (
            kind,
            jsonschema::draft4::new(&schema).expect("schema compiles"),
        )
    })
    .collect();
    let mut kinds = Vec::new();
    for yaml in [EXISTING_CNPG, BACKUP_SNAPSHOT, BACKUP_OBJECT_STORE] {
        for object in render_fixture(yaml).objects {
            let Some((_, validator)) = validators.iter().find(|(kind, _)| {
                object.resource.group == "postgresql.cnpg.io" && *kind == object.resource.kind
            }) else {
                continue;
            };
            let mut value = serde_json::to_value(&object.object).expect("json");
            drop_nulls(&mut value);
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", object.key());
            kinds.push(object.resource.kind.clone());
        }
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        ["Cluster", "Database", "DatabaseRole", "ScheduledBackup"]
    );
}

#[test]
fn existing_cnpg_cluster_declares_role_and_database_and_connects_to_its_rw_service() {
    let rendered = render_fixture(EXISTING_CNPG);
    assert!(
        !rendered
            .objects
            .iter()
            .any(|o| o.resource.kind == "Cluster"),
        "no managed Cluster next to an existing one"
    );
    let role = common::find_rendered(&rendered, "DatabaseRole", "registry-platform-harbor");
    let role = serde_json::to_value(&role.object).unwrap();
    assert_eq!(role["metadata"]["namespace"], "storage");
    assert!(
        role["metadata"]
            .get("ownerReferences")
            .is_none_or(Value::is_null)
    );
    assert_eq!(role["spec"]["cluster"]["name"], "postgresql");
    assert_eq!(role["spec"]["name"], "harbor");
    assert_eq!(role["spec"]["login"], true);
    assert_eq!(
        role["spec"]["passwordSecret"]["name"],
        "registry-platform-harbor"
    );
    let database = serde_json::to_value(
        &common::find_rendered(&rendered, "Database", "registry-platform-harbor").object,
    )
    .unwrap();
    assert_eq!(database["spec"]["owner"], "harbor");
    assert_eq!(database["spec"]["databaseReclaimPolicy"], "retain");
    // The password: generated once in the Registry's namespace, copied for CNPG as basic-auth.
    let source = rendered
        .generated_secrets
        .iter()
        .find(|s| s.name == "platform-harbor-database-secret")
        .expect("password Secret");
    assert_eq!(source.namespace, "registry");
    assert_eq!(source.secret_type, "kubernetes.io/basic-auth");
    let copy = rendered
        .generated_secrets
        .iter()
        .find(|s| s.name == "registry-platform-harbor")
        .expect("copy for CNPG");
    assert_eq!(copy.namespace, "storage");
    assert_eq!(copy.data_keys(), ["username", "password"]);
    let source_position = rendered
        .generated_secrets
        .iter()
        .position(|s| s.name == source.name);
    let copy_position = rendered
        .generated_secrets
        .iter()
        .position(|s| s.name == copy.name);
    assert!(
        source_position < copy_position,
        "the source is created first"
    );
    // Core connects to the cluster's -rw Service with that password, without waiting for a Cluster.
    let core = pod_of_deployment(common::find_rendered(
        &rendered,
        "Deployment",
        "platform-harbor-core",
    ));
    for (name, value) in [
        ("POSTGRESQL_HOST", "postgresql-rw.storage.svc"),
        ("POSTGRESQL_USERNAME", "harbor"),
        ("POSTGRESQL_DATABASE", "harbor"),
        ("POSTGRESQL_SSLMODE", "require"),
    ] {
        assert_eq!(
            env_value(&core, "core", name).as_deref(),
            Some(value),
            "{name}"
        );
    }
    let password = core.containers[0]
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "POSTGRESQL_PASSWORD")
        .and_then(|e| e.value_from.as_ref()?.secret_key_ref.clone())
        .expect("password from a Secret");
    assert_eq!(password.name, "platform-harbor-database-secret");
    assert_eq!(password.key, "password");
    let unready = render::registry(&registry(EXISTING_CNPG), &Observed::default()).unwrap();
    assert!(
        unready.held_back.is_none(),
        "an existing cluster is not waited for"
    );
}

#[test]
fn backups_render_the_method_and_its_cluster_settings() {
    let snapshot = render_fixture(BACKUP_SNAPSHOT);
    let cluster = serde_json::to_value(
        &common::find_rendered(&snapshot, "Cluster", "platform-harbor-db").object,
    )
    .unwrap();
    assert_eq!(
        cluster["spec"]["backup"]["volumeSnapshot"]["className"],
        "csi-snapclass"
    );
    let backup = serde_json::to_value(
        &common::find_rendered(&snapshot, "ScheduledBackup", "platform-harbor-db-backup").object,
    )
    .unwrap();
    assert_eq!(backup["spec"]["method"], "volumeSnapshot");
    assert_eq!(backup["spec"]["schedule"], "0 0 3 * * *");
    assert_eq!(backup["spec"]["cluster"]["name"], "platform-harbor-db");

    let store = render_fixture(BACKUP_OBJECT_STORE);
    let cluster = serde_json::to_value(
        &common::find_rendered(&store, "Cluster", "platform-harbor-db").object,
    )
    .unwrap();
    assert_eq!(
        cluster["spec"]["plugins"][0]["name"],
        "barman-cloud.cloudnative-pg.io"
    );
    assert_eq!(cluster["spec"]["plugins"][0]["isWALArchiver"], true);
    assert_eq!(
        cluster["spec"]["plugins"][0]["parameters"]["barmanObjectName"],
        "s3-store"
    );
    let backup = serde_json::to_value(
        &common::find_rendered(&store, "ScheduledBackup", "platform-harbor-db-backup").object,
    )
    .unwrap();
    assert_eq!(backup["spec"]["method"], "plugin");
    assert_eq!(
        backup["spec"]["pluginConfiguration"]["name"],
        "barman-cloud.cloudnative-pg.io"
    );
}

#[test]
fn day2_database_settings_that_cannot_work_are_refused_naming_the_field() {
    let cases = [
        (
            BACKUP_SNAPSHOT.replace(", volumeSnapshot: { className: csi-snapclass }", ""),
            "spec.harbor.database.backup.volumeSnapshot",
        ),
        (
            BACKUP_OBJECT_STORE.replace(", objectStore: { name: s3-store }", ""),
            "spec.harbor.database.backup.objectStore",
        ),
        (
            BACKUP_SNAPSHOT.replace("0 0 3 * * *", "0 3 * * *"),
            "spec.harbor.database.backup.schedule",
        ),
        (
            EXISTING_CNPG.replace(
                "namespace: storage } } }",
                "namespace: storage } }, backup: { schedule: '@daily', method: ObjectStore, objectStore: { name: s3 } } }",
            ),
            "spec.harbor.database.backup",
        ),
        (
            EXISTING_CNPG.replace("{ cnpg:", "{ managed: {}, cnpg:"),
            "spec.harbor.database",
        ),
        (
            EXISTING_CNPG.replace("namespace: storage }", "namespace: storage }, name: pg_harbor"),
            "spec.harbor.database.cnpg.name",
        ),
    ];
    for (yaml, field) in cases {
        let error = render::registry(&registry(&yaml), &ready()).expect_err(field);
        let message = error.to_string();
        assert!(message.contains(&format!("{field}:")), "{field}: {message}");
    }
}
