//! Non-apply PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic
//! merge patch. Pure functions over JSON; no store access.
//!
//! Strategic merge patch is treated as a JSON merge patch except that lists whose items all
//! carry a string `name` are merged per item (the strategy Kubernetes uses for containers,
//! env, volumes, ports...). `$patch` directives are not supported.

use serde_json::Value;

use super::status::{ApiError, ApiResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(content_type: &str) -> ApiResult<Self> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        match essence {
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchKind::Apply),
            other => Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, \
                 application/apply-patch+yaml (got {other:?})"
            ))),
        }
    }
}

fn strategic_merge(target: &mut Value, patch: &Value) {
    let keyed = |items: &[Value]| {
        !items.is_empty()
            && items
                .iter()
                .all(|i| i.get("name").is_some_and(Value::is_string))
    };
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, pv) in p {
                if pv.is_null() {
                    t.remove(k);
                } else if let Some(tv) = t.get_mut(k) {
                    strategic_merge(tv, pv);
                } else {
                    let mut fresh = Value::Null;
                    strategic_merge(&mut fresh, pv);
                    t.insert(k.clone(), fresh);
                }
            }
        }
        (Value::Array(t), Value::Array(p)) if keyed(p) && (t.is_empty() || keyed(t)) => {
            for item in p {
                match t.iter_mut().find(|ti| ti.get("name") == item.get("name")) {
                    Some(ti) => strategic_merge(ti, item),
                    None => t.push(item.clone()),
                }
            }
        }
        (t, p) => {
            *t = p.clone();
            if let Value::Object(m) = t {
                m.retain(|_, v| !v.is_null());
            }
        }
    }
}

/// Applies a non-apply patch body to `current`, returning the patched object.
pub fn apply_patch(kind: PatchKind, current: &Value, body: &[u8]) -> ApiResult<Value> {
    let mut doc = current.clone();
    match kind {
        PatchKind::Merge | PatchKind::Strategic => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("invalid patch: {e}")))?;
            if kind == PatchKind::Merge {
                json_patch::merge(&mut doc, &patch);
            } else {
                strategic_merge(&mut doc, &patch);
            }
        }
        PatchKind::Json => {
            let mut patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("invalid JSON patch: {e}")))?;
            // The apiserver's JSON patch library treats a missing path as null in a `test`
            // operation (kube's finalizer helper relies on it for the first finalizer).
            patch.0.retain(|op| match op {
                json_patch::PatchOperation::Test(test) => {
                    !(test.value.is_null() && doc.pointer(&test.path.to_string()).is_none())
                }
                _ => true,
            });
            json_patch::patch(&mut doc, &patch).map_err(|e| ApiError::Invalid {
                kind: current
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                name: current
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                message: format!("JSON patch failed: {e}"),
            })?;
        }
        PatchKind::Apply => {
            return Err(ApiError::BadRequest(
                "apply patches are handled by apply.rs".into(),
            ));
        }
    }
    Ok(doc)
}
