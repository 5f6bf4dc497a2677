//! Proptest strategies for typed Registry specs (K3d and Harbor, database, Redis, storage, images,
//! migration), valid in shape and absurd in value. Generates data only; asserts nothing.

use k8s_openapi::api::core::v1::LocalObjectReference;
use proptest::prelude::*;
use registry_operator::crd::*;

use super::{
    credentials, host, image, name, resources, secret_key_ref, url, version, volume, weird_text,
};

pub fn database() -> impl Strategy<Value = HarborDatabase> {
    let managed = (-2i32..12, volume())
        .prop_map(|(instances, storage)| ManagedDatabase { instances, storage });
    let external = (
        host(),
        prop_oneof![Just(5432), any::<i32>()],
        weird_text(),
        name(),
        secret_key_ref(),
        prop_oneof![
            Just(SslMode::Disable),
            Just(SslMode::Require),
            Just(SslMode::VerifyCa),
            Just(SslMode::VerifyFull)
        ],
        proptest::option::of(name()),
    )
        .prop_map(
            |(host, port, database, username, password_secret_ref, ssl_mode, ca_bundle)| {
                ExternalDatabase {
                    host,
                    port,
                    database,
                    username,
                    password_secret_ref,
                    ssl_mode,
                    ca_bundle_secret_ref: ca_bundle.map(|name| CaBundleSecretRef {
                        name,
                        key: "ca.crt".to_string(),
                    }),
                }
            },
        );
    // Both set, none set and each alone are all generated.
    (
        proptest::option::of(managed),
        proptest::option::of(external),
    )
        .prop_map(|(managed, external)| HarborDatabase {
            managed,
            external,
            ..Default::default()
        })
}

pub fn redis() -> impl Strategy<Value = HarborRedis> {
    let external = (
        host(),
        prop_oneof![
            Just(RedisMode::Standalone),
            Just(RedisMode::Sentinel),
            Just(RedisMode::Cluster)
        ],
        proptest::option::of(weird_text()),
        proptest::option::of(secret_key_ref()),
    )
        .prop_map(
            |(addr, mode, sentinel_master_set, password_secret_ref)| ExternalRedis {
                addr,
                mode,
                sentinel_master_set,
                password_secret_ref,
            },
        );
    (
        proptest::option::of(volume().prop_map(|storage| InternalRedis { storage })),
        proptest::option::of(external),
    )
        .prop_map(|(internal, external)| HarborRedis { internal, external })
}

pub fn storage() -> impl Strategy<Value = HarborStorage> {
    let s3 = (
        proptest::option::of(url()),
        prop_oneof![Just("us-east-1".to_string()), weird_text()],
        prop_oneof!["[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]", weird_text()],
        credentials(),
        any::<bool>(),
    )
        .prop_map(
            |(endpoint, region, bucket, credentials_secret_ref, disable_redirect)| S3Storage {
                endpoint,
                region,
                bucket,
                credentials_secret_ref,
                disable_redirect,
            },
        );
    (proptest::option::of(volume()), proptest::option::of(s3))
        .prop_map(|(pvc, s3)| HarborStorage { pvc, s3 })
}

pub fn images() -> impl Strategy<Value = HarborImages> {
    proptest::collection::vec(proptest::option::of(image()), 8).prop_map(|mut v| {
        let mut next = || v.pop().flatten();
        HarborImages {
            core: next(),
            portal: next(),
            jobservice: next(),
            registry: next(),
            registryctl: next(),
            trivy: next(),
            redis: next(),
            exporter: next(),
        }
    })
}

