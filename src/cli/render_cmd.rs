//! The `render` command: files in, the multi-document YAML the operator would apply out.
//! Reads files and observed objects, then calls the pure renderers; prints nothing itself.

use std::path::PathBuf;

use kube::ResourceExt;

use super::input::{InputError, Manifest, read_manifests};
use crate::crd::ImagePolicy;
use crate::render::observed::{ObservedConfigMap, ObservedHosting};
use crate::render::{self, Observed, PolicyObserved, RenderedObject};

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
    /// A RegistryProject breaks a rule; the message names the field.
    #[error("RegistryProject {name}: {message}")]
    Project { name: String, message: String },
    /// The observed file holds something unusable.
    #[error("--observed: {0}")]
    Observed(String),
    /// `--strict`: documents render does not know were given.
    #[error("--strict: {}", .0.join("; "))]
    Skipped(Vec<String>),
}

/// Namespace the operator runs in unless told otherwise (as in `config/manager`).
pub const DEFAULT_OPERATOR_NAMESPACE: &str = "registry-operator-system";

/// What `render` assumes beyond its input files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// Namespace of Registries whose metadata has none (`-n`).
    pub namespace: String,
    /// Namespace the operator runs in; image policies exclude it (`--operator-namespace`).
    pub operator_namespace: String,
    /// Fail on a document render does not know instead of skipping it with a warning (`--strict`).
    pub strict: bool,
}

impl RenderOptions {
    /// Registries default to `namespace`; the operator runs in [`DEFAULT_OPERATOR_NAMESPACE`]; not strict.
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            operator_namespace: DEFAULT_OPERATOR_NAMESPACE.to_string(),
            strict: false,
        }
    }
}

/// What `render` produced: objects in output order and one note per input object.
#[derive(Debug, Default)]
pub struct RenderOutput {
    /// Every object, grouped per input in input order, each group in apply order.
    pub objects: Vec<RenderedObject>,
    /// Human-readable notes (endpoint, registries.yaml, warnings) for stderr.
    pub notes: Vec<String>,
    /// Input documents that were not rendered, one line each, for stderr.
    pub warnings: Vec<String>,
}

/// Render files as `registry-operator render -n NAMESPACE` does, with the default options otherwise.
pub fn render_files(
    files: &[PathBuf],
    observed: Option<&PathBuf>,
    namespace: &str,
) -> Result<RenderOutput, RenderCommandError> {
    render_files_with(files, observed, &RenderOptions::new(namespace))
}

/// Render files as `registry-operator render` does.
pub fn render_files_with(
    files: &[PathBuf],
    observed: Option<&PathBuf>,
    options: &RenderOptions,
) -> Result<RenderOutput, RenderCommandError> {
    let manifests = read_manifests(files)?;
    let observed = match observed {
        Some(path) => observed_from(&read_manifests(std::slice::from_ref(path))?)?,
        None => Observed::default(),
    };
    render_manifests_with(manifests, &observed, options)
}

fn observed_from(manifests: &[Manifest]) -> Result<Observed, RenderCommandError> {
    let mut observed = Observed::default();
    for manifest in manifests {
        let Manifest::ConfigMap(config_map) = manifest else {
            continue;
        };
        match (
            config_map.namespace().as_deref(),
            config_map.name_any().as_str(),
        ) {
            (Some("kube-public"), "local-registry-hosting") => {
                observed.local_registry_hosting = Some(
                    ObservedHosting::from_config_map(config_map)
                        .map_err(RenderCommandError::Observed)?,
                );
            }
            (Some("kube-system"), "coredns-custom") => {
                observed.coredns_custom = Some(ObservedConfigMap::from_config_map(config_map));
            }
            _ => {}
        }
    }
    Ok(observed)
}

/// Render already-parsed manifests with the default options and Registries defaulting to `namespace`.
pub fn render_manifests(
    manifests: Vec<Manifest>,
    observed: &Observed,
    namespace: &str,
) -> Result<RenderOutput, RenderCommandError> {
    render_manifests_with(manifests, observed, &RenderOptions::new(namespace))
}

/// Why a document is not rendered, or `None` for a Registry or ImagePolicy.
fn skipped(manifest: &Manifest) -> Option<String> {
    const KNOWN: &str = "render knows only registry.aisp.dev/v1alpha1 Registry and ImagePolicy";
    match manifest {
        Manifest::Registry(_) | Manifest::ImagePolicy(_) | Manifest::RegistryProject(_) => None,
        Manifest::ConfigMap(config_map) => Some(format!(
            "skipped v1 ConfigMap {}: {KNOWN} (pass cluster objects render should assume with --observed)",
            config_map.metadata.name.as_deref().unwrap_or("<unnamed>")
        )),
        Manifest::Other {
            api_version,
            kind,
            name,
            location,
        } => {
            let or_none = |s: &str| {
                if s.is_empty() {
                    "<none>".to_string()
                } else {
                    s.to_string()
                }
            };
            Some(format!(
                "{location}: skipped apiVersion {} kind {} {}: {KNOWN}",
                or_none(api_version),
                or_none(kind),
                name.as_deref().unwrap_or("<unnamed>")
            ))
        }
    }
}

