//! The `render` command: files in, the multi-document YAML the operator would apply out.
//! Reads files and observed objects, then calls the pure renderers; prints nothing itself.

use std::path::PathBuf;

use kube::ResourceExt;

use super::input::{InputError, Manifest, read_manifests};
use crate::render::observed::ObservedHosting;
use crate::render::{self, Observed, RenderedObject};
use crate::validate;

/// Why `render` failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderCommandError {
    /// An input file could not be read or parsed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// An object is invalid or could not be rendered; the message names the field.
    #[error("{kind} {name}: {source}")]
    Render {
        kind: &'static str,
        name: String,
        source: render::RenderError,
    },
    /// The observed file holds something unusable.
    #[error("--observed: {0}")]
    Observed(String),
}

/// What `render` produced: objects in output order and one note per input object.
#[derive(Debug, Default)]
pub struct RenderOutput {
    /// Every object, grouped per input in input order, each group in apply order.
    pub objects: Vec<RenderedObject>,
    /// Human-readable notes (endpoint, registries.yaml, warnings) for stderr.
    pub notes: Vec<String>,
}

/// Render files as `registry-operator render` does.
pub fn render_files(
    files: &[PathBuf],
    observed: Option<&PathBuf>,
    namespace: &str,
) -> Result<RenderOutput, RenderCommandError> {
    let manifests = read_manifests(files)?;
    let observed = match observed {
        Some(path) => observed_from(&read_manifests(std::slice::from_ref(path))?)?,
        None => Observed::default(),
    };
    render_manifests(manifests, &observed, namespace)
}

fn observed_from(manifests: &[Manifest]) -> Result<Observed, RenderCommandError> {
    let mut observed = Observed::default();
    for manifest in manifests {
        if let Manifest::ConfigMap(config_map) = manifest
            && config_map.namespace().as_deref() == Some("kube-public")
            && config_map.name_any() == "local-registry-hosting"
        {
            observed.local_registry_hosting = Some(
                ObservedHosting::from_config_map(config_map)
                    .map_err(RenderCommandError::Observed)?,
            );
        }
    }
    Ok(observed)
}

/// Render already-parsed manifests.
pub fn render_manifests(
    manifests: Vec<Manifest>,
    observed: &Observed,
    namespace: &str,
) -> Result<RenderOutput, RenderCommandError> {
    let mut output = RenderOutput::default();
    for manifest in manifests {
        match manifest {
            Manifest::Registry(mut registry) => {
                if registry.metadata.namespace.is_none() {
                    registry.metadata.namespace = Some(namespace.to_string());
                }
                let id = format!(
                    "{}/{}",
                    registry.namespace().unwrap_or_default(),
                    registry.name_any()
                );
                let rendered = render::registry(&registry, observed).map_err(|source| {
                    RenderCommandError::Render {
                        kind: "Registry",
                        name: id.clone(),
                        source,
                    }
                })?;
                let how = if rendered.adopted {
                    "adopted"
                } else {
                    "hosted"
                };
                output.notes.push(format!(
                    "Registry {id}: {how}, endpoint {}",
                    rendered.endpoint.as_deref().unwrap_or("<none>")
                ));
                if let Some(snippet) = &rendered.k3s_registries_yaml {
                    output
                        .notes
                        .push(format!("Registry {id}: k3s registries.yaml:\n{snippet}"));
                }
                output.notes.extend(
                    rendered
                        .warnings
                        .iter()
                        .map(|w| format!("Registry {id}: warning: {w}")),
                );
                output.objects.extend(rendered.objects);
            }
            Manifest::ImagePolicy(policy) => {
                let name = policy.name_any();
                validate::image_policy(&policy).map_err(|e| RenderCommandError::Render {
                    kind: "ImagePolicy",
                    name: name.clone(),
                    source: e.into(),
                })?;
                output.notes.push(format!("ImagePolicy {name}: valid; Kyverno policy rendering is not available in this version"));
            }
            Manifest::ConfigMap(_) | Manifest::Other { .. } => {}
        }
    }
    Ok(output)
}
