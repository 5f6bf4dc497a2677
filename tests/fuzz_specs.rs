//! Property tests over bad input: arbitrary but well-typed Registry and ImagePolicy specs through
//! validate + render, and arbitrary (mutated) YAML documents through the CLI's parsing and render.
//! Properties: nothing panics, every error names a field, every rendered object carries the owner
//! selector labels. 256 cases per property by default; `PROPTEST_CASES=100000` for a long run.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use registry_operator::cli::{parse_manifests, render_manifests};
use registry_operator::crd::*;
use registry_operator::render::labels::Owner;
use registry_operator::render::{
    self, HarborObserved, Observed, PolicyObserved, RenderError, RenderedObject,
};
use registry_operator::validate::ValidationErrors;
use serde_json::{Value, json};

/// 256 cases unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        // Runs happen on a helper thread without a source-file location; found failures are kept
        // as explicit regression tests below instead.
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

// ---------- strategies: leaves ----------

/// Text users might type, including the dangerous and the absurd.
fn weird_text() -> impl Strategy<Value = String> {
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

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z][a-z0-9]{0,8}(\\.[a-z]{1,6}){0,2}(:[0-9]{1,5})?",
        1 => weird_text(),
    ]
}

fn image() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "([a-z]{1,8}\\.[a-z]{2,4}/)?[a-z]{1,8}(/[a-z]{1,8})?(:[a-z0-9.]{1,8})?",
        1 => weird_text(),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![5 => "[a-z][a-z0-9-]{0,12}[a-z0-9]", 1 => weird_text()]
}

fn quantity() -> impl Strategy<Value = Quantity> {
    prop_oneof![
        4 => "[0-9]{1,4}(Gi|Mi|Ki|G|M|m|k|)",
        1 => "-?[0-9]{0,3}\\.?[0-9]{0,2}(GB|gi|e3|E|Ei|)",
        1 => weird_text(),
    ]
    .prop_map(Quantity)
}

fn version() -> impl Strategy<Value = String> {
    prop_oneof![
        "v?2\\.(9|1[0-9])\\.[0-9]",
        "v?[0-9]{1,2}\\.[0-9]{1,2}(\\.[0-9]{1,2})?",
        weird_text(),
    ]
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "https?://[a-z]{1,10}(\\.[a-z]{2,5}){0,2}(:[0-9]{2,4})?",
        1 => weird_text(),
    ]
}

fn volume() -> impl Strategy<Value = VolumeSpec> {
    (
        proptest::option::of(prop_oneof![Just("local-path".to_string()), weird_text()]),
        quantity(),
    )
        .prop_map(|(storage_class_name, size)| VolumeSpec {
            storage_class_name,
            size,
        })
}

fn resources() -> impl Strategy<Value = ResourceRequirements> {
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

fn secret_key_ref() -> impl Strategy<Value = SecretKeyRef> {
    (name(), "[a-z.-]{1,10}").prop_map(|(name, key)| SecretKeyRef { name, key })
}

fn credentials() -> impl Strategy<Value = CredentialsSecretRef> {
    name().prop_map(|name| CredentialsSecretRef {
        name,
        username_key: "username".to_string(),
        password_key: "password".to_string(),
    })
}

// ---------- strategies: Registry ----------

fn database() -> impl Strategy<Value = HarborDatabase> {
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
    )
        .prop_map(
            |(host, port, database, username, password_secret_ref, ssl_mode)| ExternalDatabase {
                host,
                port,
                database,
                username,
                password_secret_ref,
                ssl_mode,
            },
        );
    // Both set, none set and each alone are all generated.
    (
        proptest::option::of(managed),
        proptest::option::of(external),
    )
        .prop_map(|(managed, external)| HarborDatabase { managed, external })
}

