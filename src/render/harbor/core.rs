//! harbor-core: ConfigMap (app.conf), Service and Deployment. Core serves the API, the token service
//! and proxies `/v2` to the registry. Its environment follows harbor-helm's core ConfigMap and
//! Deployment (README "Harbor mode" lists what we leave out). Pure; secrets only as `secretKeyRef`
//! and secret volumes.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar};

use super::common::*;
use super::{admin_password, generated_secret_name, secret};
use crate::render::{RenderError, RenderedObject};

const COMPONENT: &str = "core";
/// Directory of the token-signing key: mounted whole (no subPath), so the kubelet's refresh of the
/// Secret reaches core, which reads the key file on every token request (`TOKEN_PRIVATE_KEY_PATH`,
/// `src/lib/config/systemconfig.go`; `src/pkg/token/options.go` reads it in `NewOptions`).
const TOKEN_KEY_DIR: &str = "/etc/core/token-key";

pub(super) fn objects(ctx: &Ctx<'_>) -> Result<Vec<RenderedObject>, RenderError> {
    let data = BTreeMap::from([(
        "app.conf".to_string(),
        format!(
            "appname = Harbor\nrunmode = prod\nenablegzip = true\n\n[prod]\nhttpport = {HTTP_PORT}\n"
        ),
    )]);
    let checksum = config_checksum([&data]);
    let config = ConfigMap {
        metadata: ctx.meta(COMPONENT),
        data: Some(data),
        ..Default::default()
    };
    Ok(vec![
        RenderedObject::from_typed(config)?,
        RenderedObject::from_typed(ctx.service(COMPONENT, &[("http", SERVICE_PORT, HTTP_PORT)]))?,
        RenderedObject::from_typed(deployment(ctx, checksum))?,
    ])
}

/// Environment of core (chart's core ConfigMap plus secret references), in dependency order.
fn environment(ctx: &Ctx<'_>) -> Vec<EnvVar> {
    let core_url = ctx.service_url(COMPONENT, Some(SERVICE_PORT));
    let core_secret = generated_secret_name(ctx, secret::CORE);
    let (admin_secret, admin_key) = admin_password(ctx);
    let db = &ctx.database;
    let mut vars: Vec<EnvVar> = ctx.redis.password_env().into_iter().collect();
    vars.extend([
        env("PORT", HTTP_PORT.to_string()),
        env("CONFIG_PATH", "/etc/core/app.conf"),
        env("LOG_LEVEL", "info"),
        env("EXT_ENDPOINT", ctx.external_url.clone()),
        env("CORE_URL", core_url.clone()),
        env("CORE_LOCAL_URL", format!("http://127.0.0.1:{HTTP_PORT}")),
        env("TOKEN_SERVICE_URL", format!("{core_url}/service/token")),
        env("JOBSERVICE_URL", ctx.service_url("jobservice", None)),
        env("PORTAL_URL", ctx.service_url("portal", None)),
    ]);
    vars.extend(ctx.registry_client_env());
    vars.extend([
        env(
            "REGISTRY_STORAGE_PROVIDER_NAME",
            if ctx.spec.storage.as_ref().is_some_and(|s| s.s3.is_some()) {
                "s3"
            } else {
                "filesystem"
            },
        ),
        env("WITH_TRIVY", ctx.trivy_enabled().to_string()),
        env(
            "TRIVY_ADAPTER_URL",
            ctx.service_url("trivy", Some(HTTP_PORT)),
        ),
        env("DATABASE_TYPE", "postgresql"),
    ]);
    // POSTGRESQL_HOST, _PORT, _USERNAME, _DATABASE, _SSLMODE, _MAX_IDLE_CONNS, _MAX_OPEN_CONNS.
    vars.extend(db.env("POSTGRESQL", "DATABASE"));
    vars.extend([
        env("_REDIS_URL_CORE", ctx.redis.url(redis_db::CORE, true)),
        env("_REDIS_URL_REG", ctx.redis.url(redis_db::REGISTRY, true)),
        env("CHART_CACHE_DRIVER", "redis"),
        env(
            "PERMITTED_REGISTRY_TYPES_FOR_PROXY_CACHE",
            ctx.core_release().proxy_cache_providers,
        ),
        env(
            "TOKEN_PRIVATE_KEY_PATH",
            format!("{TOKEN_KEY_DIR}/private_key.pem"),
        ),
        env_from_secret("CORE_SECRET", &core_secret, secret::CORE_SECRET),
        env_from_secret("CSRF_KEY", &core_secret, secret::CORE_CSRF_KEY),
        env_from_secret(
            "JOBSERVICE_SECRET",
            &generated_secret_name(ctx, secret::JOBSERVICE),
            secret::JOBSERVICE_SECRET,
        ),
        env_from_secret(
            "REGISTRY_CREDENTIAL_PASSWORD",
            &generated_secret_name(ctx, secret::REGISTRY),
            secret::REGISTRY_PASSWORD,
        ),
        env_from_secret("HARBOR_ADMIN_PASSWORD", &admin_secret, &admin_key),
        env_from_secret("POSTGRESQL_PASSWORD", &db.password.name, &db.password.key),
    ]);
    // Harbor ≥ 2.14 offers no replication or proxy-cache provider unless it is listed here.
    if let Some(adapters) = ctx.core_release().replication_adapters {
        vars.push(env("REPLICATION_ADAPTER_WHITELIST", adapters));
    }
    if ctx.exporter_enabled() {
        vars.extend([
            env("METRIC_ENABLE", "true"),
            env("METRIC_PATH", "/metrics"),
            env("METRIC_PORT", EXPORTER_PORT.to_string()),
            env("METRIC_NAMESPACE", "harbor"),
            env("METRIC_SUBSYSTEM", "core"),
        ]);
    }
    vars
}

