//! Harbor's own settings the spec declares, kept through Harbor's REST API once core runs:
//! `spec.harbor.readOnly` (configuration `read_only`) and `spec.harbor.gc` (the GC schedule). Reads,
//! compares, writes only what differs (a steady state sends reads only). Logs no credential; renders
//! nothing.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use serde_json::{Map, Value, json};

use crate::crd::{HarborGcSpec, Registry};
use crate::harbor::{HarborClient, Schedule, ScheduleObj};
use crate::reconcile::context::Context;
use crate::render;

/// What a sync changed in Harbor (for the log), or why it could not (the condition's message).
pub(super) type SyncResult = Result<Vec<&'static str>, String>;

/// Whether the spec asks the operator to keep any Harbor setting (else no request is sent).
pub(super) fn wanted(registry: &Registry) -> bool {
    registry
        .spec
        .harbor
        .as_ref()
        .is_some_and(|h| h.read_only.is_some() || h.gc.is_some())
}

/// Bring Harbor's read-only flag and GC schedule to what the spec says.
pub(super) async fn sync(registry: &Registry, ctx: &Context) -> SyncResult {
    let Some(harbor) = registry.spec.harbor.as_ref() else {
        return Ok(Vec::new());
    };
    let client = admin_client(registry, ctx).await?;
    let mut changed = Vec::new();
    if let Some(read_only) = harbor.read_only {
        let current = client
            .read_only()
            .await
            .map_err(|e| format!("spec.harbor.readOnly: reading Harbor's configuration: {e}"))?;
        if current != read_only {
            client
                .set_read_only(read_only)
                .await
                .map_err(|e| format!("spec.harbor.readOnly: {e}"))?;
            changed.push(if read_only {
                "read-only on"
            } else {
                "read-only off"
            });
        }
    }
    if let Some(gc) = &harbor.gc {
        let current = client
            .gc_schedule()
            .await
            .map_err(|e| format!("spec.harbor.gc: reading Harbor's GC schedule: {e}"))?;
        let desired = gc_schedule(gc);
        match current {
            Some(existing) if existing.schedule.is_some() => {
                if !same_gc(&existing, gc) {
                    client
                        .update_gc_schedule(&desired)
                        .await
                        .map_err(|e| format!("spec.harbor.gc: {e}"))?;
                    changed.push("GC schedule updated");
                }
            }
            _ => {
                client
                    .create_gc_schedule(&desired)
                    .await
                    .map_err(|e| format!("spec.harbor.gc: {e}"))?;
                changed.push("GC schedule created");
            }
        }
    }
    Ok(changed)
}

/// Whether a switch away from this Harbor was set back after Harbor was frozen (its record still
/// names a pre-flip phase from the freeze on), so Harbor is to be made writable again; not when
/// `spec.harbor.readOnly` keeps it read-only (then [`sync`] keeps it).
pub(super) fn freeze_to_lift(registry: &Registry) -> bool {
    let from_harbor = registry
        .status
        .as_ref()
        .and_then(|s| s.migration.as_ref())
        .and_then(|m| m.from_mode)
        == Some(crate::crd::RegistryMode::Harbor);
    let kept_read_only = registry
        .spec
        .harbor
        .as_ref()
        .and_then(|h| h.read_only)
        .unwrap_or(false);
    from_harbor
        && !kept_read_only
        && super::migration::source_frozen(&super::migration::recorded(registry))
}

/// Set Harbor's read-only flag (a switch away from Harbor freezes it; a cancelled switch lifts it).
/// `Ok(true)` when it changed.
pub(super) async fn set_read_only(
    registry: &Registry,
    ctx: &Context,
    read_only: bool,
) -> Result<bool, String> {
    let client = admin_client(registry, ctx).await?;
    let current = client
        .read_only()
        .await
        .map_err(|e| format!("reading Harbor's configuration: {e}"))?;
    if current == read_only {
        return Ok(false);
    }
    client
        .set_read_only(read_only)
        .await
        .map_err(|e| format!("setting read_only={read_only}: {e}"))?;
    Ok(true)
}

