//! Object metadata rules exactly as kube-apiserver applies them (k8s.io/apimachinery
//! `util/validation` and `api/validation`): DNS names, qualified names, label values, annotations,
//! finalizers, port names and owner references. Pure functions of strings; no I/O.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// Longest DNS-1123 label (and DNS-1035 label, label value, qualified-name name part).
pub const DNS1123_LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// Longest label value.
pub const LABEL_VALUE_MAX: usize = 63;
/// Longest name part of a qualified name (label and annotation keys, finalizers).
pub const QUALIFIED_NAME_MAX: usize = 63;
/// Largest total size of all annotation keys and values of one object (256 KiB).
pub const TOTAL_ANNOTATION_SIZE_MAX: usize = 256 * 1024;
/// Longest port name (IANA_SVC_NAME).
pub const PORT_NAME_MAX: usize = 15;
/// Finalizers Kubernetes itself defines without a domain prefix.
pub const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];

const DNS1123_LABEL_FORMAT: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')";
const DNS1123_SUBDOMAIN_FORMAT: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')";
const DNS1035_LABEL_FORMAT: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123')";
const QUALIFIED_NAME_FORMAT: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc')";
const QUALIFIED_NAME_SHAPE: &str = "a qualified name must consist of a name part and an optional DNS subdomain prefix followed by '/' (e.g. 'example.com/MyName')";

fn max_length(max: usize) -> String {
    format!("must be no more than {max} characters")
}

fn finish(errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, any length.
fn dns1123_label_shape(value: &str) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            lower_alnum(first)
                && lower_alnum(last)
                && bytes.iter().all(|&b| lower_alnum(b) || b == b'-')
        }
        _ => false,
    }
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, any length (empty fails).
fn qualified_name_part_shape(value: &str) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// A DNS-1123 label (`IsDNS1123Label`): namespace names, container and volume names.
pub fn dns1123_label(value: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errors.push(max_length(DNS1123_LABEL_MAX));
    }
    if !dns1123_label_shape(value) {
        errors.push(DNS1123_LABEL_FORMAT.to_string());
    }
    finish(errors)
}

/// A DNS-1123 subdomain (`IsDNS1123Subdomain`): most object names. Only the whole is limited (253);
/// the parts between dots are not limited to 63 here, exactly as apimachinery checks it.
pub fn dns1123_subdomain(value: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errors.push(max_length(DNS1123_SUBDOMAIN_MAX));
    }
    if !value.split('.').all(dns1123_label_shape) {
        errors.push(DNS1123_SUBDOMAIN_FORMAT.to_string());
    }
    finish(errors)
}

/// A DNS-1035 label (`IsDNS1035Label`): Service names; like a DNS-1123 label but starting with a letter.
pub fn dns1035_label(value: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errors.push(max_length(DNS1123_LABEL_MAX));
    }
    if !(dns1123_label_shape(value) && value.starts_with(|c: char| c.is_ascii_lowercase())) {
        errors.push(DNS1035_LABEL_FORMAT.to_string());
    }
    finish(errors)
}

/// A qualified name (`IsQualifiedName`): `[prefix/]name`, the prefix a DNS-1123 subdomain, the name
/// part at most 63 characters of `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
pub fn qualified_name(value: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else if let Err(e) = dns1123_subdomain(prefix) {
                errors.push(format!("prefix part {e}"));
            }
            *name
        }
        _ => return Err(QUALIFIED_NAME_SHAPE.to_string()),
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errors.push(format!("name part {}", max_length(QUALIFIED_NAME_MAX)));
    }
    if !name.is_empty() && !qualified_name_part_shape(name) {
        errors.push(format!("name part {QUALIFIED_NAME_FORMAT}"));
    }
    finish(errors)
}

/// A label key (`ValidateLabelName`): a qualified name.
pub fn label_key(value: &str) -> Result<(), String> {
    qualified_name(value)
}

/// A label value (`IsValidLabelValue`): empty, or at most 63 characters of
/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
pub fn label_value(value: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errors.push(max_length(LABEL_VALUE_MAX));
    }
    if !value.is_empty() && !qualified_name_part_shape(value) {
        errors.push(format!(
            "a valid label {QUALIFIED_NAME_FORMAT}; an empty value is also valid"
        ));
    }
    finish(errors)
}

/// An annotation key (`ValidateAnnotations`): a qualified name once lowercased (so the prefix may hold
/// upper case, unlike a label key's).
pub fn annotation_key(value: &str) -> Result<(), String> {
    qualified_name(&value.to_ascii_lowercase())
}

