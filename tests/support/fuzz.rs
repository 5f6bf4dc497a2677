//! Proptest strategies for tests/render/fuzz.rs: typed Registry and ImagePolicy specs (valid shapes,
//! absurd values), arbitrary JSON documents and their mutation. Generates data only; asserts nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use proptest::prelude::*;
use registry_operator::crd::*;
use registry_operator::render::PolicyObserved;
use serde_json::Value;

// ---------- strategies: leaves ----------

/// Text users might type, including the dangerous and the absurd.
pub fn weird_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("{{ request.object.metadata.name }}".to_string()),
        Just("}}".to_string()),
        Just("'".to_string()),
        Just("a\\".to_string()),
        Just("*".to_string()),
        Just(" ".to_string()),
        Just("-".to_string()),
        Just("UPPER".to_string()),
        Just("http://".to_string()),
        Just("host:99999".to_string()),
        Just("x".repeat(600)),
        "[a-z0-9.:/_-]{0,24}",
        "\\PC{0,16}",
        any::<String>(),
    ]
}

pub fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z][a-z0-9]{0,8}(\\.[a-z]{1,6}){0,2}(:[0-9]{1,5})?",
        1 => weird_text(),
    ]
}

pub fn image() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "([a-z]{1,8}\\.[a-z]{2,4}/)?[a-z]{1,8}(/[a-z]{1,8})?(:[a-z0-9.]{1,8})?",
        1 => weird_text(),
    ]
}

pub fn name() -> impl Strategy<Value = String> {
    prop_oneof![5 => "[a-z][a-z0-9-]{0,12}[a-z0-9]", 1 => weird_text()]
}

pub fn quantity() -> impl Strategy<Value = Quantity> {
    prop_oneof![
        4 => "[0-9]{1,4}(Gi|Mi|Ki|G|M|m|k|)",
        1 => "-?[0-9]{0,3}\\.?[0-9]{0,2}(GB|gi|e3|E|Ei|)",
        1 => weird_text(),
    ]
    .prop_map(Quantity)
}

pub fn version() -> impl Strategy<Value = String> {
    prop_oneof![
        "v?2\\.(9|1[0-9])\\.[0-9]",
        "v?[0-9]{1,2}\\.[0-9]{1,2}(\\.[0-9]{1,2})?",
        weird_text(),
    ]
}

pub fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "https?://[a-z]{1,10}(\\.[a-z]{2,5}){0,2}(:[0-9]{2,4})?",
        1 => weird_text(),
    ]
}

pub fn volume() -> impl Strategy<Value = VolumeSpec> {
    (
        proptest::option::of(prop_oneof![Just("local-path".to_string()), weird_text()]),
        quantity(),
    )
        .prop_map(|(storage_class_name, size)| VolumeSpec {
            storage_class_name,
            size,
        })
}

pub fn resources() -> impl Strategy<Value = ResourceRequirements> {
    (
        proptest::option::of(quantity()),
        proptest::option::of(quantity()),
    )
        .prop_map(|(memory, cpu)| ResourceRequirements {
            limits: memory.map(|m| BTreeMap::from([("memory".to_string(), m)])),
            requests: cpu.map(|c| BTreeMap::from([("cpu".to_string(), c)])),
            ..ResourceRequirements::default()
        })
}

pub fn secret_key_ref() -> impl Strategy<Value = SecretKeyRef> {
    (name(), "[a-z.-]{1,10}").prop_map(|(name, key)| SecretKeyRef { name, key })
}

pub fn credentials() -> impl Strategy<Value = CredentialsSecretRef> {
    name().prop_map(|name| CredentialsSecretRef {
        name,
        username_key: "username".to_string(),
        password_key: "password".to_string(),
    })
}

// ---------- strategies: Registry ----------

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

// ---------- strategies: ImagePolicy ----------

pub fn basic_rule() -> impl Strategy<Value = BasicRule> {
    (
        proptest::option::of(failure_action()),
        proptest::option::of(weird_text()),
    )
        .prop_map(|(failure_action, message)| BasicRule {
            failure_action,
            message,
        })
}

pub fn failure_action() -> impl Strategy<Value = FailureAction> {
    prop_oneof![Just(FailureAction::Audit), Just(FailureAction::Enforce)]
}

