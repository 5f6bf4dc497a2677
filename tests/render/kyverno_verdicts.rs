//! The generated policies judged by the real Kyverno engine (the CLI of Kyverno v1.19.1, built by
//! `tests/tools/build.sh kyverno`): for both flavours (ClusterPolicy and CEL), every image form,
//! container list, pod-bearing kind and namespace case gets the verdict the table below says, at
//! the same level (a Deployment is judged as a Deployment, through Kyverno's pod-controller rules).
//! The README's verdict table is generated from this test and checked against it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::support::common;
use crate::support::verdict_cases::{
    DIGEST, KINDS, NAMESPACES, image_policy, images, pod_spec, workload,
};
use serde_json::{Value, json};

fn kyverno_cli() -> Option<PathBuf> {
    let dir = common::upstream_tools("kyverno", "kyverno-cli", "REGISTRY_OPERATOR_KYVERNO_DIR")?;
    Some(dir.join("kyverno-cli"))
}

/// One case: resource name → (namespace case, tag ok, registry ok).
struct Case {
    namespace_case: &'static str,
    tag_ok: bool,
    registry_ok: bool,
}

fn expected(case: &Case, rule_ok: bool) -> &'static str {
    match (case.namespace_case, rule_ok) {
        ("excluded" | "unmatched", _) => "none",
        (_, true) => "pass",
        // Audit and Enforce both report `fail` in the CLI: its `--audit-warn` turns every
        // ValidatingPolicy failure into `warn`, Deny or not (Kyverno v1.19.1), so the action is
        // checked on the rendered policies instead (`actions_follow_failure_action`).
        _ => "fail",
    }
}

fn write_yaml(path: &std::path::Path, docs: &[Value]) {
    let text: Vec<String> = docs
        .iter()
        .map(|d| yaml_serde::to_string(d).expect("yaml"))
        .collect();
    std::fs::write(path, text.join("---\n")).expect("write yaml");
}

/// (resource name, policy slug) → result.
type Verdicts = BTreeMap<(String, String), String>;

/// (resource name, policy slug) → result, from `kyverno apply … --policy-report`.
fn run_cli(
    cli: &std::path::Path,
    policies: &std::path::Path,
    resources: &std::path::Path,
    values: &std::path::Path,
) -> Verdicts {
    let report = common::kyverno_policy_report(cli, policies, resources, values, &[]);
    let mut results = BTreeMap::new();
    for result in report["results"].as_array().into_iter().flatten() {
        let policy = result["policy"].as_str().unwrap_or_default();
        let slug = policy
            .split_once('-')
            .map(|(_, s)| s)
            .unwrap_or(policy)
            .to_string();
        for resource in result["resources"].as_array().into_iter().flatten() {
            let name = resource["name"].as_str().unwrap_or_default().to_string();
            let verdict = result["result"].as_str().unwrap_or_default().to_string();
            let previous = results.insert((name.clone(), slug.clone()), verdict.clone());
            assert!(
                previous.is_none() || previous.as_deref() == Some(verdict.as_str()),
                "{name} {slug}: two results"
            );
        }
    }
    results
}

