//! Render-level tests over files: golden snapshots of every sample, the invalid fixtures and their
//! messages, CRD drift, typed round-trips, `kubernetes-validate --strict` of the output, the
//! apiserver's metadata rules on every object, and the `render` command line (`--operator-namespace`,
//! `--strict`).

use std::path::{Path, PathBuf};

use crate::support::common;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use registry_operator::cli::{
    Manifest, RenderOptions, read_manifests, render_files, render_manifests_with,
};
use registry_operator::render::{Observed, RenderedObject, to_yaml};

fn samples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(common::repo_root().join("config/samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("kustomization.yaml")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 4, "samples missing: {files:?}");
    files
}

/// Render one sample; an ImagePolicy sample is rendered beside the Registry it references.
fn render(file: &Path) -> Vec<RenderedObject> {
    let mut files = vec![file.to_path_buf()];
    if file.ends_with("imagepolicy.yaml") {
        files.insert(
            0,
            common::repo_root().join("config/samples/registry-k3d.yaml"),
        );
    }
    let objects = render_files(&files, None, "default")
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .objects;
    common::assert_all_valid_metadata(&objects);
    objects
}

#[test]
fn every_sample_renders_to_its_golden_yaml() {
    for file in samples() {
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        let yaml = to_yaml(&render(&file)).unwrap();
        insta::assert_snapshot!(format!("sample-{name}"), yaml);
    }
}

/// The README's main command: the whole samples directory at once (the ImagePolicy follows the
/// K3d sample Registry it references).
#[test]
fn samples_directory_renders_as_the_readme_shows() {
    let output = render_files(
        &[common::repo_root().join("config/samples")],
        None,
        "registry-operator-system",
    )
    .unwrap();
    let kinds: Vec<String> = output
        .objects
        .iter()
        .map(|o| o.resource.kind.clone())
        .collect();
    // Every Kyverno kind is assumed served offline, so `engine: Auto` renders the CEL flavour.
    assert!(kinds.contains(&"ValidatingPolicy".to_string()), "{kinds:?}");
    common::assert_all_valid_metadata(&output.objects);
    insta::assert_snapshot!("samples-directory", to_yaml(&output.objects).unwrap());
}

#[test]
fn k3d_sample_adopts_when_observed_configmap_exists() {
    let root = common::repo_root();
    let output = render_files(
        &[root.join("config/samples/registry-k3d.yaml")],
        Some(&root.join("tests/fixtures/observed/k3d-local-registry-hosting.yaml")),
        "default",
    )
    .unwrap();
    assert!(output.objects.is_empty(), "adoption deploys nothing");
    assert!(
        output.notes[0].contains("adopted, endpoint k3d-myregistry.localhost:5000"),
        "{:?}",
        output.notes
    );
}

/// Every fixture under tests/fixtures/invalid must fail with the message on its `# expect:` line.
#[test]
fn every_invalid_fixture_fails_with_its_message() {
    let dir = common::repo_root().join("tests/fixtures/invalid");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks '# expect: ' on line 1", path.display()));
        let error = match render_files(std::slice::from_ref(&path), None, "default") {
            Ok(_) => panic!(
                "{} rendered but must fail with {expected:?}",
                path.display()
            ),
            Err(e) => e.to_string(),
        };
        assert!(
            error.contains(expected),
            "{}:\n expected: {expected}\n      got: {error}",
            path.display()
        );
        count += 1;
    }
    assert!(count >= 55, "only {count} invalid fixtures");
}

#[test]
fn committed_crds_match_the_rust_types() {
    let dir = common::repo_root().join("crds");
    for (name, generated) in registry_operator::crd::generate::crd_files().unwrap() {
        let committed = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        assert!(
            committed == generated,
            "crds/{name} is out of date with src/crd; regenerate it with: cargo run -- crdgen"
        );
    }
}

fn round_trip<K: serde::de::DeserializeOwned + serde::Serialize>(object: &RenderedObject) {
    let value = serde_json::to_value(&object.object).unwrap();
    let typed: K =
        serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{}: {e}", object.key()));
    assert_eq!(
        serde_json::to_value(&typed).unwrap(),
        value,
        "{} changes through its typed form",
        object.key()
    );
}

