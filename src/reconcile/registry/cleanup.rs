//! The Registry finalizer: before a Registry goes, delete what it wrote outside its namespace (shared
//! ConfigMaps, CNPG objects on an existing Cluster) and release (or delete, per `retention`) its
//! volume claims and managed database. Everything else
//! goes by owner-reference garbage collection; this must not touch anything another owner labelled.

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use tracing::info;

use super::access;
use super::error::{ReconcileError, registry_id};
use crate::crd::{Registry, Retention};
use crate::reconcile::apply;
use crate::reconcile::context::Context;
use crate::render::labels::{self, Owner};

/// Before the Registry goes: delete the ConfigMaps it wrote outside its namespace (the KEP-1755
/// announcement, `kube-system/coredns-custom`); keep (orphan) or delete its PVCs per `retention`.
/// Everything else goes by owner-reference garbage collection.
pub(super) async fn cleanup(registry: &Registry, ctx: &Context) -> Result<Action, ReconcileError> {
    let id = registry_id(registry);
    let name = registry.name_any();
    let namespace = registry.namespace().unwrap_or_default();
    let owner = Owner::registry(&name, &namespace);
    for (shared_namespace, shared_name) in access::SHARED_CONFIG_MAPS {
        let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), shared_namespace);
        let Some(config_map) = config_maps
            .get_opt(shared_name)
            .await
            .map_err(ReconcileError::Cleanup)?
        else {
            continue;
        };
        let labels = config_map.labels();
        let ours = labels.get(labels::OWNER_NAME) == Some(&name)
            && labels.get(labels::OWNER_NAMESPACE) == Some(&namespace)
            && labels
                .get(labels::OWNER_KIND)
                .is_none_or(|kind| kind == "Registry");
        if ours {
            ignore_not_found(
                config_maps
                    .delete(shared_name, &DeleteParams::default())
                    .await
                    .map(|_| ()),
            )
            .map_err(ReconcileError::Cleanup)?;
        }
    }
    delete_foreign_children(ctx, &owner, &namespace, &id).await?;
    // Best effort: Harbor may be going with the Registry (then the robot expires by itself).
    if let Err(message) = super::robot::release(registry, ctx, false).await {
        tracing::warn!(registry = %id, %message, "the migration robot Secret is left to garbage collection");
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
    let owned = claims
        .list(&kube::api::ListParams::default().labels(&owner.selector()))
        .await
        .map_err(ReconcileError::Cleanup)?;
    for claim in owned {
        let claim_name = claim.name_any();
        let result = match registry.spec.retention {
            Retention::Retain => claims
                .patch(
                    &claim_name,
                    &PatchParams::default(),
                    &Patch::Merge(apply::orphan_patch(&id)),
                )
                .await
                .map(|_| ()),
            Retention::Delete => claims
                .delete(&claim_name, &DeleteParams::default())
                .await
                .map(|_| ()),
        };
        ignore_not_found(result).map_err(ReconcileError::Cleanup)?;
        info!(registry = %id, claim = %claim_name, retention = ?registry.spec.retention, "released volume claim");
    }
    // A managed database goes with its owner unless retained: CloudNativePG would delete its volumes.
    // Listed from the API server, not the watch cache: a Cluster the cache has not seen yet must not
    // be left to the garbage collector.
    if registry.spec.retention == Retention::Retain {
        let resource = crate::render::cnpg_cluster_resource();
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &namespace, &resource);
        let clusters = match api
            .list_metadata(&kube::api::ListParams::default().labels(&owner.selector()))
            .await
        {
            Ok(list) => list.items,
            // CloudNativePG not served: there is no Cluster to keep.
            Err(kube::Error::Api(status)) if status.code == 404 => Vec::new(),
            Err(error) => return Err(ReconcileError::Cleanup(error)),
        };
        for cluster in clusters {
            let cluster_name = cluster.metadata.name.clone().unwrap_or_default();
            let patch = Patch::Merge(apply::orphan_patch(&id));
            ignore_not_found(
                api.patch(&cluster_name, &PatchParams::default(), &patch)
                    .await
                    .map(|_| ()),
            )
            .map_err(ReconcileError::Cleanup)?;
            info!(registry = %id, cluster = %cluster_name, "released database cluster (retention Retain)");
        }
    }
    Ok(Action::await_change())
}

/// Delete what the Registry labelled outside its own namespace besides the shared ConfigMaps (the
/// CNPG `Database`/`DatabaseRole` and the role's password copy on an existing Cluster): an owner
/// reference cannot cross namespaces, so garbage collection would never remove them. CloudNativePG
/// keeps or drops the database itself per the reclaim policy render wrote from `spec.retention`.
async fn delete_foreign_children(
    ctx: &Context,
    owner: &Owner<'_>,
    namespace: &str,
    id: &str,
) -> Result<(), ReconcileError> {
    for (resource, object) in ctx.stores.labelled(&owner.selector_labels()) {
        let Some(object_namespace) = object.metadata.namespace.as_deref() else {
            continue;
        };
        if object_namespace == namespace || resource.kind == "ConfigMap" {
            continue;
        }
        let object_name = object.metadata.name.clone().unwrap_or_default();
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), object_namespace, &resource);
        ignore_not_found(
            api.delete(&object_name, &DeleteParams::default())
                .await
                .map(|_| ()),
        )
        .map_err(ReconcileError::Cleanup)?;
        info!(registry = %id, kind = %resource.kind, namespace = %object_namespace, name = %object_name, "deleted child outside the Registry's namespace");
    }
    Ok(())
}

fn ignore_not_found(result: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match result {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other,
    }
}
