//! Validation of a `Registry` spec (mirrors the CRD's CEL rules; adds what CEL cannot check).
//! Pure; returns every broken rule with its field path.

use super::quantity::{check_resources, check_volume};
use super::{
    Errors, ValidationErrors, check_entries, check_image_reference, check_length, is_dns_label,
    is_dns_subdomain, is_host, is_http_url,
};
use crate::crd::schema::{MAX_DNS_SUBDOMAIN, MAX_IMAGE, MAX_LIST, MAX_URL};
use crate::crd::{HarborSpec, MigrationSpec, RedisMode, Registry, RegistryMode, SslMode};

/// Longest Registry name in Harbor mode: `<name>-harbor-trivy-<10-char revision hash>` is a label value (≤ 63).
pub const MAX_HARBOR_REGISTRY_NAME: usize = 39;
/// Suffix of the hosted K3d registry's objects; its Service `<name>-distribution` is a DNS-1035 label.
const K3D_SUFFIX: &str = "-distribution";
/// Longest Registry name in K3d mode: the Service `<name>-distribution` must be at most 63 characters.
pub const MAX_K3D_REGISTRY_NAME: usize = super::metadata::DNS1123_LABEL_MAX - K3D_SUFFIX.len();

/// NodePorts the API server allocates by default (`--service-node-port-range`).
pub const NODE_PORTS: std::ops::RangeInclusive<i32> = 30000..=32767;

/// Whether `host[:port]` is a name only cluster DNS resolves (`*.svc`, `*.cluster.local`): pods can
/// use it, the nodes' container runtimes cannot.
pub fn is_cluster_dns_name(host: &str) -> bool {
    let name = host.split(':').next().unwrap_or_default();
    name.ends_with(".svc") || name.ends_with(".cluster.local")
}

/// Validate a Registry; `Err` lists every broken rule.
pub fn registry(registry: &Registry) -> Result<(), ValidationErrors> {
    registry_as(registry, registry.spec.mode, registry.spec.host.as_deref())
}

/// Validate a Registry as it would serve in `mode` at `host` (the spec's own, or those of the mode
/// that still serves during a switch); errors name the spec's fields.
pub fn registry_as(
    registry: &Registry,
    mode: RegistryMode,
    host: Option<&str>,
) -> Result<(), ValidationErrors> {
    let spec = &registry.spec;
    let mut errors = Errors::default();
    check_name(&mut errors, registry.metadata.name.as_deref());
    match host {
        Some(host) => errors.check(
            is_host(host),
            "spec.host",
            "must be a lowercase DNS name with an optional :port",
        ),
        None => errors.check(
            mode != RegistryMode::Harbor,
            "spec.host",
            "required when spec.mode is Harbor",
        ),
    }
    if let Some(k3d) = &spec.k3d {
        if let Some(image) = &k3d.image {
            check_length(&mut errors, "spec.k3d.image", image, MAX_IMAGE);
            check_image_reference(&mut errors, "spec.k3d.image", image);
        }
        if let Some(storage) = &k3d.storage {
            check_volume(&mut errors, "spec.k3d.storage", storage);
        }
        if let Some(resources) = &k3d.resources {
            check_resources(&mut errors, "spec.k3d.resources", resources);
        }
        if let Some(gc) = &k3d.gc {
            errors.check(
                super::database::is_cron(&gc.schedule, 5),
                "spec.k3d.gc.schedule",
                "a CronJob schedule of five fields, e.g. '0 3 * * 0'",
            );
        }
        if let Some(port) = k3d.node_port {
            errors.check(
                NODE_PORTS.contains(&port),
                "spec.k3d.nodePort",
                "must be between 30000 and 32767 (the API server's default NodePort range)",
            );
        }
        if let Some(cache) = &k3d.cache {
            check_length(
                &mut errors,
                "spec.k3d.cache.remoteURL",
                &cache.remote_url,
                MAX_URL,
            );
            errors.check(
                is_http_url(&cache.remote_url),
                "spec.k3d.cache.remoteURL",
                "must start with https:// or http://",
            );
            if let Some(credentials) = &cache.credentials_secret_ref {
                errors.secret_name(
                    &credentials.name,
                    "spec.k3d.cache.credentialsSecretRef.name",
                );
            }
        }
    }
    if let Some(harbor) = &spec.harbor {
        harbor_spec(&mut errors, harbor);
    }
    if mode == RegistryMode::Harbor
        && let Some(host) = host
    {
        errors.check(
            !is_cluster_dns_name(host),
            "spec.host",
            "must not be a cluster DNS name in Harbor mode (the nodes' container runtimes resolve names with the node's resolver, never cluster DNS)",
        );
    }
    let name = registry.metadata.name.as_deref().unwrap_or_default();
    match mode {
        RegistryMode::Harbor if name.len() > MAX_HARBOR_REGISTRY_NAME => errors.add(
            "metadata.name",
            format!("must be at most {MAX_HARBOR_REGISTRY_NAME} characters in Harbor mode: children such as <name>-harbor-jobservice are Services, and StatefulSet revision labels <name>-harbor-trivy-<hash> must stay within 63 characters"),
        ),
        RegistryMode::K3d if name.len() > MAX_K3D_REGISTRY_NAME => errors.add(
            "metadata.name",
            format!("must be at most {MAX_K3D_REGISTRY_NAME} characters in K3d mode (the Service <name>{K3D_SUFFIX} must be a DNS-1035 label of at most 63 characters)"),
        ),
        _ => {}
    }
    if let Some(migration) = &spec.migration {
        migration_spec(&mut errors, migration);
    }
    errors.finish()
}

