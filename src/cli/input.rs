//! Strict reading of user YAML: multi-document files into typed Registries and ImagePolicies, with
//! unknown fields and missing required fields reported by path (like `kubectl apply --validate=strict`).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ConfigMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::crd::{ImagePolicy, Registry, RegistryProject};

/// Why input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file could not be read or written.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// A document is not YAML.
    #[error("{file}: document {document}: {message}")]
    Yaml {
        file: String,
        document: usize,
        message: String,
    },
    /// A document does not match its kind's schema; the message names the field.
    #[error("{file}: {kind} {name}: {message}")]
    Schema {
        file: String,
        kind: String,
        name: String,
        message: String,
    },
    /// CRD generation failed (a bug).
    #[error("generating CRDs: {0}")]
    Generate(yaml_serde::Error),
}

/// One object from an input file.
#[derive(Clone, Debug)]
pub enum Manifest {
    /// A Registry.
    Registry(Box<Registry>),
    /// An ImagePolicy.
    ImagePolicy(Box<ImagePolicy>),
    /// A RegistryProject (kept through Harbor's API: checked, nothing rendered).
    RegistryProject(Box<RegistryProject>),
    /// A ConfigMap (used for `--observed`).
    ConfigMap(Box<ConfigMap>),
    /// Any other kind, reported and skipped.
    Other {
        /// `apiVersion` as written (empty when missing).
        api_version: String,
        /// `kind` as written (empty when missing).
        kind: String,
        /// `metadata.name`, when there is one.
        name: Option<String>,
        /// `<file>: document <n>`, for messages.
        location: String,
    },
}

/// Read every document of every file, in order; a directory stands for its `*.yaml`/`*.yml` files
/// (sorted by name, `kustomization.yaml` excluded), like `kubectl apply -f DIR`.
pub fn read_manifests(files: &[PathBuf]) -> Result<Vec<Manifest>, InputError> {
    let mut manifests = Vec::new();
    for file in expand_directories(files)? {
        let file = &file;
        let text = std::fs::read_to_string(file).map_err(|e| InputError::Io(file.clone(), e))?;
        manifests.extend(parse_manifests(&text, file)?);
    }
    Ok(manifests)
}

fn expand_directories(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let entries = std::fs::read_dir(path).map_err(|e| InputError::Io(path.clone(), e))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .filter(|p| p.file_stem().is_none_or(|stem| stem != "kustomization"))
            .collect();
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// Parse a multi-document YAML string.
pub fn parse_manifests(text: &str, file: &Path) -> Result<Vec<Manifest>, InputError> {
    let file = file.display().to_string();
    let mut manifests = Vec::new();
    for (index, document) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let value = serde_json::Value::deserialize(document).map_err(|e| InputError::Yaml {
            file: file.clone(),
            document: index + 1,
            message: e.to_string(),
        })?;
        if value.is_null() {
            continue;
        }
        let api_version = value
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let kind = value
            .get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let manifest = match (api_version.as_str(), kind.as_str()) {
            ("registry.aisp.dev/v1alpha1", "Registry") => {
                Manifest::Registry(Box::new(strict(&file, &kind, value)?))
            }
            ("registry.aisp.dev/v1alpha1", "ImagePolicy") => {
                Manifest::ImagePolicy(Box::new(strict(&file, &kind, value)?))
            }
            ("registry.aisp.dev/v1alpha1", "RegistryProject") => {
                Manifest::RegistryProject(Box::new(strict(&file, &kind, value)?))
            }
            ("v1", "ConfigMap") => Manifest::ConfigMap(Box::new(strict(&file, &kind, value)?)),
            _ => Manifest::Other {
                name: value
                    .pointer("/metadata/name")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
                location: format!("{file}: document {}", index + 1),
                api_version,
                kind,
            },
        };
        manifests.push(manifest);
    }
    Ok(manifests)
}

/// Deserialize, rejecting unknown fields and naming the path of any mismatch.
fn strict<T: DeserializeOwned>(
    file: &str,
    kind: &str,
    value: serde_json::Value,
) -> Result<T, InputError> {
    let name = value
        .pointer("/metadata/name")
        .and_then(|v| v.as_str())
        .unwrap_or("<unnamed>")
        .to_string();
    let schema_error = |message: String| InputError::Schema {
        file: file.to_string(),
        kind: kind.to_string(),
        name: name.clone(),
        message,
    };
    let mut unknown = Vec::new();
    let result: Result<T, _> = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        &value,
        &mut |path: serde_ignored::Path<'_>| unknown.push(path.to_string().replace(".?", "")),
    ));
    let typed = result.map_err(|e| schema_error(describe(e)))?;
    // `apiVersion`/`kind` are consumed by the TypeMeta of the typed object; anything else is a typo.
    unknown.retain(|p| p != "apiVersion" && p != "kind");
    if let Some(path) = unknown.first() {
        return Err(schema_error(format!("{path}: unknown field")));
    }
    Ok(typed)
}

/// `spec.x: missing field `y`` becomes `spec.x.y: required`; other errors keep serde's text.
fn describe(error: serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = error.path().to_string();
    let inner = error.into_inner().to_string();
    let prefix = if path == "." {
        String::new()
    } else {
        format!("{path}.")
    };
    if let Some(rest) = inner.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return format!("{prefix}{field}: required");
    }
    if path == "." {
        inner
    } else {
        format!("{path}: {inner}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Manifest>, InputError> {
        parse_manifests(text, Path::new("test.yaml"))
    }

    #[test]
    fn missing_required_field_is_named_by_path() {
        let err = parse(
            "apiVersion: registry.aisp.dev/v1alpha1\nkind: Registry\nmetadata: {name: r}\nspec:\n  mode: Harbor\n  host: h\n  harbor:\n    storage:\n      s3: {credentialsSecretRef: {name: s}}\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "test.yaml: Registry r: spec.harbor.storage.s3.bucket: required"
        );
    }

    #[test]
    fn unknown_field_is_rejected_with_its_path() {
        let err = parse("apiVersion: registry.aisp.dev/v1alpha1\nkind: Registry\nmetadata: {name: r}\nspec:\n  mode: K3d\n  k3d: {adpot: Never}\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "test.yaml: Registry r: spec.k3d.adpot: unknown field"
        );
    }

    #[test]
    fn wrong_enum_value_names_field() {
        let err = parse("apiVersion: registry.aisp.dev/v1alpha1\nkind: Registry\nmetadata: {name: r}\nspec:\n  mode: Quay\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("spec.mode: unknown variant `Quay`"),
            "{err}"
        );
    }

    #[test]
    fn multiple_documents_and_other_kinds() {
        let manifests = parse(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\napiVersion: registry.aisp.dev/v1alpha1\nkind: Registry\nmetadata: {name: r}\nspec: {mode: K3d}\n---\n",
        )
        .unwrap();
        assert_eq!(manifests.len(), 2);
        assert!(
            matches!(&manifests[0], Manifest::Other { kind, name, location, .. }
                if kind == "Namespace" && name.as_deref() == Some("x") && location == "test.yaml: document 1")
        );
        assert!(matches!(&manifests[1], Manifest::Registry(_)));
    }
}