#[test]
fn every_core_object_round_trips_through_its_k8s_openapi_type() {
    let mut checked = 0;
    for file in samples() {
        for object in render(&file) {
            match (
                object.resource.api_version.as_str(),
                object.resource.kind.as_str(),
            ) {
                ("v1", "ConfigMap") => round_trip::<ConfigMap>(&object),
                ("v1", "Secret") => round_trip::<Secret>(&object),
                ("v1", "Service") => round_trip::<Service>(&object),
                ("v1", "PersistentVolumeClaim") => round_trip::<PersistentVolumeClaim>(&object),
                ("apps/v1", "Deployment") => round_trip::<Deployment>(&object),
                ("apps/v1", "StatefulSet") => round_trip::<StatefulSet>(&object),
                ("batch/v1", "Job") => round_trip::<Job>(&object),
                ("networking.k8s.io/v1", "Ingress") => round_trip::<Ingress>(&object),
                (api_version, kind) => {
                    assert!(
                        !api_version.starts_with("v1") && api_version.contains('.'),
                        "core kind {api_version} {kind} not checked"
                    );
                    continue;
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 4);
}

/// Kubernetes version the k8s-openapi feature pins (`v1_33`); kubernetes-validate checks against it.
const KUBERNETES_VERSION: &str = "1.33.0";

#[test]
fn rendered_core_objects_pass_kubernetes_validate_strict() {
    let Some(tool) = common::kubernetes_validate() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut objects = 0;
    for sample in samples() {
        let core: Vec<RenderedObject> = render(&sample)
            .into_iter()
            .filter(|o| !o.resource.group.contains('.') || o.resource.group.ends_with(".k8s.io"))
            .collect();
        if core.is_empty() {
            continue;
        }
        objects += core.len();
        let path = dir.path().join(sample.file_name().unwrap());
        std::fs::write(&path, to_yaml(&core).unwrap()).unwrap();
        files.push(path);
    }
    let output = std::process::Command::new(tool)
        .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION])
        .args(&files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "kubernetes-validate failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let passed = stdout
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    assert_eq!(
        passed, objects,
        "every object must be reported as passed:\n{stdout}"
    );
}

/// The checker every render test uses refuses what a real API server refuses: the label value
/// `_cluster` that ImagePolicy children once carried (422 on every apply).
#[test]
fn metadata_checker_refuses_the_old_cluster_scope_marker() {
    let policy = |owner_namespace: &str| {
        serde_json::json!({
            "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": "ai-workloads-restrict-registries", "labels": {
                "registry.aisp.dev/owner-kind": "ImagePolicy",
                "registry.aisp.dev/owner-name": "ai-workloads",
                "registry.aisp.dev/owner-namespace": owner_namespace,
            }},
            "spec": {}
        })
    };
    let refused = std::panic::catch_unwind(|| common::assert_valid_metadata(&policy("_cluster")));
    let message = refused.expect_err("_cluster must be refused");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("registry.aisp.dev/owner-namespace: value \"_cluster\""),
        "{message}"
    );
    common::assert_valid_metadata(&policy(""));
    // What render writes today: the empty value.
    let objects = render(&common::repo_root().join("config/samples/imagepolicy.yaml"));
    let policies: Vec<&RenderedObject> = objects
        .iter()
        .filter(|o| o.resource.group.ends_with("kyverno.io"))
        .collect();
    assert!(!policies.is_empty());
    for policy in policies {
        let labels = policy.object.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["registry.aisp.dev/owner-namespace"], "");
    }
}

/// Read from a cluster, owners have a uid, so children carry owner references: every one must pass
/// the apiserver's rules and the garbage collector's scope rule (a namespaced Registry never owns the
/// cluster-scoped or `kube-public` objects).
#[test]
fn owner_references_of_every_sample_pass_the_metadata_rules() {
    let mut manifests = read_manifests(&[common::repo_root().join("config/samples")]).unwrap();
    for (i, manifest) in manifests.iter_mut().enumerate() {
        let metadata = match manifest {
            Manifest::Registry(registry) => &mut registry.metadata,
            Manifest::ImagePolicy(policy) => &mut policy.metadata,
            _ => continue,
        };
        metadata.uid = Some(format!("00000000-0000-0000-0000-{i:012}"));
    }
    let output = render_manifests_with(
        manifests,
        &Observed::default(),
        &RenderOptions::new("default"),
    )
    .unwrap();
    let owned = output
        .objects
        .iter()
        .filter(|o| o.object.metadata.owner_references.is_some())
        .count();
    assert!(owned >= 10, "only {owned} objects have owner references");
    for object in &output.objects {
        if object.namespace() == Some("kube-public") {
            assert!(
                object.object.metadata.owner_references.is_none(),
                "{} would be owned across namespaces",
                object.key()
            );
        }
    }
    assert!(common::assert_all_valid_metadata(&output.objects) > owned);
}

