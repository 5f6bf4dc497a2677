//! Harbor mode: core, portal, jobservice, registry (+registryctl), Trivy, Redis, exporter, a CNPG
//! database and the Ingress, plus the Secrets the operator must generate (as data). Pure: values of
//! generated Secrets never pass through here; workloads only reference them.

pub(crate) mod access;
mod cnpg;
mod common;
mod core;
mod database;
mod exporter;
mod ingress;
mod jobservice;
mod portal;
mod redis;
mod registry;
mod trivy;
mod versions;

use common::Ctx;

pub use common::CONFIG_CHECKSUM_ANNOTATION;

pub use cnpg::{
    backup_resource, database_resource, database_role_resource, scheduled_backup_resource,
    upgrade_backup_name,
};
pub use common::component_name;
pub use database::cluster_resource;

use super::generated::{GeneratedSecret, SecretGenerator};
use super::{Observed, RenderError, Rendered, RenderedObject};
use crate::crd::Registry;

/// Names and keys of the Secrets the operator generates for a Harbor Registry.
pub mod secret {
    /// Admin password (unless `adminPasswordSecretRef` is set).
    pub const ADMIN: &str = "admin";
    pub const ADMIN_PASSWORD_KEY: &str = "password";
    /// Core: `secretKey` (encryption key, exactly 16 chars, must never change), `secret`, `csrfKey`.
    pub const CORE: &str = "core";
    pub const CORE_SECRET_KEY: &str = "secretKey";
    pub const CORE_SECRET: &str = "secret";
    pub const CORE_CSRF_KEY: &str = "csrfKey";
    /// Token service key pair: `tls.key` (core signs) and `tls.crt` (registry trusts).
    pub const TOKEN: &str = "token";
    pub const TOKEN_KEY: &str = "tls.key";
    pub const TOKEN_CERT: &str = "tls.crt";
    /// Jobservice: `secret`.
    pub const JOBSERVICE: &str = "jobservice";
    pub const JOBSERVICE_SECRET: &str = "secret";
    /// Registry: `httpSecret`, the registry user's `password` and its `htpasswd` line.
    pub const REGISTRY: &str = "registry";
    pub const REGISTRY_HTTP_SECRET: &str = "httpSecret";
    pub const REGISTRY_PASSWORD: &str = "password";
    pub const REGISTRY_HTPASSWD: &str = "htpasswd";
}

/// Secret name of one generated Secret: `<registry>-harbor-<what>` (suffix `-secret` avoids clashing
/// with the component's ConfigMap/Service of the same component name).
fn generated_secret_name(ctx: &Ctx<'_>, what: &str) -> String {
    ctx.object_name(&format!("{what}-secret"))
}

/// `CORE_SECRET` and `JOBSERVICE_SECRET`, from the generated Secrets: how core, jobservice and
/// registryctl authenticate each other.
fn internal_secrets_env(ctx: &Ctx<'_>) -> [k8s_openapi::api::core::v1::EnvVar; 2] {
    [
        common::env_from_secret(
            "CORE_SECRET",
            &generated_secret_name(ctx, secret::CORE),
            secret::CORE_SECRET,
        ),
        common::env_from_secret(
            "JOBSERVICE_SECRET",
            &generated_secret_name(ctx, secret::JOBSERVICE),
            secret::JOBSERVICE_SECRET,
        ),
    ]
}