/// Render already-parsed manifests.
pub fn render_manifests_with(
    manifests: Vec<Manifest>,
    observed: &Observed,
    options: &RenderOptions,
) -> Result<RenderOutput, RenderCommandError> {
    let skipped: Vec<String> = manifests.iter().filter_map(skipped).collect();
    if options.strict && !skipped.is_empty() {
        return Err(RenderCommandError::Skipped(skipped));
    }
    let namespace = options.namespace.as_str();
    let mut output = RenderOutput {
        warnings: skipped,
        ..RenderOutput::default()
    };
    // Endpoints of the Registries rendered so far, so an ImagePolicy can follow one from the same files.
    let mut endpoints: Vec<((String, String), Option<String>)> = Vec::new();
    // ImagePolicies go after every Registry, whatever the file order, so they can follow its endpoint.
    let mut policies = Vec::new();
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
                if let Some(waiting) = &rendered.held_back {
                    output.notes.push(format!("Registry {id}: {waiting}"));
                }
                if let Some(version) = &rendered.harbor_version {
                    output
                        .notes
                        .push(format!("Registry {id}: Harbor {version}"));
                }
                output.notes.extend(
                    rendered
                        .warnings
                        .iter()
                        .map(|w| format!("Registry {id}: warning: {w}")),
                );
                // Generated Secrets are shown with placeholder values only; the operator fills them in-cluster.
                let mut objects = render::placeholder_secrets(&rendered.generated_secrets)
                    .map_err(|source| RenderCommandError::Render {
                        kind: "Registry",
                        name: id.clone(),
                        source,
                    })?;
                objects.extend(rendered.objects);
                render::sort_for_apply(&mut objects);
                output.objects.extend(objects);
                endpoints.push((
                    (
                        registry.namespace().unwrap_or_default(),
                        registry.name_any(),
                    ),
                    rendered.endpoint.clone(),
                ));
            }
            Manifest::ImagePolicy(policy) => policies.push(policy),
            // Harbor's content, not Kubernetes objects: checked as the operator checks it.
            Manifest::RegistryProject(project) => {
                let name = project.metadata.name.clone().unwrap_or_default();
                let desired = crate::harbor::plan::desired(&project).map_err(|e| {
                    RenderCommandError::Project {
                        name: name.clone(),
                        message: e.to_string(),
                    }
                })?;
                output.notes.push(format!(
                    "RegistryProject {name}: Harbor project {} is kept through Harbor's API by the running operator (public {}, robots {:?}); nothing to render",
                    desired.project_name, desired.public, desired.robots
                ));
            }
            // Reported in `output.warnings` above.
            Manifest::ConfigMap(_) | Manifest::Other { .. } => {}
        }
    }
    for policy in policies {
        render_image_policy(
            &policy,
            &endpoints,
            &options.operator_namespace,
            &mut output,
        )?;
    }
    Ok(output)
}

/// Render one ImagePolicy offline: every Kyverno policy kind is assumed served (so `Auto` is the CEL flavour), and the Registry's
/// endpoint is taken from a Registry of the same input files when one matches `registryRef`.
fn render_image_policy(
    policy: &ImagePolicy,
    endpoints: &[((String, String), Option<String>)],
    operator_namespace: &str,
    output: &mut RenderOutput,
) -> Result<(), RenderCommandError> {
    let name = policy.name_any();
    let registry_endpoint = policy.spec.registry_ref.as_ref().and_then(|reference| {
        endpoints
            .iter()
            .find(|((ns, n), _)| *ns == reference.namespace && *n == reference.name)
            .and_then(|(_, endpoint)| endpoint.clone())
    });
    if let (Some(reference), None) = (&policy.spec.registry_ref, &registry_endpoint) {
        output.notes.push(format!(
            "ImagePolicy {name}: Registry {}/{} is not in the input files (or has no endpoint); only spec.allowedRegistries are allowed",
            reference.namespace, reference.name
        ));
    }
    let observed = PolicyObserved {
        registry_endpoint,
        // `render` shows a settled platform: no switch in its grace window.
        previous_endpoint: None,
        rewrite: None,
        cluster_policy_served: true,
        cel_policies_served: true,
        operator_namespace: operator_namespace.to_string(),
    };
    let rendered =
        render::image_policy(policy, &observed).map_err(|source| RenderCommandError::Render {
            kind: "ImagePolicy",
            name: name.clone(),
            source,
        })?;
    output.notes.push(format!(
        "ImagePolicy {name}: engine {:?}, allowed registries [{}], policies [{}]",
        rendered.engine,
        rendered.allowed_registries.join(", "),
        rendered.policy_names.join(", ")
    ));
    output.notes.extend(
        rendered
            .warnings
            .iter()
            .map(|w| format!("ImagePolicy {name}: warning: {w}")),
    );
    output.objects.extend(rendered.objects);
    Ok(())
}
