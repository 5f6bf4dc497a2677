//! A proxy-cache RegistryProject's upstream: the Harbor registry endpoint `<project>-upstream`
//! (`spec.proxyCache`: URL, Harbor adapter, optional credentials from a Secret in the
//! RegistryProject's namespace), created before the project (which is then created with its
//! `registry_id`) and put back when its URL or access key drifts. Harbor cannot change an endpoint's
//! type nor make an existing project a proxy cache: both are reported, not forced.

use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::ResourceExt;
use kube::api::Api;

use crate::crd::{Reason, RegistryProject};
use crate::harbor::{
    HarborClient, HarborError, Project, Registry, RegistryCredential, RegistryUpdate, Secret,
};
use crate::reconcile::context::Context;

/// Name of the registry endpoint behind the proxy-cache project `project`.
pub(super) fn endpoint_name(project: &str) -> String {
    format!("{project}-upstream")
}

/// The upstream's username and password from `credentialsSecretRef`; `None` without one.
async fn credentials(
    project: &RegistryProject,
    ctx: &Context,
) -> Result<Option<(String, Secret)>, (Reason, String)> {
    let Some(reference) = project
        .spec
        .proxy_cache
        .as_ref()
        .and_then(|p| p.credentials_secret_ref.as_ref())
    else {
        return Ok(None);
    };
    let namespace = project.namespace().unwrap_or_default();
    let missing = |what: String| {
        (
            Reason::ApplyFailed,
            format!("spec.proxyCache.credentialsSecretRef: {what}"),
        )
    };
    let secrets: Api<KubeSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    let secret = secrets
        .get_opt(&reference.name)
        .await
        .map_err(|e| {
            missing(format!(
                "reading Secret {namespace}/{}: {e}",
                reference.name
            ))
        })?
        .ok_or_else(|| missing(format!("no Secret {namespace}/{}", reference.name)))?;
    let value = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .ok_or_else(|| {
                missing(format!(
                    "Secret {namespace}/{} has no key {key}",
                    reference.name
                ))
            })
    };
    Ok(Some((
        value(&reference.username_key)?,
        Secret::new(value(&reference.password_key)?),
    )))
}

/// The registry endpoint of the proxy cache, created or put back; its id. `None` when the project is
/// no proxy cache. Also refuses an existing project that is not a proxy cache of that endpoint.
pub(super) async fn ensure_endpoint(
    client: &HarborClient,
    ctx: &Context,
    project: &RegistryProject,
    name: &str,
    found: Option<&Project>,
    done: &mut Vec<String>,
) -> Result<Option<i64>, (Reason, String)> {
    let Some(proxy) = &project.spec.proxy_cache else {
        return Ok(None);
    };
    let harbor = |e: HarborError| (super::harbor_reason(&e), e.to_string());
    let credentials = credentials(project, ctx).await?;
    let endpoint = endpoint_name(name);
    let kind = proxy.provider.harbor();
    let id = match client.find_registry(&endpoint).await.map_err(harbor)? {
        None => {
            let body = Registry {
                id: None,
                name: endpoint.clone(),
                url: proxy.endpoint.clone(),
                kind: kind.to_string(),
                credential: credentials.map(|(key, secret)| RegistryCredential {
                    kind: "basic".to_string(),
                    access_key: key,
                    access_secret: secret,
                }),
                insecure: false,
                description: Some(format!(
                    "registry-operator: upstream of the proxy-cache project {name}"
                )),
            };
            let id = client.create_registry(&body).await.map_err(harbor)?;
            done.push("proxy-cache endpoint created".to_string());
            id
        }
        Some(current) => {
            let id = current.id.unwrap_or_default();
            if current.kind != kind {
                return Err((
                    Reason::ApplyFailed,
                    format!(
                        "spec.proxyCache.provider: Harbor's registry endpoint {endpoint} is of type {}; Harbor cannot change it: delete the endpoint (and the project) in Harbor or set spec.projectName",
                        current.kind
                    ),
                ));
            }
            let key = credentials.as_ref().map(|c| c.0.as_str());
            let current_key = current.credential.as_ref().map(|c| c.access_key.as_str());
            let key_drift = key.unwrap_or_default() != current_key.unwrap_or_default();
            if current.url != proxy.endpoint || key_drift {
                let update = RegistryUpdate {
                    url: Some(proxy.endpoint.clone()),
                    credential_type: credentials.as_ref().map(|_| "basic".to_string()),
                    access_key: credentials.as_ref().map(|c| c.0.clone()),
                    access_secret: credentials.map(|c| c.1),
                };
                client.update_registry(id, &update).await.map_err(harbor)?;
                done.push("proxy-cache endpoint corrected".to_string());
            }
            id
        }
    };
    if let Some(existing) = found
        && existing.registry_id.unwrap_or_default() != id
    {
        return Err((
            Reason::ApplyFailed,
            format!(
                "spec.proxyCache: Harbor project {name} exists and is not a proxy cache of {endpoint}; Harbor cannot make an existing project a proxy cache: delete it in Harbor or set spec.projectName"
            ),
        ));
    }
    Ok(Some(id))
}
