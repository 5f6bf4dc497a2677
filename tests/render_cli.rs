//! Render-level tests over files: golden snapshots of every sample, the invalid fixtures and their
//! messages, CRD drift, typed round-trips and `kubernetes-validate --strict` of the output.

mod common;

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use registry_operator::cli::render_files;
use registry_operator::render::{RenderedObject, to_yaml};

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
    render_files(&files, None, "default")
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .objects
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
    assert!(kinds.contains(&"ClusterPolicy".to_string()), "{kinds:?}");
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
