//! Validation of an `ImagePolicy` spec, including the guard against Kyverno `{{ }}` injection.
//! Pure; returns every broken rule with its field path.

use super::{
    Errors, ValidationErrors, check_entries, check_length, check_no_kyverno_expression,
    is_dns_subdomain, is_host, is_http_url, is_registry_prefix,
};
use crate::crd::schema::{
    MAX_ATTESTATIONS, MAX_LIST, MAX_NAMESPACES, MAX_PEM, MAX_REGISTRY_PREFIX, MAX_TEXT, MAX_URL,
};
use crate::crd::{ImagePolicy, KeyVerification, KeylessVerification, SignatureRule};

/// Longest rule message (the CRD's `maxLength`).
pub const MAX_MESSAGE_LENGTH: usize = 512;
/// Longest suffix of a generated Kyverno policy's name: `-disallow-latest-tag`, `-restrict-registries`
/// (`render::policy` checks that every rule slug fits).
pub const LONGEST_POLICY_SUFFIX: usize = "-disallow-latest-tag".len();
/// Longest ImagePolicy name: its policies are named `<name>-<rule>`, and Kyverno refuses policy names
/// longer than 63 characters (the name is a label value of its reports).
pub const MAX_IMAGE_POLICY_NAME: usize = 63 - LONGEST_POLICY_SUFFIX;

