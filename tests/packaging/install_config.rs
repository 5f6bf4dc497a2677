//! The install tree under `config/`: every kustomization builds offline with kubectl, `config/default`
//! passes strict Kubernetes 1.33 schema validation, and the manager Deployment keeps its safety
//! settings field by field. Reads files and runs tools; must not need a cluster or the network.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{common, restricted};
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::Value;

const IMAGE: &str = "ghcr.io/aisp/registry-operator:0.1.0";
const NAMESPACE: &str = "registry-operator-system";

fn kubectl() -> Option<PathBuf> {
    let found = common::find_tool("kubectl", &[]);
    if found.is_none() {
        common::missing("kubectl", "apt-get install kubernetes-client");
    }
    found
}

/// `kubectl kustomize config/<dir>` output.
fn kustomize(kubectl: &Path, dir: &str) -> String {
    let path = common::repo_root().join("config").join(dir);
    let output = Command::new(kubectl)
        .arg("kustomize")
        .arg(&path)
        .output()
        .expect("run kubectl");
    assert!(
        output.status.success(),
        "kubectl kustomize {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

fn documents(yaml: &str) -> Vec<Value> {
    yaml.split("\n---\n")
        .map(|doc| yaml_serde::from_str::<Value>(doc).expect("yaml document"))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// Run kubernetes-validate in strict mode for 1.33 on `yaml`; `Ok` or the tool's output.
fn validate(tool: &Path, yaml: &str) -> Result<(), String> {
    let file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("tempfile");
    std::fs::write(file.path(), yaml).expect("write");
    let output = Command::new(tool)
        .args(["--strict", "--kubernetes-version", "1.33.0"])
        .arg(file.path())
        .output()
        .expect("run kubernetes-validate");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn manager(kubectl: &Path) -> Deployment {
    let doc = documents(&kustomize(kubectl, "default"))
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("manager Deployment");
    serde_json::from_value(doc).expect("typed Deployment")
}

#[test]
fn default_builds_and_passes_strict_validation_for_1_33() {
    let Some(kubectl) = kubectl() else { return };
    let Some(validator) = common::kubernetes_validate() else {
        return;
    };
    let yaml = kustomize(&kubectl, "default");
    let docs = documents(&yaml);
    let mut kinds: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap_or("?"),
                d["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ClusterRole/registry-operator-manager-role",
            "ClusterRoleBinding/registry-operator-manager-rolebinding",
            "CustomResourceDefinition/imagepolicies.registry.aisp.dev",
            "CustomResourceDefinition/registries.registry.aisp.dev",
            "CustomResourceDefinition/registryprojects.registry.aisp.dev",
            "Deployment/registry-operator-manager",
            "Namespace/registry-operator-system",
            "NetworkPolicy/registry-operator-manager",
            "Service/registry-operator-metrics",
            "ServiceAccount/registry-operator-manager",
        ]
    );
    for doc in &docs {
        let cluster_scoped = ["Namespace", "ClusterRole", "ClusterRoleBinding"]
            .contains(&doc["kind"].as_str().unwrap_or_default())
            || doc["kind"] == "CustomResourceDefinition";
        if !cluster_scoped {
            assert_eq!(doc["metadata"]["namespace"], NAMESPACE, "{doc}");
        }
    }
    validate(&validator, &yaml).unwrap_or_else(|e| panic!("config/default: {e}"));

    // Strict validation must bite, or passing proves nothing.
    let typo = yaml.replacen("serviceAccountName:", "serviceAcountName:", 1);
    assert!(
        validate(&validator, &typo).is_err(),
        "kubernetes-validate --strict accepted an unknown field"
    );
}

#[test]
fn binding_subject_follows_the_prefixed_service_account() {
    let Some(kubectl) = kubectl() else { return };
    let docs = documents(&kustomize(&kubectl, "default"));
    let binding = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRoleBinding")
        .expect("binding");
    assert_eq!(binding["roleRef"]["name"], "registry-operator-manager-role");
    assert_eq!(binding["subjects"][0]["name"], "registry-operator-manager");
    assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
    let deployment = manager(&kubectl);
    let pod = deployment.spec.and_then(|s| s.template.spec).expect("pod");
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("registry-operator-manager")
    );
}

#[test]
fn every_kustomization_builds_offline() {
    let Some(kubectl) = kubectl() else { return };
    for dir in ["crd", "rbac", "manager", "samples", "default", "argocd"] {
        assert!(
            !documents(&kustomize(&kubectl, dir)).is_empty(),
            "config/{dir} built nothing"
        );
    }
}

#[test]
fn samples_kustomization_lists_every_sample() {
    let dir = common::repo_root().join("config/samples");
    let kustomization: Value = yaml_serde::from_str(
        &std::fs::read_to_string(dir.join("kustomization.yaml")).expect("read"),
    )
    .expect("yaml");
    let mut listed: Vec<String> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("string").to_string())
        .collect();
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    listed.sort();
    present.sort();
    assert_eq!(listed, present);
}

#[test]
fn manager_deployment_is_pinned_single_and_probed() {
    let Some(kubectl) = kubectl() else { return };
    let deployment = manager(&kubectl);
    let spec = deployment.spec.expect("spec");
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(
        spec.strategy.and_then(|s| s.type_).as_deref(),
        Some("Recreate")
    );
    let pod = spec.template.spec.expect("pod");
    assert_eq!(pod.containers.len(), 1);
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some(IMAGE));
    assert_eq!(
        container.args.clone().unwrap_or_default(),
        ["run", "--json-logs", "--http-addr", "0.0.0.0:8080"]
    );
    let port = container
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("http"))
        .expect("http port");
    assert_eq!(port.container_port, 8080);
    for (probe, path) in [
        (&container.liveness_probe, "/healthz"),
        (&container.readiness_probe, "/readyz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.clone())
            .expect("httpGet probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(
            get.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("http".into())
        );
    }
    let env: Vec<(String, String)> = container
        .env
        .iter()
        .flatten()
        .map(|e| {
            let field = e
                .value_from
                .as_ref()
                .and_then(|v| v.field_ref.as_ref())
                .map(|f| f.field_path.clone())
                .unwrap_or_default();
            (e.name.clone(), field)
        })
        .collect();
    assert!(env.contains(&("POD_NAMESPACE".into(), "metadata.namespace".into())));
    assert!(env.contains(&("POD_NAME".into(), "metadata.name".into())));
    let resources = container.resources.clone().expect("resources");
    let quantity = |map: &Option<std::collections::BTreeMap<String, _>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key))
            .map(|q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| q.0.clone())
    };
    assert_eq!(
        quantity(&resources.requests, "memory").as_deref(),
        Some("32Mi")
    );
    assert_eq!(
        quantity(&resources.limits, "memory").as_deref(),
        Some("128Mi")
    );
    assert!(quantity(&resources.requests, "cpu").is_some());
}

/// Pod Security "restricted", field by field, for the operator's own pod.
#[test]
fn manager_pod_meets_pod_security_restricted() {
    let Some(kubectl) = kubectl() else { return };
    let pod = manager(&kubectl)
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod");
    restricted::assert_pod_restricted(&pod, "manager", &[]);
}

#[test]
fn manager_image_is_pinned_never_latest() {
    let Some(kubectl) = kubectl() else { return };
    let yaml = kustomize(&kubectl, "default");
    let images: Vec<&str> = yaml
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("image: "))
        .collect();
    assert_eq!(images, [IMAGE]);
    assert!(images.iter().all(|i| !i.ends_with(":latest")));
}
