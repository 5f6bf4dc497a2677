//! Writes a kubeconfig (insecure http, no auth) pointing at the fake server, usable by
//! `kube::Config::from_custom_kubeconfig` and by a child process via `--kubeconfig`/`KUBECONFIG`.
//! It must not read the user's own kubeconfig.

use std::path::{Path, PathBuf};

use serde_json::json;

pub const CONTEXT: &str = "fake-kube-apiserver";

/// The kubeconfig document for `url` with default namespace `default`.
pub fn document(url: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": url}}],
        "users": [{"name": CONTEXT, "user": {}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": "default"}}],
        "current-context": CONTEXT,
        "preferences": {},
    })
}

pub fn write(dir: &Path, url: &str) -> std::io::Result<PathBuf> {
    let path = dir.join("kubeconfig.yaml");
    let yaml = yaml_serde::to_string(&document(url)).map_err(std::io::Error::other)?;
    std::fs::write(&path, yaml)?;
    Ok(path)
}