pub fn harbor() -> impl Strategy<Value = HarborSpec> {
    let components = (
        proptest::option::of((any::<bool>(), proptest::option::of(volume()))),
        proptest::option::of(any::<bool>()),
        proptest::option::of(proptest::option::of(volume())),
        proptest::option::of(secret_key_ref()),
        proptest::option::of(resources()),
        any::<(bool, bool)>(),
    );
    (
        proptest::option::of(version()),
        proptest::option::of(images()),
        proptest::collection::vec(name(), 0..2),
        proptest::option::of(database()),
        proptest::option::of(redis()),
        proptest::option::of(storage()),
        proptest::option::of((name(), proptest::option::of(name()))),
        components,
    )
        .prop_map(
            |(version, images, pull, database, redis, storage, expose, components)| {
                let (trivy, exporter, jobservice, admin, core_resources, (notary, chartmuseum)) =
                    components;
                HarborSpec {
                    version,
                    // Only compared with the running version by the controller; no render effect.
                    allow_downgrade: false,
                    // Only sent to Harbor's API by the controller; no render effect.
                    read_only: None,
                    gc: None,
                    images,
                    image_pull_secrets: pull
                        .into_iter()
                        .map(|name| LocalObjectReference { name })
                        .collect(),
                    database,
                    redis,
                    storage,
                    expose: expose.map(|(ingress_class_name, tls_secret_name)| HarborExpose {
                        ingress_class_name,
                        tls_secret_name,
                        ingress_service: None,
                        ingress_annotations: Default::default(),
                    }),
                    trivy: trivy.map(|(enabled, storage)| TrivySpec { enabled, storage }),
                    exporter: exporter.map(|enabled| ExporterSpec { enabled }),
                    jobservice: jobservice.map(|storage| JobserviceSpec { storage }),
                    admin_password_secret_ref: admin,
                    resources: core_resources.map(|core| HarborResources {
                        core: Some(core),
                        ..HarborResources::default()
                    }),
                    notary: notary.then(RemovedComponent::default),
                    chartmuseum: chartmuseum.then(RemovedComponent::default),
                }
            },
        )
}

pub fn k3d() -> impl Strategy<Value = K3dSpec> {
    (
        prop_oneof![Just(AdoptPolicy::Auto), Just(AdoptPolicy::Never)],
        proptest::option::of(image()),
        proptest::option::of(volume()),
        proptest::option::of((url(), proptest::option::of(credentials()))),
        proptest::option::of(resources()),
        proptest::option::of(29_990i32..32_780),
        proptest::bool::ANY,
    )
        .prop_map(
            |(adopt, image, storage, cache, resources, node_port, read_only)| K3dSpec {
                adopt,
                image,
                storage,
                cache: cache.map(|(remote_url, credentials_secret_ref)| K3dCacheSpec {
                    remote_url,
                    credentials_secret_ref,
                }),
                resources,
                node_port,
                gc: None,
                read_only,
            },
        )
}

pub fn migration() -> impl Strategy<Value = MigrationSpec> {
    (
        any::<bool>(),
        proptest::collection::vec(prop_oneof!["[a-z]{1,6}/\\*", weird_text()], 0..3),
        name(),
        0u32..80,
        proptest::option::of(prop_oneof![
            Just("24h".to_string()),
            Just("0".to_string()),
            Just("1h30m".to_string()),
            weird_text()
        ]),
        any::<(bool, bool)>(),
    )
        .prop_map(
            |(
                allow_downgrade,
                repositories,
                destination_project,
                concurrency,
                grace,
                (rewrite_images, force),
            )| MigrationSpec {
                allow_downgrade,
                repositories,
                destination_project,
                concurrency,
                grace,
                rewrite_images,
                force,
            },
        )
}

pub fn registry() -> impl Strategy<Value = Registry> {
    (
        prop_oneof![
            "[a-z][a-z0-9-]{0,40}",
            Just("a".repeat(MAX_NAME_PROBE)),
            weird_text()
        ],
        prop_oneof![Just(RegistryMode::K3d), Just(RegistryMode::Harbor)],
        proptest::option::of(host()),
        proptest::option::of(k3d()),
        proptest::option::of(harbor()),
        prop_oneof![Just(Retention::Retain), Just(Retention::Delete)],
        proptest::option::of(migration()),
    )
        .prop_map(|(name, mode, host, k3d, harbor, retention, migration)| {
            let mut registry = Registry::new(
                &name,
                RegistrySpec {
                    mode,
                    host,
                    k3d,
                    harbor,
                    retention,
                    migration,
                },
            );
            registry.metadata.namespace = Some("registry".to_string());
            registry
        })
}

/// A name just past the Harbor-mode limit.
pub const MAX_NAME_PROBE: usize = 40;
