//! Helpers every test binary uses: locating external tools and the `../shared` schemas, with the SKIPPED /
//! `REGISTRY_OPERATOR_REQUIRE_TOOLS=1` rule, and the one metadata checker every render test applies.

use std::path::{Path, PathBuf};

/// Root of the repository.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether missing tools must fail the test (CI) instead of skipping it.
pub fn tools_required() -> bool {
    std::env::var("REGISTRY_OPERATOR_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// Report a missing tool: panics under `REGISTRY_OPERATOR_REQUIRE_TOOLS=1`, else prints `SKIPPED`.
pub fn missing(tool: &str, install: &str) {
    let message = format!("SKIPPED: {tool} not found (install: {install})");
    if tools_required() {
        panic!("{message}, and REGISTRY_OPERATOR_REQUIRE_TOOLS=1");
    }
    eprintln!("{message}");
}

/// Find an executable on PATH or at one of `extra` paths.
pub fn find_tool(name: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    extra
        .iter()
        .map(|p| p.join(name))
        .chain(
            std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths)
                .map(|p| p.join(name)),
        )
        .find(|p| p.is_file())
}

/// `kubernetes-validate` from the repo's `.venv` (created by `.ci/run`), `REGISTRY_OPERATOR_VENV`, or PATH.
pub fn kubernetes_validate() -> Option<PathBuf> {
    let mut dirs = vec![repo_root().join(".venv/bin")];
    if let Some(venv) = std::env::var_os("REGISTRY_OPERATOR_VENV") {
        dirs.insert(0, Path::new(&venv).join("bin"));
    }
    let found = find_tool("kubernetes-validate", &dirs);
    if found.is_none() {
        missing(
            "kubernetes-validate",
            "python3 -m venv .venv && .venv/bin/pip install kubernetes-validate==1.37.0",
        );
    }
    found
}

/// The `../shared/schemas` directory beside the repository, when present.
pub fn shared_schemas() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("REGISTRY_OPERATOR_SHARED_DIR").map(PathBuf::from),
        Some(repo_root().join("../shared")),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .map(|d| d.join("schemas"))
        .find(|d| d.is_dir());
    if found.is_none() {
        missing(
            "../shared/schemas",
            "place the shared upstream CRD schemas beside the repository",
        );
    }
    found
}

/// The `openAPIV3Schema` of `version` in an upstream CRD file, made strict: `additionalProperties: false`
/// on every object schema with `properties`, unless it already says otherwise or preserves unknown fields.
pub fn strict_schema(file: &Path, version: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(file).expect("read CRD");
    let crd: serde_json::Value = yaml_serde::from_str(&text).expect("parse CRD");
    let mut schema = crd["spec"]["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .find(|v| v["name"] == version)
        .expect("version")["schema"]["openAPIV3Schema"]
        .clone();
    make_strict(&mut schema);
    schema
}

fn make_strict(schema: &mut serde_json::Value) {
    use serde_json::Value;
    match schema {
        Value::Object(map) => {
            let preserves =
                map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            if map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && !preserves
            {
                map.insert("additionalProperties".to_string(), Value::Bool(false));
            }
            map.values_mut().for_each(make_strict);
        }
        Value::Array(items) => items.iter_mut().for_each(make_strict),
        _ => {}
    }
}

/// Panics, listing every broken rule, when the API server would refuse the object's metadata: the
/// name rule of its kind, namespace presence, label keys and values, annotations, finalizers, owner
/// references, and in workloads the pod template labels, selectors, container, port and volume names.
/// The rules are the library's (`registry_operator::validate::object_meta`), so the operator, its
/// tests and any fake API server apply the same ones.
pub fn assert_valid_metadata(object: &serde_json::Value) {
    let errors = registry_operator::validate::object_meta::object(object);
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!(
            "the API server would refuse {} {}/{}:\n  {}",
            object["kind"].as_str().unwrap_or("<no kind>"),
            object["metadata"]["namespace"].as_str().unwrap_or("-"),
            object["metadata"]["name"].as_str().unwrap_or("<no name>"),
            list.join("\n  ")
        );
    }
}

/// [`assert_valid_metadata`] for every rendered object; returns how many were checked.
pub fn assert_all_valid_metadata(objects: &[registry_operator::render::RenderedObject]) -> usize {
    for object in objects {
        assert_valid_metadata(&serde_json::to_value(&object.object).expect("object as JSON"));
    }
    objects.len()
}

/// The cache directory of an upstream tool set that `tests/tools/build.sh SET` builds (or `env`, when
/// set), when it holds `file`; otherwise reports the tool missing (SKIPPED, or a panic in CI).
pub fn upstream_tools(set: &str, file: &str, env: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(env).map(PathBuf::from).or_else(|| {
        let out = std::process::Command::new("bash")
            .arg(repo_root().join("tests/tools/build.sh"))
            .arg(set)
            .output()
            .ok()?;
        let printed = String::from_utf8_lossy(&out.stdout);
        out.status
            .success()
            .then(|| PathBuf::from(printed.lines().last().unwrap_or_default().trim()))
    });
    let found = dir.filter(|d| d.join(file).is_file());
    if found.is_none() {
        missing(
            file,
            &format!("Go ≥ 1.26, then bash tests/tools/build.sh {set}"),
        );
    }
    found
}

/// `kyverno apply POLICIES --resource RESOURCES --values-file VALUES EXTRA… --policy-report` as JSON.
pub fn kyverno_policy_report(
    cli: &Path,
    policies: &Path,
    resources: &Path,
    values: &Path,
    extra: &[&str],
) -> serde_json::Value {
    let out = std::process::Command::new(cli)
        .arg("apply")
        .arg(policies)
        .arg("--resource")
        .arg(resources)
        .arg("--values-file")
        .arg(values)
        .args(extra)
        .args([
            "--policy-report",
            "--output-format",
            "json",
            "--remove-color",
        ])
        .output()
        .expect("kyverno apply");
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text.find('{').unwrap_or_else(|| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        panic!("no policy report: {text}\n{stderr}")
    });
    serde_json::from_str(&text[start..]).expect("policy report json")
}

/// The rendered object of `kind` named `name` (panics naming it when render did not produce it).
pub fn find_rendered<'a>(
    rendered: &'a registry_operator::render::Rendered,
    kind: &str,
    name: &str,
) -> &'a registry_operator::render::RenderedObject {
    rendered
        .objects
        .iter()
        .find(|o| o.resource.kind == kind && o.name() == name)
        .unwrap_or_else(|| panic!("{kind}/{name} not rendered"))
}