/// Validate an ImagePolicy; `Err` lists every broken rule.
pub fn image_policy(policy: &ImagePolicy) -> Result<(), ValidationErrors> {
    let spec = &policy.spec;
    let rules = &spec.rules;
    let mut errors = Errors::default();
    match policy.metadata.name.as_deref() {
        None | Some("") => errors.add("metadata.name", "required"),
        // The name is also the `app.kubernetes.io/instance` label value of every generated policy.
        Some(name) => {
            errors.check(
                is_dns_subdomain(name),
                "metadata.name",
                "must be lowercase letters, digits, '-' and '.'",
            );
            if name.len() > MAX_IMAGE_POLICY_NAME {
                errors.add(
                    "metadata.name",
                    format!("must be at most {MAX_IMAGE_POLICY_NAME} characters: its Kyverno policies are named <name>-<rule> (e.g. <name>-restrict-registries), and Kyverno refuses policy names over 63 characters"),
                );
            }
        }
    }
    if let Some(reference) = &spec.registry_ref {
        errors.namespace_name(&reference.namespace, "spec.registryRef.namespace");
        errors.required(&reference.name, "spec.registryRef.name");
    }
    check_entries(
        &mut errors,
        "spec.allowedRegistries",
        spec.allowed_registries.len(),
        MAX_LIST,
    );
    for (i, registry) in spec.allowed_registries.iter().enumerate() {
        let field = format!("spec.allowedRegistries[{i}]");
        check_length(&mut errors, &field, registry, MAX_REGISTRY_PREFIX);
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
        if let Some(list) = list {
            check_entries(&mut errors, name, list.len(), MAX_NAMESPACES);
        }
        for (i, namespace) in list.into_iter().flatten().enumerate() {
            errors.namespace_name(namespace, &format!("{name}[{i}]"));
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
        check_entries(
            &mut errors,
            "spec.rules.requireSignatures.imageReferences",
            signatures.image_references.len(),
            MAX_LIST,
        );
        for (i, reference) in signatures.image_references.iter().enumerate() {
            let field = format!("spec.rules.requireSignatures.imageReferences[{i}]");
            check_length(&mut errors, &field, reference, MAX_TEXT);
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
        transparency_log(&mut errors, signatures);
    }
    check_entries(
        &mut errors,
        "spec.rules.attestations",
        rules.attestations.len(),
        MAX_ATTESTATIONS,
    );
    for (i, attestation) in rules.attestations.iter().enumerate() {
        let field = format!("spec.rules.attestations[{i}]");
        check_length(
            &mut errors,
            &format!("{field}.predicateType"),
            &attestation.predicate_type,
            MAX_TEXT,
        );
        errors.required(
            &attestation.predicate_type,
            &format!("{field}.predicateType"),
        );
        check_no_kyverno_expression(
            &mut errors,
            &format!("{field}.predicateType"),
            &attestation.predicate_type,
        );
        if let Some(pattern) = &attestation.builder_id_pattern {
            check_length(
                &mut errors,
                &format!("{field}.builderIdPattern"),
                pattern,
                MAX_TEXT,
            );
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
        check_length(errors, &format!("{field}.publicKey"), pem, MAX_PEM);
        errors.check(
            pem.contains("-----BEGIN PUBLIC KEY-----"),
            &format!("{field}.publicKey"),
            "must be a PEM public key (-----BEGIN PUBLIC KEY-----)",
        );
        check_no_kyverno_expression(errors, &format!("{field}.publicKey"), pem);
    }
    if let Some(secret) = &keys.secret_ref {
        errors.secret_name(&secret.name, &format!("{field}.secretRef.name"));
        errors.namespace_name(&secret.namespace, &format!("{field}.secretRef.namespace"));
    }
}

fn transparency_log(errors: &mut Errors, signatures: &SignatureRule) {
    let field = "spec.rules.requireSignatures.transparencyLog";
    let Some(tlog) = &signatures.transparency_log else {
        return;
    };
    let Some(url) = &tlog.rekor_url else {
        return;
    };
    let url_field = format!("{field}.rekorURL");
    errors.check(
        !tlog.ignore_tlog,
        field,
        "rekorURL is unused with ignoreTlog: true; set one of them",
    );
    errors.check(
        url.starts_with("https://") && is_http_url(url),
        &url_field,
        "must be an https:// URL, e.g. https://rekor.internal.example",
    );
    check_length(errors, &url_field, url, MAX_URL);
    check_no_kyverno_expression(errors, &url_field, url);
    errors.check(
        signatures
            .keyless
            .as_ref()
            .is_none_or(|k| k.rekor_url.is_none()),
        "spec.rules.requireSignatures",
        "set the Rekor URL once, in transparencyLog.rekorURL or keyless.rekorURL",
    );
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
            let max = if name.starts_with("subject") {
                MAX_TEXT
            } else {
                MAX_URL
            };
            check_length(errors, &format!("{field}.{name}"), text, max);
            check_no_kyverno_expression(errors, &format!("{field}.{name}"), text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> ImagePolicy {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy",
            "metadata": {"name": name}, "spec": {"rules": {"disallowLatestTag": {}}}
        }))
        .expect("policy")
    }

    #[test]
    fn name_leaves_room_for_the_longest_policy_name() {
        assert_eq!(MAX_IMAGE_POLICY_NAME, 43);
        let longest = "p".repeat(MAX_IMAGE_POLICY_NAME);
        assert!(image_policy(&named(&longest)).is_ok());
        assert_eq!(format!("{longest}-restrict-registries").len(), 63);
        let errors = image_policy(&named(&format!("{longest}p"))).expect_err("too long");
        assert!(
            errors
                .to_string()
                .starts_with("metadata.name: must be at most 43 characters"),
            "{errors}"
        );
        assert!(image_policy(&named("AI")).is_err());
    }

    fn with_signatures(signatures: serde_json::Value) -> ImagePolicy {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy",
            "metadata": {"name": "p"}, "spec": {"rules": {"requireSignatures": signatures}}
        }))
        .expect("policy")
    }

    #[test]
    fn transparency_log_options_are_checked() {
        let key = serde_json::json!({"publicKey": "-----BEGIN PUBLIC KEY-----\nX\n-----END PUBLIC KEY-----\n"});
        let keyless = serde_json::json!({"issuer": "https://issuer.example", "subject": "ci",
            "rekorURL": "https://rekor.example"});
        let ok = [
            serde_json::json!({"keys": key, "transparencyLog": {"ignoreTlog": true, "ignoreSCT": true}}),
            serde_json::json!({"keys": key, "transparencyLog": {"rekorURL": "https://rekor.internal"}}),
        ];
        for signatures in ok {
            assert!(
                image_policy(&with_signatures(signatures.clone())).is_ok(),
                "{signatures}"
            );
        }
        let bad = [
            (
                serde_json::json!({"keys": key, "transparencyLog": {"rekorURL": "http://rekor.internal"}}),
                "transparencyLog.rekorURL: must be an https:// URL",
            ),
            (
                serde_json::json!({"keys": key, "transparencyLog": {"ignoreTlog": true, "rekorURL": "https://r.example"}}),
                "rekorURL is unused with ignoreTlog: true",
            ),
            (
                serde_json::json!({"keyless": keyless, "transparencyLog": {"rekorURL": "https://r.example"}}),
                "set the Rekor URL once",
            ),
            (
                serde_json::json!({"keys": key, "transparencyLog": {"rekorURL": "https://{{x}}"}}),
                "transparencyLog.rekorURL",
            ),
        ];
        for (signatures, message) in bad {
            let errors = image_policy(&with_signatures(signatures.clone())).expect_err("invalid");
            assert!(
                errors.to_string().contains(message),
                "{signatures}: {errors}"
            );
        }
    }
}