fn exclusions(objects: &[RenderedObject]) -> Vec<String> {
    let policy = objects
        .iter()
        .find(|o| o.resource.kind == "ValidatingPolicy")
        .expect("a ValidatingPolicy");
    let expressions =
        policy.object.data["spec"]["matchConstraints"]["namespaceSelector"]["matchExpressions"]
            .as_array()
            .expect("namespace selector");
    let not_in = expressions
        .iter()
        .find(|e| e["operator"] == "NotIn")
        .expect("excluded namespaces");
    serde_json::from_value(not_in["values"].clone()).expect("excluded namespaces")
}

/// `-n` is the namespace of Registries without one, never the operator's: policies exclude the
/// operator's namespace (`--operator-namespace`, default as in config/manager), kube-system and the
/// Registry's namespace, not `default`.
#[test]
fn policies_exclude_the_operator_namespace_not_the_default_namespace() {
    let root = common::repo_root();
    let files = [
        root.join("config/samples/registry-k3d.yaml"),
        root.join("config/samples/imagepolicy.yaml"),
    ];
    let output = render_files(&files, None, "default").unwrap();
    assert_eq!(
        exclusions(&output.objects),
        ["kube-system", "registry-operator-system", "registry"]
    );
    let options = RenderOptions {
        operator_namespace: "platform-operators".into(),
        ..RenderOptions::new("default")
    };
    let output = registry_operator::cli::render_files_with(&files, None, &options).unwrap();
    assert_eq!(
        exclusions(&output.objects),
        ["kube-system", "platform-operators", "registry"]
    );
    let install = std::fs::read_to_string(root.join("config/default/kustomization.yaml")).unwrap();
    assert!(
        install.contains(&format!(
            "\nnamespace: {}\n",
            registry_operator::cli::DEFAULT_OPERATOR_NAMESPACE
        )),
        "the default must be the namespace config/default installs the manager in"
    );

    // The same through the command line.
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_registry-operator"));
    command.args([
        "render",
        "-n",
        "default",
        "--operator-namespace",
        "platform-operators",
    ]);
    for file in &files {
        command.arg("-f").arg(file);
    }
    let run = command.output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("- platform-operators"), "{stdout}");
    assert!(!stdout.contains("- default\n"), "{stdout}");
}

/// A document render does not know (wrong apiVersion, misspelt kind, another kind) is named on
/// stderr; `--strict` makes it an error.
#[test]
fn unknown_documents_are_reported_and_fail_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.yaml");
    std::fs::write(
        &file,
        "apiVersion: registry.aisp.dev/v1alpha1\nkind: Registry\nmetadata: {name: known, namespace: registry}\nspec: {mode: K3d}\n---\napiVersion: registry.aisp.dev/v1beta1\nkind: Registry\nmetadata: {name: future}\nspec: {mode: K3d}\n---\napiVersion: registry.aisp.dev/v1alpha1\nkind: Registy\nmetadata: {name: typo}\n",
    )
    .unwrap();
    let render = |strict: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_registry-operator"));
        command.arg("render").arg("-f").arg(&file);
        if strict {
            command.arg("--strict");
        }
        command.output().unwrap()
    };
    let relaxed = render(false);
    let stderr = String::from_utf8_lossy(&relaxed.stderr);
    assert!(relaxed.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&relaxed.stdout).contains("name: known-distribution"),
        "the known Registry is still rendered"
    );
    for expected in [
        "input.yaml: document 2: skipped apiVersion registry.aisp.dev/v1beta1 kind Registry future",
        "input.yaml: document 3: skipped apiVersion registry.aisp.dev/v1alpha1 kind Registy typo",
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("warning: ") && l.contains(expected)),
            "{expected:?} not in:\n{stderr}"
        );
    }
    let strict = render(true);
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(!strict.status.success(), "--strict must fail");
    assert!(
        strict.stdout.is_empty(),
        "nothing is printed under --strict"
    );
    assert!(
        stderr.starts_with("error: --strict: ") && stderr.contains("kind Registry future"),
        "{stderr}"
    );
}