/// A client for the Registry's Harbor as `admin`, the password read from its admin Secret (never
/// logged); shared by the Registry and RegistryProject controllers.
pub(crate) async fn admin_client(
    registry: &Registry,
    ctx: &Context,
) -> Result<HarborClient, String> {
    let (secret_name, key) = render::harbor_admin_password_ref(registry);
    admin_client_using(registry, ctx, &secret_name, &key).await
}

/// [`admin_client`] with the password from `secret_name`/`key` in the Registry's namespace (a
/// reference recorded earlier, when the spec may no longer name it).
pub(super) async fn admin_client_using(
    registry: &Registry,
    ctx: &Context,
    secret_name: &str,
    key: &str,
) -> Result<HarborClient, String> {
    let namespace = registry.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let password = secrets
        .get_opt(secret_name)
        .await
        .map_err(|e| format!("reading the admin Secret {namespace}/{secret_name}: {e}"))?
        .and_then(|s| s.data)
        .and_then(|d| {
            d.get(key)
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        })
        .ok_or_else(|| format!("the admin Secret {namespace}/{secret_name} has no key {key}"))?;
    let url = ctx
        .settings
        .harbor_api_url
        .clone()
        .unwrap_or_else(|| render::harbor_api_url(registry));
    HarborClient::new(&url, "admin", password).map_err(|e| e.to_string())
}

/// The schedule Harbor is asked to keep: `Custom` with the spec's cron, one worker.
fn gc_schedule(gc: &HarborGcSpec) -> Schedule {
    let mut parameters = Map::new();
    parameters.insert("delete_untagged".to_string(), json!(gc.delete_untagged));
    parameters.insert("workers".to_string(), json!(1));
    Schedule {
        schedule: Some(ScheduleObj {
            kind: "Custom".to_string(),
            cron: Some(gc.schedule.clone()),
            next_scheduled_time: None,
        }),
        parameters: Some(parameters),
    }
}

/// Whether Harbor's schedule already is the spec's (cron and `delete_untagged`).
fn same_gc(existing: &crate::harbor::GcHistory, gc: &HarborGcSpec) -> bool {
    let cron = existing
        .schedule
        .as_ref()
        .filter(|s| s.kind == "Custom")
        .and_then(|s| s.cron.as_deref());
    let delete_untagged = existing
        .job_parameters
        .as_deref()
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .and_then(|p| p["delete_untagged"].as_bool())
        .unwrap_or(false);
    cron == Some(gc.schedule.as_str()) && delete_untagged == gc.delete_untagged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harbor::GcHistory;

    fn existing(cron: &str, parameters: &str) -> GcHistory {
        GcHistory {
            id: Some(1),
            schedule: Some(ScheduleObj {
                kind: "Custom".to_string(),
                cron: Some(cron.to_string()),
                next_scheduled_time: None,
            }),
            job_parameters: Some(parameters.to_string()),
        }
    }

    #[test]
    fn the_same_schedule_needs_no_write_and_any_difference_does() {
        let gc = HarborGcSpec {
            schedule: "0 0 3 * * 6".to_string(),
            delete_untagged: true,
        };
        assert!(same_gc(
            &existing("0 0 3 * * 6", r#"{"delete_untagged":true,"workers":1}"#),
            &gc
        ));
        assert!(!same_gc(
            &existing("0 0 4 * * 6", r#"{"delete_untagged":true}"#),
            &gc
        ));
        assert!(!same_gc(
            &existing("0 0 3 * * 6", r#"{"delete_untagged":false}"#),
            &gc
        ));
        let desired = gc_schedule(&gc);
        assert_eq!(
            desired.schedule.unwrap().cron.as_deref(),
            Some("0 0 3 * * 6")
        );
        assert_eq!(desired.parameters.unwrap()["delete_untagged"], json!(true));
    }
}
