//! Argo CD integration: the Lua health checks against the health_test.yaml fixtures (run with lua5.4),
//! the argocd-cm patch carrying those scripts verbatim, the example Applications against the upstream
//! Application schema (strict), and that rendered children never carry Argo CD's tracking metadata.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::common;
use registry_operator::cli::{Manifest, read_manifests, render_manifests};
use registry_operator::crd::{Meaning, Reason};
use registry_operator::render::Observed;
use serde_json::Value;

const REGISTRY_KEY: &str = "resource.customizations.health.registry.aisp.dev_Registry";
const IMAGE_POLICY_KEY: &str = "resource.customizations.health.registry.aisp.dev_ImagePolicy";
const REGISTRY_PROJECT_KEY: &str =
    "resource.customizations.health.registry.aisp.dev_RegistryProject";

fn argocd_dir() -> PathBuf {
    common::repo_root().join("config/argocd")
}

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn script_for(kind: &str) -> String {
    let file = match kind {
        "Registry" => "health-registry.lua",
        "ImagePolicy" => "health-imagepolicy.lua",
        "RegistryProject" => "health-registryproject.lua",
        other => panic!("no health check for kind {other}"),
    };
    std::fs::read_to_string(argocd_dir().join(file)).expect("read lua")
}

/// A Lua string literal (Lua strings are bytes, so UTF-8 passes through; control bytes are escaped).
fn lua_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\{:03}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Lua table-constructor source for a JSON value, as Argo CD hands `obj` to a health script.
fn lua_value(value: &Value) -> String {
    match value {
        Value::Null => "nil".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua_value).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_value(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// Run a health script on `obj` with lua5.4; returns `(status, message)`.
fn run_health(lua: &Path, script: &str, obj: &Value) -> (String, String) {
    let program = format!(
        "obj = {}\nlocal function health()\n{script}\nend\nlocal hs = health()\nio.write(hs.status, \"\\n\", hs.message or \"\")\n",
        lua_value(obj)
    );
    let file = tempfile::Builder::new()
        .suffix(".lua")
        .tempfile()
        .expect("tempfile");
    std::fs::write(file.path(), program).expect("write");
    let output = Command::new(lua)
        .arg(file.path())
        .output()
        .expect("run lua5.4");
    assert!(
        output.status.success(),
        "lua5.4 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let (status, message) = stdout.split_once('\n').unwrap_or((&stdout, ""));
    (status.to_string(), message.to_string())
}

#[test]
fn lua_string_escapes_quotes_and_control_bytes() {
    assert_eq!(lua_string("a\"b\\c\n\t"), "\"a\\\"b\\\\c\\n\\009\"");
    assert_eq!(
        lua_value(&serde_json::json!({"a": [1, "x"], "n": null})),
        "{[\"a\"] = {1, \"x\"}}"
    );
}

#[test]
fn health_checks_match_every_fixture() {
    let Some(lua) = common::find_tool("lua5.4", &[]) else {
        common::missing("lua5.4", "apt-get install lua5.4");
        return;
    };
    let cases = read_yaml(&argocd_dir().join("health_test.yaml"));
    let cases = cases["tests"].as_array().expect("tests");
    let mut statuses = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for case in cases {
        let input = case["inputPath"].as_str().expect("inputPath");
        let obj = read_yaml(&argocd_dir().join(input));
        let kind = obj["kind"].as_str().expect("kind").to_string();
        let actual = run_health(&lua, &script_for(&kind), &obj);
        let expected = (
            case["healthStatus"]["status"]
                .as_str()
                .expect("status")
                .to_string(),
            case["healthStatus"]["message"]
                .as_str()
                .expect("message")
                .to_string(),
        );
        assert_eq!(actual, expected, "{input}");
        statuses.insert(expected.0);
        kinds.insert(kind);
    }
    assert_eq!(
        statuses,
        BTreeSet::from(["Degraded".into(), "Healthy".into(), "Progressing".into()])
    );
    assert_eq!(kinds, kinds_with_reasons());
    // Every fixture file is exercised.
    let listed: BTreeSet<String> = cases
        .iter()
        .filter_map(|c| c["inputPath"].as_str().map(str::to_string))
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(argocd_dir().join("testdata"))
        .expect("testdata")
        .map(|e| {
            format!(
                "testdata/{}",
                e.expect("entry").file_name().to_string_lossy()
            )
        })
        .collect();
    assert_eq!(listed, present);
}

/// The troubleshooting table of the README: from its heading to the next heading.
fn troubleshooting_table() -> String {
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).expect("README");
    let start = readme
        .find("### Troubleshooting by condition reason")
        .expect("README has a troubleshooting table");
    let rest = &readme[start + 3..];
    rest[..rest.find("\n#").unwrap_or(rest.len())].to_string()
}

#[test]
fn every_condition_reason_is_in_the_readme_troubleshooting_table() {
    let table = troubleshooting_table();
    let missing: Vec<&str> = Reason::ALL
        .iter()
        .map(|r| r.as_str())
        .filter(|word| !table.contains(&format!("`{word}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the README troubleshooting table: {missing:?}"
    );
}

/// The conditions a controller writes with `reason` as Ready's reason, per the reason's meaning.
fn status_for(reason: Reason) -> Value {
    let (ready, progressing, degraded) = match reason.meaning() {
        Meaning::Healthy => (true, false, false),
        Meaning::Progressing => (false, true, false),
        Meaning::Degraded => (false, false, true),
        Meaning::Blocked | Meaning::Neutral => (false, false, false),
    };
    let word = |b: bool| if b { "True" } else { "False" };
    serde_json::json!({
        "observedGeneration": 1,
        "conditions": [
            {"type": "Ready", "status": word(ready), "reason": reason.as_str(), "message": "m"},
            {"type": "Progressing", "status": word(progressing), "reason": reason.as_str(), "message": ""},
            {"type": "Degraded", "status": word(degraded), "reason": reason.as_str(), "message": ""},
        ],
    })
}

/// Every kind whose status carries condition reasons: each needs a health check.
fn kinds_with_reasons() -> BTreeSet<String> {
    Reason::ALL
        .iter()
        .flat_map(|r| r.written_by())
        .map(|w| w.kind().to_string())
        .collect()
}

#[test]
fn every_health_check_handles_every_condition_reason() {
    let Some(lua) = common::find_tool("lua5.4", &[]) else {
        common::missing("lua5.4", "apt-get install lua5.4");
        return;
    };
    let kinds = kinds_with_reasons();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ImagePolicy".into(),
            "Registry".into(),
            "RegistryProject".into()
        ])
    );
    for kind in &kinds {
        let kind = kind.as_str();
        let script = script_for(kind);
        // The failure table names only reasons the operator writes.
        let failures = &script[script.find("local failures = {").expect("failures")..];
        let failures = &failures[..failures.find('}').expect("end of failures")];
        for line in failures.lines().skip(1) {
            let word = line
                .trim()
                .trim_end_matches(',')
                .trim_end_matches(" = true");
            assert!(
                Reason::ALL.iter().any(|r| r.as_str() == word),
                "{kind} health check lists unknown reason {word:?}"
            );
        }
        for reason in Reason::ALL {
            let writes = reason.is_written_by(kind);
            let expected = match reason.meaning() {
                Meaning::Healthy => "Healthy",
                Meaning::Progressing => "Progressing",
                Meaning::Degraded | Meaning::Blocked => "Degraded",
                Meaning::Neutral => continue,
            };
            if !writes {
                continue;
            }
            let obj = serde_json::json!({
                "apiVersion": "registry.aisp.dev/v1alpha1",
                "kind": kind,
                "metadata": {"name": "r", "generation": 1},
                "status": status_for(*reason),
            });
            let (status, _) = run_health(&lua, &script, &obj);
            assert_eq!(status, expected, "{kind} with reason {reason}");
        }
    }
}

#[test]
fn argocd_cm_patch_carries_the_lua_files_verbatim() {
    let patch = read_yaml(&argocd_dir().join("argocd-cm-patch.yaml"));
    assert_eq!(patch["kind"], "ConfigMap");
    assert_eq!(patch["metadata"]["name"], "argocd-cm");
    let data = patch["data"].as_object().expect("data");
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        [IMAGE_POLICY_KEY, REGISTRY_KEY, REGISTRY_PROJECT_KEY]
    );
    assert_eq!(
        data[REGISTRY_KEY].as_str(),
        Some(script_for("Registry").as_str()),
        "argocd-cm-patch.yaml drifted from health-registry.lua"
    );
    assert_eq!(
        data[IMAGE_POLICY_KEY].as_str(),
        Some(script_for("ImagePolicy").as_str()),
        "argocd-cm-patch.yaml drifted from health-imagepolicy.lua"
    );
    assert_eq!(
        data[REGISTRY_PROJECT_KEY].as_str(),
        Some(script_for("RegistryProject").as_str()),
        "argocd-cm-patch.yaml drifted from health-registryproject.lua"
    );
}

