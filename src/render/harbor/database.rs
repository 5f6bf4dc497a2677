//! The managed database: a CloudNativePG `Cluster` (postgresql.cnpg.io/v1) with database `registry`
//! owned by `harbor`, as small typed structs of our own (only the fields we set). Pure.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ApiResource;
use serde::{Deserialize, Serialize};

use super::common::{Ctx, MANAGED_DATABASE, MANAGED_OWNER, database_cluster_name};
use crate::render::{RenderError, RenderedObject};

/// A CNPG `Cluster` with the fields the operator sets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: ClusterSpec,
}

/// `spec` of a CNPG `Cluster`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    pub instances: i32,
    pub storage: ClusterStorage,
    pub bootstrap: Bootstrap,
}

/// `spec.storage`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStorage {
    pub size: Quantity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
}

/// `spec.bootstrap`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrap {
    pub initdb: InitDb,
}

/// `spec.bootstrap.initdb`: CNPG creates the owner's password in the Secret `<cluster>-app`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InitDb {
    pub database: String,
    pub owner: String,
}

/// API resource of CNPG `Cluster`.
pub fn cluster_resource() -> ApiResource {
    ApiResource {
        group: "postgresql.cnpg.io".to_string(),
        version: "v1".to_string(),
        api_version: "postgresql.cnpg.io/v1".to_string(),
        kind: "Cluster".to_string(),
        plural: "clusters".to_string(),
    }
}

pub(super) fn cluster(ctx: &Ctx<'_>) -> Result<RenderedObject, RenderError> {
    let managed = ctx
        .spec
        .database
        .as_ref()
        .and_then(|d| d.managed.clone())
        .unwrap_or_default();
    let resource = cluster_resource();
    let mut cluster = Cluster {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
        metadata: ctx.meta_named(&database_cluster_name(&ctx.name), "database"),
        spec: ClusterSpec {
            instances: managed.instances,
            storage: ClusterStorage {
                size: managed.storage.size,
                storage_class: managed.storage.storage_class_name,
            },
            bootstrap: Bootstrap {
                initdb: InitDb {
                    database: MANAGED_DATABASE.to_string(),
                    owner: MANAGED_OWNER.to_string(),
                },
            },
        },
    };
    let metadata = std::mem::take(&mut cluster.metadata);
    RenderedObject::from_parts(resource, metadata, serde_json::to_value(&cluster)?)
}
