//! A proxy-cache RegistryProject's upstream: the Harbor registry endpoint `<project>-upstream`
//! (`spec.proxyCache`: URL, Harbor adapter, optional credentials from a Secret in the
//! RegistryProject's namespace), created before the project (which is then created with its
//! `registry_id`) and put back when its URL, access key or description drifts. Harbor never answers
//! an endpoint's secret, so the description carries a fingerprint of the credentials
//! ([`credential_fingerprint`]): a password changed in the Secret no longer matches it and is sent
//! (`updateRegistry`). Harbor cannot change an endpoint's type nor make an existing project a proxy
//! cache: both are reported, not forced. The finalizer deletes the endpoint once its project is gone
//! ([`delete_endpoint`]). No password is ever logged or written anywhere but to Harbor.

use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::ResourceExt;
use kube::api::Api;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::crd::{Reason, RegistryProject};
use crate::harbor::{
    HarborClient, HarborError, Project, Registry, RegistryCredential, RegistryUpdate, Secret,
};
use crate::reconcile::context::Context;

/// Name of the registry endpoint behind the proxy-cache project `project`.
pub(super) fn endpoint_name(project: &str) -> String {
    format!("{project}-upstream")
}

/// A fingerprint of the upstream credentials: the first 16 hex characters of a SHA-256 over the
/// endpoint's name (a salt: equal passwords of two endpoints differ), the username and the password,
/// each length-prefixed. It changes whenever the username or password does and does not reveal
/// either (a weak password could still be guessed offline, as from any hash).
pub(super) fn credential_fingerprint(endpoint: &str, username: &str, password: &Secret) -> String {
    let mut hasher = Sha256::new();
    for part in [
        "registry-operator proxy-cache credentials v1",
        endpoint,
        username,
        password.expose(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let mut hex = hex::encode(hasher.finalize());
    hex.truncate(16);
    hex
}

/// The description the operator gives the endpoint of project `project`: who made it and, with
/// credentials, their fingerprint (`…; credentials sha256:<16 hex>`).
pub(super) fn description(
    project: &str,
    endpoint: &str,
    credentials: Option<&(String, Secret)>,
) -> String {
    let mut text = format!("registry-operator: upstream of the proxy-cache project {project}");
    if let Some((username, password)) = credentials {
        text.push_str("; credentials sha256:");
        text.push_str(&credential_fingerprint(endpoint, username, password));
    }
    text
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
                description: Some(description(name, &endpoint, credentials.as_ref())),
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
            let wanted = description(name, &endpoint, credentials.as_ref());
            let key = credentials.as_ref().map(|c| c.0.as_str());
            let current_key = current.credential.as_ref().map(|c| c.access_key.as_str());
            let mut drift = Vec::new();
            if current.url != proxy.endpoint {
                drift.push("URL");
            }
            if key.unwrap_or_default() != current_key.unwrap_or_default() {
                drift.push("access key");
            }
            if current.description.as_deref().unwrap_or_default() != wanted {
                drift.push("credentials or description");
            }
            if !drift.is_empty() {
                // Credentials removed from the spec: empty ones clear what Harbor holds.
                let clear = key.is_none() && !current_key.unwrap_or_default().is_empty();
                let (key, secret) = match credentials {
                    Some((key, secret)) => (Some(key), Some(secret)),
                    None if clear => (Some(String::new()), Some(Secret::new(""))),
                    None => (None, None),
                };
                let update = RegistryUpdate {
                    description: Some(wanted),
                    url: Some(proxy.endpoint.clone()),
                    credential_type: key
                        .as_ref()
                        .filter(|k| !k.is_empty())
                        .map(|_| "basic".to_string()),
                    access_key: key,
                    access_secret: secret,
                };
                client.update_registry(id, &update).await.map_err(harbor)?;
                done.push(format!(
                    "proxy-cache endpoint corrected ({})",
                    drift.join(", ")
                ));
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

/// Deletes the registry endpoint of the proxy-cache project `project` (`deleteRegistry`), called once
/// the project is gone from Harbor. An endpoint already gone is fine; one Harbor refuses to delete
/// (412: another project or a replication policy still uses it) is kept and the refusal logged.
pub(super) async fn delete_endpoint(
    client: &HarborClient,
    owner: &str,
    project: &str,
) -> Result<(), HarborError> {
    let endpoint = endpoint_name(project);
    let Some(found) = client.find_registry(&endpoint).await? else {
        return Ok(());
    };
    match client.delete_registry(found.id.unwrap_or_default()).await {
        Ok(()) => {
            info!(registry_project = %owner, harbor_endpoint = %endpoint, "Harbor registry endpoint deleted")
        }
        Err(HarborError::NotFound { .. }) => {}
        Err(HarborError::Refused {
            status: 412,
            message,
            ..
        }) => {
            warn!(registry_project = %owner, harbor_endpoint = %endpoint, %message, "Harbor registry endpoint kept: still in use")
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_follows_the_credentials_and_hides_them() {
        let secret = Secret::new("hub-token-s3cr3t");
        let base = credential_fingerprint("a-upstream", "puller", &secret);
        assert_eq!(base.len(), 16);
        assert!(base.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            base,
            credential_fingerprint("a-upstream", "puller", &secret)
        );
        for other in [
            credential_fingerprint("a-upstream", "puller", &Secret::new("hub-token-s3cr3u")),
            credential_fingerprint("a-upstream", "pullers", &secret),
            credential_fingerprint("b-upstream", "puller", &secret),
            // Length prefixes: moving a character between fields changes the fingerprint.
            credential_fingerprint("a-upstream", "pulle", &Secret::new("rhub-token-s3cr3t")),
        ] {
            assert_ne!(base, other);
        }
        let text = description("a", "a-upstream", Some(&("puller".to_string(), secret)));
        assert_eq!(
            text,
            format!(
                "registry-operator: upstream of the proxy-cache project a; credentials sha256:{base}"
            )
        );
        assert!(!text.contains("s3cr3t"));
        assert_eq!(
            description("a", "a-upstream", None),
            "registry-operator: upstream of the proxy-cache project a"
        );
    }
}
