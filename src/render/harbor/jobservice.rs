//! harbor-jobservice: ConfigMap (config.yml), log PVC, Service and Deployment. Runs replication,
//! scans, GC and webhooks. Pure; the Redis URL (maybe with a password reference) comes through env.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container};
use serde_json::json;

use super::common::*;
use super::{generated_secret_name, internal_secrets_env, secret};
use crate::crd::VolumeSpec;
use crate::render::{RenderError, RenderedObject};

const COMPONENT: &str = "jobservice";
const LOG_DIR: &str = "/var/log/jobs";
/// Redis namespace of Harbor's job queue (shared with the exporter).
pub(super) const JOB_NAMESPACE: &str = "harbor_job_service_namespace";

fn config_yml() -> Result<String, RenderError> {
    // The Redis URL is set by JOB_SERVICE_POOL_REDIS_URL, which overrides `redis_url` here.
    let config = json!({
        "protocol": "http",
        "port": HTTP_PORT,
        "worker_pool": {
            "workers": 10,
            "backend": "redis",
            "redis_pool": { "redis_url": "", "namespace": JOB_NAMESPACE, "idle_timeout_second": 3600 },
        },
        "job_loggers": [{
            "name": "FILE",
            "level": "INFO",
            "settings": { "base_dir": LOG_DIR },
            "sweeper": { "duration": 14, "settings": { "work_dir": LOG_DIR } },
        }],
        "metric": { "enabled": false, "path": "/metrics", "port": EXPORTER_PORT },
        "loggers": [{ "name": "STD_OUTPUT", "level": "INFO" }],
        "reaper": { "max_update_hours": 24, "max_dangling_hours": 168 },
    });
    Ok(yaml_serde::to_string(&config)?)
}

pub(super) fn objects(ctx: &Ctx<'_>) -> Result<Vec<RenderedObject>, RenderError> {
    let data = BTreeMap::from([("config.yml".to_string(), config_yml()?)]);
    let checksum = config_checksum([&data]);
    let config = ConfigMap {
        metadata: ctx.meta(COMPONENT),
        data: Some(data),
        ..Default::default()
    };
    // Jobservice trusts what core trusts (harbor-helm mounts its caBundleSecretName in both).
    let (mounts, volumes) = ctx.with_database_ca(
        vec![
            // Read once at start; a change rolls the pod (config checksum).
            read_only_mount("config", "/etc/jobservice/config.yml", Some("config.yml")),
            mount("job-logs", LOG_DIR, None),
        ],
        vec![
            config_map_volume("config", &ctx.object_name(COMPONENT)),
            pvc_volume("job-logs", &ctx.object_name(COMPONENT)),
        ],
    );
    let volume = ctx
        .spec
        .jobservice
        .as_ref()
        .and_then(|j| j.storage.clone())
        .unwrap_or_else(|| VolumeSpec::sized("1Gi"));
    let core_url = ctx.service_url("core", Some(SERVICE_PORT));
    let [core_secret, jobservice_secret] = internal_secrets_env(ctx);
    let mut environment: Vec<_> = ctx.redis.password_env().into_iter().collect();
    environment.extend([
        env("CORE_URL", core_url.clone()),
        env("TOKEN_SERVICE_URL", format!("{core_url}/service/token")),
    ]);
    environment.extend(ctx.registry_client_env());
    environment.extend([
        env(
            "JOB_SERVICE_POOL_REDIS_URL",
            ctx.redis.url(redis_db::JOBSERVICE, false),
        ),
        env("JOBSERVICE_WEBHOOK_JOB_MAX_RETRY", "3"),
        env("JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT", "3"),
        core_secret,
        jobservice_secret,
        env_from_secret(
            "REGISTRY_CREDENTIAL_PASSWORD",
            &generated_secret_name(ctx, secret::REGISTRY),
            secret::REGISTRY_PASSWORD,
        ),
    ]);
    let container = Container {
        name: COMPONENT.to_string(),
        image: Some(ctx.image("harbor-jobservice", |i| i.jobservice.clone())),
        image_pull_policy: Some("IfNotPresent".to_string()),
        ports: Some(vec![port("http", HTTP_PORT)]),
        env: Some(environment),
        liveness_probe: Some(http_probe("/api/v1/stats", "http", 300, 3)),
        readiness_probe: Some(http_probe("/api/v1/stats", "http", 20, 3)),
        resources: Some(ctx.resources(|r| r.jobservice.as_ref(), "50m", "256Mi", "512Mi")),
        // Exception: the entrypoint (install_cert.sh) rewrites the CA bundle under /etc/pki at every
        // start, so the root filesystem must stay writable.
        security_context: Some(container_security(false)),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    let deployment = ctx.deployment(
        COMPONENT,
        // The log volume is ReadWriteOnce: never run two pods at once.
        true,
        with_config_checksum(
            ctx.pod_template(COMPONENT, HARBOR_UID, vec![container], volumes),
            checksum,
        ),
    );
    Ok(vec![
        RenderedObject::from_typed(config)?,
        RenderedObject::from_typed(pvc(ctx.meta(COMPONENT), &volume))?,
        RenderedObject::from_typed(ctx.service(COMPONENT, &[("http", SERVICE_PORT, HTTP_PORT)]))?,
        RenderedObject::from_typed(deployment)?,
    ])
}
