//! Internal Redis: a single-instance StatefulSet with a PVC, and its Service. Nothing is rendered when
//! an external Redis is configured. Pure.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, ExecAction, PersistentVolumeClaim, Probe, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
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
    let liveness = Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String("redis".to_string()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(5),
        period_seconds: Some(10),
        failure_threshold: Some(3),
        ..Default::default()
    };
    let readiness = Probe {
        exec: Some(ExecAction {
            command: Some(vec!["redis-cli".to_string(), "ping".to_string()]),
        }),
        initial_delay_seconds: Some(1),
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        failure_threshold: Some(3),
        ..Default::default()
    };
    let container = Container {
        name: COMPONENT.to_string(),
        image: Some(ctx.image("redis-photon", |i| i.redis.clone())),
        image_pull_policy: Some("IfNotPresent".to_string()),
        ports: Some(vec![port("redis", REDIS_PORT)]),
        liveness_probe: Some(liveness),
        readiness_probe: Some(readiness),
        resources: Some(resources(
            ctx.spec.resources.as_ref().and_then(|r| r.redis.as_ref()),
            "50m",
            "256Mi",
            "512Mi",
        )),
        // The image only writes /var/lib/redis (the PVC); its pid file is best effort.
        security_context: Some(container_security(true)),
        volume_mounts: Some(vec![mount("data", "/var/lib/redis", None)]),
        ..Default::default()
    };
    let stateful_set = StatefulSet {
        metadata: ctx.meta(COMPONENT),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(ctx.object_name(COMPONENT)),
            selector: LabelSelector {
                match_labels: Some(ctx.owner().pod_selector(APP, COMPONENT)),
                ..Default::default()
            },
            template: ctx.pod_template(COMPONENT, REDIS_UID, vec![container], Vec::new()),
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("data".to_string()),
                    labels: Some(ctx.owner().labels(APP, COMPONENT)),
                    ..Default::default()
                },
                spec: Some(pvc_spec(&volume)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(vec![
        RenderedObject::from_typed(ctx.service(COMPONENT, &[("redis", REDIS_PORT, REDIS_PORT)]))?,
        RenderedObject::from_typed(stateful_set)?,
    ])
}
