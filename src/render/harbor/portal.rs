//! harbor-portal: the web UI (nginx serving static files) as ConfigMap (nginx.conf), Service and
//! Deployment. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container};

use super::common::*;
use crate::render::{RenderError, RenderedObject};

const COMPONENT: &str = "portal";

/// nginx configuration: every writable path under /tmp so the root filesystem can stay read-only.
fn nginx_conf() -> String {
    let directives = [
        "worker_processes auto;",
        "pid /tmp/nginx.pid;",
        "error_log /dev/stderr warn;",
        "events {",
        "    worker_connections 1024;",
        "}",
        "http {",
        "    access_log /dev/stdout;",
        "    client_body_temp_path /tmp/client_body_temp;",
        "    proxy_temp_path /tmp/proxy_temp;",
        "    fastcgi_temp_path /tmp/fastcgi_temp;",
        "    uwsgi_temp_path /tmp/uwsgi_temp;",
        "    scgi_temp_path /tmp/scgi_temp;",
        "    server {",
        &format!("        listen {HTTP_PORT};"),
        "        server_name localhost;",
        "        root /usr/share/nginx/html;",
        "        index index.html index.htm;",
        "        include /etc/nginx/mime.types;",
        "        gzip on;",
        "        gzip_min_length 1000;",
        "        gzip_proxied expired no-cache no-store private auth;",
        "        gzip_types text/plain text/css application/json application/javascript application/x-javascript text/xml application/xml application/xml+rss text/javascript;",
        "        location /devcenter-api-2.0 {",
        "            try_files $uri $uri/ /swagger-ui-index.html;",
        "        }",
        "        location / {",
        "            try_files $uri $uri/ /index.html;",
        "        }",
        "        location = /index.html {",
        "            add_header Cache-Control \"no-store, no-cache, must-revalidate\";",
        "        }",
        "    }",
        "}",
    ];
    let mut conf = directives.join("\n");
    conf.push('\n');
    conf
}

pub(super) fn objects(ctx: &Ctx<'_>) -> Result<Vec<RenderedObject>, RenderError> {
    let data = BTreeMap::from([("nginx.conf".to_string(), nginx_conf())]);
    let checksum = config_checksum([&data]);
    let config = ConfigMap {
        metadata: ctx.meta(COMPONENT),
        data: Some(data),
        ..Default::default()
    };
    let container = Container {
        name: COMPONENT.to_string(),
        image: Some(ctx.image("harbor-portal", |i| i.portal.clone())),
        image_pull_policy: Some("IfNotPresent".to_string()),
        ports: Some(vec![port("http", HTTP_PORT)]),
        liveness_probe: Some(http_probe("/", "http", 30, 3)),
        readiness_probe: Some(http_probe("/", "http", 1, 3)),
        resources: Some(ctx.resources(|r| r.portal.as_ref(), "10m", "256Mi", "256Mi")),
        security_context: Some(container_security(true)),
        volume_mounts: Some(vec![
            // Read once at start; a change rolls the pod (config checksum).
            read_only_mount("config", "/etc/nginx/nginx.conf", Some("nginx.conf")),
            mount("tmp", "/tmp", None),
        ]),
        ..Default::default()
    };
    let deployment = ctx.deployment(
        COMPONENT,
        false,
        with_config_checksum(
            ctx.pod_template(
                COMPONENT,
                HARBOR_UID,
                vec![container],
                vec![
                    config_map_volume("config", &ctx.object_name(COMPONENT)),
                    empty_dir("tmp"),
                ],
            ),
            checksum,
        ),
    );
    Ok(vec![
        RenderedObject::from_typed(config)?,
        RenderedObject::from_typed(ctx.service(COMPONENT, &[("http", SERVICE_PORT, HTTP_PORT)]))?,
        RenderedObject::from_typed(deployment)?,
    ])
}
