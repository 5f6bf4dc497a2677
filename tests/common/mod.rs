//! Shared test helpers: locating external tools and the `../shared` schemas, with the SKIPPED /
//! `REGISTRY_OPERATOR_REQUIRE_TOOLS=1` rule. No test logic here.
#![allow(dead_code)]

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
