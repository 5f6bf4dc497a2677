//! How nodes and pods reach Harbor by one name, `spec.host`, over TLS: the generated CA and serving
//! certificate (as generated-Secret descriptions), the CA exported in a ConfigMap, the CoreDNS
//! rewrite in `kube-system/coredns-custom` for pods, and the k3s `registries.yaml` for nodes. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use super::common::{APP, Ctx};
use super::generated_secret_name;
use crate::render::generated::{GeneratedSecret, Issuer, SecretCopy, SecretGenerator};
use crate::render::k3s::{Registries, host_name, node_ca_file};
use crate::render::observed::ObservedConfigMap;
use crate::render::{RenderError, RenderedObject};

/// Namespace and name of the ConfigMap k3s' CoreDNS imports `*.override` and `*.server` keys from.
pub const COREDNS_CUSTOM_NAMESPACE: &str = "kube-system";
/// Name of k3s' CoreDNS extension ConfigMap.
pub const COREDNS_CUSTOM_NAME: &str = "coredns-custom";
/// Ingress controller Service of k3s (Traefik), the rewrite target for `ingressClassName: traefik`.
pub const TRAEFIK_SERVICE: &str = "traefik.kube-system.svc.cluster.local";
/// Key of the CA private key and certificate in the CA Secret, and of the certificate in the
/// exported ConfigMap.
pub const CA_KEY: &str = "ca.key";
pub const CA_CERT: &str = "ca.crt";

/// The Secret the Ingress serves: the user's `expose.tlsSecretName`, else the generated one for
/// this host (its name carries a hash of the host, so a new host gets a new certificate from the
/// same CA and nodes keep trusting it).
pub(super) fn tls_secret_name(ctx: &Ctx<'_>) -> String {
    match &ctx.expose.tls_secret_name {
        Some(secret) => secret.clone(),
        None => {
            let digest = Sha256::digest(host_name(&ctx.host).as_bytes());
            ctx.object_name(&format!("tls-{}", &hex::encode(digest)[..8]))
        }
    }
}

fn generates_tls(ctx: &Ctx<'_>) -> bool {
    ctx.expose.tls_secret_name.is_none()
}

fn ca_issuer(ctx: &Ctx<'_>) -> Issuer {
    Issuer {
        secret: generated_secret_name(ctx, "ca"),
        key: CA_KEY.to_string(),
        certificate_key: CA_CERT.to_string(),
        common_name: format!(
            "registry-operator CA of Registry {}/{}",
            ctx.namespace, ctx.name
        ),
    }
}

/// The CA and the serving certificate the operator generates once when no TLS Secret is given.
pub(super) fn generated_tls_secrets(ctx: &Ctx<'_>) -> Vec<GeneratedSecret> {
    if !generates_tls(ctx) {
        return Vec::new();
    }
    let issuer = ca_issuer(ctx);
    vec![
        GeneratedSecret {
            name: issuer.secret.clone(),
            namespace: ctx.namespace.clone(),
            labels: ctx.secret_labels(),
            secret_type: "Opaque".to_string(),
            keys: vec![(
                CA_KEY.to_string(),
                SecretGenerator::CertificateAuthority {
                    certificate_key: CA_CERT.to_string(),
                    common_name: issuer.common_name.clone(),
                },
            )],
        },
        GeneratedSecret {
            name: tls_secret_name(ctx),
            namespace: ctx.namespace.clone(),
            labels: ctx.secret_labels(),
            secret_type: "kubernetes.io/tls".to_string(),
            keys: vec![(
                "tls.key".to_string(),
                SecretGenerator::ServingCertificate {
                    certificate_key: "tls.crt".to_string(),
                    issuer,
                    dns_names: vec![host_name(&ctx.host).to_string()],
                },
            )],
        },
    ]
}