#[test]
fn applications_validate_against_the_upstream_schema_strictly() {
    let Some(schemas) = common::shared_schemas() else {
        return;
    };
    let schema = common::strict_schema(&schemas.join("argocd/application-crd.yaml"), "v1alpha1");
    let validator = jsonschema::draft4::new(&schema).expect("schema compiles");
    let mut paths = Vec::new();
    for name in ["application-operator.yaml", "application-registry.yaml"] {
        let app = read_yaml(&argocd_dir().join(name));
        assert_eq!(app["apiVersion"], "argoproj.io/v1alpha1", "{name}");
        assert_eq!(app["kind"], "Application", "{name}");
        let errors: Vec<String> = validator
            .iter_errors(&app)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
        let path = app["spec"]["source"]["path"].as_str().expect("path");
        assert!(
            common::repo_root()
                .join(path)
                .join("kustomization.yaml")
                .is_file(),
            "{name}: {path} is not a kustomization"
        );
        paths.push(path.to_string());
    }
    assert_eq!(paths, ["config/default", "config/samples"]);
    // Strictness must bite: a misspelt field is rejected.
    let mut typo = read_yaml(&argocd_dir().join("application-operator.yaml"));
    typo["spec"]["source"]["targetRevison"] = Value::String("main".into());
    assert!(!validator.is_valid(&typo), "strict schema accepted a typo");
}