/// Every annotation key, and the total size of keys and values (at most 256 KiB).
pub fn annotations<'a>(
    annotations: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut total = 0usize;
    for (key, value) in annotations {
        total += key.len() + value.len();
        if let Err(e) = annotation_key(key) {
            errors.push(format!("{key:?}: {e}"));
        }
    }
    if total > TOTAL_ANNOTATION_SIZE_MAX {
        errors.push(format!(
            "may not be more than {TOTAL_ANNOTATION_SIZE_MAX} bytes in total (keys and values), got {total}"
        ));
    }
    finish(errors)
}

/// A finalizer name (`ValidateFinalizerName`): a qualified name. A name without a domain prefix that
/// is not one of Kubernetes' own ([`STANDARD_FINALIZERS`]) only draws a warning from the API server;
/// it is refused here, so nothing we write ever warns.
pub fn finalizer(value: &str) -> Result<(), String> {
    qualified_name(value)?;
    if !value.contains('/') && !STANDARD_FINALIZERS.contains(&value) {
        return Err(
            "must be domain-qualified, e.g. example.com/cleanup (only Kubernetes' own finalizers have no prefix)"
                .to_string(),
        );
    }
    Ok(())
}

/// The finalizers of one object: each name, and `orphan` never together with `foregroundDeletion`.
pub fn finalizers<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    let mut errors = Vec::new();
    let (mut orphan, mut foreground) = (false, false);
    for name in names {
        orphan |= name == "orphan";
        foreground |= name == "foregroundDeletion";
        if let Err(e) = finalizer(name) {
            errors.push(format!("{name:?}: {e}"));
        }
    }
    if orphan && foreground {
        errors.push("finalizers orphan and foregroundDeletion cannot be both set".to_string());
    }
    finish(errors)
}

/// A port name (`IsValidPortName`, IANA_SVC_NAME): 1 to 15 characters of `a-z`, `0-9` and `-`, at
/// least one letter, no `--`, no leading or trailing `-`.
pub fn port_name(value: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    if value.len() > PORT_NAME_MAX {
        errors.push(max_length(PORT_NAME_MAX));
    }
    if value.is_empty() || !value.bytes().all(|b| lower_alnum(b) || b == b'-') {
        errors.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !value.bytes().any(|b| b.is_ascii_lowercase()) {
        errors.push("must contain at least one letter (a-z)".to_string());
    }
    if value.contains("--") {
        errors.push("must not contain consecutive hyphens".to_string());
    }
    if value.starts_with('-') || value.ends_with('-') {
        errors.push("must not begin or end with a hyphen".to_string());
    }
    finish(errors)
}

/// One owner reference (`validateOwnerReference`), plus the garbage collector's scope rule: the owner
/// of a cluster-scoped object must be cluster-scoped, and the owner of a namespaced object must be
/// cluster-scoped or in the same namespace (otherwise the collector treats the owner as absent).
/// `owner_namespace` is the owner's namespace (`None`: cluster-scoped owner), `object_namespace` the
/// dependent's.
pub fn owner_reference(
    reference: &OwnerReference,
    object_namespace: Option<&str>,
    owner_namespace: Option<&str>,
) -> Result<(), String> {
    let mut errors = Vec::new();
    let version = reference.api_version.rsplit('/').next().unwrap_or_default();
    if reference.api_version.split('/').count() > 2 || version.is_empty() {
        errors.push(format!(
            "apiVersion {:?}: version must not be empty",
            reference.api_version
        ));
    }
    if reference.kind.is_empty() {
        errors.push("kind must not be empty".to_string());
    }
    if reference.name.is_empty() {
        errors.push("name must not be empty".to_string());
    }
    if reference.uid.is_empty() {
        errors.push("uid must not be empty".to_string());
    }
    if reference.api_version == "v1" && reference.kind == "Event" {
        errors.push("v1 Event is disallowed from being an owner".to_string());
    }
    match (object_namespace, owner_namespace) {
        (None, Some(owner)) => errors.push(format!(
            "a cluster-scoped object cannot be owned by the namespaced {} {owner}/{}",
            reference.kind, reference.name
        )),
        (Some(object), Some(owner)) if object != owner => errors.push(format!(
            "the owner {} {owner}/{} is in another namespace than the object ({object}); owners must share the namespace",
            reference.kind, reference.name
        )),
        _ => {}
    }
    finish(errors)
}

/// The owner references of one object: at most one may be the controller.
pub fn owner_references(references: &[OwnerReference]) -> Result<(), String> {
    let controllers = references
        .iter()
        .filter(|r| r.controller == Some(true))
        .count();
    if controllers > 1 {
        return Err(format!(
            "only one reference can have controller set to true, found {controllers}"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "metadata_tests.rs"]
mod tests;