pub(super) fn render(
    registry: &Registry,
    host: Option<&str>,
    hold: Option<&crate::render::HarborHold>,
    observed: &Observed,
) -> Result<Rendered, RenderError> {
    let ctx = Ctx::at(registry, host).holding(hold);
    let mut objects: Vec<RenderedObject> = Vec::new();
    let mut warnings = Vec::new();

    let existing_cluster = cnpg::existing(&ctx);
    let managed_database = existing_cluster.is_none()
        && ctx
            .spec
            .database
            .as_ref()
            .is_none_or(|d| d.external.is_none());
    if managed_database {
        objects.push(database::cluster(&ctx)?);
        if let Some(backup) = cnpg::backup(&ctx) {
            objects.push(cnpg::scheduled_backup(&ctx, &backup)?);
            if hold.is_some_and(|h| h.backup) {
                objects.push(cnpg::upgrade_backup(&ctx, &backup, &ctx.version)?);
            }
        }
    }
    if let Some(existing) = &existing_cluster {
        objects.extend(cnpg::existing_cluster_objects(&ctx, existing)?);
    }
    // Core migrates the schema at start and exits when the database is unreachable; it waits for a
    // Ready database, but once running it is never removed because the database blipped.
    let database_usable =
        !managed_database || observed.harbor.database_ready || observed.harbor.components_exist;

    objects.extend(redis::objects(&ctx)?);
    objects.extend(registry::objects(&ctx)?);
    objects.extend(portal::objects(&ctx)?);
    if ctx.trivy_enabled() {
        objects.extend(trivy::objects(&ctx)?);
    }
    if database_usable {
        objects.extend(core::objects(&ctx)?);
        objects.extend(jobservice::objects(&ctx)?);
        if ctx.exporter_enabled() {
            objects.extend(exporter::objects(&ctx)?);
        }
    }
    let held_back = (!database_usable).then(|| {
        format!(
            "waiting for the database {} to be Ready before starting core and jobservice",
            common::database_cluster_name(&ctx.name)
        )
    });
    objects.push(ingress::ingress(&ctx)?);

    let mut secret_copies = Vec::new();
    if let Some((config_map, copy)) = access::exported_ca(&ctx)? {
        objects.push(config_map);
        secret_copies.push(copy);
    }
    let (coredns, coredns_warning) =
        access::coredns_custom(&ctx, observed.coredns_custom.as_ref())?;
    objects.extend(coredns);
    warnings.extend(coredns_warning);

    Ok(Rendered {
        objects,
        endpoint: Some(ctx.host.clone()),
        k3s_registries_yaml: Some(access::registries_yaml(&ctx)?),
        adopted: false,
        warnings,
        generated_secrets: generated_secrets(&ctx),
        harbor_version: Some(ctx.version.clone()),
        held_back,
        node_port_conflict: None,
        secret_copies,
    })
}

fn generated_secrets(ctx: &Ctx<'_>) -> Vec<GeneratedSecret> {
    let random = |length| SecretGenerator::Random { length };
    let make = |what: &str, keys: Vec<(&str, SecretGenerator)>| GeneratedSecret {
        name: generated_secret_name(ctx, what),
        namespace: ctx.namespace.clone(),
        labels: ctx.secret_labels(),
        secret_type: "Opaque".to_string(),
        keys: keys.into_iter().map(|(k, g)| (k.to_string(), g)).collect(),
    };
    let mut secrets = Vec::new();
    if ctx.spec.admin_password_secret_ref.is_none() {
        secrets.push(make(
            secret::ADMIN,
            vec![(secret::ADMIN_PASSWORD_KEY, random(24))],
        ));
    }
    secrets.push(make(
        secret::CORE,
        vec![
            (secret::CORE_SECRET_KEY, random(16)),
            (secret::CORE_SECRET, random(16)),
            (secret::CORE_CSRF_KEY, random(32)),
        ],
    ));
    secrets.push(make(
        secret::TOKEN,
        vec![(
            secret::TOKEN_KEY,
            SecretGenerator::TokenKeyPair {
                certificate_key: secret::TOKEN_CERT.to_string(),
            },
        )],
    ));
    secrets.push(make(
        secret::JOBSERVICE,
        vec![(secret::JOBSERVICE_SECRET, random(16))],
    ));
    secrets.push(make(
        secret::REGISTRY,
        vec![
            (secret::REGISTRY_HTTP_SECRET, random(16)),
            (secret::REGISTRY_PASSWORD, random(32)),
            (
                secret::REGISTRY_HTPASSWD,
                SecretGenerator::Htpasswd {
                    username: common::REGISTRY_USER.to_string(),
                    password_key: secret::REGISTRY_PASSWORD.to_string(),
                },
            ),
        ],
    ));
    if let Some(existing) = cnpg::existing(ctx) {
        // The source before its copy: the controller creates them in this order.
        secrets.extend(cnpg::generated_secrets(ctx, &existing));
    }
    // The CA goes before the certificate it signs: the controller creates them in this order.
    secrets.extend(access::generated_tls_secrets(ctx));
    secrets
}

/// `(secret name, key)` of the admin password: the user's Secret or the generated one.
fn admin_password(ctx: &Ctx<'_>) -> (String, String) {
    match &ctx.spec.admin_password_secret_ref {
        Some(r) => (r.name.clone(), r.key.clone()),
        None => (
            generated_secret_name(ctx, secret::ADMIN),
            secret::ADMIN_PASSWORD_KEY.to_string(),
        ),
    }
}

/// Where the operator reaches a Harbor Registry's REST API from inside the cluster: core's Service.
pub fn api_url(registry: &Registry) -> String {
    let ctx = Ctx::new(registry);
    format!(
        "http://{}.{}.svc:{}",
        ctx.object_name("core"),
        ctx.namespace,
        common::SERVICE_PORT
    )
}

/// `(secret name, key)` of a Harbor Registry's admin password (for the migration Job's credentials).
pub fn admin_password_ref(registry: &Registry) -> (String, String) {
    admin_password(&Ctx::new(registry))
}
