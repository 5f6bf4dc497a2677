//! The image rewrite of a registry switch's grace window as a `kyverno.io/v1` ClusterPolicy: images of the
//! old host become `<new host>/<prefix>/<path>` in Pods when they are created, in ephemeral containers when
//! `kubectl debug` adds them, and (Kyverno's autogen) in the pod templates of new Deployments, StatefulSets,
//! DaemonSets, Jobs and CronJobs. Pure: never reads the cluster or the clock, never decides when the
//! window opens or closes (the controller does).
//!
//! Why it looks the way it does (each point judged by the Kyverno v1.19.1 CLI in
//! `tests/render/image_rewrite.rs`):
//! - `foreach` + `patchStrategicMerge`, never JSON6902: a JSON6902 patch turns autogen off for the policy.
//! - Autogen is limited to [`AUTOGEN_CONTROLLERS`]: rewriting a ReplicaSet that a Deployment owns makes it
//!   differ from the Deployment's template, and the Deployment controller then creates ReplicaSets in a
//!   loop (kubernetes/kubernetes#57167).
//! - Only at creation (and for `pods/ephemeralcontainers`): rewriting the image of a running Pod on any
//!   update would restart its container, and a Job's template is immutable after creation.
//! - An ephemeral container that already exists is left alone: the API server refuses any change to it.
//! - Kyverno substitutes `{{ }}` inside substituted values, so only images made of reference characters
//!   are touched; anything else (not an image reference anyway) is left as it is.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::render::kyverno::cluster_policy::{MatchResources, ResourceDescription, ResourceFilter};
use crate::render::kyverno::mutate::{
    Conditions, ForEachMutation, MutateClusterPolicy, MutatePolicySpec, MutateRule, Mutation,
    Precondition,
};
use crate::render::kyverno::{WebhookConfiguration, cluster_policy_resource};
use crate::render::{RenderError, RenderedObject};
use crate::validate::{ValidationError, ValidationErrors, is_dns_label, is_dns_subdomain, is_host};

/// Name of the rule (Kyverno names its autogen rules `autogen-rewrite-images`, `autogen-cronjob-…`).
pub const RULE: &str = "rewrite-images";
/// Kyverno's annotation choosing the pod controllers a Pod rule is also generated for.
pub const AUTOGEN_ANNOTATION: &str = "pod-policies.kyverno.io/autogen-controllers";
/// The pod controllers whose templates are rewritten at creation: Kyverno's default list without
/// ReplicaSet (owned by Deployments: see the module notes) and ReplicationController.
pub const AUTOGEN_CONTROLLERS: &str = "DaemonSet,Deployment,Job,StatefulSet,CronJob";
/// Value of `app.kubernetes.io/name` suggested for the policy's labels.
pub const APP: &str = "image-rewrite";
/// Kyverno refuses policy names longer than this (the name is a label value of its reports).
pub const MAX_POLICY_NAME: usize = 63;
/// Characters of an image reference (host, path, tag, digest); an image with any other character is
/// never rewritten, so no `{{ }}` of a user's image reaches Kyverno's variable substitution.
const REFERENCE_CHARACTERS: &str = "^[A-Za-z0-9._:/@+=-]+$";

/// What to rewrite: `<from_host>/<path>` becomes `<to_host>/<prefix>/<path>` (`<to_host>/<path>` when
/// `prefix` is empty, e.g. Harbor → K3d).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRewrite {
    /// The old registry's `host[:port]`, as images name it.
    pub from_host: String,
    /// The new registry's `host[:port]`.
    pub to_host: String,
    /// Path put before each repository (the Harbor project, e.g. `library`), or empty.
    pub prefix: String,
}

impl ImageRewrite {
    /// The image the policy makes of `image`, or `None` when it leaves it alone: the same decision as
    /// the generated rule (the tests hold both to one table), for counting or explaining rewrites.
    pub fn rewritten(&self, image: &str) -> Option<String> {
        let path = image.strip_prefix(&format!("{}/", self.from_host))?;
        let reference_characters = image
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/@+=-".contains(&b));
        reference_characters.then(|| format!("{}{path}", self.target_prefix()))
    }

    /// `<to_host>/<prefix>/`, or `<to_host>/` without a prefix.
    fn target_prefix(&self) -> String {
        match self.prefix.trim_matches('/') {
            "" => format!("{}/", self.to_host),
            prefix => format!("{}/{prefix}/", self.to_host),
        }
    }
}

