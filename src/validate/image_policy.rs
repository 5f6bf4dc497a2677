//! Validation of an `ImagePolicy` spec, including the guard against Kyverno `{{ }}` injection.
//! Pure; returns every broken rule with its field path.

use super::{Errors, ValidationErrors, check_no_kyverno_expression, is_dns_label, is_host};
use crate::crd::ImagePolicy;

/// Validate an ImagePolicy; `Err` lists every broken rule.
pub fn image_policy(policy: &ImagePolicy) -> Result<(), ValidationErrors> {
    let spec = &policy.spec;
    let rules = &spec.rules;
    let mut errors = Errors::default();
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
            check_no_kyverno_expression(
                &mut errors,
                &format!("spec.rules.{field}.message"),
                message,
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
            check_no_kyverno_expression(
                &mut errors,
                &format!("spec.rules.requireSignatures.imageReferences[{i}]"),
                reference,
            );
        }
        if let Some(keys) = &signatures.keys {
            errors.check(
                keys.public_key.is_some() != keys.secret_ref.is_some(),
                "spec.rules.requireSignatures.keys",
                "set exactly one of publicKey or secretRef",
            );
            if let Some(pem) = &keys.public_key {
                errors.check(
                    pem.contains("-----BEGIN PUBLIC KEY-----"),
                    "spec.rules.requireSignatures.keys.publicKey",
                    "must be a PEM public key (-----BEGIN PUBLIC KEY-----)",
                );
                check_no_kyverno_expression(
                    &mut errors,
                    "spec.rules.requireSignatures.keys.publicKey",
                    pem,
                );
            }
        }
        if let Some(keyless) = &signatures.keyless {
            let field = "spec.rules.requireSignatures.keyless";
            errors.check(
                !keyless.issuer.is_empty(),
                &format!("{field}.issuer"),
                "required",
            );
            errors.check(
                keyless.subject.is_some() != keyless.subject_reg_exp.is_some(),
                field,
                "set exactly one of subject or subjectRegExp",
            );
            let texts = [
                ("issuer", Some(&keyless.issuer)),
                ("subject", keyless.subject.as_ref()),
                ("subjectRegExp", keyless.subject_reg_exp.as_ref()),
                ("rekorURL", keyless.rekor_url.as_ref()),
                ("ctlogURL", keyless.ctlog_url.as_ref()),
            ];
            for (name, text) in texts {
                if let Some(text) = text {
                    check_no_kyverno_expression(&mut errors, &format!("{field}.{name}"), text);
                }
            }
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
