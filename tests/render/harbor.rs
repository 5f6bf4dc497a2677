//! Harbor-mode render tests: golden snapshots, the Ingress and external URL, images, generated
//! secrets, k8s-openapi round trips, Pod Security "restricted" field by field, and that no secret value
//! reaches render output. The database (CNPG) is in `harbor_database.rs`, the fixtures in
//! `harbor_fixtures.rs`. Offline: it must not start a control plane or any other program.

use super::harbor_fixtures::{
    CUSTOM_IMAGES, EXTERNAL_S3, FIXTURES, MANAGED_PVC, TRIVY_OFF, env_value, pod_of_deployment,
    render_fixture, typed,
};
use crate::support::{common, restricted};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service};
use k8s_openapi::api::networking::v1::Ingress;
use registry_operator::render::{self, PLACEHOLDER, RenderedObject};
use serde_json::Value;

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
