//! `RenderedObject`: a typed object erased to a `DynamicObject` plus its API resource, and the apply order.
//! Pure conversion; no client here.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::{ApiResource, DynamicObject};
use serde::Serialize;

use super::RenderError;

/// One object the operator wants to exist, ready for server-side apply.
#[derive(Clone, Debug)]
pub struct RenderedObject {
    /// Group, version, kind and plural of the object.
    pub resource: ApiResource,
    /// The object itself (apiVersion and kind set).
    pub object: DynamicObject,
}

impl RenderedObject {
    /// Erase a typed object, keeping its API resource. Takes the object by value so its metadata moves
    /// into the result instead of going through JSON and back.
    pub fn from_typed<K>(mut typed: K) -> Result<Self, RenderError>
    where
        K: Resource<DynamicType = ()> + Serialize,
    {
        let metadata = std::mem::take(typed.meta_mut());
        Self::from_parts(
            ApiResource::erase::<K>(&()),
            metadata,
            serde_json::to_value(&typed)?,
        )
    }

    /// Wrap an object of a kind without k8s-openapi types (CNPG, Kyverno), given its API resource.
    pub fn from_value(
        resource: ApiResource,
        mut value: serde_json::Value,
    ) -> Result<Self, RenderError> {
        let metadata = value
            .as_object_mut()
            .and_then(|fields| fields.remove("metadata"))
            .ok_or_else(|| <serde_json::Error as serde::de::Error>::missing_field("metadata"))?;
        Self::from_parts(resource, serde_json::from_value(metadata)?, value)
    }

    /// Assemble an object from its metadata and the JSON of the rest; `apiVersion`, `kind` and any
    /// `metadata` left in `value` (an emptied one, when the caller moved it out) are dropped.
    pub fn from_parts(
        resource: ApiResource,
        metadata: ObjectMeta,
        value: serde_json::Value,
    ) -> Result<Self, RenderError> {
        // Split the map by hand: deserializing `DynamicObject` goes through serde's `flatten`, which
        // buffers every field of the object into an intermediate tree before building the result.
        let serde_json::Value::Object(mut fields) = value else {
            return Err(<serde_json::Error as serde::de::Error>::custom(
                "a Kubernetes object must be a JSON object",
            )
            .into());
        };
        fields.remove("apiVersion");
        fields.remove("kind");
        fields.remove("metadata");
        let object = DynamicObject {
            types: Some(kube::api::TypeMeta {
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
            }),
            metadata,
            data: serde_json::Value::Object(fields),
        };
        Ok(Self { resource, object })
    }

    /// Name of the object.
    pub fn name(&self) -> &str {
        self.object.metadata.name.as_deref().unwrap_or_default()
    }

    /// Namespace of the object (`None` for cluster-scoped kinds).
    pub fn namespace(&self) -> Option<&str> {
        self.object.metadata.namespace.as_deref()
    }

    /// `Kind/namespace/name`, for logs and tests.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.resource.kind,
            self.namespace().unwrap_or("-"),
            self.name()
        )
    }

    /// Position in the apply order: configuration and storage before the workloads that mount them,
    /// workloads before what exposes or announces them.
    pub fn apply_rank(&self) -> u8 {
        // The KEP-1755 announcement goes last: it tells clients the registry is there.
        if self.resource.kind == "ConfigMap" && self.namespace() == Some("kube-public") {
            return u8::MAX;
        }
        apply_rank(&self.resource.kind)
    }
}

/// Apply order by kind (lower first); prune runs in the reverse order.
pub fn apply_rank(kind: &str) -> u8 {
    match kind {
        "Secret" => 0,
        "ConfigMap" => 1,
        "PersistentVolumeClaim" => 2,
        "Cluster" => 3,
        "Service" => 4,
        "StatefulSet" => 5,
        "Deployment" => 6,
        "Job" => 7,
        "Ingress" => 8,
        _ => 9,
    }
}

/// Sort objects into apply order, stable by kind rank, namespace and name.
pub fn sort_for_apply(objects: &mut [RenderedObject]) {
    objects.sort_by(|a, b| {
        (a.apply_rank(), a.namespace(), a.name()).cmp(&(b.apply_rank(), b.namespace(), b.name()))
    });
}
