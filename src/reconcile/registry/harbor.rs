//! Harbor-specific steps of the Registry reconcile: what render needs to know (database ready, core
//! running), CloudNativePG discovery, the generated Secrets (created once, never updated, except the
//! one-time PKCS#8 → PKCS#1 rewrite of a token key; a serving certificate signed by the generated
//! CA) and the Database/Cache/Storage/Components conditions.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};

use super::error::ReconcileError;
use kube::{Client, ResourceExt};
use tracing::info;

use crate::crd::{Reason, Registry, condition};
use crate::reconcile::apply::FIELD_MANAGER;
use crate::reconcile::children::{ChildStores, readiness};
use crate::reconcile::discovery::Served;
use crate::reconcile::status::DesiredCondition;
use crate::render::{
    self, GeneratedSecret, HarborObserved, Rendered, RenderedObject, SecretGenerator,
};
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

/// The CloudNativePG kinds `rendered` needs that are not served (`plural.group`, sorted; empty when
/// render needs none, or all are): the pass must not apply objects of a kind that does not exist.
pub fn missing_cnpg_kinds(rendered: &Rendered, served: &Served) -> Vec<String> {
    let group = render::cnpg_cluster_resource().group;
    let mut missing: Vec<String> = rendered
        .objects
        .iter()
        .map(|o| &o.resource)
        .filter(|r| r.group == group && !served.has(r))
        .map(|r| format!("{}.{}", r.plural, r.group))
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

fn harbor_name(registry: &Registry, component: &str) -> String {
    render::harbor_component_name(&registry.name_any(), component)
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
            readiness(&render::cnpg_cluster_resource().kind, cluster.as_ref()),
            Some(Ok(()))
        ),
        components_exist: core.is_some(),
    }
}

/// `namespace/name` of the existing CloudNativePG Cluster `spec.harbor.database.cnpg.clusterRef`
/// names when it does not exist (one read; `None` when it exists or no existing Cluster is used).
/// The platform's Cluster is not ours, so it is not in the label-selected watch cache.
pub async fn absent_cnpg_cluster(
    registry: &Registry,
    client: &Client,
) -> Result<Option<String>, ReconcileError> {
    let Some(cnpg) = registry
        .spec
        .harbor
        .as_ref()
        .and_then(|h| h.database.as_ref())
        .and_then(|d| d.cnpg.as_ref())
    else {
        return Ok(None);
    };
    let reference = &cnpg.cluster_ref;
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &reference.namespace,
        &render::cnpg_cluster_resource(),
    );
    let found = api
        .get_metadata_opt(&reference.name)
        .await
        .map_err(|source| ReconcileError::Read {
            what: "the CloudNativePG Cluster of spec.harbor.database.cnpg.clusterRef",
            source,
        })?;
    Ok(found
        .is_none()
        .then(|| format!("{}/{}", reference.namespace, reference.name)))
}

