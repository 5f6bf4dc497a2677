//! The registry pod: distribution (`registry-photon`) and `harbor-registryctl` side by side, with their
//! ConfigMap, the image-data PVC (PVC storage) and the Service. Pure; S3 keys and the Redis password
//! reach the containers only as `secretKeyRef` env vars.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar};
use serde_json::{Value, json};

use super::common::*;
use super::{generated_secret_name, internal_secrets_env, secret};
use crate::crd::{S3Storage, VolumeSpec};
use crate::render::{RenderError, RenderedObject};

const COMPONENT: &str = "registry";
const STORAGE_DIR: &str = "/storage";

fn s3<'c>(ctx: &'c Ctx<'_>) -> Option<&'c S3Storage> {
    ctx.spec.storage.as_ref().and_then(|s| s.s3.as_ref())
}

fn storage_config(ctx: &Ctx<'_>) -> Value {
    let mut storage = match s3(ctx) {
        Some(s3) => {
            let mut driver = json!({ "region": s3.region, "bucket": s3.bucket });
            if let Some(endpoint) = &s3.endpoint {
                driver["regionendpoint"] = json!(endpoint);
                // In-cluster S3 (SeaweedFS, MinIO) serves buckets by path, not by virtual host.
                driver["forcepathstyle"] = json!(true);
            }
            json!({ "s3": driver, "redirect": { "disable": s3.disable_redirect } })
        }
        None => json!({ "filesystem": { "rootdirectory": STORAGE_DIR } }),
    };
    storage["cache"] = json!({ "layerinfo": "redis" });
    storage["maintenance"] = json!({ "uploadpurging": { "enabled": true, "age": "168h", "interval": "24h", "dryrun": false } });
    storage["delete"] = json!({ "enabled": true });
    storage
}

/// Sections of config.yml that depend on the Registry; the constant ones are in [`CONFIG_HEAD`] and
/// [`CONFIG_TAIL`]. The HTTP secret and the Redis password come from REGISTRY_HTTP_SECRET /
/// REGISTRY_REDIS_PASSWORD. No `notifications`: Harbor 2.x has no receiver for registry events
/// (`/service/notifications` was Harbor 1.x; core learns of pushes through its own `/v2` proxy),
/// harbor-helm's registry ConfigMap has none, and distribution retries undeliverable events in
/// memory without bound.
fn config_sections(ctx: &Ctx<'_>) -> Value {
    let mut redis = json!({
        "addr": ctx.redis.addr,
        "db": redis_db::REGISTRY,
        "readtimeout": "10s",
        "writetimeout": "10s",
        "dialtimeout": "10s",
        "pool": { "maxidle": 100, "maxactive": 500, "idletimeout": "60s" },
    });
    if let Some(master) = &ctx.redis.sentinel_master_set {
        redis["sentinelMasterSet"] = json!(master);
    }
    json!({
        "storage": storage_config(ctx),
        "redis": redis,
    })
}

/// Constant sections of config.yml.
fn config_constants() -> Value {
    json!({
        "log": { "level": "info", "fields": { "service": "registry" } },
        "http": { "addr": format!(":{REGISTRY_PORT}"), "relativeurls": false, "debug": { "addr": "localhost:5001" } },
        "auth": { "htpasswd": { "realm": "harbor-registry-basic-realm", "path": "/etc/registry/passwd" } },
        "version": 0.1,
        "validation": { "disabled": true },
    })
}

/// config.yml: the constant sections and those that depend on the spec, as one map (emitted sorted).
fn config_yml(ctx: &Ctx<'_>) -> Result<String, RenderError> {
    let mut config = config_constants();
    if let (Some(whole), Value::Object(sections)) = (config.as_object_mut(), config_sections(ctx)) {
        whole.extend(sections);
    }
    Ok(yaml_serde::to_string(&config)?)
}

fn ctl_config_yml() -> Result<String, RenderError> {
    let config = json!({
        "protocol": "http",
        "port": HTTP_PORT,
        "log_level": "info",
        "registry_config": "/etc/registry/config.yml",
    });
    Ok(yaml_serde::to_string(&config)?)
}