fn redis() -> impl Strategy<Value = HarborRedis> {
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

fn storage() -> impl Strategy<Value = HarborStorage> {
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

fn images() -> impl Strategy<Value = HarborImages> {
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

fn harbor() -> impl Strategy<Value = HarborSpec> {
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

fn k3d() -> impl Strategy<Value = K3dSpec> {
    (
        prop_oneof![Just(AdoptPolicy::Auto), Just(AdoptPolicy::Never)],
        proptest::option::of(image()),
        proptest::option::of(volume()),
        proptest::option::of((url(), proptest::option::of(credentials()))),
        proptest::option::of(resources()),
    )
        .prop_map(|(adopt, image, storage, cache, resources)| K3dSpec {
            adopt,
            image,
            storage,
            cache: cache.map(|(remote_url, credentials_secret_ref)| K3dCacheSpec {
                remote_url,
                credentials_secret_ref,
            }),
            resources,
        })
}

fn migration() -> impl Strategy<Value = MigrationSpec> {
    (
        any::<bool>(),
        proptest::collection::vec(prop_oneof!["[a-z]{1,6}/\\*", weird_text()], 0..3),
        name(),
        0u32..80,
    )
        .prop_map(
            |(allow_downgrade, repositories, destination_project, concurrency)| MigrationSpec {
                allow_downgrade,
                repositories,
                destination_project,
                concurrency,
            },
        )
}

fn registry() -> impl Strategy<Value = Registry> {
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
const MAX_NAME_PROBE: usize = 40;

// ---------- strategies: ImagePolicy ----------

fn basic_rule() -> impl Strategy<Value = BasicRule> {
    (
        proptest::option::of(failure_action()),
        proptest::option::of(weird_text()),
    )
        .prop_map(|(failure_action, message)| BasicRule {
            failure_action,
            message,
        })
}

fn failure_action() -> impl Strategy<Value = FailureAction> {
    prop_oneof![Just(FailureAction::Audit), Just(FailureAction::Enforce)]
}

fn signature_rule() -> impl Strategy<Value = SignatureRule> {
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
                cosign_oci11: flags.0,
                mutate_digest: flags.1,
                verify_digest: flags.2,
            },
        )
}

fn attestation() -> impl Strategy<Value = AttestationRule> {
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

fn image_policy() -> impl Strategy<Value = ImagePolicy> {
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

fn policy_observed() -> impl Strategy<Value = PolicyObserved> {
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
        })
}

// ---------- strategies: documents ----------

/// Any JSON value, with keys biased towards the real field names so mutations reach deep code.
fn json_value() -> impl Strategy<Value = Value> {
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

fn field_name() -> impl Strategy<Value = String> {
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
fn mutate(document: &mut Value, choice: usize, replacement: Value) {
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

// ---------- properties ----------

/// A validation or render error must tell the user which field to fix.
fn assert_names_a_field(message: &str) {
    assert!(
        message.contains("spec.") || message.contains("metadata."),
        "error does not name a field: {message}"
    );
}

fn assert_validation_errors(errors: &ValidationErrors) {
    assert!(!errors.0.is_empty(), "empty ValidationErrors");
    for error in &errors.0 {
        assert!(
            error.field.starts_with("spec") || error.field.starts_with("metadata."),
            "field {:?} of {error}",
            error.field
        );
    }
}

fn assert_render_error(error: &RenderError) {
    if let RenderError::Invalid(errors) = error {
        assert_validation_errors(errors);
    }
    assert_names_a_field(&error.to_string());
}

fn assert_owned_by(objects: &[RenderedObject], owner: &Owner<'_>) {
    let selector = owner.selector_labels();
    for object in objects {
        let labels = object.object.metadata.labels.clone().unwrap_or_default();
        for (key, value) in &selector {
            assert_eq!(
                labels.get(key),
                Some(value),
                "{} lacks owner label {key}",
                object.key()
            );
        }
    }
}

fn check_registry(registry: &Registry, observed: &Observed) {
    let validated = registry_operator::validate::registry(registry);
    if let Err(errors) = &validated {
        assert_validation_errors(errors);
        assert_names_a_field(&errors.to_string());
    }
    match render::registry(registry, observed) {
        Ok(rendered) => {
            assert!(validated.is_ok(), "render accepted what validate rejected");
            let owner = Owner {
                kind: "Registry",
                name: registry.metadata.name.as_deref().unwrap_or_default(),
                namespace: registry.metadata.namespace.as_deref(),
            };
            assert_owned_by(&rendered.objects, &owner);
        }
        Err(error) => assert_render_error(&error),
    }
}

fn check_image_policy(policy: &ImagePolicy, observed: &PolicyObserved) {
    let validated = registry_operator::validate::image_policy(policy);
    if let Err(errors) = &validated {
        assert_validation_errors(errors);
        assert_names_a_field(&errors.to_string());
    }
    match render::image_policy(policy, observed) {
        Ok(rendered) => {
            assert!(validated.is_ok(), "render accepted what validate rejected");
            let owner = Owner {
                kind: "ImagePolicy",
                name: policy.metadata.name.as_deref().unwrap_or_default(),
                namespace: None,
            };
            assert_owned_by(&rendered.objects, &owner);
        }
        Err(error) => assert_render_error(&error),
    }
}

/// Parse a YAML text as the CLI does, then render what parsed. Parse errors are fine (they carry
/// their own path or YAML position); render errors must name a field.
fn check_document(text: &str) {
    let Ok(manifests) = parse_manifests(text, std::path::Path::new("fuzz.yaml")) else {
        return;
    };
    if let Err(error) = render_manifests(manifests, &Observed::default(), "default") {
        assert_names_a_field(&error.to_string());
    }
}

/// Run one property on a thread with a large stack: the nested spec strategies are deep, and
/// unoptimised builds overflow the default 2 MiB test-thread stack while generating and shrinking.
fn check<S>(strategy: fn() -> S, property: fn(S::Value))
where
    S: Strategy + 'static,
    S::Value: 'static,
{
    let outcome = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let mut runner = TestRunner::new(config());
            runner
                .run(&strategy(), |value| {
                    property(value);
                    Ok(())
                })
                .map_err(|e| e.to_string())
        })
        .expect("spawn property thread")
        .join()
        .expect("property thread");
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

#[test]
fn any_registry_spec_validates_and_renders_without_panic() {
    check(
        || (registry(), any::<bool>(), any::<bool>()),
        |(registry, database_ready, components_exist)| {
            let observed = Observed {
                harbor: HarborObserved {
                    database_ready,
                    components_exist,
                },
                ..Observed::default()
            };
            check_registry(&registry, &observed);
        },
    );
}

#[test]
fn any_image_policy_spec_validates_and_renders_without_panic() {
    check(
        || (image_policy(), policy_observed()),
        |(policy, observed)| check_image_policy(&policy, &observed),
    );
}

#[test]
fn mutated_registry_documents_parse_and_render_without_panic() {
    check(
        || (registry(), any::<usize>(), json_value()),
        |(registry, choice, replacement)| {
            let mut document = serde_json::to_value(&registry).expect("typed Registry serializes");
            mutate(&mut document, choice, replacement);
            check_document(&yaml_serde::to_string(&document).expect("JSON serializes as YAML"));
        },
    );
}

#[test]
fn mutated_image_policy_documents_parse_and_render_without_panic() {
    check(
        || (image_policy(), any::<usize>(), json_value()),
        |(policy, choice, replacement)| {
            let mut document = serde_json::to_value(&policy).expect("typed ImagePolicy serializes");
            mutate(&mut document, choice, replacement);
            check_document(&yaml_serde::to_string(&document).expect("JSON serializes as YAML"));
        },
    );
}

#[test]
fn arbitrary_documents_parse_and_render_without_panic() {
    fn kinds() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("Registry"),
            Just("ImagePolicy"),
            Just("ConfigMap"),
            Just("")
        ]
    }
    check(
        || (kinds(), json_value()),
        |(kind, spec)| {
            let api_version = if kind == "ConfigMap" {
                "v1"
            } else {
                "registry.aisp.dev/v1alpha1"
            };
            let document = json!({
                "apiVersion": api_version,
                "kind": kind,
                "metadata": { "name": "fuzz", "namespace": "registry" },
                "spec": spec,
            });
            check_document(&yaml_serde::to_string(&document).expect("JSON serializes as YAML"));
        },
    );
}

#[test]
fn arbitrary_text_parses_without_panic() {
    let text = || {
        prop_oneof![
            any::<String>(),
            "(apiVersion: registry.aisp.dev/v1alpha1\nkind: (Registry|ImagePolicy)\n)?[-a-z:{}\\[\\], \n'\"&*!|>#%@`]{0,80}",
        ]
    };
    check(text, |text| check_document(&text));
}

/// A valid spec of each kind passes every property (guards against properties that only hold vacuously).
#[test]
fn valid_specs_render_and_carry_owner_labels() {
    let registry: Registry = yaml_serde::from_str(
        "apiVersion: registry.aisp.dev/v1alpha1\nkind: Registry\nmetadata: {name: harbor, namespace: registry}\nspec: {mode: Harbor, host: harbor.localhost}\n",
    )
    .expect("fixture");
    let observed = Observed {
        harbor: HarborObserved {
            database_ready: true,
            components_exist: false,
        },
        ..Observed::default()
    };
    let rendered = render::registry(&registry, &observed).expect("renders");
    assert!(rendered.objects.len() > 10);
    check_registry(&registry, &observed);
}
