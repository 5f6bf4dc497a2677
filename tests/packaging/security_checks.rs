//! Security gates on what we ship: checkov over every sample's render and over `config/default`, with
//! only the reasoned skips of `.ci/checkov-skips.yaml`; and Pod Security "restricted" field by field
//! for the K3d-mode Deployments. Runs tools offline; must not need a cluster.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{common, restricted};
use globset::{Glob, GlobMatcher};
use k8s_openapi::api::apps::v1::Deployment;
use registry_operator::cli::render_files;
use registry_operator::render;
use serde_json::Value;

struct Skip {
    check: String,
    resources: Vec<GlobMatcher>,
    why: String,
    used: bool,
}

fn skips() -> Vec<Skip> {
    let path = common::repo_root().join(".ci/checkov-skips.yaml");
    let doc: Value =
        yaml_serde::from_str(&std::fs::read_to_string(&path).expect("read skips")).expect("yaml");
    doc["skips"]
        .as_array()
        .expect("skips")
        .iter()
        .map(|entry| Skip {
            check: entry["check"].as_str().expect("check").to_string(),
            resources: entry["resources"]
                .as_array()
                .expect("resources")
                .iter()
                .map(|r| {
                    Glob::new(r.as_str().expect("glob"))
                        .expect("valid glob")
                        .compile_matcher()
                })
                .collect(),
            why: entry["why"].as_str().unwrap_or_default().trim().to_string(),
            used: false,
        })
        .collect()
}

fn checkov() -> Option<PathBuf> {
    let mut dirs = vec![common::repo_root().join(".venv/bin")];
    if let Some(venv) = std::env::var_os("REGISTRY_OPERATOR_VENV") {
        dirs.insert(0, Path::new(&venv).join("bin"));
    }
    let found = common::find_tool("checkov", &dirs);
    if found.is_none() {
        common::missing("checkov", ".venv/bin/pip install checkov==3.3.30");
    }
    found
}

fn samples_yaml() -> String {
    let output = render_files(
        &[common::repo_root().join("config/samples")],
        None,
        "default",
    )
    .expect("render samples");
    render::to_yaml(&output.objects).expect("yaml")
}

fn kustomize_default(kubectl: &Path) -> String {
    let output = Command::new(kubectl)
        .arg("kustomize")
        .arg(common::repo_root().join("config/default"))
        .output()
        .expect("run kubectl");
    assert!(output.status.success(), "kubectl kustomize config/default");
    String::from_utf8(output.stdout).expect("utf-8")
}

/// checkov's JSON report(s) for the kubernetes framework over `dir`.
fn run_checkov(checkov: &Path, dir: &Path) -> Vec<Value> {
    let output = Command::new(checkov)
        .arg("--directory")
        .arg(dir)
        .args([
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--compact",
            "--skip-download",
        ])
        .env("BC_SKIP_MAPPING", "TRUE")
        .output()
        .expect("run checkov");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov output is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    match report {
        Value::Array(reports) => reports,
        single => vec![single],
    }
}

#[test]
fn checkov_finds_nothing_beyond_the_reasoned_skips() {
    let Some(checkov) = checkov() else { return };
    let Some(kubectl) = common::find_tool("kubectl", &[]) else {
        common::missing("kubectl", "apt-get install kubernetes-client");
        return;
    };
    // checkov ignores hidden directories, such as tempfile's default `.tmpXXXX`.
    let dir = tempfile::Builder::new()
        .prefix("checkov-")
        .tempdir()
        .expect("tempdir");
    std::fs::write(dir.path().join("samples.yaml"), samples_yaml()).expect("write");
    std::fs::write(dir.path().join("default.yaml"), kustomize_default(&kubectl)).expect("write");

    let mut skips = skips();
    for skip in &skips {
        assert!(
            skip.why.len() > 20,
            "{}: every skip must say why",
            skip.check
        );
    }
    let mut unexplained = Vec::new();
    let mut passed = 0;
    let mut skipped = 0;
    let mut manager_passed = Vec::new();
    for report in run_checkov(&checkov, dir.path()) {
        let results = &report["results"];
        for check in results["passed_checks"].as_array().into_iter().flatten() {
            passed += 1;
            if check["resource"] == "Deployment.registry-operator-system.registry-operator-manager"
            {
                manager_passed.push(check["check_id"].as_str().unwrap_or_default().to_string());
            }
        }
        for failed in results["failed_checks"].as_array().into_iter().flatten() {
            let id = failed["check_id"].as_str().unwrap_or_default();
            let resource = failed["resource"].as_str().unwrap_or_default();
            match skips
                .iter_mut()
                .find(|s| s.check == id && s.resources.iter().any(|g| g.is_match(resource)))
            {
                Some(skip) => {
                    skip.used = true;
                    skipped += 1;
                }
                None => unexplained.push(format!(
                    "{id} {resource}: {}",
                    failed["check_name"].as_str().unwrap_or_default()
                )),
            }
        }
    }
    eprintln!("checkov: {passed} passed, {skipped} accepted by .ci/checkov-skips.yaml");
    assert!(
        unexplained.is_empty(),
        "checkov failures not in .ci/checkov-skips.yaml: {unexplained:#?}"
    );
    let stale: Vec<&str> = skips
        .iter()
        .filter(|s| !s.used)
        .map(|s| s.check.as_str())
        .collect();
    assert!(stale.is_empty(), "skips matching no finding: {stale:?}");
    assert!(passed > 300, "checkov checked too little ({passed} passed)");
    // The manager's hardening is checked, not skipped.
    for id in [
        "CKV_K8S_20",
        "CKV_K8S_22",
        "CKV_K8S_28",
        "CKV_K8S_37",
        "CKV_K8S_23",
    ] {
        assert!(
            manager_passed.iter().any(|p| p == id),
            "{id} did not pass for the manager: {manager_passed:?}"
        );
    }
}

/// Pod Security "restricted", field by field, for every K3d-mode Deployment the samples render.
#[test]
fn k3d_deployments_meet_pod_security_restricted() {
    let mut pods = 0;
    for sample in ["registry-k3d.yaml", "registry-k3d-cache.yaml"] {
        let path = common::repo_root().join("config/samples").join(sample);
        let output = render_files(&[path], None, "default").expect("render");
        for object in output
            .objects
            .iter()
            .filter(|o| o.resource.kind == "Deployment")
        {
            let deployment: Deployment =
                serde_json::from_value(serde_json::to_value(&object.object).expect("json"))
                    .expect("typed");
            let pod = deployment
                .spec
                .and_then(|s| s.template.spec)
                .expect("pod spec");
            pods += 1;
            let at = format!("{sample}: {}", object.key());
            assert_eq!(pod.automount_service_account_token, Some(false), "{at}");
            restricted::assert_pod_restricted(&pod, &at, &[]);
        }
    }
    assert_eq!(
        pods, 2,
        "expected one distribution Deployment per K3d sample"
    );
}
