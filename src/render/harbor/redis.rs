//! Internal cache: a single-instance StatefulSet with a PVC, and its Service; `redis-photon` or, from
//! Harbor 2.15.2, `valkey-photon` (see `versions`). Nothing is rendered when an external Redis is
//! configured. Pure.

use k8s_openapi::api::core::v1::{Container, Probe, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::common::*;
use crate::render::{RenderError, RenderedObject};

const COMPONENT: &str = "redis";

pub(super) fn objects(ctx: &Ctx<'_>) -> Result<Vec<RenderedObject>, RenderError> {
    let redis = ctx.spec.redis.clone().unwrap_or_default();
    if redis.external.is_some() {
        return Ok(Vec::new());
    }
    let volume = redis.internal.unwrap_or_default().storage;
    // TCP probes, as harbor-helm's redis StatefulSet has them: they work with either image (and any
    // override), where an exec probe would need `redis-cli` (redis-photon) or `valkey-cli`
    // (valkey-photon ships only that one: `make/photon/valkey/docker-healthcheck`).
    let tcp_probe = |initial_delay| Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String("redis".to_string()),
            ..Default::default()
        }),
        // The API server omits a zero (Go `omitempty`): written as 0, it would read as drift every pass.
        initial_delay_seconds: (initial_delay > 0).then_some(initial_delay),
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        failure_threshold: Some(3),
        ..Default::default()
    };
    let liveness = tcp_probe(5);
    let readiness = tcp_probe(1);
    let repository = ctx.cache_release().cache_image.repository();
    let container = Container {
        name: COMPONENT.to_string(),
        image: Some(ctx.image(repository, |i| i.redis.clone())),
        image_pull_policy: Some("IfNotPresent".to_string()),
        ports: Some(vec![port("redis", REDIS_PORT)]),
        liveness_probe: Some(liveness),
        readiness_probe: Some(readiness),
        resources: Some(ctx.resources(|r| r.redis.as_ref(), "50m", "256Mi", "512Mi")),
        // The image only writes /var/lib/redis (the PVC); its pid file is best effort.
        security_context: Some(container_security(true)),
        volume_mounts: Some(vec![mount("data", "/var/lib/redis", None)]),
        ..Default::default()
    };
    let stateful_set = ctx.stateful_set(
        COMPONENT,
        ctx.pod_template(COMPONENT, REDIS_UID, vec![container], Vec::new()),
        &volume,
    );
    Ok(vec![
        RenderedObject::from_typed(ctx.service(COMPONENT, &[("redis", REDIS_PORT, REDIS_PORT)]))?,
        RenderedObject::from_typed(stateful_set)?,
    ])
}
