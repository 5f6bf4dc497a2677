//! Harbor-specific steps of the Registry reconcile: what render needs to know (database ready, core
//! running), CloudNativePG discovery, the generated Secrets (created once, never updated) and the
//! Database/Cache/Storage/Components conditions.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, PostParams};
use kube::{Client, ResourceExt};

use super::children::{ChildStores, readiness};
use super::status::DesiredCondition;
use crate::crd::{Registry, condition};
use crate::render::{self, GeneratedSecret, HarborObserved, Rendered, RenderedObject};
use crate::secrets;

/// Why a Harbor step failed.
#[derive(Debug, thiserror::Error)]
pub enum HarborError {
    /// Creating a generated Secret failed (transient).
    #[error("creating Secret {name}: {source}")]
    CreateSecret { name: String, source: kube::Error },
    /// Generating a Secret's values failed (a bug or an exhausted RNG).
    #[error("generating Secret {name}: {message}")]
    Generate { name: String, message: String },
}

/// Whether the CloudNativePG `Cluster` kind is served.
pub async fn cnpg_served(client: &Client) -> bool {
    let resource = render::cnpg_cluster_resource();
    client
        .list_api_group_resources(&resource.api_version)
        .await
        .is_ok_and(|list| list.resources.iter().any(|r| r.name == resource.plural))
}

fn harbor_name(registry: &Registry, component: &str) -> String {
    format!("{}-harbor-{component}", registry.name_any())
}

/// What render needs: is the managed database Ready, does core already run. The Cluster is read from
/// the watch cache, or directly when CloudNativePG was installed after the operator started.
pub async fn observe(registry: &Registry, client: &Client, stores: &ChildStores) -> HarborObserved {
    let namespace = registry.namespace();
    let cluster_resource = render::cnpg_cluster_resource();
    let cluster_name = harbor_name(registry, "db");
    let cluster = if stores.watches(&cluster_resource) {
        stores.get(&cluster_resource, namespace.as_deref(), &cluster_name)
    } else {
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
            client.clone(),
            namespace.as_deref().unwrap_or_default(),
            &cluster_resource,
        );
        api.get_opt(&cluster_name).await.ok().flatten()
    };
    let core = stores.get(
        &ApiResource::erase::<Deployment>(&()),
        namespace.as_deref(),
        &harbor_name(registry, "core"),
    );
    HarborObserved {
        database_ready: matches!(
            readiness(&render::cnpg_cluster_resource(), cluster.as_ref()),
            Some(Ok(()))
        ),
        components_exist: core.is_some(),
    }
}

/// Whether the render needs CloudNativePG.
pub fn needs_cnpg(rendered: &Rendered) -> bool {
    rendered
        .objects
        .iter()
        .any(|o| o.resource.group == render::cnpg_cluster_resource().group)
}

/// Create every generated Secret that does not exist yet; existing ones are never read back into
/// logs or touched, so values never rotate. Returns the names created.
pub async fn ensure_secrets(
    client: &Client,
    registry: &Registry,
    wanted: &[GeneratedSecret],
) -> Result<Vec<String>, HarborError> {
    let mut created = Vec::new();
    for secret in wanted {
        let api: Api<Secret> = Api::namespaced(client.clone(), &secret.namespace);
        let exists = api
            .get_metadata_opt(&secret.name)
            .await
            .map_err(|source| HarborError::CreateSecret {
                name: secret.name.clone(),
                source,
            })?
            .is_some();
        if exists {
            continue;
        }
        let values = secrets::generate(secret).map_err(|e| HarborError::Generate {
            name: secret.name.clone(),
            message: e.to_string(),
        })?;
        let object = Secret {
            metadata: ObjectMeta {
                name: Some(secret.name.clone()),
                namespace: Some(secret.namespace.clone()),
                labels: Some(secret.labels.clone()),
                owner_references: render::owner_reference(registry).map(|o| vec![o]),
                ..Default::default()
            },
            data: Some(
                values
                    .into_iter()
                    .map(|(k, v)| (k, ByteString(v.into_bytes())))
                    .collect(),
            ),
            type_: Some("Opaque".to_string()),
            ..Default::default()
        };
        match api
            .create(
                &PostParams {
                    field_manager: Some(super::apply::FIELD_MANAGER.to_string()),
                    ..Default::default()
                },
                &object,
            )
            .await
        {
            Ok(_) => created.push(secret.name.clone()),
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(source) => {
                return Err(HarborError::CreateSecret {
                    name: secret.name.clone(),
                    source,
                });
            }
        }
    }
    Ok(created)
}

/// The four Harbor conditions, from the readiness of the rendered children.
pub fn conditions(
    registry: &Registry,
    rendered: &Rendered,
    stores: &ChildStores,
) -> Vec<DesiredCondition> {
    let mut groups: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for type_ in [
        condition::DATABASE_READY,
        condition::CACHE_READY,
        condition::STORAGE_READY,
        condition::COMPONENTS_READY,
    ] {
        groups.insert(type_, Vec::new());
    }
    for object in &rendered.objects {
        if let Some(Err(waiting)) = readiness(&object.resource, stores.live(object).as_ref()) {
            groups
                .entry(group_of(registry, object))
                .or_default()
                .push(waiting);
        }
    }
    if let Some(held_back) = &rendered.held_back {
        groups
            .entry(condition::COMPONENTS_READY)
            .or_default()
            .push(held_back.clone());
    }
    groups
        .into_iter()
        .map(|(type_, waiting)| {
            let ready = waiting.is_empty();
            DesiredCondition::new(
                type_,
                ready,
                if ready { "Ready" } else { "NotReady" },
                waiting.join("; "),
            )
        })
        .collect()
}

fn group_of(registry: &Registry, object: &RenderedObject) -> &'static str {
    let name = object.name();
    match object.resource.kind.as_str() {
        "Cluster" => condition::DATABASE_READY,
        "StatefulSet" if name == harbor_name(registry, "redis") => condition::CACHE_READY,
        "PersistentVolumeClaim" if name == harbor_name(registry, "registry") => {
            condition::STORAGE_READY
        }
        _ => condition::COMPONENTS_READY,
    }
}