/// `<registry>-harbor-ca`: the generated CA certificate (public) for nodes and Kyverno, filled in by
/// the controller from the CA Secret.
pub(super) fn exported_ca(
    ctx: &Ctx<'_>,
) -> Result<Option<(RenderedObject, SecretCopy)>, RenderError> {
    if !generates_tls(ctx) {
        return Ok(None);
    }
    let name = ctx.object_name("ca");
    let copy = SecretCopy {
        namespace: ctx.namespace.clone(),
        config_map: name.clone(),
        key: CA_CERT.to_string(),
        secret: ca_issuer(ctx).secret,
        secret_key: CA_CERT.to_string(),
    };
    let config_map = ConfigMap {
        metadata: ctx.meta_named(&name, "ca"),
        data: Some(BTreeMap::from([(CA_CERT.to_string(), copy.placeholder())])),
        ..Default::default()
    };
    Ok(Some((RenderedObject::from_typed(config_map)?, copy)))
}

/// The CoreDNS line that makes pods resolve `spec.host` to the ingress controller's Service; `None`
/// when the ingress controller is unknown (a class other than traefik and no `ingressService`).
pub fn coredns_rewrite(
    ctx_host: &str,
    ingress_class: &str,
    service: Option<&str>,
) -> Option<String> {
    let target = service.or((ingress_class == "traefik").then_some(TRAEFIK_SERVICE))?;
    Some(format!(
        "rewrite name exact {} {target}",
        host_name(ctx_host)
    ))
}

/// `kube-system/coredns-custom` with this Registry's rewrite, when the ConfigMap is absent or this
/// Registry's; otherwise a warning naming the line to add by hand (someone else's ConfigMap is
/// never touched). Cross-namespace, so no owner reference: prune and the finalizer find it by label.
pub(super) fn coredns_custom(
    ctx: &Ctx<'_>,
    observed: Option<&ObservedConfigMap>,
) -> Result<(Option<RenderedObject>, Option<String>), RenderError> {
    let Some(line) = coredns_rewrite(
        &ctx.host,
        &ctx.expose.ingress_class_name,
        ctx.expose.ingress_service.as_deref(),
    ) else {
        return Ok((None, None));
    };
    let ours = (ctx.namespace.clone(), ctx.name.clone());
    match observed {
        Some(existing) if existing.written_by.as_ref() != Some(&ours) => {
            let present = existing.data.iter().any(|(key, value)| {
                key.ends_with(".override") && value.lines().any(|l| l.trim() == line)
            });
            let warning = (!present).then(|| format!(
                "{COREDNS_CUSTOM_NAMESPACE}/{COREDNS_CUSTOM_NAME} exists and is not this Registry's, so pods cannot resolve {} yet: add the line `{line}` to one of its *.override keys",
                host_name(&ctx.host)
            ));
            Ok((None, warning))
        }
        _ => {
            let body = format!(
                "# Registry {}/{} (registry-operator): pods reach Harbor by the name the nodes use.\n{line}\n",
                ctx.namespace, ctx.name
            );
            let config_map = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(COREDNS_CUSTOM_NAME.to_string()),
                    namespace: Some(COREDNS_CUSTOM_NAMESPACE.to_string()),
                    labels: Some(ctx.owner().labels(APP, "dns")),
                    ..Default::default()
                },
                data: Some(BTreeMap::from([(
                    format!("{}-{}-harbor.override", ctx.namespace, ctx.name),
                    body,
                )])),
                ..Default::default()
            };
            Ok((Some(RenderedObject::from_typed(config_map)?), None))
        }
    }
}

/// The k3s `registries.yaml`: `spec.host` mirrored to `https://<host>`, trusting the exported CA at
/// the path the README tells the user to put it (only for the generated CA; a certificate of the
/// user's own is expected to chain to a CA the nodes already trust, or the user adds `ca_file`).
pub(super) fn registries_yaml(ctx: &Ctx<'_>) -> Result<String, RenderError> {
    let mut registries = Registries::default();
    registries.mirror(&ctx.host, &format!("https://{}", ctx.host));
    if generates_tls(ctx) {
        registries.trust(&ctx.host, &node_ca_file(&ctx.host));
    }
    registries.to_yaml()
}
