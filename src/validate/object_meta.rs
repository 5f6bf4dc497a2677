//! The metadata rules of [`super::metadata`] applied to a whole object as the API server would see it
//! (JSON): the name rule of its kind, namespace presence, labels, annotations, finalizers, owner
//! references, and inside workloads the pod template's labels, selectors, container, port and volume
//! names. Pure; shared by the render tests and usable by any fake API server.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::Value;

use super::metadata::{
    annotations, dns1035_label, dns1123_label, dns1123_subdomain, finalizers, label_key,
    label_value, owner_reference, owner_references, port_name,
};
use super::{Errors, ValidationError};

/// Label naming the owner's namespace; empty for cluster-scoped owners (see `render::labels`).
const OWNER_NAMESPACE_LABEL: &str = "registry.aisp.dev/owner-namespace";

/// How the API server checks a kind's `metadata.name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// DNS-1123 label (Namespace).
    Dns1123Label,
    /// DNS-1123 subdomain (most kinds).
    Dns1123Subdomain,
    /// DNS-1035 label (Service, CloudNativePG Cluster).
    Dns1035Label,
}

/// What applies to one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindRules {
    /// Namespaced (needs `metadata.namespace`) or cluster-scoped (must have none).
    pub namespaced: bool,
    /// The rule of `metadata.name`.
    pub name: NameRule,
    /// A tighter length limit that the kind's controller or webhook imposes, and why.
    pub max_name: Option<(usize, &'static str)>,
    /// JSON pointer of the pod template of a workload kind.
    pub pod_template: Option<&'static str>,
}

const fn rules(namespaced: bool, name: NameRule) -> KindRules {
    KindRules {
        namespaced,
        name,
        max_name: None,
        pod_template: None,
    }
}

/// The rules of a kind the operator writes (or owns); `None` for a kind this table does not know.
pub fn kind_rules(api_version: &str, kind: &str) -> Option<KindRules> {
    use NameRule::*;
    let template = Some("/spec/template");
    Some(match (api_version, kind) {
        ("v1", "ConfigMap" | "Secret" | "PersistentVolumeClaim" | "ServiceAccount") => {
            rules(true, Dns1123Subdomain)
        }
        ("v1", "Service") => rules(true, Dns1035Label),
        ("v1", "Namespace") => rules(false, Dns1123Label),
        ("apps/v1", "Deployment") => KindRules {
            pod_template: template,
            ..rules(true, Dns1123Subdomain)
        },
        ("apps/v1", "StatefulSet") => KindRules {
            pod_template: template,
            max_name: Some((
                52,
                "the controller-revision-hash label <name>-<hash of up to 10 characters> of its pods is a label value of at most 63",
            )),
            ..rules(true, Dns1123Subdomain)
        },
        ("batch/v1", "Job") => KindRules {
            pod_template: template,
            max_name: Some((63, "the job-name label of its pods carries the name")),
            ..rules(true, Dns1123Subdomain)
        },
        ("batch/v1", "CronJob") => KindRules {
            pod_template: Some("/spec/jobTemplate/spec/template"),
            max_name: Some((
                52,
                "the CronJob controller appends an 11-character suffix to name its Jobs",
            )),
            ..rules(true, Dns1123Subdomain)
        },
        ("networking.k8s.io/v1", "Ingress") => rules(true, Dns1123Subdomain),
        ("postgresql.cnpg.io/v1", "Database" | "DatabaseRole" | "ScheduledBackup") => {
            rules(true, Dns1123Subdomain)
        }
        ("postgresql.cnpg.io/v1", "Cluster") => KindRules {
            max_name: Some((50, "CloudNativePG's webhook refuses longer Cluster names")),
            ..rules(true, Dns1035Label)
        },
        ("kyverno.io/v1", "ClusterPolicy") => KindRules {
            max_name: Some((
                63,
                "Kyverno refuses longer policy names (the name is a report label value)",
            )),
            ..rules(false, Dns1123Subdomain)
        },
        ("policies.kyverno.io/v1", "ValidatingPolicy" | "ImageValidatingPolicy") => {
            rules(false, Dns1123Subdomain)
        }
        ("registry.aisp.dev/v1alpha1", "Registry") => rules(true, Dns1123Subdomain),
        ("registry.aisp.dev/v1alpha1", "ImagePolicy") => rules(false, Dns1123Subdomain),
        _ => return None,
    })
}