fn deployment(ctx: &Ctx<'_>, checksum: String) -> Deployment {
    let (mounts, volumes) = ctx.with_database_ca(
        vec![
            // app.conf is read once at start; a change rolls the pod (config checksum).
            read_only_mount("config", "/etc/core/app.conf", Some("app.conf")),
            // The encryption key never changes (generated once, never rotated).
            read_only_mount("secret-key", "/etc/core/key", Some("key")),
            read_only_mount("token-service-private-key", TOKEN_KEY_DIR, None),
            mount("psc", "/etc/core/token", None),
        ],
        vec![
            config_map_volume("config", &ctx.object_name(COMPONENT)),
            secret_volume(
                "secret-key",
                &generated_secret_name(ctx, secret::CORE),
                &[(secret::CORE_SECRET_KEY, "key")],
            ),
            secret_volume(
                "token-service-private-key",
                &generated_secret_name(ctx, secret::TOKEN),
                &[(secret::TOKEN_KEY, "private_key.pem")],
            ),
            empty_dir("psc"),
        ],
    );
    let mut ports = vec![port("http", HTTP_PORT)];
    if ctx.exporter_enabled() {
        ports.push(port("metrics", EXPORTER_PORT));
    }
    let container = Container {
        name: COMPONENT.to_string(),
        image: Some(ctx.image("harbor-core", |i| i.core.clone())),
        image_pull_policy: Some("IfNotPresent".to_string()),
        ports: Some(ports),
        env: Some(environment(ctx)),
        // Schema migrations on first start can take minutes; the startup probe allows them.
        startup_probe: Some(http_probe("/api/v2.0/ping", "http", 10, 360)),
        liveness_probe: Some(http_probe("/api/v2.0/ping", "http", 0, 2)),
        readiness_probe: Some(http_probe("/api/v2.0/ping", "http", 0, 2)),
        resources: Some(ctx.resources(|r| r.core.as_ref(), "100m", "512Mi", "1Gi")),
        // Exception: the image's entrypoint (install_cert.sh) rewrites /etc/pki/tls/certs/ca-bundle.crt
        // and copies it into $HOME at every start, so the root filesystem must stay writable.
        security_context: Some(container_security(false)),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    ctx.deployment(COMPONENT, false, {
        let mut template = with_config_checksum(
            ctx.pod_template(COMPONENT, HARBOR_UID, vec![container], volumes),
            checksum,
        );
        if let Some(spec) = template.spec.as_mut() {
            spec.termination_grace_period_seconds = Some(120);
        }
        template
    })
}
