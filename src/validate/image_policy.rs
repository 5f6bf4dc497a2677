//! Validation of an `ImagePolicy` spec, including the guard against Kyverno `{{ }}` injection.
//! Pure; returns every broken rule with its field path.

use super::{
    Errors, ValidationErrors, check_no_kyverno_expression, is_dns_label, is_dns_subdomain, is_host,
    is_http_url, is_registry_prefix,
};
use crate::crd::{ImagePolicy, KeyVerification, KeylessVerification};

/// Longest rule message (the CRD's `maxLength`).
pub const MAX_MESSAGE_LENGTH: usize = 512;

/// Validate an ImagePolicy; `Err` lists every broken rule.
pub fn image_policy(policy: &ImagePolicy) -> Result<(), ValidationErrors> {
    let spec = &policy.spec;
    let rules = &spec.rules;
    let mut errors = Errors::default();
    match policy.metadata.name.as_deref() {
        None | Some("") => errors.add("metadata.name", "required"),
        // The name is also the `app.kubernetes.io/instance` label value of every generated policy.
        Some(name) => errors.check(
            is_dns_subdomain(name) && name.len() <= 63,
            "metadata.name",
            "must be lowercase letters, digits, '-' and '.', at most 63 characters",
        ),
    }
    if let Some(reference) = &spec.registry_ref {
        errors.check(
            is_dns_label(&reference.namespace),
            "spec.registryRef.namespace",
            "must be a namespace name",
        );
        errors.check(
            !reference.name.is_empty(),
            "spec.registryRef.name",
            "required",
        );
    }
    for (i, registry) in spec.allowed_registries.iter().enumerate() {
        let field = format!("spec.allowedRegistries[{i}]");
        let host = registry.split('/').next().unwrap_or_default();
        errors.check(
            is_host(host) && !registry.contains("://") && !registry.contains(char::is_whitespace),
            &field,
            "must be a registry host with optional port and path, e.g. ghcr.io/my-org (no scheme, no wildcard)",
        );
        errors.check(
            !is_host(host) || is_registry_prefix(registry.trim_end_matches('/')),
            &field,
            "path may only hold lowercase letters, digits, '.', '_', '-' and '/' (no wildcard or pattern operator)",
        );
        check_no_kyverno_expression(&mut errors, &field, registry);
    }
    let namespace_lists = [
        ("spec.namespaces", Some(&spec.namespaces)),
        ("spec.excludeNamespaces", spec.exclude_namespaces.as_ref()),
    ];
    for (name, list) in namespace_lists {
        for (i, namespace) in list.into_iter().flatten().enumerate() {
            errors.check(
                is_dns_label(namespace),
                &format!("{name}[{i}]"),
                "must be a namespace name",
            );
        }
    }
    errors.check(
        rules.restrict_registries.is_none()
            || spec.registry_ref.is_some()
            || !spec.allowed_registries.is_empty(),
        "spec.rules.restrictRegistries",
        "needs spec.registryRef or spec.allowedRegistries",
    );
    errors.check(
        rules.attestations.is_empty() || rules.require_signatures.is_some(),
        "spec.rules.attestations",
        "needs spec.rules.requireSignatures, whose keys or keyless identity verify the attestations",
    );
    for (field, rule) in [
        ("disallowLatestTag", &rules.disallow_latest_tag),
        ("restrictRegistries", &rules.restrict_registries),
    ] {
        if let Some(message) = rule.as_ref().and_then(|r| r.message.as_deref()) {
            let field = format!("spec.rules.{field}.message");
            check_no_kyverno_expression(&mut errors, &field, message);
            errors.check(
                message.chars().count() <= MAX_MESSAGE_LENGTH,
                &field,
                "must be at most 512 characters",
            );
        }
    }
    if let Some(signatures) = &rules.require_signatures {
        errors.check(
            signatures.keys.is_some() != signatures.keyless.is_some(),
            "spec.rules.requireSignatures",
            "set exactly one of keys or keyless",
        );
        for (i, reference) in signatures.image_references.iter().enumerate() {
            let field = format!("spec.rules.requireSignatures.imageReferences[{i}]");
            errors.check(
                !reference.trim().is_empty(),
                &field,
                "must not be empty; omit imageReferences to sign-check every allowed image",
            );
            check_no_kyverno_expression(&mut errors, &field, reference);
        }
        if let Some(keys) = &signatures.keys {
            key_verification(&mut errors, keys);
        }
        if let Some(keyless) = &signatures.keyless {
            keyless_verification(&mut errors, keyless);
        }
    }
    for (i, attestation) in rules.attestations.iter().enumerate() {
        let field = format!("spec.rules.attestations[{i}]");
        errors.check(
            !attestation.predicate_type.is_empty(),
            &format!("{field}.predicateType"),
            "required",
        );
        check_no_kyverno_expression(
            &mut errors,
            &format!("{field}.predicateType"),
            &attestation.predicate_type,
        );
        if let Some(pattern) = &attestation.builder_id_pattern {
            check_no_kyverno_expression(&mut errors, &format!("{field}.builderIdPattern"), pattern);
        }
        errors.check(
            attestation.max_age_hours != Some(0),
            &format!("{field}.maxAgeHours"),
            "must be at least 1",
        );
    }
    errors.finish()
}

fn key_verification(errors: &mut Errors, keys: &KeyVerification) {
    let field = "spec.rules.requireSignatures.keys";
    errors.check(
        keys.public_key.is_some() != keys.secret_ref.is_some(),
        field,
        "set exactly one of publicKey or secretRef",
    );
    if let Some(pem) = &keys.public_key {
        errors.check(
            pem.contains("-----BEGIN PUBLIC KEY-----"),
            &format!("{field}.publicKey"),
            "must be a PEM public key (-----BEGIN PUBLIC KEY-----)",
        );
        check_no_kyverno_expression(errors, &format!("{field}.publicKey"), pem);
    }
    if let Some(secret) = &keys.secret_ref {
        errors.check(
            is_dns_subdomain(&secret.name),
            &format!("{field}.secretRef.name"),
            "must be a Secret name",
        );
        errors.check(
            is_dns_label(&secret.namespace),
            &format!("{field}.secretRef.namespace"),
            "must be a namespace name",
        );
    }
}

fn keyless_verification(errors: &mut Errors, keyless: &KeylessVerification) {
    let field = "spec.rules.requireSignatures.keyless";
    if keyless.issuer.is_empty() {
        errors.add(format!("{field}.issuer"), "required");
    } else {
        errors.check(
            is_http_url(&keyless.issuer),
            &format!("{field}.issuer"),
            "must be the OIDC issuer URL, e.g. https://token.actions.githubusercontent.com",
        );
    }
    errors.check(
        keyless.subject.is_some() != keyless.subject_reg_exp.is_some(),
        field,
        "set exactly one of subject or subjectRegExp",
    );
    for (name, url) in [
        ("rekorURL", &keyless.rekor_url),
        ("ctlogURL", &keyless.ctlog_url),
    ] {
        if let Some(url) = url {
            errors.check(
                is_http_url(url),
                &format!("{field}.{name}"),
                "must start with https:// or http://",
            );
        }
    }
    let texts = [
        ("issuer", Some(&keyless.issuer)),
        ("subject", keyless.subject.as_ref()),
        ("subjectRegExp", keyless.subject_reg_exp.as_ref()),
        ("rekorURL", keyless.rekor_url.as_ref()),
        ("ctlogURL", keyless.ctlog_url.as_ref()),
    ];
    for (name, text) in texts {
        if let Some(text) = text {
            check_no_kyverno_expression(errors, &format!("{field}.{name}"), text);
        }
    }
}