/// Every metadata rule the object breaks (empty when the API server would accept its metadata).
pub fn object(object: &Value) -> Vec<ValidationError> {
    let mut errors = Errors::default();
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    let (api_version, kind) = (
        text("/apiVersion").unwrap_or_default(),
        text("/kind").unwrap_or_default(),
    );
    let Some(rules) = kind_rules(api_version, kind) else {
        errors.add(
            "kind",
            format!("{api_version} {kind}: no metadata rules are known for this kind"),
        );
        return errors.0;
    };
    let metadata = &object["metadata"];
    match text("/metadata/name").filter(|n| !n.is_empty()) {
        None => errors.add("metadata.name", "required"),
        Some(name) => {
            let checked = match rules.name {
                NameRule::Dns1123Label => dns1123_label(name),
                NameRule::Dns1123Subdomain => dns1123_subdomain(name),
                NameRule::Dns1035Label => dns1035_label(name),
            };
            if let Err(e) = checked {
                errors.add("metadata.name", format!("{kind} {name:?}: {e}"));
            }
            if let Some((max, why)) = rules.max_name
                && name.len() > max
            {
                errors.add(
                    "metadata.name",
                    format!("{kind} {name:?}: at most {max} characters: {why}"),
                );
            }
        }
    }
    let namespace = text("/metadata/namespace").filter(|n| !n.is_empty());
    match (rules.namespaced, namespace) {
        (true, None) => errors.add(
            "metadata.namespace",
            format!("required: {kind} is namespaced"),
        ),
        (false, Some(_)) => errors.add(
            "metadata.namespace",
            format!("must be unset: {kind} is cluster-scoped"),
        ),
        (true, Some(namespace)) => {
            if let Err(e) = dns1123_label(namespace) {
                errors.add("metadata.namespace", e);
            }
        }
        (false, None) => {}
    }
    check_labels(&mut errors, "metadata.labels", metadata.get("labels"));
    check_annotations(
        &mut errors,
        "metadata.annotations",
        metadata.get("annotations"),
    );
    if let Some(list) = metadata.get("finalizers") {
        let names: Vec<&str> = list
            .as_array()
            .map(|l| l.iter().map(|f| f.as_str().unwrap_or_default()).collect())
            .unwrap_or_default();
        if let Err(e) = finalizers(names) {
            errors.add("metadata.finalizers", e);
        }
    }
    check_owner_references(&mut errors, metadata, namespace);
    if let Some(template) = rules.pod_template.and_then(|p| object.pointer(p)) {
        check_pod_template(&mut errors, "spec.template", template);
        check_labels(
            &mut errors,
            "spec.selector.matchLabels",
            object.pointer("/spec/selector/matchLabels"),
        );
    }
    if kind == "StatefulSet" {
        for (i, claim) in array(object.pointer("/spec/volumeClaimTemplates")).enumerate() {
            let field = format!("spec.volumeClaimTemplates[{i}].metadata");
            // The template's name is also a volume name of the pods.
            check_name(
                &mut errors,
                &format!("{field}.name"),
                claim.pointer("/metadata/name"),
                dns1123_label,
            );
            check_labels(
                &mut errors,
                &format!("{field}.labels"),
                claim.pointer("/metadata/labels"),
            );
        }
    }
    if kind == "Service" {
        check_labels(
            &mut errors,
            "spec.selector",
            object.pointer("/spec/selector"),
        );
        for (i, port) in array(object.pointer("/spec/ports")).enumerate() {
            if let Some(name) = port
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                && let Err(e) = dns1123_label(name)
            {
                errors.add(format!("spec.ports[{i}].name"), e);
            }
            if let Some(target) = port.get("targetPort").and_then(Value::as_str)
                && let Err(e) = port_name(target)
            {
                errors.add(format!("spec.ports[{i}].targetPort"), e);
            }
        }
    }
    errors.0
}

fn array(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value.and_then(Value::as_array).into_iter().flatten()
}