/// Env both containers need: the registry's HTTP secret, Redis password and S3 keys.
fn shared_environment(ctx: &Ctx<'_>) -> Vec<EnvVar> {
    let registry_secret = generated_secret_name(ctx, secret::REGISTRY);
    let mut vars = vec![env_from_secret(
        "REGISTRY_HTTP_SECRET",
        &registry_secret,
        secret::REGISTRY_HTTP_SECRET,
    )];
    if let Some(password) = &ctx.redis.password {
        vars.push(env_from_secret(
            "REGISTRY_REDIS_PASSWORD",
            &password.name,
            &password.key,
        ));
    }
    if let Some(s3) = s3(ctx) {
        let credentials = &s3.credentials_secret_ref;
        vars.push(env_from_secret(
            "REGISTRY_STORAGE_S3_ACCESSKEY",
            &credentials.name,
            &credentials.username_key,
        ));
        vars.push(env_from_secret(
            "REGISTRY_STORAGE_S3_SECRETKEY",
            &credentials.name,
            &credentials.password_key,
        ));
    }
    vars
}

pub(super) fn objects(ctx: &Ctx<'_>) -> Result<Vec<RenderedObject>, RenderError> {
    let name = ctx.object_name(COMPONENT);
    let data = BTreeMap::from([
        ("config.yml".to_string(), config_yml(ctx)?),
        ("ctl-config.yml".to_string(), ctl_config_yml()?),
    ]);
    // Both files are read once at start (mounted with subPath); a change rolls the pod.
    let checksum = config_checksum([&data]);
    let config = ConfigMap {
        metadata: ctx.meta(COMPONENT),
        data: Some(data),
        ..Default::default()
    };
    let data_mount = || mount("registry-data", STORAGE_DIR, None);
    let registry = Container {
        name: "registry".to_string(),
        image: Some(ctx.image("registry-photon", |i| i.registry.clone())),
        image_pull_policy: Some("IfNotPresent".to_string()),
        args: Some(vec![
            "serve".to_string(),
            "/etc/registry/config.yml".to_string(),
        ]),
        ports: Some(vec![port("registry", REGISTRY_PORT)]),
        env: Some(shared_environment(ctx)),
        liveness_probe: Some(http_probe("/", "registry", 30, 3)),
        readiness_probe: Some(http_probe("/", "registry", 1, 3)),
        resources: Some(ctx.resources(|r| r.registry.as_ref(), "50m", "256Mi", "1Gi")),
        // Exception: the entrypoint (install_cert.sh) rewrites the CA bundle under /etc/pki at every
        // start, so the root filesystem must stay writable.
        security_context: Some(container_security(false)),
        volume_mounts: Some(vec![
            data_mount(),
            read_only_mount("registry-htpasswd", "/etc/registry/passwd", Some("passwd")),
            // Harbor's own installer ships the token service certificate beside the config.
            read_only_mount(
                "registry-root-cert",
                "/etc/registry/root.crt",
                Some("root.crt"),
            ),
            read_only_mount(
                "registry-config",
                "/etc/registry/config.yml",
                Some("config.yml"),
            ),
        ]),
        ..Default::default()
    };
    let mut ctl_environment = internal_secrets_env(ctx).to_vec();
    ctl_environment.extend(shared_environment(ctx));
    let registryctl = Container {
        name: "registryctl".to_string(),
        image: Some(ctx.image("harbor-registryctl", |i| i.registryctl.clone())),
        image_pull_policy: Some("IfNotPresent".to_string()),
        ports: Some(vec![port("controller", HTTP_PORT)]),
        env: Some(ctl_environment),
        liveness_probe: Some(http_probe("/api/health", "controller", 30, 3)),
        readiness_probe: Some(http_probe("/api/health", "controller", 1, 3)),
        resources: Some(ctx.resources(|r| r.registryctl.as_ref(), "20m", "128Mi", "512Mi")),
        // Exception: same entrypoint (install_cert.sh) as the registry; root filesystem stays writable.
        security_context: Some(container_security(false)),
        volume_mounts: Some(vec![
            data_mount(),
            read_only_mount(
                "registry-config",
                "/etc/registry/config.yml",
                Some("config.yml"),
            ),
            read_only_mount(
                "registry-config",
                "/etc/registryctl/config.yml",
                Some("ctl-config.yml"),
            ),
        ]),
        ..Default::default()
    };
    let pvc_storage = s3(ctx).is_none();
    let data_volume = if pvc_storage {
        pvc_volume("registry-data", &name)
    } else {
        empty_dir("registry-data")
    };
    let volumes = vec![
        secret_volume(
            "registry-htpasswd",
            &generated_secret_name(ctx, secret::REGISTRY),
            &[(secret::REGISTRY_HTPASSWD, "passwd")],
        ),
        secret_volume(
            "registry-root-cert",
            &generated_secret_name(ctx, secret::TOKEN),
            &[(secret::TOKEN_CERT, "root.crt")],
        ),
        config_map_volume("registry-config", &name),
        data_volume,
    ];
    let deployment = ctx.deployment(
        COMPONENT,
        // A ReadWriteOnce image volume admits one pod: never run old and new side by side.
        pvc_storage,
        with_config_checksum(
            ctx.pod_template(COMPONENT, HARBOR_UID, vec![registry, registryctl], volumes),
            checksum,
        ),
    );
    let mut objects = vec![RenderedObject::from_typed(config)?];
    if pvc_storage {
        let volume = ctx
            .spec
            .storage
            .as_ref()
            .and_then(|s| s.pvc.clone())
            .unwrap_or_else(|| VolumeSpec::sized("50Gi"));
        objects.push(RenderedObject::from_typed(pvc(
            ctx.meta(COMPONENT),
            &volume,
        ))?);
    }
    objects.push(RenderedObject::from_typed(ctx.service(
        COMPONENT,
        &[
            ("registry", REGISTRY_PORT, REGISTRY_PORT),
            ("controller", HTTP_PORT, HTTP_PORT),
        ],
    ))?);
    objects.push(RenderedObject::from_typed(deployment)?);
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Registry;

    #[test]
    fn config_yml_is_one_sorted_map_of_the_constant_and_spec_sections() {
        let s3 = r#"
apiVersion: registry.aisp.dev/v1alpha1
kind: Registry
metadata: { name: platform, namespace: registry }
spec:
  mode: Harbor
  host: harbor.example.com
  harbor:
    redis: { external: { addr: "redis:26379", mode: Sentinel, sentinelMasterSet: "yes" } }
    storage:
      s3:
        endpoint: "http://s3: 8333"
        region: "null"
        bucket: "0123"
        credentialsSecretRef: { name: s3, usernameKey: a, passwordKey: b }
"#;
        let pvc = "apiVersion: registry.aisp.dev/v1alpha1\nkind: Registry\nmetadata: { name: p, namespace: n }\nspec: { mode: Harbor, host: h.example.com }\n";
        for yaml in [s3, pvc] {
            let registry: Registry = yaml_serde::from_str(yaml).expect("parses");
            let ctx = Ctx::new(&registry);
            let text = config_yml(&ctx).expect("renders");
            let parsed: Value = yaml_serde::from_str(&text).expect("parses back");
            let keys: Vec<&String> = parsed.as_object().expect("a map").keys().collect();
            let top_level: Vec<&str> = text
                .lines()
                .filter(|l| !l.starts_with([' ', '-']))
                .filter_map(|l| l.split(':').next())
                .collect();
            assert_eq!(
                keys,
                [
                    "auth",
                    "http",
                    "log",
                    "redis",
                    "storage",
                    "validation",
                    "version"
                ]
            );
            assert_eq!(top_level, keys, "emitted once, in sorted order:\n{text}");
        }
    }
}
