//! Pure validation of Registry and ImagePolicy specs: every rule the CRD's CEL states, plus the ones
//! CEL cannot express. Errors name the field (`spec.harbor.storage.s3.bucket: ...`). No I/O here.

mod database;
mod image_policy;
pub mod metadata;
pub mod object_meta;
mod quantity;
mod registry;
pub mod upgrade;

pub use image_policy::{LONGEST_POLICY_SUFFIX, MAX_IMAGE_POLICY_NAME, image_policy};
pub use registry::{
    MAX_HARBOR_REGISTRY_NAME, MAX_K3D_REGISTRY_NAME, NODE_PORTS, is_cluster_dns_name,
    parse_version, registry, registry_as,
};

use std::fmt;

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// Path of the offending field, e.g. `spec.harbor.version`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every broken rule of one object (never empty when returned as an error).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let messages: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&messages.join("; "))
    }
}

impl ValidationErrors {
    /// The first offending field, used as the condition reason's subject.
    pub fn first_field(&self) -> &str {
        self.0.first().map(|e| e.field.as_str()).unwrap_or("spec")
    }
}

/// Collects errors while walking a spec.
#[derive(Default)]
pub(crate) struct Errors(Vec<ValidationError>);

impl Errors {
    pub(crate) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationError {
            field: field.into(),
            message: message.into(),
        });
    }

    pub(crate) fn check(&mut self, ok: bool, field: &str, message: &str) {
        if !ok {
            self.add(field, message);
        }
    }

    /// `field` must not be empty.
    pub(crate) fn required(&mut self, value: &str, field: &str) {
        self.check(!value.is_empty(), field, "required");
    }

    /// `field` must name a Secret (a DNS subdomain).
    pub(crate) fn secret_name(&mut self, name: &str, field: &str) {
        self.check(is_dns_subdomain(name), field, "must be a Secret name");
    }

    /// `field` must name a namespace (a DNS label).
    pub(crate) fn namespace_name(&mut self, name: &str, field: &str) {
        self.check(is_dns_label(name), field, "must be a namespace name");
    }

    pub(crate) fn finish(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.0))
        }
    }
}

/// The CRD's `maxLength` (characters, as the API server counts them).
pub(crate) fn check_length(errors: &mut Errors, field: &str, value: &str, max: usize) {
    if value.chars().count() > max {
        errors.add(field, format!("must be at most {max} characters"));
    }
}

/// The CRD's `maxItems` / `maxProperties`.
pub(crate) fn check_entries(errors: &mut Errors, field: &str, entries: usize, max: usize) {
    if entries > max {
        errors.add(field, format!("must have at most {max} entries"));
    }
}

/// Kyverno evaluates `{{ ... }}` in policy text; user text must never reach it as an expression.
pub(crate) fn check_no_kyverno_expression(errors: &mut Errors, field: &str, value: &str) {
    if value.contains("{{") || value.contains("}}") {
        errors.add(
            field,
            "must not contain '{{' or '}}' (Kyverno variable syntax); use plain text",
        );
    }
}

/// An image reference as container runtimes accept it (`[host[:port]/]path[:tag][@digest]`).
pub(crate) fn check_image_reference(errors: &mut Errors, field: &str, value: &str) {
    if let Err(e) = value.parse::<oci_spec::distribution::Reference>() {
        errors.add(
            field,
            format!("{value:?} is not a valid image reference ({e})"),
        );
    }
}

/// A DNS-1123 label (namespace names, Secret names' common subset).
pub(crate) fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

/// A DNS-1123 subdomain (Secret, StorageClass, IngressClass and most object names).
pub(crate) fn is_dns_subdomain(value: &str) -> bool {
    !value.is_empty() && value.len() <= 253 && value.split('.').all(is_dns_label)
}

/// A URL as Sigstore and S3 clients take it: `http://` or `https://` and a host.
pub(crate) fn is_http_url(value: &str) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    rest.is_some_and(|r| {
        !r.is_empty() && !r.starts_with('/') && !value.contains(char::is_whitespace)
    })
}

/// A host name with an optional port, as clients put in front of an image path.
pub(crate) fn is_host(value: &str) -> bool {
    let (name, port) = match value.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (value, None),
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
    });
    port_ok && !name.is_empty() && name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// `host[:port][/path]` where the path uses only image-reference characters (lowercase letters, digits,
/// `.`, `_`, `-`), so the value is inert inside Kyverno wildcard patterns and CEL literals.
pub(crate) fn is_registry_prefix(value: &str) -> bool {
    let mut parts = value.split('/');
    let host = parts.next().unwrap_or_default();
    is_host(host)
        && parts.all(|component| {
            !component.is_empty()
                && component.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        })
}