fn check_name(
    errors: &mut Errors,
    field: &str,
    value: Option<&Value>,
    rule: fn(&str) -> Result<(), String>,
) {
    match value.and_then(Value::as_str) {
        Some(name) => {
            if let Err(e) = rule(name) {
                errors.add(field, format!("{name:?}: {e}"));
            }
        }
        None => errors.add(field, "required"),
    }
}

fn check_labels(errors: &mut Errors, field: &str, labels: Option<&Value>) {
    let Some(labels) = labels else { return };
    let Some(map) = labels.as_object() else {
        errors.add(field, "must be a map of strings");
        return;
    };
    for (key, value) in map {
        if let Err(e) = label_key(key) {
            errors.add(field, format!("key {key:?}: {e}"));
        }
        match value.as_str() {
            Some(value) => {
                if let Err(e) = label_value(value) {
                    errors.add(field, format!("{key}: value {value:?}: {e}"));
                }
            }
            None => errors.add(field, format!("{key}: value must be a string")),
        }
    }
}

fn check_annotations(errors: &mut Errors, field: &str, value: Option<&Value>) {
    let Some(value) = value else { return };
    let Some(map) = value.as_object() else {
        errors.add(field, "must be a map of strings");
        return;
    };
    let pairs = map
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()));
    if let Err(e) = annotations(pairs) {
        errors.add(field, e);
    }
}

fn check_owner_references(errors: &mut Errors, metadata: &Value, namespace: Option<&str>) {
    let Some(list) = metadata.get("ownerReferences") else {
        return;
    };
    let references: Vec<OwnerReference> = match serde_json::from_value(list.clone()) {
        Ok(references) => references,
        Err(e) => {
            errors.add("metadata.ownerReferences", e.to_string());
            return;
        }
    };
    if let Err(e) = owner_references(&references) {
        errors.add("metadata.ownerReferences", e);
    }
    // The owner's namespace, when its kind is namespaced: the owner label names it; otherwise it is
    // taken to be the object's own (an owner reference carries no namespace).
    let labelled = metadata
        .pointer(&format!(
            "/labels/{}",
            OWNER_NAMESPACE_LABEL.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty());
    for (i, reference) in references.iter().enumerate() {
        let owner_namespace = match kind_rules(&reference.api_version, &reference.kind) {
            Some(owner) if owner.namespaced => Some(labelled.or(namespace).unwrap_or("<unknown>")),
            Some(_) => None,
            None => namespace,
        };
        if let Err(e) = owner_reference(reference, namespace, owner_namespace) {
            errors.add(format!("metadata.ownerReferences[{i}]"), e);
        }
    }
}

fn check_pod_template(errors: &mut Errors, field: &str, template: &Value) {
    check_labels(
        errors,
        &format!("{field}.metadata.labels"),
        template.pointer("/metadata/labels"),
    );
    check_annotations(
        errors,
        &format!("{field}.metadata.annotations"),
        template.pointer("/metadata/annotations"),
    );
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for (i, container) in array(template.pointer(&format!("/spec/{list}"))).enumerate() {
            let at = format!("{field}.spec.{list}[{i}]");
            check_name(
                errors,
                &format!("{at}.name"),
                container.get("name"),
                dns1123_label,
            );
            for (j, port) in array(container.get("ports")).enumerate() {
                if let Some(name) = port.get("name") {
                    check_name(
                        errors,
                        &format!("{at}.ports[{j}].name"),
                        Some(name),
                        port_name,
                    );
                }
            }
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                // A probe's port may be a number or the name of a container port.
                for action in ["httpGet", "tcpSocket"] {
                    let pointer = format!("/{probe}/{action}/port");
                    if let Some(port) = container.pointer(&pointer).and_then(Value::as_str)
                        && let Err(e) = port_name(port)
                    {
                        errors.add(
                            format!("{at}.{probe}.{action}.port"),
                            format!("{port:?}: {e}"),
                        );
                    }
                }
            }
        }
    }
    for (i, volume) in array(template.pointer("/spec/volumes")).enumerate() {
        check_name(
            errors,
            &format!("{field}.spec.volumes[{i}].name"),
            volume.get("name"),
            dns1123_label,
        );
    }
}

#[cfg(test)]
#[path = "object_meta_tests.rs"]
mod tests;