/// A policy name for one Registry, unique across namespaces and at most [`MAX_POLICY_NAME`]
/// characters: `<namespace>-<registry>-rewrite-images`, shortened with a hash when too long.
pub fn policy_name(registry: &str, namespace: &str) -> String {
    let full = format!("{namespace}-{registry}-{RULE}");
    if full.len() <= MAX_POLICY_NAME {
        return full;
    }
    let digest = hex::encode(Sha256::digest(format!("{namespace}/{registry}").as_bytes()));
    let hash = &digest[..10];
    let keep = MAX_POLICY_NAME - RULE.len() - hash.len() - 2;
    let head: String = full.chars().take(keep).collect();
    format!("{}-{hash}-{RULE}", head.trim_end_matches(['-', '.']))
}

/// The ClusterPolicy rewriting `rewrite.from_host` to `rewrite.to_host` (plus `rewrite.prefix`) in the
/// pods of `namespaces` (empty: every namespace) except `exclude_namespaces` (which win).
pub fn rewrite_policy(
    name: &str,
    labels: BTreeMap<String, String>,
    owner: Option<OwnerReference>,
    namespaces: &[String],
    exclude_namespaces: &[String],
    rewrite: &ImageRewrite,
) -> Result<RenderedObject, RenderError> {
    check(name, namespaces, exclude_namespaces, rewrite)?;
    let metadata = ObjectMeta {
        name: Some(name.to_string()),
        labels: (!labels.is_empty()).then_some(labels),
        annotations: Some(BTreeMap::from([(
            AUTOGEN_ANNOTATION.to_string(),
            AUTOGEN_CONTROLLERS.to_string(),
        )])),
        owner_references: owner.map(|o| vec![o]),
        ..ObjectMeta::default()
    };
    let exclude = (!exclude_namespaces.is_empty()).then(|| MatchResources {
        any: vec![ResourceFilter {
            resources: ResourceDescription {
                kinds: Vec::new(),
                namespaces: dedup(exclude_namespaces),
            },
        }],
    });
    let policy = MutateClusterPolicy {
        metadata: ObjectMeta::default(),
        spec: MutatePolicySpec {
            background: false,
            // A convenience, not a guard: when Kyverno cannot answer, pods start with the old host, which
            // the ImagePolicies still allow during the window.
            webhook_configuration: Some(WebhookConfiguration {
                failure_policy: Some("Ignore"),
                timeout_seconds: 10,
            }),
            rules: vec![MutateRule {
                name: RULE.to_string(),
                // Kind `Pod` also matches `pods/ephemeralcontainers` (Kyverno registers and matches the
                // subresource with Pod rules); naming the subresource as a kind would turn autogen off.
                match_resources: MatchResources {
                    any: vec![ResourceFilter {
                        resources: ResourceDescription {
                            kinds: vec!["Pod".to_string()],
                            namespaces: dedup(namespaces),
                        },
                    }],
                },
                exclude,
                preconditions: Some(Conditions {
                    any: vec![
                        equals("{{ request.operation }}", "CREATE"),
                        equals("{{ request.subResource || '' }}", "ephemeralcontainers"),
                    ],
                    all: Vec::new(),
                }),
                mutate: Mutation {
                    foreach: vec![
                        each(
                            rewrite,
                            "containers",
                            "request.object.spec.containers",
                            None,
                        ),
                        each(
                            rewrite,
                            "initContainers",
                            "request.object.spec.initContainers || `[]`",
                            None,
                        ),
                        each(
                            rewrite,
                            "ephemeralContainers",
                            "request.object.spec.ephemeralContainers || `[]`",
                            Some(Precondition {
                                key: "{{ element.name }}".to_string(),
                                operator: "AnyNotIn",
                                value: json!(
                                    "{{ request.oldObject.spec.ephemeralContainers[].name || `[]` }}"
                                ),
                            }),
                        ),
                    ],
                },
            }],
        },
    };
    RenderedObject::from_parts(
        cluster_policy_resource(),
        metadata,
        serde_json::to_value(&policy)?,
    )
}

fn equals(key: &str, value: &str) -> Precondition {
    Precondition {
        key: key.to_string(),
        operator: "Equals",
        value: json!(value),
    }
}

