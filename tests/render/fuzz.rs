//! Property tests over bad input: arbitrary but well-typed Registry and ImagePolicy specs through
//! validate + render, and arbitrary (mutated) YAML documents through the CLI's parsing and render.
//! Properties: nothing panics, every error names a field, every rendered object carries the owner
//! selector labels. 256 cases per property by default; `PROPTEST_CASES=100000` for a long run.

use crate::support::fuzz::image_policies::{image_policy, policy_observed};
use crate::support::fuzz::registries::registry;
use crate::support::fuzz::{json_value, mutate};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use registry_operator::cli::{parse_manifests, render_manifests};
use registry_operator::crd::{ImagePolicy, Registry};
use registry_operator::render::labels::Owner;
use registry_operator::render::{
    self, HarborObserved, Observed, PolicyObserved, RenderError, RenderedObject,
};
use registry_operator::validate::ValidationErrors;
use serde_json::json;

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