pub fn signature_rule() -> impl Strategy<Value = SignatureRule> {
    let pem = prop_oneof![
        Just("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n".to_string()),
        weird_text()
    ];
    let secret = (
        name(),
        name(),
        prop_oneof![Just("cosign.pub".to_string()), weird_text()],
    )
        .prop_map(|(name, namespace, key)| NamespacedSecretKeyRef {
            name,
            namespace,
            key,
        });
    let keys = (proptest::option::of(pem), proptest::option::of(secret)).prop_map(
        |(public_key, secret_ref)| KeyVerification {
            public_key,
            secret_ref,
        },
    );
    let keyless = (
        url(),
        proptest::option::of(weird_text()),
        proptest::option::of(weird_text()),
        proptest::option::of(url()),
        proptest::option::of(url()),
    )
        .prop_map(|(issuer, subject, subject_reg_exp, rekor_url, ctlog_url)| {
            KeylessVerification {
                issuer,
                subject,
                subject_reg_exp,
                rekor_url,
                ctlog_url,
            }
        });
    (
        proptest::option::of(failure_action()),
        proptest::collection::vec(prop_oneof![image(), weird_text()], 0..2),
        proptest::option::of(keys),
        proptest::option::of(keyless),
        any::<(bool, bool, bool)>(),
    )
        .prop_map(
            |(failure_action, image_references, keys, keyless, flags)| SignatureRule {
                failure_action,
                image_references,
                keys,
                keyless,
                transparency_log: None,
                cosign_oci11: flags.0,
                mutate_digest: flags.1,
                verify_digest: flags.2,
            },
        )
}

pub fn attestation() -> impl Strategy<Value = AttestationRule> {
    (
        prop_oneof![
            Just("https://slsa.dev/provenance/v1".to_string()),
            weird_text()
        ],
        proptest::option::of(failure_action()),
        proptest::option::of(0u32..1000),
        proptest::option::of(prop_oneof![
            Just(Severity::None),
            Just(Severity::Low),
            Just(Severity::Medium),
            Just(Severity::High),
            Just(Severity::Critical)
        ]),
        proptest::option::of(weird_text()),
    )
        .prop_map(
            |(predicate_type, failure_action, max_age_hours, max_severity, builder_id_pattern)| {
                AttestationRule {
                    predicate_type,
                    failure_action,
                    max_age_hours,
                    max_severity,
                    builder_id_pattern,
                }
            },
        )
}

pub fn image_policy() -> impl Strategy<Value = ImagePolicy> {
    let rules = (
        proptest::option::of(basic_rule()),
        proptest::option::of(basic_rule()),
        proptest::option::of(signature_rule()),
        proptest::collection::vec(attestation(), 0..3),
    )
        .prop_map(
            |(disallow_latest_tag, restrict_registries, require_signatures, attestations)| {
                PolicyRules {
                    disallow_latest_tag,
                    restrict_registries,
                    require_signatures,
                    attestations,
                }
            },
        );
    (
        name(),
        proptest::option::of((name(), name())),
        proptest::collection::vec(host(), 0..3),
        proptest::collection::vec(name(), 0..3),
        proptest::option::of(proptest::collection::vec(name(), 0..3)),
        failure_action(),
        prop_oneof![
            Just(PolicyEngine::Auto),
            Just(PolicyEngine::ClusterPolicy),
            Just(PolicyEngine::Cel)
        ],
        rules,
    )
        .prop_map(
            |(
                name,
                reference,
                allowed_registries,
                namespaces,
                exclude_namespaces,
                failure_action,
                engine,
                rules,
            )| {
                ImagePolicy::new(
                    &name,
                    ImagePolicySpec {
                        registry_ref: reference
                            .map(|(name, namespace)| RegistryRef { name, namespace }),
                        allowed_registries,
                        namespaces,
                        exclude_namespaces,
                        failure_action,
                        engine,
                        rules,
                    },
                )
            },
        )
}

pub fn policy_observed() -> impl Strategy<Value = PolicyObserved> {
    (
        proptest::option::of(prop_oneof![
            Just("k3d-registry.localhost:5000".to_string()),
            Just("harbor.ai-platform.localhost".to_string()),
            Just("harbor.example.com/library".to_string()),
        ]),
        "[a-z][a-z0-9-]{0,20}",
    )
        .prop_map(|(registry_endpoint, operator_namespace)| PolicyObserved {
            registry_endpoint,
            cluster_policy_served: true,
            cel_policies_served: true,
            operator_namespace,
            ..Default::default()
        })
}

// ---------- strategies: documents ----------

/// Any JSON value, with keys biased towards the real field names so mutations reach deep code.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        weird_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(field_name(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

pub fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(vec![
            "mode", "host", "k3d", "harbor", "database", "managed", "external", "redis",
            "internal", "storage", "pvc", "s3", "size", "bucket", "version", "images", "rules",
            "requireSignatures", "keyless", "keys", "issuer", "attestations", "name", "namespace",
            "migration", "expose", "trivy", "enabled", "instances", "port",
        ])
        .prop_map(str::to_string),
        1 => "[a-zA-Z]{1,8}",
    ]
}

/// Replace the node at `choice` (in document order) of `document` with `replacement`.
pub fn mutate(document: &mut Value, choice: usize, replacement: Value) {
    fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    pointers(child, format!("{at}/{escaped}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    pointers(child, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
        out.push(at);
    }
    let mut all = Vec::new();
    pointers(document, String::new(), &mut all);
    let target = &all[choice % all.len()];
    if let Some(node) = document.pointer_mut(target) {
        *node = replacement;
    }
}
