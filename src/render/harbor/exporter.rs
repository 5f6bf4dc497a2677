//! harbor-exporter (optional): Prometheus metrics from core's API, the job queue and the database;
//! Service and Deployment. Pure; passwords only as `secretKeyRef`.

use k8s_openapi::api::core::v1::Container;

use super::admin_password;
use super::common::*;
use super::jobservice::JOB_NAMESPACE;
use crate::render::{RenderError, RenderedObject};

const COMPONENT: &str = "exporter";

pub(super) fn objects(ctx: &Ctx<'_>) -> Result<Vec<RenderedObject>, RenderError> {
    let db = &ctx.database;
    let (admin_secret, admin_key) = admin_password(ctx);
    let mut environment: Vec<_> = ctx.redis.password_env().into_iter().collect();
    environment.extend([
        env("LOG_LEVEL", "info"),
        env("HARBOR_EXPORTER_PORT", EXPORTER_PORT.to_string()),
        env("HARBOR_EXPORTER_METRICS_PATH", "/metrics"),
        env("HARBOR_EXPORTER_METRICS_ENABLED", "true"),
        env("HARBOR_EXPORTER_CACHE_TIME", "23"),
        env("HARBOR_EXPORTER_CACHE_CLEAN_INTERVAL", "14400"),
        env("HARBOR_METRIC_NAMESPACE", "harbor"),
        env("HARBOR_METRIC_SUBSYSTEM", "exporter"),
        env(
            "HARBOR_REDIS_URL",
            ctx.redis.url(redis_db::JOBSERVICE, false),
        ),
        env("HARBOR_REDIS_NAMESPACE", JOB_NAMESPACE),
        env("HARBOR_REDIS_TIMEOUT", "3600"),
        env("HARBOR_SERVICE_SCHEME", "http"),
        env("HARBOR_SERVICE_HOST", ctx.object_name("core")),
        env("HARBOR_SERVICE_PORT", SERVICE_PORT.to_string()),
    ]);
    // HARBOR_DATABASE_HOST, _PORT, _USERNAME, _DBNAME, _SSLMODE, _MAX_IDLE_CONNS, _MAX_OPEN_CONNS.
    environment.extend(db.env("HARBOR_DATABASE", "DBNAME"));
    environment.extend([
        env_from_secret(
            "HARBOR_DATABASE_PASSWORD",
            &db.password.name,
            &db.password.key,
        ),
        env_from_secret("HARBOR_ADMIN_PASSWORD", &admin_secret, &admin_key),
    ]);
    let (mounts, volumes) = ctx.with_database_ca(Vec::new(), Vec::new());
    let container = Container {
        name: COMPONENT.to_string(),
        image: Some(ctx.image("harbor-exporter", |i| i.exporter.clone())),
        image_pull_policy: Some("IfNotPresent".to_string()),
        args: Some(vec!["-log-level".to_string(), "info".to_string()]),
        ports: Some(vec![port("metrics", EXPORTER_PORT)]),
        env: Some(environment),
        liveness_probe: Some(http_probe("/", "metrics", 30, 3)),
        readiness_probe: Some(http_probe("/", "metrics", 10, 3)),
        resources: Some(ctx.resources(|r| r.exporter.as_ref(), "10m", "64Mi", "256Mi")),
        // Exception: the entrypoint (install_cert.sh) rewrites the CA bundle under /etc/pki at every
        // start, so the root filesystem must stay writable.
        security_context: Some(container_security(false)),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ..Default::default()
    };
    let deployment = ctx.deployment(
        COMPONENT,
        false,
        ctx.pod_template(COMPONENT, HARBOR_UID, vec![container], volumes),
    );
    Ok(vec![
        RenderedObject::from_typed(
            ctx.service(COMPONENT, &[("metrics", EXPORTER_PORT, EXPORTER_PORT)]),
        )?,
        RenderedObject::from_typed(deployment)?,
    ])
}