/// Children are named `<name>-...` and labelled with the name, so it must be a DNS label that starts
/// with a letter (Service names are DNS-1035 labels).
fn check_name(errors: &mut Errors, name: Option<&str>) {
    match name {
        None | Some("") => errors.add("metadata.name", "required"),
        Some(name) => errors.check(
            is_dns_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase()),
            "metadata.name",
            "must be lowercase letters, digits and '-', start with a letter and be at most 63 characters (it names child Services)",
        ),
    }
}

fn migration_spec(errors: &mut Errors, migration: &MigrationSpec) {
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
    for (i, pattern) in migration.repositories.iter().enumerate() {
        let field = format!("spec.migration.repositories[{i}]");
        if pattern.trim().is_empty() {
            errors.add(
                field,
                "must not be empty; omit spec.migration.repositories to copy every repository",
            );
        } else if let Err(e) = globset::Glob::new(pattern) {
            errors.add(
                field,
                format!("{pattern:?} is not a glob pattern ({})", e.kind()),
            );
        }
    }
}

/// A PostgreSQL host: a DNS name, an IPv4 address or a bare IPv6 address (`postgres://` URLs and
/// `host:port` are the usual mistakes).
fn is_database_host(host: &str) -> bool {
    host.parse::<std::net::Ipv6Addr>().is_ok()
        || (host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }))
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
                let field = format!("spec.harbor.images.{component}");
                check_length(errors, &field, image, MAX_IMAGE);
                check_image_reference(errors, &field, image);
            }
        }
    }
    check_entries(
        errors,
        "spec.harbor.imagePullSecrets",
        harbor.image_pull_secrets.len(),
        MAX_LIST,
    );
    for (i, secret) in harbor.image_pull_secrets.iter().enumerate() {
        errors.secret_name(
            &secret.name,
            &format!("spec.harbor.imagePullSecrets[{i}].name"),
        );
    }
    if let Some(resources) = &harbor.resources {
        let named = [
            ("core", &resources.core),
            ("portal", &resources.portal),
            ("jobservice", &resources.jobservice),
            ("registry", &resources.registry),
            ("registryctl", &resources.registryctl),
            ("trivy", &resources.trivy),
            ("redis", &resources.redis),
            ("exporter", &resources.exporter),
        ];
        for (component, requirements) in named {
            if let Some(requirements) = requirements {
                check_resources(
                    errors,
                    &format!("spec.harbor.resources.{component}"),
                    requirements,
                );
            }
        }
    }
    let volumes = [
        (
            "spec.harbor.trivy.storage",
            harbor.trivy.as_ref().and_then(|t| t.storage.as_ref()),
        ),
        (
            "spec.harbor.jobservice.storage",
            harbor.jobservice.as_ref().and_then(|j| j.storage.as_ref()),
        ),
        (
            "spec.harbor.storage.pvc",
            harbor.storage.as_ref().and_then(|s| s.pvc.as_ref()),
        ),
        (
            "spec.harbor.database.managed.storage",
            harbor
                .database
                .as_ref()
                .and_then(|d| d.managed.as_ref())
                .map(|m| &m.storage),
        ),
        (
            "spec.harbor.redis.internal.storage",
            harbor
                .redis
                .as_ref()
                .and_then(|r| r.internal.as_ref())
                .map(|i| &i.storage),
        ),
    ];
    for (field, volume) in volumes {
        if let Some(volume) = volume {
            check_volume(errors, field, volume);
        }
    }
    if let Some(database) = &harbor.database {
        let set = [
            database.managed.is_some(),
            database.external.is_some(),
            database.cnpg.is_some(),
        ];
        errors.check(
            set.iter().filter(|s| **s).count() == 1,
            "spec.harbor.database",
            "set exactly one of managed, external or cnpg",
        );
        if let Some(cnpg) = &database.cnpg {
            super::database::cnpg(errors, cnpg);
        }
        if let Some(backup) = &database.backup {
            errors.check(
                database.managed.is_some(),
                "spec.harbor.database.backup",
                "only for the managed Cluster (back up an external or existing CNPG cluster where it is defined)",
            );
            super::database::backup(errors, backup);
        }
        if let Some(managed) = &database.managed {
            errors.check(
                (1..=9).contains(&managed.instances),
                "spec.harbor.database.managed.instances",
                "must be between 1 and 9",
            );
        }
        if let Some(external) = &database.external {
            errors.required(&external.host, "spec.harbor.database.external.host");
            errors.check(
                external.host.is_empty() || is_database_host(&external.host),
                "spec.harbor.database.external.host",
                "must be a host name or IP address without scheme, port or path (the port goes in spec.harbor.database.external.port)",
            );
            errors.required(&external.username, "spec.harbor.database.external.username");
            errors.check(
                (1..=65535).contains(&external.port),
                "spec.harbor.database.external.port",
                "must be between 1 and 65535",
            );
            errors.required(&external.database, "spec.harbor.database.external.database");
            errors.required(
                &external.password_secret_ref.name,
                "spec.harbor.database.external.passwordSecretRef.name",
            );
            errors.check(
                !matches!(external.ssl_mode, SslMode::VerifyCa | SslMode::VerifyFull)
                    || external.ca_bundle_secret_ref.is_some(),
                "spec.harbor.database.external.caBundleSecretRef",
                "required when sslMode is verify-ca or verify-full (without the database's CA Harbor core cannot verify the server and exits at start)",
            );
            if let Some(ca) = &external.ca_bundle_secret_ref {
                errors.secret_name(
                    &ca.name,
                    "spec.harbor.database.external.caBundleSecretRef.name",
                );
                errors.required(
                    &ca.key,
                    "spec.harbor.database.external.caBundleSecretRef.key",
                );
            }
        }
    }
    if let Some(redis) = &harbor.redis {
        errors.check(
            !(redis.internal.is_some() && redis.external.is_some()),
            "spec.harbor.redis",
            "set only one of internal or external",
        );
        if let Some(external) = &redis.external {
            if let Some(master) = &external.sentinel_master_set {
                check_length(
                    errors,
                    "spec.harbor.redis.external.sentinelMasterSet",
                    master,
                    MAX_DNS_SUBDOMAIN,
                );
            }
            errors.required(&external.addr, "spec.harbor.redis.external.addr");
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
            errors.required(&s3.region, "spec.harbor.storage.s3.region");
            if let Some(endpoint) = &s3.endpoint {
                check_length(errors, "spec.harbor.storage.s3.endpoint", endpoint, MAX_URL);
                errors.check(
                    is_http_url(endpoint),
                    "spec.harbor.storage.s3.endpoint",
                    "must start with http:// or https://",
                );
            }
            errors.secret_name(
                &s3.credentials_secret_ref.name,
                "spec.harbor.storage.s3.credentialsSecretRef.name",
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
            errors.secret_name(tls, "spec.harbor.expose.tlsSecretName");
        }
        if let Some(service) = &expose.ingress_service {
            errors.check(
                is_dns_subdomain(service),
                "spec.harbor.expose.ingressService",
                "must be a DNS name, e.g. traefik.kube-system.svc.cluster.local",
            );
        }
        if let Err(e) = super::metadata::annotations(
            expose
                .ingress_annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        ) {
            errors.add("spec.harbor.expose.ingressAnnotations", e);
        }
    }
    if let Some(admin) = &harbor.admin_password_secret_ref {
        errors.secret_name(&admin.name, "spec.harbor.adminPasswordSecretRef.name");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn harbor_registry(name: &str) -> Registry {
        yaml_serde::from_str(&format!(
            "apiVersion: registry.aisp.dev/v1alpha1\nkind: Registry\nmetadata: {{ name: {name}, namespace: r }}\nspec: {{ mode: Harbor, host: harbor.localhost }}\n"
        ))
        .expect("fixture")
    }

    fn k3d_registry(name: &str) -> Registry {
        yaml_serde::from_str(&format!(
            "apiVersion: registry.aisp.dev/v1alpha1\nkind: Registry\nmetadata: {{ name: {name}, namespace: r }}\nspec: {{ mode: K3d }}\n"
        ))
        .expect("fixture")
    }

    #[test]
    fn k3d_registry_name_must_leave_room_for_the_service_name() {
        assert_eq!(MAX_K3D_REGISTRY_NAME, 50);
        let longest = "a".repeat(MAX_K3D_REGISTRY_NAME);
        assert!(registry(&k3d_registry(&longest)).is_ok());
        assert!(super::super::metadata::dns1035_label(&format!("{longest}{K3D_SUFFIX}")).is_ok());
        for length in [MAX_K3D_REGISTRY_NAME + 1, 55] {
            let errors = registry(&k3d_registry(&"a".repeat(length))).expect_err("too long");
            assert_eq!(
                errors.to_string(),
                "metadata.name: must be at most 50 characters in K3d mode (the Service <name>-distribution must be a DNS-1035 label of at most 63 characters)"
            );
        }
    }

    #[test]
    fn harbor_registry_name_must_leave_room_for_child_names() {
        assert!(registry(&harbor_registry(&"a".repeat(MAX_HARBOR_REGISTRY_NAME))).is_ok());
        let errors = registry(&harbor_registry(&"a".repeat(MAX_HARBOR_REGISTRY_NAME + 1)))
            .expect_err("too long");
        assert_eq!(errors.first_field(), "metadata.name");
    }
}
