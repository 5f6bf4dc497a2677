//! Validation of a `Registry` spec (mirrors the CRD's CEL rules; adds what CEL cannot check).
//! Pure; returns every broken rule with its field path.

use super::{Errors, ValidationErrors, check_image_reference, is_dns_label, is_host};
use crate::crd::{HarborSpec, RedisMode, Registry, RegistryMode};

/// Validate a Registry; `Err` lists every broken rule.
pub fn registry(registry: &Registry) -> Result<(), ValidationErrors> {
    let spec = &registry.spec;
    let mut errors = Errors::default();
    match &spec.host {
        Some(host) => errors.check(
            is_host(host),
            "spec.host",
            "must be a lowercase DNS name with an optional :port",
        ),
        None => errors.check(
            spec.mode != RegistryMode::Harbor,
            "spec.host",
            "required when spec.mode is Harbor",
        ),
    }
    if let Some(k3d) = &spec.k3d {
        if let Some(image) = &k3d.image {
            check_image_reference(&mut errors, "spec.k3d.image", image);
        }
        if let Some(cache) = &k3d.cache {
            errors.check(
                cache.remote_url.starts_with("https://") || cache.remote_url.starts_with("http://"),
                "spec.k3d.cache.remoteURL",
                "must start with https:// or http://",
            );
            if let Some(credentials) = &cache.credentials_secret_ref {
                errors.check(
                    is_dns_subdomain(&credentials.name),
                    "spec.k3d.cache.credentialsSecretRef.name",
                    "must be a Secret name",
                );
            }
        }
    }
    if let Some(harbor) = &spec.harbor {
        harbor_spec(&mut errors, harbor);
    }
    if let Some(migration) = &spec.migration {
        errors.check(
            (1..=64).contains(&migration.concurrency),
            "spec.migration.concurrency",
            "must be between 1 and 64",
        );
        errors.check(
            is_dns_label(&migration.destination_project),
            "spec.migration.destinationProject",
            "must be a lowercase Harbor project name",
        );
    }
    errors.finish()
}

fn is_dns_subdomain(value: &str) -> bool {
    !value.is_empty() && value.len() <= 253 && value.split('.').all(is_dns_label)
}

/// `(major, minor, patch)` of `2.15.0` or `v2.15.0`.
pub fn parse_version(version: &str) -> Option<(u32, u32, u32)> {
    let mut parts = version
        .strip_prefix('v')
        .unwrap_or(version)
        .split('.')
        .map(str::parse::<u32>);
    let parsed = (
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next()?.ok()?,
    );
    parts.next().is_none().then_some(parsed)
}

