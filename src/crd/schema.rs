//! What the CRD schema states beyond the derive: the bounds (`maxLength`, `maxItems`) that keep every
//! CEL rule cheap, the regular expressions the CEL rules and `crate::validate` share, CEL rule
//! builders whose messages name the field, and hand-written schemas for list items, quantities and
//! container resources. Pure data; `crate::validate` checks the same bounds for `render`.

use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements};
use kube::core::Rule;
use schemars::{Schema, SchemaGenerator};
use serde_json::{Value, json};

/// Longest DNS-1123 label (namespaces, Harbor projects).
pub const MAX_DNS_LABEL: usize = 63;
/// Longest DNS-1123 subdomain (Secrets, StorageClasses, IngressClasses, hosts without port).
pub const MAX_DNS_SUBDOMAIN: usize = 253;
/// Longest `host[:port]`: a DNS subdomain, a colon and five digits.
pub const MAX_HOST: usize = MAX_DNS_SUBDOMAIN + 6;
/// Longest URL (registry mirrors, S3 endpoints, OIDC issuers, Rekor and CT logs).
pub const MAX_URL: usize = 2048;
/// Longest entry of `spec.allowedRegistries` (`host[:port]/path`); 64 of them keep the rule's cost
/// under a tenth of the API server's budget.
pub const MAX_REGISTRY_PREFIX: usize = 512;
/// Longest image reference (a 255-character name plus host, tag and a sha512 digest fit).
pub const MAX_IMAGE: usize = 1024;
/// Longest free text a rule reads: subjects, predicate types, patterns, image globs.
pub const MAX_TEXT: usize = 1024;
/// Longest inline PEM public key block (several keys fit).
pub const MAX_PEM: usize = 16384;
/// Longest Harbor version text (`v` and three numbers).
pub const MAX_VERSION: usize = 64;
/// Longest quantity text (`50Gi`, `1.5e3`).
pub const MAX_QUANTITY: usize = 64;
/// Most entries of a list of registries, pull secrets or image globs.
pub const MAX_LIST: usize = 64;
/// Most namespaces in `spec.namespaces` or `spec.excludeNamespaces`.
pub const MAX_NAMESPACES: usize = 256;
/// Most attestations of an ImagePolicy (each becomes a Kyverno rule or policy).
pub const MAX_ATTESTATIONS: usize = 16;
/// Most resources in a container's `limits` or `requests`.
pub const MAX_RESOURCES: usize = 32;