/// Create every generated Secret that does not exist yet; existing ones are never touched, so values
/// never rotate (a serving certificate's CA is read back only to sign it, never logged). Returns the
/// names created.
pub async fn ensure_secrets(
    client: &Client,
    registry: &Registry,
    wanted: &[GeneratedSecret],
) -> Result<Vec<String>, HarborError> {
    let mut created = Vec::new();
    // Values created in this pass, by Secret name: a serving certificate signed by a CA created
    // just before it needs no read.
    let mut generated: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let namespace = registry.namespace().unwrap_or_default();
    // CAs and copied passwords are read from the Registry's namespace, where they are generated.
    let home: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    for secret in wanted {
        let api: Api<Secret> = Api::namespaced(client.clone(), &secret.namespace);
        let read_error = |source| HarborError::CreateSecret {
            name: secret.name.clone(),
            source,
        };
        let exists = match token_key_of(secret) {
            // The token Secret is read whole: one generated before PKCS#1 is rewritten once.
            Some(key) => match api.get_opt(&secret.name).await.map_err(read_error)? {
                Some(existing) => {
                    rewrite_pkcs8_token_key(&api, existing, key).await?;
                    true
                }
                None => false,
            },
            None => api
                .get_metadata_opt(&secret.name)
                .await
                .map_err(read_error)?
                .is_some(),
        };
        if exists {
            continue;
        }
        let mut issuers = BTreeMap::new();
        for issuer in issuers_of(secret) {
            let values = match generated.get(&issuer) {
                Some(values) => Some(values.clone()),
                None => home
                    .get_opt(&issuer)
                    .await
                    .map_err(|source| HarborError::CreateSecret {
                        name: issuer.clone(),
                        source,
                    })?
                    .as_ref()
                    .map(super::access::secret_values),
            };
            issuers.extend(values.map(|v| (issuer, v)));
        }
        let values =
            secrets::generate_with(secret, &|name| issuers.get(name).cloned()).map_err(|e| {
                HarborError::Generate {
                    name: secret.name.clone(),
                    message: e.to_string(),
                }
            })?;
        let object = Secret {
            metadata: ObjectMeta {
                name: Some(secret.name.clone()),
                namespace: Some(secret.namespace.clone()),
                labels: Some(secret.labels.clone()),
                // An owner reference cannot point across namespaces (the garbage collector would
                // treat it as absent and delete the copy): the finalizer deletes such a Secret.
                owner_references: (secret.namespace == namespace)
                    .then(|| render::owner_reference(registry))
                    .flatten()
                    .map(|o| vec![o]),
                ..Default::default()
            },
            data: Some(
                values
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                    .collect(),
            ),
            type_: Some(secret.secret_type.clone()),
            ..Default::default()
        };
        match api
            .create(
                &PostParams {
                    field_manager: Some(FIELD_MANAGER.to_string()),
                    ..Default::default()
                },
                &object,
            )
            .await
        {
            Ok(_) => {
                created.push(secret.name.clone());
                generated.insert(secret.name.clone(), values);
            }
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

/// The key of a token-service key pair in `secret`, if it generates one.
fn token_key_of(secret: &GeneratedSecret) -> Option<&str> {
    secret.keys.iter().find_map(|(key, generator)| {
        matches!(generator, SecretGenerator::TokenKeyPair { .. }).then_some(key.as_str())
    })
}

/// Harbor core reads its token-signing key with libtrust, which refuses PKCS#8 (`BEGIN PRIVATE
/// KEY`), the encoding this operator generated before. Such a Secret is rewritten once, in place,
/// to PKCS#1 with the same key: only that key's bytes change (the certificate still matches, nothing
/// else rotates). The replace carries the resourceVersion read, so a concurrent change wins and the
/// next reconcile looks again. Core reads the key file on each token request and mounts it without
/// subPath, so the kubelet's refresh of the volume reaches it without a restart.
async fn rewrite_pkcs8_token_key(
    api: &Api<Secret>,
    mut existing: Secret,
    key: &str,
) -> Result<(), HarborError> {
    let name = existing.name_any();
    let Some(current) = existing
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .and_then(|value| std::str::from_utf8(&value.0).ok())
    else {
        return Ok(());
    };
    let rewritten =
        secrets::token_key_as_pkcs1(&name, current).map_err(|e| HarborError::Generate {
            name: name.clone(),
            message: e.to_string(),
        })?;
    let Some(pkcs1) = rewritten else {
        return Ok(());
    };
    if let Some(data) = existing.data.as_mut() {
        data.insert(key.to_string(), ByteString(pkcs1.into_bytes()));
    }
    existing.metadata.managed_fields = None;
    match api
        .replace(
            &name,
            &PostParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..Default::default()
            },
            &existing,
        )
        .await
    {
        Ok(_) => {
            info!(secret = %name, key, "token key rewritten from PKCS#8 to PKCS#1 (same key)");
            Ok(())
        }
        // Someone changed it since the read: the next reconcile reads it again.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(source) => Err(HarborError::CreateSecret { name, source }),
    }
}

/// Names of the generated Secrets whose values `secret` is generated from (a serving certificate's
/// CA, the source of a copied password), all in the Registry's namespace.
fn issuers_of(secret: &GeneratedSecret) -> Vec<String> {
    secret
        .keys
        .iter()
        .filter_map(|(_, generator)| match generator {
            SecretGenerator::ServingCertificate { issuer, .. } => Some(issuer.secret.clone()),
            SecretGenerator::CopyOf { secret, .. } => Some(secret.clone()),
            _ => None,
        })
        .collect()
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
        if let Some(Err(waiting)) = readiness(&object.resource.kind, stores.live(object).as_ref()) {
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
                if ready {
                    Reason::Ready
                } else {
                    Reason::NotReady
                },
                waiting.join("; "),
            )
        })
        .collect()
}

fn group_of(registry: &Registry, object: &RenderedObject) -> &'static str {
    let name = object.name();
    match object.resource.kind.as_str() {
        "Cluster" | "Database" | "DatabaseRole" => condition::DATABASE_READY,
        "StatefulSet" if name == harbor_name(registry, "redis") => condition::CACHE_READY,
        "PersistentVolumeClaim" if name == harbor_name(registry, "registry") => {
            condition::STORAGE_READY
        }
        _ => condition::COMPONENTS_READY,
    }
}
