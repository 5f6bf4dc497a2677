//! The managed database: a CloudNativePG `Cluster` (postgresql.cnpg.io/v1) with database `registry`
//! owned by `harbor` and `max_connections` 1024 (plus the backup method's settings), as small typed
//! structs of our own (only the fields we set). Pure.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ApiResource;
use serde::{Deserialize, Serialize};

use super::common::{Ctx, MANAGED_DATABASE, MANAGED_OWNER, database_cluster_name};
use crate::crd::BackupMethod;
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
    pub postgresql: PostgresConfiguration,
    pub storage: ClusterStorage,
    pub bootstrap: Bootstrap,
    /// `spec.backup`: the VolumeSnapshotClass when backups use volume snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<ClusterBackup>,
    /// `spec.plugins`: the Barman Cloud plugin as WAL archiver when backups go to an object store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<ClusterPlugin>,
}

/// `spec.backup` of a CNPG `Cluster`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBackup {
    pub volume_snapshot: VolumeSnapshotConfiguration,
}

/// `spec.backup.volumeSnapshot`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotConfiguration {
    pub class_name: String,
}

/// One entry of `spec.plugins` (CNPG-I).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPlugin {
    pub name: String,
    #[serde(rename = "isWALArchiver")]
    pub is_wal_archiver: bool,
    pub parameters: BTreeMap<String, String>,
}

/// `spec.postgresql`: server parameters (CNPG passes them to postgresql.conf).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PostgresConfiguration {
    pub parameters: BTreeMap<String, String>,
}

/// `max_connections` of the managed database: PostgreSQL's default of 100 is below what Harbor's
/// pools may open (core `POSTGRESQL_MAX_OPEN_CONNS` 900, the exporter as many, as harbor-helm sets
/// them); Harbor's own database image (`goharbor/harbor-db`, `make/photon/db/docker-entrypoint.sh`,
/// `POSTGRES_MAX_CONNECTIONS`) and the chart's internal database run with 1024, which we follow.
/// An allowed connection costs shared memory only (process slot, lock table: roughly 20 MiB for
/// 1024), never a backend until used; CNPG restarts the instances to apply a change.
pub const MAX_CONNECTIONS: &str = "1024";

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
    let backup = super::cnpg::backup(ctx);
    let snapshot_class = backup
        .as_ref()
        .filter(|b| b.method == BackupMethod::VolumeSnapshot)
        .and_then(|b| b.volume_snapshot.as_ref());
    let object_store = backup
        .as_ref()
        .filter(|b| b.method == BackupMethod::ObjectStore)
        .and_then(|b| b.object_store.as_ref());
    let resource = cluster_resource();
    let mut cluster = Cluster {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
        metadata: ctx.meta_named(&database_cluster_name(&ctx.name), "database"),
        spec: ClusterSpec {
            instances: managed.instances,
            postgresql: PostgresConfiguration {
                parameters: BTreeMap::from([(
                    "max_connections".to_string(),
                    MAX_CONNECTIONS.to_string(),
                )]),
            },
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
            backup: snapshot_class.map(|s| ClusterBackup {
                volume_snapshot: VolumeSnapshotConfiguration {
                    class_name: s.class_name.clone(),
                },
            }),
            plugins: object_store
                .map(|store| ClusterPlugin {
                    name: super::cnpg::BARMAN_CLOUD_PLUGIN.to_string(),
                    is_wal_archiver: true,
                    parameters: BTreeMap::from([(
                        "barmanObjectName".to_string(),
                        store.name.clone(),
                    )]),
                })
                .into_iter()
                .collect(),
        },
    };
    let metadata = std::mem::take(&mut cluster.metadata);
    RenderedObject::from_parts(resource, metadata, serde_json::to_value(&cluster)?)
}
