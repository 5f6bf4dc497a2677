//! The Kubernetes Secrets a RegistryProject's robots are copied into: read the cached copy, create
//! or update each wanted one (never one that is not this RegistryProject's), delete those no longer
//! wanted. It must never log a secret or put one in an error message; what to write is `harbor::plan`'s.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DeleteParams, PostParams};
use tracing::info;

use super::{ProjectContext, project_id};
use crate::crd::{Reason, RegistryProject};
use crate::harbor::plan;
use crate::reconcile::context::Context;

pub(super) fn secret_resource() -> ApiResource {
    ApiResource::erase::<KubeSecret>(&())
}

/// The cached copy of a Secret the operator manages, as JSON.
pub(super) fn cached_secret(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Option<serde_json::Value> {
    ctx.stores
        .get(&secret_resource(), Some(namespace), name)
        .and_then(|o| serde_json::to_value(o).ok())
}

/// Create or update each wanted Secret that differs from its cached copy; delete this project's
/// Secrets that are no longer wanted.
pub(super) async fn write_secrets(
    project: &RegistryProject,
    ctx: &ProjectContext,
    wanted: &[KubeSecret],
) -> Result<(), (Reason, String)> {
    let client = &ctx.base.client;
    let mut keep = BTreeSet::new();
    for secret in wanted {
        let namespace = secret.metadata.namespace.clone().unwrap_or_default();
        let name = secret.name_any();
        keep.insert((namespace.clone(), name.clone()));
        let api: Api<KubeSecret> = Api::namespaced(client.clone(), &namespace);
        let failed = |e: kube::Error| {
            let why = match &e {
                kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
                other => other.to_string(),
            };
            (
                Reason::ApplyFailed,
                format!("Secret {namespace}/{name}: {why}"),
            )
        };
        let live = cached_secret(&ctx.base, &namespace, &name);
        if live
            .as_ref()
            .is_some_and(|l| plan::secret_matches(l, secret))
        {
            continue;
        }
        let created = match live {
            Some(_) => None,
            None => Some(api.create(&PostParams::default(), secret).await),
        };
        match created {
            Some(Ok(_)) => continue,
            Some(Err(kube::Error::Api(e))) if e.code == 409 => {}
            Some(Err(e)) => return Err(failed(e)),
            None => {}
        }
        // It exists: update it only when it is this RegistryProject's (never a Secret of someone else).
        let current = api.get(&name).await.map_err(failed)?;
        let ours = plan::owner(project)
            .selector_labels()
            .iter()
            .all(|(k, v)| current.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v));
        if !ours {
            return Err((
                Reason::Conflict,
                format!(
                    "Secret {namespace}/{name} exists and is not this RegistryProject's; delete it or pick another name"
                ),
            ));
        }
        if plan::secret_matches(&serde_json::to_value(&current).unwrap_or_default(), secret) {
            continue;
        }
        let mut update = secret.clone();
        update.metadata.resource_version = current.metadata.resource_version.clone();
        api.replace(&name, &PostParams::default(), &update)
            .await
            .map_err(failed)?;
    }
    delete_secrets(project, ctx, &keep)
        .await
        .map_err(|m| (Reason::ApplyFailed, m))
}

/// Delete this RegistryProject's Secrets (by owner labels, from the cache) except those in `keep`.
pub(super) async fn delete_secrets(
    project: &RegistryProject,
    ctx: &ProjectContext,
    keep: &BTreeSet<(String, String)>,
) -> Result<(), String> {
    let resource = secret_resource();
    for (kind, object) in ctx
        .base
        .stores
        .labelled(&plan::owner(project).selector_labels())
    {
        if kind.kind != resource.kind {
            continue;
        }
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        let name = object.metadata.name.clone().unwrap_or_default();
        if keep.contains(&(namespace.clone(), name.clone())) {
            continue;
        }
        let api: Api<KubeSecret> = Api::namespaced(ctx.base.client.clone(), &namespace);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                info!(registry_project = %project_id(project), secret = %format!("{namespace}/{name}"), "Secret deleted")
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(format!("deleting Secret {namespace}/{name}: {e}")),
        }
    }
    Ok(())
}