/// A DNS-1123 label (as `crate::validate::is_dns_label`).
pub const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";
/// A DNS-1123 subdomain whose labels are DNS-1123 labels (as `crate::validate::is_dns_subdomain`).
pub const DNS_SUBDOMAIN: &str =
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$";
/// `name[:port]` with a port of 1 to 65535 in at most five digits (as `crate::validate::is_host`).
pub const HOST: &str = concat!(
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*",
    r"(:(0{0,4}[1-9]|0{0,3}[1-9][0-9]|0{0,2}[1-9][0-9]{2}|0?[1-9][0-9]{3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?$"
);
/// `host[:port][/path]`, path components of image-reference characters, trailing slashes allowed
/// (as `crate::validate::image_policy` checks `spec.allowedRegistries`).
pub const REGISTRY_PREFIX: &str = concat!(
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*",
    r"(:(0{0,4}[1-9]|0{0,3}[1-9][0-9]|0{0,2}[1-9][0-9]{2}|0?[1-9][0-9]{3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"(/[a-z0-9._-]+)*/*$"
);
/// `http://` or `https://`, then no slash first and no whitespace (as `crate::validate::is_http_url`).
pub const HTTP_URL: &str = r"^https?://[^/\s][^\s]*$";
/// An https URL (a private Rekor).
pub const HTTPS_URL: &str = r"^https://[^/\s][^\s]*$";
/// distribution's reference grammar as `oci_spec` parses image references, with the digest
/// algorithms and lengths it accepts; only its limit of 255 characters on the repository path is
/// left to the operator.
pub const IMAGE_REFERENCE: &str = r"^((?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?/)?[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?)(?::([\w][\w.-]{0,127}))?(?:@(sha256:[[:xdigit:]]{64}|sha384:[[:xdigit:]]{96}|sha512:[[:xdigit:]]{128}))?$";

/// `text` as a single-quoted CEL string literal.
pub fn cel_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn rule(expression: impl Into<String>, message: &str) -> Rule {
    Rule::new(expression).message(message)
}

/// `self` matches `pattern`; the message is `<field>: must be <what>`.
pub fn matches(field: &str, pattern: &str, what: &str) -> Rule {
    rule(
        format!("self.matches({})", cel_string(pattern)),
        &format!("{field}: must be {what}"),
    )
}

/// A list item matches `pattern`; the message is `<list>: every entry must be <what>` (the server
/// puts the entry's index in front).
fn each_matches(list: &str, pattern: &str, what: &str) -> Rule {
    rule(
        format!("self.matches({})", cel_string(pattern)),
        &format!("{list}: every entry must be {what}"),
    )
}

/// `self` is empty or a DNS-1123 subdomain.
pub fn empty_or_dns_subdomain(field: &str, what: &str) -> Rule {
    rule(
        format!("self == '' || self.matches({})", cel_string(DNS_SUBDOMAIN)),
        &format!("{field}: must be {what} (lowercase letters, digits, '-' and '.')"),
    )
}

/// `self` is an image reference.
pub fn image_reference(field: &str) -> Rule {
    matches(
        field,
        IMAGE_REFERENCE,
        "an image reference such as docker.io/goharbor/harbor-core:v2.15.2 (lowercase repository, no spaces)",
    )
}

/// `self` is an `http(s)://` URL.
pub fn http_url(field: &str) -> Rule {
    matches(field, HTTP_URL, "a URL starting with https:// or http://")
}

/// `self` holds no Kyverno variable syntax (`{{ }}`): user text must never become an expression.
pub fn no_kyverno_expression(field: &str) -> Rule {
    rule(
        "!self.contains('{{') && !self.contains('}}')",
        &format!(
            "{field}: must not contain '{{{{' or '}}}}' (Kyverno variable syntax); use plain text"
        ),
    )
}

/// A string schema (`type: string`) with `maxLength` and CEL rules, for list items.
fn string_item(max_length: usize, rules: &[Rule]) -> Value {
    let mut item = json!({"type": "string", "maxLength": max_length});
    if !rules.is_empty() {
        item["x-kubernetes-validations"] = serde_json::to_value(rules).expect("rules serialize");
    }
    item
}

fn list(items: Value, max_items: usize, optional: bool) -> Schema {
    let mut schema = json!({"type": "array", "maxItems": max_items, "items": items});
    if optional {
        schema["nullable"] = json!(true);
    }
    Schema::try_from(schema).expect("object schema")
}

fn namespace_item(field: &str) -> Value {
    string_item(
        MAX_DNS_LABEL,
        &[each_matches(
            field,
            DNS_LABEL,
            "a namespace name (lowercase letters, digits and '-')",
        )],
    )
}

/// `spec.namespaces`: at most [`MAX_NAMESPACES`] namespace names.
pub fn namespaces(_: &mut SchemaGenerator) -> Schema {
    list(namespace_item("spec.namespaces"), MAX_NAMESPACES, false)
}

/// `spec.excludeNamespaces` (optional): at most [`MAX_NAMESPACES`] namespace names.
pub fn exclude_namespaces(_: &mut SchemaGenerator) -> Schema {
    list(
        namespace_item("spec.excludeNamespaces"),
        MAX_NAMESPACES,
        true,
    )
}

/// `spec.allowedRegistries`: registry prefixes without scheme or wildcard.
pub fn allowed_registries(_: &mut SchemaGenerator) -> Schema {
    let item = string_item(
        MAX_REGISTRY_PREFIX,
        &[each_matches(
            "spec.allowedRegistries",
            REGISTRY_PREFIX,
            "a registry host with optional port and path, e.g. ghcr.io/my-org (no scheme, no wildcard, lowercase path)",
        )],
    );
    list(item, MAX_LIST, false)
}

/// `spec.rules.requireSignatures.imageReferences`: non-blank Kyverno image globs.
pub fn image_references(_: &mut SchemaGenerator) -> Schema {
    let field = "spec.rules.requireSignatures.imageReferences";
    let item = string_item(
        MAX_TEXT,
        &[
            rule(
                format!("!self.matches({})", cel_string(r"^\s*$")),
                &format!(
                    "{field}: every entry must be non-empty; omit imageReferences to sign-check every allowed image"
                ),
            ),
            no_kyverno_expression(field),
        ],
    );
    list(item, MAX_LIST, false)
}

/// `spec.harbor.imagePullSecrets`: Secret names.
pub fn image_pull_secrets(generator: &mut SchemaGenerator) -> Schema {
    let mut item = generator.subschema_for::<LocalObjectReference>().to_value();
    item["properties"]["name"]["maxLength"] = json!(MAX_DNS_SUBDOMAIN);
    item["properties"]["name"]["x-kubernetes-validations"] = json!([rule(
        format!("self.matches({})", cel_string(DNS_SUBDOMAIN)),
        "spec.harbor.imagePullSecrets: every name must be a Secret name (lowercase letters, digits, '-' and '.')",
    )]);
    list(item, MAX_LIST, false)
}

/// The CEL rule of a quantity: an integer or a quantity string, above zero or not below it.
fn quantity_rule(field: &str, positive: bool) -> Rule {
    let (int, quantity, what) = if positive {
        (
            "self > 0",
            "quantity(self).isGreaterThan(quantity('0'))",
            "a quantity greater than zero such as 10Gi or 512Mi",
        )
    } else {
        (
            "self >= 0",
            "!quantity(self).isLessThan(quantity('0'))",
            "a non-negative quantity such as 512Mi or 500m",
        )
    };
    rule(
        format!(
            "type(self) == int ? {int} : type(self) == string && isQuantity(self) && {quantity}"
        ),
        &format!("{field}: must be {what} (binary units Ki, Mi, Gi, Ti; GB and gi are not units)"),
    )
}

fn quantity(field: &str, positive: bool) -> Value {
    json!({
        "x-kubernetes-int-or-string": true,
        "maxLength": MAX_QUANTITY,
        "x-kubernetes-validations": [quantity_rule(field, positive)],
    })
}

/// A volume's `size`: a positive quantity.
pub fn volume_size(_: &mut SchemaGenerator) -> Schema {
    Schema::try_from(quantity("size", true)).expect("object schema")
}

/// Optional container resources: Kubernetes' `ResourceRequirements` whose `limits` and `requests`
/// hold at most [`MAX_RESOURCES`] non-negative quantities.
pub fn resources(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<ResourceRequirements>().to_value();
    for list in ["limits", "requests"] {
        let map = &mut schema["properties"][list];
        map["maxProperties"] = json!(MAX_RESOURCES);
        let description = map["additionalProperties"]["description"].take();
        map["additionalProperties"] = quantity(list, false);
        if !description.is_null() {
            map["additionalProperties"]["description"] = description;
        }
    }
    schema["nullable"] = json!(true);
    Schema::try_from(schema).expect("object schema")
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