fn harbor_spec(errors: &mut Errors, harbor: &HarborSpec) {
    if let Some(version) = &harbor.version {
        match parse_version(version) {
            None => errors.add("spec.harbor.version", format!("{version:?} is not a release version like 2.15.0")),
            Some(v) if v < (2, 9, 0) => errors.add(
                "spec.harbor.version",
                format!("Harbor {version} is not supported; use 2.9.0 or newer (Notary and ChartMuseum era releases are out of support)"),
            ),
            Some(_) => {}
        }
    }
    if harbor.notary.is_some() {
        errors.add("spec.harbor.notary", "Notary was removed in Harbor 2.9; sign images with cosign and verify them with an ImagePolicy");
    }
    if harbor.chartmuseum.is_some() {
        errors.add(
            "spec.harbor.chartmuseum",
            "ChartMuseum was removed in Harbor 2.8; Harbor stores Helm charts as OCI artifacts",
        );
    }
    if let Some(images) = &harbor.images {
        let named = [
            ("core", &images.core),
            ("portal", &images.portal),
            ("jobservice", &images.jobservice),
            ("registry", &images.registry),
            ("registryctl", &images.registryctl),
            ("trivy", &images.trivy),
            ("redis", &images.redis),
            ("exporter", &images.exporter),
        ];
        for (component, image) in named {
            if let Some(image) = image {
                check_image_reference(errors, &format!("spec.harbor.images.{component}"), image);
            }
        }
    }
    if let Some(database) = &harbor.database {
        errors.check(
            database.managed.is_some() != database.external.is_some(),
            "spec.harbor.database",
            "set exactly one of managed or external",
        );
        if let Some(managed) = &database.managed {
            errors.check(
                (1..=9).contains(&managed.instances),
                "spec.harbor.database.managed.instances",
                "must be between 1 and 9",
            );
        }
        if let Some(external) = &database.external {
            errors.check(
                !external.host.is_empty(),
                "spec.harbor.database.external.host",
                "required",
            );
            errors.check(
                !external.username.is_empty(),
                "spec.harbor.database.external.username",
                "required",
            );
            errors.check(
                (1..=65535).contains(&external.port),
                "spec.harbor.database.external.port",
                "must be between 1 and 65535",
            );
            errors.check(
                !external.database.is_empty(),
                "spec.harbor.database.external.database",
                "required",
            );
            errors.check(
                !external.password_secret_ref.name.is_empty(),
                "spec.harbor.database.external.passwordSecretRef.name",
                "required",
            );
        }
    }
    if let Some(redis) = &harbor.redis {
        errors.check(
            !(redis.internal.is_some() && redis.external.is_some()),
            "spec.harbor.redis",
            "set only one of internal or external",
        );
        if let Some(external) = &redis.external {
            errors.check(
                !external.addr.is_empty(),
                "spec.harbor.redis.external.addr",
                "required",
            );
            errors.check(
                external.mode != RedisMode::Cluster,
                "spec.harbor.redis.external.mode",
                "Harbor does not support Redis Cluster; use Standalone or Sentinel",
            );
            errors.check(
                external.mode != RedisMode::Sentinel
                    || external
                        .sentinel_master_set
                        .as_deref()
                        .is_some_and(|s| !s.is_empty()),
                "spec.harbor.redis.external.sentinelMasterSet",
                "required when mode is Sentinel",
            );
        }
    }
    if let Some(storage) = &harbor.storage {
        errors.check(
            !(storage.pvc.is_some() && storage.s3.is_some()),
            "spec.harbor.storage",
            "set only one of pvc or s3",
        );
        if let Some(s3) = &storage.s3 {
            errors.check(
                (3..=63).contains(&s3.bucket.len()) && s3.bucket.split('.').all(is_dns_label),
                "spec.harbor.storage.s3.bucket",
                "required: a bucket name of 3 to 63 lowercase letters, digits, '-' or '.'",
            );
            errors.check(
                !s3.region.is_empty(),
                "spec.harbor.storage.s3.region",
                "required",
            );
            if let Some(endpoint) = &s3.endpoint {
                errors.check(
                    endpoint.starts_with("http://") || endpoint.starts_with("https://"),
                    "spec.harbor.storage.s3.endpoint",
                    "must start with http:// or https://",
                );
            }
            errors.check(
                is_dns_subdomain(&s3.credentials_secret_ref.name),
                "spec.harbor.storage.s3.credentialsSecretRef.name",
                "must be a Secret name",
            );
        }
    }
    if let Some(expose) = &harbor.expose {
        errors.check(
            is_dns_subdomain(&expose.ingress_class_name),
            "spec.harbor.expose.ingressClassName",
            "must be an IngressClass name",
        );
        if let Some(tls) = &expose.tls_secret_name {
            errors.check(
                is_dns_subdomain(tls),
                "spec.harbor.expose.tlsSecretName",
                "must be a Secret name",
            );
        }
    }
    if let Some(admin) = &harbor.admin_password_secret_ref {
        errors.check(
            is_dns_subdomain(&admin.name),
            "spec.harbor.adminPasswordSecretRef.name",
            "must be a Secret name",
        );
    }
}