/// The foreach entry rewriting the images of one container list (`field` of the pod spec).
fn each(
    rewrite: &ImageRewrite,
    field: &str,
    list: &str,
    extra: Option<Precondition>,
) -> ForEachMutation {
    // Hosts and prefix are checked (`check`): no quote, brace or `$` can reach these expressions.
    let from = format!("'{}/'", rewrite.from_host);
    let mut all = vec![
        Precondition {
            key: format!("{{{{ starts_with(element.image, {from}) }}}}"),
            operator: "Equals",
            value: json!(true),
        },
        Precondition {
            key: format!("{{{{ regex_match('{REFERENCE_CHARACTERS}', element.image) }}}}"),
            operator: "Equals",
            value: json!(true),
        },
    ];
    all.extend(extra);
    let image = format!(
        "{}{{{{ trim_prefix(element.image, {from}) }}}}",
        rewrite.target_prefix()
    );
    ForEachMutation {
        list: list.to_string(),
        preconditions: Some(Conditions {
            any: Vec::new(),
            all,
        }),
        patch_strategic_merge: json!({
            "spec": { field: [{ "name": "{{ element.name }}", "image": image }] }
        }),
    }
}

/// A host images can name: `host[:port]` that Docker reads as a registry (a `.` or a `:`, or
/// `localhost`), else `k3d-registry/app` would mean `docker.io/k3d-registry/app`.
fn is_image_host(host: &str) -> bool {
    is_host(host) && (host.contains(['.', ':']) || host == "localhost")
}

