//! Trivy adapter: a StatefulSet whose PVC keeps the vulnerability DB cache, and its Service. Pure.

use k8s_openapi::api::core::v1::Container;

use super::common::*;
use crate::crd::VolumeSpec;
use crate::render::{RenderError, RenderedObject};

const COMPONENT: &str = "trivy";
const CACHE_DIR: &str = "/home/scanner/.cache";

pub(super) fn objects(ctx: &Ctx<'_>) -> Result<Vec<RenderedObject>, RenderError> {
    let volume = ctx
        .spec
        .trivy
        .as_ref()
        .and_then(|t| t.storage.clone())
        .unwrap_or_else(|| VolumeSpec::sized("5Gi"));
    let mut environment: Vec<_> = ctx.redis.password_env().into_iter().collect();
    let redis_url = ctx.redis.url(redis_db::TRIVY, true);
    environment.extend([
        env("SCANNER_LOG_LEVEL", "info"),
        env("SCANNER_API_SERVER_ADDR", format!(":{HTTP_PORT}")),
        env("SCANNER_TRIVY_CACHE_DIR", format!("{CACHE_DIR}/trivy")),
        env("SCANNER_TRIVY_REPORTS_DIR", format!("{CACHE_DIR}/reports")),
        env("SCANNER_TRIVY_DEBUG_MODE", "false"),
        env("SCANNER_TRIVY_VULN_TYPE", "os,library"),
        env("SCANNER_TRIVY_SECURITY_CHECKS", "vuln"),
        env("SCANNER_TRIVY_SEVERITY", "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL"),
        env("SCANNER_TRIVY_IGNORE_UNFIXED", "false"),
        env("SCANNER_TRIVY_SKIP_UPDATE", "false"),
        env("SCANNER_TRIVY_SKIP_JAVA_DB_UPDATE", "false"),
        env("SCANNER_TRIVY_OFFLINE_SCAN", "false"),
        env("SCANNER_TRIVY_INSECURE", "false"),
        env("SCANNER_TRIVY_TIMEOUT", "5m0s"),
        env("SCANNER_REDIS_URL", redis_url.clone()),
        env("SCANNER_STORE_REDIS_URL", redis_url.clone()),
        env("SCANNER_JOB_QUEUE_REDIS_URL", redis_url),
    ]);
    let container = Container {
        name: COMPONENT.to_string(),
        image: Some(ctx.image("trivy-adapter-photon", |i| i.trivy.clone())),
        image_pull_policy: Some("IfNotPresent".to_string()),
        ports: Some(vec![port("api-server", HTTP_PORT)]),
        env: Some(environment),
        liveness_probe: Some(http_probe("/probe/healthy", "api-server", 5, 10)),
        readiness_probe: Some(http_probe("/probe/ready", "api-server", 5, 3)),
        resources: Some(ctx.resources(|r| r.trivy.as_ref(), "200m", "1Gi", "2Gi")),
        // Exception: the entrypoint (install_cert.sh) rewrites the CA bundle under /etc/pki at every
        // start, and Trivy unpacks image layers to a temp dir, so the root filesystem stays writable.
        security_context: Some(container_security(false)),
        volume_mounts: Some(vec![mount("data", CACHE_DIR, None)]),
        ..Default::default()
    };
    let stateful_set = ctx.stateful_set(
        COMPONENT,
        ctx.pod_template(COMPONENT, HARBOR_UID, vec![container], Vec::new()),
        &volume,
    );
    Ok(vec![
        RenderedObject::from_typed(
            ctx.service(COMPONENT, &[("api-server", HTTP_PORT, HTTP_PORT)]),
        )?,
        RenderedObject::from_typed(stateful_set)?,
    ])
}