/// The longest name validation allows in each mode renders children the API server accepts,
/// owner references included; one character more is refused by validation with the limit named.
#[test]
fn longest_allowed_names_render_valid_metadata_in_every_mode() {
    use registry_operator::render::{self, HarborObserved};
    use registry_operator::validate::{
        MAX_HARBOR_REGISTRY_NAME, MAX_IMAGE_POLICY_NAME, MAX_K3D_REGISTRY_NAME,
    };
    let registry = |name: &str, spec: &str| {
        let mut registry: registry_operator::crd::Registry = yaml_serde::from_str(&format!(
            "apiVersion: registry.aisp.dev/v1alpha1\nkind: Registry\nmetadata: {{name: {name}, namespace: registry, uid: u-1}}\nspec: {spec}\n"
        ))
        .unwrap();
        registry.metadata.namespace = Some("registry".into());
        registry
    };
    let harbor = "{mode: Harbor, host: harbor.localhost, harbor: {database: {managed: {instances: 1}}, exporter: {enabled: true}}}";
    let ready = Observed {
        harbor: HarborObserved {
            database_ready: true,
            components_exist: false,
        },
        ..Default::default()
    };
    for (limit, spec) in [
        (MAX_K3D_REGISTRY_NAME, "{mode: K3d}"),
        (MAX_HARBOR_REGISTRY_NAME, harbor),
    ] {
        let name = format!("r{}", "x".repeat(limit - 1));
        let rendered = render::registry(&registry(&name, spec), &ready).unwrap();
        assert!(common::assert_all_valid_metadata(&rendered.objects) >= 3);
        let too_long = render::registry(&registry(&format!("{name}x"), spec), &ready)
            .expect_err("one character more")
            .to_string();
        assert!(
            too_long.contains(&format!("at most {limit} characters")),
            "{too_long}"
        );
    }
    let policy: registry_operator::crd::ImagePolicy = serde_json::from_value(serde_json::json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": "p".repeat(MAX_IMAGE_POLICY_NAME), "uid": "u-2"},
        "spec": {"allowedRegistries": ["ghcr.io/o"], "rules": {"disallowLatestTag": {}, "restrictRegistries": {}}}
    }))
    .unwrap();
    // ClusterPolicies cover ephemeral containers in the same rule; the CEL flavour adds
    // `-ephemeral-tag`/`-ephemeral-registry` policies (Kyverno generates pod-controller rules itself).
    for (cluster_policy, cel, policies) in [(true, false, 2), (false, true, 4)] {
        let observed = registry_operator::render::PolicyObserved {
            registry_endpoint: None,
            cluster_policy_served: cluster_policy,
            cel_policies_served: cel,
            operator_namespace: "registry-operator-system".into(),
            ..Default::default()
        };
        let rendered = render::image_policy(&policy, &observed).unwrap();
        assert_eq!(
            common::assert_all_valid_metadata(&rendered.objects),
            policies,
            "{:?}",
            rendered.policy_names
        );
    }
}

/// Harbor's default images are fully qualified at a release that exists (2.15.2), and the CRD
/// documentation (`kubectl explain`) names the admin Secret the operator really generates.
#[test]
fn harbor_defaults_are_fully_qualified_and_documented() {
    use registry_operator::crd::{DEFAULT_HARBOR_VERSION, Registry};
    assert_eq!(DEFAULT_HARBOR_VERSION, "2.15.2");
    let registry: Registry = yaml_serde::from_str(
        "apiVersion: registry.aisp.dev/v1alpha1\nkind: Registry\nmetadata: {name: platform, namespace: registry}\nspec: {mode: Harbor, host: harbor.localhost, harbor: {exporter: {enabled: true}}}\n",
    )
    .unwrap();
    let ready = Observed {
        harbor: registry_operator::render::HarborObserved {
            database_ready: true,
            components_exist: false,
        },
        ..Default::default()
    };
    let rendered = registry_operator::render::registry(&registry, &ready).unwrap();
    let mut images = 0;
    for object in &rendered.objects {
        let containers = object
            .object
            .data
            .pointer("/spec/template/spec/containers")
            .and_then(|c| c.as_array());
        for container in containers.into_iter().flatten() {
            let image = container["image"].as_str().unwrap();
            assert!(
                image.starts_with("docker.io/goharbor/") && image.ends_with(":v2.15.2"),
                "{} runs {image}",
                object.key()
            );
            images += 1;
        }
    }
    assert!(images >= 8, "only {images} Harbor containers");

    let (secret, key) = registry_operator::render::harbor_admin_password_ref(&registry);
    assert_eq!(
        (secret.as_str(), key.as_str()),
        ("platform-harbor-admin-secret", "password")
    );
    assert!(rendered.generated_secrets.iter().any(|s| s.name == secret));
    let crd = serde_json::to_string(&<Registry as kube::CustomResourceExt>::crd()).unwrap();
    assert!(crd.contains("`<registry>-harbor-admin-secret` (key `password`)"));
    assert!(!crd.contains("`<registry>-harbor-admin`"));
    assert!(
        !crd.contains("2.15.3"),
        "2.15.3 cannot be confirmed to exist"
    );
}