#[test]
fn both_flavours_give_the_table_verdict_for_every_case() {
    let Some(cli) = kyverno_cli() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut resources = Vec::new();
    let mut cases = BTreeMap::new();
    for (ns, ns_case) in NAMESPACES {
        for (i, (_, image, tag_ok, registry_ok)) in images().iter().enumerate() {
            for kind in KINDS {
                // Every kind and list in the enforced namespace; a Pod and a Deployment elsewhere.
                if ns != "apps" && !matches!(kind, "Pod" | "Deployment") {
                    continue;
                }
                for list in ["containers", "initContainers", "ephemeralContainers"] {
                    // Only a Pod carries ephemeral containers (added by `kubectl debug`).
                    if list == "ephemeralContainers" && kind != "Pod" {
                        continue;
                    }
                    let name = format!(
                        "{}-{}-i{i}-{}",
                        kind.to_lowercase(),
                        list.to_lowercase(),
                        ns
                    );
                    resources.push(workload(kind, &name, ns, pod_spec(list, image)));
                    cases.insert(
                        name,
                        Case {
                            namespace_case: ns_case,
                            tag_ok: *tag_ok,
                            registry_ok: *registry_ok,
                        },
                    );
                }
            }
        }
    }
    let resource_file = dir.path().join("resources.yaml");
    write_yaml(&resource_file, &resources);
    // The CLI reads namespace labels (for the CEL flavour's namespaceSelector) from a values file.
    let values = json!({"apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Values",
        "namespaceSelector": NAMESPACES.iter().map(|(n, _)| json!({"name": n, "labels": {"kubernetes.io/metadata.name": n}})).collect::<Vec<_>>()});
    let values_file = dir.path().join("values.yaml");
    write_yaml(&values_file, &[values]);

    // Both flavours at once (the CLI uses one core).
    let flavours: Vec<(String, Verdicts, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["ClusterPolicy", "CEL"]
            .into_iter()
            .map(|engine| {
                let (dir, cli, resources, values) =
                    (dir.path(), &cli, &resource_file, &values_file);
                scope.spawn(move || {
                    let policies = render_policies(dir, engine);
                    let results = run_cli(cli, &policies, resources, values);
                    let text = std::fs::read_to_string(&policies).unwrap();
                    (engine.to_string(), results, text)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("flavour thread"))
            .collect()
    });
    let mut disagreements = Vec::new();
    for (engine, results, rendered) in &flavours {
        actions_follow_failure_action(engine, rendered);
        for (name, case) in &cases {
            for (slug, ok) in [
                ("disallow-latest-tag", case.tag_ok),
                ("restrict-registries", case.registry_ok),
            ] {
                let got = results
                    .get(&(name.clone(), slug.to_string()))
                    .map_or("none", String::as_str);
                let want = expected(case, ok);
                if got != want {
                    disagreements.push(format!("{engine}: {name} {slug}: got {got}, want {want}"));
                }
            }
        }
    }
    eprintln!(
        "FIGURES kyverno verdicts: {} resources × 2 rules × 2 flavours",
        cases.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );

    let table = verdict_table();
    if std::env::var_os("REGISTRY_OPERATOR_PRINT_VERDICT_TABLE").is_some() {
        println!("{table}");
    }
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    assert!(
        readme.contains(&table),
        "README's verdict table is out of date; it must read:\n{table}"
    );
}

fn render_policies(dir: &std::path::Path, engine: &str) -> PathBuf {
    let specs = dir.join(format!("{engine}-imagepolicies.yaml"));
    write_yaml(
        &specs,
        &[
            image_policy(
                "e",
                engine,
                &["apps", "apps-excluded"],
                &["apps-excluded"],
                "Enforce",
            ),
            image_policy("a", engine, &["audited"], &[], "Audit"),
        ],
    );
    let rendered = Command::new(env!("CARGO_BIN_EXE_registry-operator"))
        .args(["render", "-f"])
        .arg(&specs)
        .output()
        .expect("render");
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let policies = dir.join(format!("{engine}-policies.yaml"));
    std::fs::write(&policies, &rendered.stdout).unwrap();
    policies
}

/// ImagePolicy `e` (Enforce) denies, `a` (Audit) only reports, in both flavours.
fn actions_follow_failure_action(engine: &str, rendered: &str) {
    use serde::Deserialize;
    for doc in yaml_serde::Deserializer::from_str(rendered) {
        let policy = Value::deserialize(doc).expect("rendered yaml");
        let name = policy["metadata"]["name"].as_str().unwrap_or_default();
        let enforce = name.starts_with("e-");
        let action = match policy["kind"].as_str() {
            Some("ClusterPolicy") => {
                policy["spec"]["rules"][0]["validate"]["failureAction"].clone()
            }
            _ => policy["spec"]["validationActions"][0].clone(),
        };
        let want = match (engine, enforce) {
            ("ClusterPolicy", true) => "Enforce",
            ("ClusterPolicy", false) => "Audit",
            (_, true) => "Deny",
            _ => "Audit",
        };
        assert_eq!(action, want, "{engine} {name}: {policy}");
    }
}

/// The README table: what each rule does with each image form (in an enforced namespace; Audit
/// namespaces report instead of deny, excluded and unselected namespaces are not checked).
fn verdict_table() -> String {
    let mut lines = vec![
        "| image | example | no `latest` | only allowed registries |".to_string(),
        "|---|---|---|---|".to_string(),
    ];
    let word = |ok: bool| if ok { "allowed" } else { "**denied**" };
    for (label, image, tag_ok, registry_ok) in images() {
        let image = image.replace(DIGEST, "sha256:…");
        lines.push(format!(
            "| {label} | `{image}` | {} | {} |",
            word(tag_ok),
            word(registry_ok)
        ));
    }
    lines.join("\n")
}