/// Children must not inherit Argo CD's tracking metadata, or Argo CD would adopt (and prune) them as
/// part of the Application that holds the Registry.
#[test]
fn rendered_children_never_carry_argocd_tracking_metadata() {
    let samples = common::repo_root().join("config/samples");
    let mut manifests = read_manifests(&[samples]).expect("samples");
    for manifest in &mut manifests {
        let metadata = match manifest {
            Manifest::Registry(registry) => &mut registry.metadata,
            Manifest::ImagePolicy(policy) => &mut policy.metadata,
            _ => continue,
        };
        metadata.labels.get_or_insert_default().extend([
            ("app.kubernetes.io/instance".into(), "argocd-app".into()),
            ("argocd.argoproj.io/instance".into(), "argocd-app".into()),
        ]);
        metadata.annotations.get_or_insert_default().extend([
            (
                "argocd.argoproj.io/tracking-id".into(),
                "argocd-app:registry.aisp.dev/Registry:registry/platform".into(),
            ),
            ("argocd.argoproj.io/sync-wave".into(), "1".into()),
            (
                "kubectl.kubernetes.io/last-applied-configuration".into(),
                "{}".into(),
            ),
        ]);
    }
    let output = render_manifests(manifests, &Observed::default(), "default").expect("render");
    assert!(output.objects.len() > 20, "expected the samples' children");
    for object in &output.objects {
        let value = serde_json::to_value(&object.object).expect("json");
        let at = object.key();
        for field in ["labels", "annotations"] {
            for (key, v) in value["metadata"][field].as_object().into_iter().flatten() {
                assert!(
                    !key.starts_with("argocd.argoproj.io/"),
                    "{at}: {field} {key} copied from the parent"
                );
                assert_ne!(
                    key, "kubectl.kubernetes.io/last-applied-configuration",
                    "{at}"
                );
                assert_ne!(
                    v, "argocd-app",
                    "{at}: {field} {key} copied from the parent"
                );
            }
        }
    }
}
