//! Criterion benchmarks of the pure renderers: an ImagePolicy, a K3d Registry and a full Harbor Registry.
//! Measures render only (inputs are parsed once, outside the timed loop); asserts no timing itself.
//! Run: `cargo bench --bench render`; smoke (each bench once, for CI): `cargo bench --bench render -- --test`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use registry_operator::crd::{ImagePolicy, Registry};
use registry_operator::render::{self, HarborObserved, Observed, PolicyObserved};

/// The ImagePolicy sample (config/samples/imagepolicy.yaml): three rules, keyless signatures.
const IMAGE_POLICY: &str = include_str!("../config/samples/imagepolicy.yaml");
/// The K3d sample (config/samples/registry-k3d.yaml): nothing observed, so the in-cluster registry is rendered.
const K3D: &str = include_str!("../config/samples/registry-k3d.yaml");
/// The Harbor sample's stack with a managed CloudNativePG database: internal Redis, PVC storage,
/// Trivy on — the largest render there is.
const HARBOR_FULL: &str = r#"
apiVersion: registry.aisp.dev/v1alpha1
kind: Registry
metadata: { name: harbor, namespace: registry }
spec:
  mode: Harbor
  host: harbor.ai-platform.localhost
  retention: Retain
  harbor:
    version: "2.15.3"
    database: { managed: { instances: 1, storage: { storageClassName: local-path, size: 10Gi } } }
    redis: { internal: { storage: { storageClassName: local-path, size: 1Gi } } }
    storage: { pvc: { storageClassName: local-path, size: 50Gi } }
    expose: { ingressClassName: traefik }
    trivy: { enabled: true }
"#;

fn parse<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    yaml_serde::from_str(yaml).expect("benchmark input parses")
}

fn image_policy(c: &mut Criterion) {
    let policy: ImagePolicy = parse(IMAGE_POLICY);
    let observed = PolicyObserved {
        registry_endpoint: Some("k3d-registry.localhost:5000".to_string()),
        cluster_policy_served: true,
        cel_policies_served: true,
        operator_namespace: "registry-operator-system".to_string(),
        ..Default::default()
    };
    let objects = render::image_policy(&policy, &observed)
        .expect("renders")
        .objects
        .len();
    assert!(
        objects >= 3,
        "expected one ClusterPolicy per rule, got {objects}"
    );
    c.bench_function("render/image_policy", |b| {
        b.iter(|| render::image_policy(black_box(&policy), black_box(&observed)))
    });
}

fn k3d_registry(c: &mut Criterion) {
    let registry: Registry = parse(K3D);
    let observed = Observed::default();
    assert!(
        !render::registry(&registry, &observed)
            .expect("renders")
            .objects
            .is_empty()
    );
    c.bench_function("render/registry_k3d", |b| {
        b.iter(|| render::registry(black_box(&registry), black_box(&observed)))
    });
}

fn harbor_registry(c: &mut Criterion) {
    let registry: Registry = parse(HARBOR_FULL);
    let observed = Observed {
        harbor: HarborObserved {
            database_ready: true,
            components_exist: false,
        },
        ..Observed::default()
    };
    let objects = render::registry(&registry, &observed)
        .expect("renders")
        .objects
        .len();
    assert!(
        objects >= 15,
        "expected the whole Harbor stack, got {objects} objects"
    );
    c.bench_function("render/registry_harbor_full", |b| {
        b.iter(|| render::registry(black_box(&registry), black_box(&observed)))
    });
}

criterion_group!(benches, image_policy, k3d_registry, harbor_registry);
criterion_main!(benches);