fn check(
    name: &str,
    namespaces: &[String],
    exclude_namespaces: &[String],
    rewrite: &ImageRewrite,
) -> Result<(), RenderError> {
    let mut errors = Vec::new();
    let mut add = |field: &str, message: String| {
        errors.push(ValidationError {
            field: field.to_string(),
            message,
        })
    };
    if !is_dns_subdomain(name) || name.len() > MAX_POLICY_NAME {
        add(
            "metadata.name",
            format!(
                "{name:?}: a DNS subdomain of at most {MAX_POLICY_NAME} characters (Kyverno's limit)"
            ),
        );
    }
    for (field, host) in [
        ("imageRewrite.fromHost", &rewrite.from_host),
        ("imageRewrite.toHost", &rewrite.to_host),
    ] {
        if !is_image_host(host) {
            add(
                field,
                format!("{host:?}: a registry host[:port] with a '.' or a ':' (or localhost)"),
            );
        }
    }
    if rewrite.from_host == rewrite.to_host {
        add(
            "imageRewrite.toHost",
            "must differ from fromHost".to_string(),
        );
    }
    let prefix = rewrite.prefix.trim_matches('/');
    let prefix_ok = prefix.is_empty()
        || prefix.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
    if !prefix_ok {
        add(
            "imageRewrite.prefix",
            format!(
                "{:?}: empty or repository path components (lowercase letters, digits, '.', '_', '-')",
                rewrite.prefix
            ),
        );
    }
    for (field, list) in [
        ("namespaces", namespaces),
        ("excludeNamespaces", exclude_namespaces),
    ] {
        for (i, namespace) in list.iter().enumerate() {
            if !is_dns_label(namespace) {
                add(
                    &format!("{field}[{i}]"),
                    format!("{namespace:?}: a namespace name"),
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(errors).into())
    }
}

fn dedup(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in list {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::labels::Owner;

    fn to_harbor() -> ImageRewrite {
        ImageRewrite {
            from_host: "k3d-registry:5000".into(),
            to_host: "harbor.example.com".into(),
            prefix: "library".into(),
        }
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn name_labels_owner_and_namespaces_are_the_callers() {
        let labels = Owner::registry("platform", "registry").labels(APP, RULE);
        let owner = OwnerReference {
            api_version: "registry.aisp.dev/v1alpha1".into(),
            kind: "Registry".into(),
            name: "platform".into(),
            uid: "u-1".into(),
            controller: Some(true),
            ..OwnerReference::default()
        };
        let name = policy_name("platform", "registry");
        assert_eq!(name, "registry-platform-rewrite-images");
        let object = rewrite_policy(
            &name,
            labels.clone(),
            Some(owner.clone()),
            &strings(&["apps", "ml", "apps"]),
            &strings(&["kube-system"]),
            &to_harbor(),
        )
        .expect("render");
        assert_eq!(object.resource.kind, "ClusterPolicy");
        assert_eq!(object.resource.api_version, "kyverno.io/v1");
        assert_eq!(object.name(), name);
        assert_eq!(object.namespace(), None);
        assert_eq!(object.object.metadata.labels.as_ref(), Some(&labels));
        assert_eq!(object.object.metadata.owner_references, Some(vec![owner]));
        let annotations = object.object.metadata.annotations.clone().unwrap();
        assert_eq!(annotations[AUTOGEN_ANNOTATION], AUTOGEN_CONTROLLERS);
        let rule = &object.object.data["spec"]["rules"][0];
        assert_eq!(rule["name"], RULE);
        assert_eq!(
            rule["match"]["any"][0]["resources"]["kinds"],
            json!(["Pod"])
        );
        assert_eq!(
            rule["match"]["any"][0]["resources"]["namespaces"],
            json!(["apps", "ml"]),
            "deduplicated, in order"
        );
        assert_eq!(
            rule["exclude"]["any"][0]["resources"]["namespaces"],
            json!(["kube-system"])
        );
        let image = &rule["mutate"]["foreach"][0]["patchStrategicMerge"]["spec"]["containers"][0];
        assert_eq!(
            image["image"],
            "harbor.example.com/library/{{ trim_prefix(element.image, 'k3d-registry:5000/') }}"
        );
    }

    #[test]
    fn no_namespaces_means_every_namespace_and_no_exclude_block() {
        let object = rewrite_policy("p", BTreeMap::new(), None, &[], &[], &to_harbor()).unwrap();
        let rule = &object.object.data["spec"]["rules"][0];
        assert!(
            rule["match"]["any"][0]["resources"]
                .get("namespaces")
                .is_none()
        );
        assert!(rule.get("exclude").is_none());
        assert!(object.object.metadata.labels.is_none());
        assert!(object.object.metadata.owner_references.is_none());
    }

    #[test]
    fn long_names_are_shortened_with_a_hash_and_stay_distinct() {
        let long = "r".repeat(60);
        let a = policy_name(&long, "team-a");
        let b = policy_name(&long, "team-b");
        assert!(
            a.len() <= MAX_POLICY_NAME && b.len() <= MAX_POLICY_NAME,
            "{a}"
        );
        assert_ne!(a, b);
        assert!(
            a.ends_with("-rewrite-images") && is_dns_subdomain(&a),
            "{a}"
        );
        rewrite_policy(&a, BTreeMap::new(), None, &[], &[], &to_harbor()).expect("valid name");
    }

    #[test]
    fn unsafe_or_meaningless_input_is_refused_naming_each_field() {
        let bad = ImageRewrite {
            from_host: "k3d-registry".into(),
            to_host: "harbor.example.com/x'".into(),
            prefix: "Library/{{x}}".into(),
        };
        let err = rewrite_policy(
            "Bad_Name",
            BTreeMap::new(),
            None,
            &strings(&["apps*"]),
            &strings(&["$(x)"]),
            &bad,
        )
        .unwrap_err();
        let RenderError::Invalid(errors) = err else {
            panic!("{err}")
        };
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "imageRewrite.fromHost",
                "imageRewrite.toHost",
                "imageRewrite.prefix",
                "namespaces[0]",
                "excludeNamespaces[0]"
            ]
        );
        let same = ImageRewrite {
            to_host: "k3d-registry:5000".into(),
            ..to_harbor()
        };
        assert!(rewrite_policy("p", BTreeMap::new(), None, &[], &[], &same).is_err());
    }

    #[test]
    fn rewritten_keeps_path_tag_and_digest_and_needs_the_exact_host() {
        let r = to_harbor();
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            r.rewritten(&format!("k3d-registry:5000/a/b/c:1@{digest}")),
            Some(format!("harbor.example.com/library/a/b/c:1@{digest}"))
        );
        for other in [
            "k3d-registry:50000/app",
            "k3d-registry:500/app",
            "other/k3d-registry:5000",
            "k3d-registry:5000",
            "k3d-registry:5000/{{request.operation}}",
        ] {
            assert_eq!(r.rewritten(other), None, "{other}");
        }
        let back = ImageRewrite {
            from_host: "harbor.example.com".into(),
            to_host: "k3d-registry:5000".into(),
            prefix: String::new(),
        };
        assert_eq!(
            back.rewritten("harbor.example.com/library/app:1")
                .as_deref(),
            Some("k3d-registry:5000/library/app:1")
        );
    }
}
