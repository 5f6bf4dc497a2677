//! The Ingress: `spec.host` routed by path like the upstream chart (UI to portal; `/api/`, `/service/`,
//! `/v2`, `/c/` to core), TLS with the user's or the generated certificate, the user's annotations
//! (`expose.ingressAnnotations`); core advertises the same `https://` URL as `EXT_ENDPOINT`. Pure.

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};

use super::common::{Ctx, SERVICE_PORT};
use crate::render::{RenderError, RenderedObject};

pub(super) fn ingress(ctx: &Ctx<'_>) -> Result<RenderedObject, RenderError> {
    let route = |path: &str, component: &str| HTTPIngressPath {
        path: Some(path.to_string()),
        path_type: "Prefix".to_string(),
        backend: IngressBackend {
            service: Some(IngressServiceBackend {
                name: ctx.object_name(component),
                port: Some(ServiceBackendPort {
                    number: Some(SERVICE_PORT),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        },
    };
    // The host part of `spec.host` (an Ingress host carries no port).
    let host = ctx.host.split(':').next().unwrap_or_default().to_string();
    let mut metadata = ctx.meta("ingress");
    if !ctx.expose.ingress_annotations.is_empty() {
        metadata.annotations = Some(ctx.expose.ingress_annotations.clone());
    }
    let ingress = Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: Some(ctx.expose.ingress_class_name.clone()),
            tls: Some(vec![IngressTLS {
                hosts: Some(vec![host.clone()]),
                secret_name: Some(super::access::tls_secret_name(ctx)),
            }]),
            rules: Some(vec![IngressRule {
                host: Some(host),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![
                        route("/", "portal"),
                        route("/api/", "core"),
                        route("/service/", "core"),
                        route("/v2", "core"),
                        route("/c/", "core"),
                    ],
                }),
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    RenderedObject::from_typed(ingress)
}
