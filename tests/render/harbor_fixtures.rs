//! The Harbor-mode Registry fixtures (managed PVC, external S3, Trivy off, custom images) and the
//! render helpers the `harbor` and `harbor_database` tests share: render with the apiserver's
//! metadata rules checked, typed objects, a Deployment's pod and its env values. Holds no tests and
//! must not decide any verdict of its own beyond those metadata rules.

use crate::support::common;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodSpec;
use registry_operator::crd::Registry;
use registry_operator::render::{self, HarborObserved, Observed, Rendered, RenderedObject};

pub(super) fn registry(yaml: &str) -> Registry {
    yaml_serde::from_str(yaml).expect("fixture parses")
}

pub(super) const MANAGED_PVC: &str = r#"
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

pub(super) const EXTERNAL_S3: &str = r#"
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

pub(super) const TRIVY_OFF: &str = r#"
apiVersion: registry.aisp.dev/v1alpha1
kind: Registry
metadata: { name: small, namespace: registry }
spec:
  mode: Harbor
  host: harbor.localhost
  harbor:
    trivy: { enabled: false }
"#;

pub(super) const CUSTOM_IMAGES: &str = r#"
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

pub(super) const FIXTURES: &[(&str, &str)] = &[
    ("managed_pvc", MANAGED_PVC),
    ("external_s3", EXTERNAL_S3),
    ("trivy_off", TRIVY_OFF),
    ("custom_images", CUSTOM_IMAGES),
];

pub(super) fn ready() -> Observed {
    Observed {
        harbor: HarborObserved {
            database_ready: true,
            components_exist: false,
        },
        ..Default::default()
    }
}

pub(super) fn render_fixture(yaml: &str) -> Rendered {
    render_checked(&registry(yaml), &ready())
}

/// Render, then check every object (placeholder Secrets included) against the apiserver's metadata rules.
pub(super) fn render_checked(registry: &Registry, observed: &Observed) -> Rendered {
    let rendered = render::registry(registry, observed).expect("renders");
    common::assert_all_valid_metadata(&rendered.objects);
    common::assert_all_valid_metadata(
        &render::placeholder_secrets(&rendered.generated_secrets).expect("placeholders"),
    );
    rendered
}

pub(super) fn typed<T: serde::de::DeserializeOwned>(object: &RenderedObject) -> T {
    serde_json::from_value(serde_json::to_value(&object.object).expect("json")).expect("typed")
}

pub(super) fn pod_of_deployment(object: &RenderedObject) -> PodSpec {
    typed::<Deployment>(object)
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod spec")
}

pub(super) fn env_value(pod: &PodSpec, container: &str, name: &str) -> Option<String> {
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
