//! The short-lived Harbor robot the Jobs of a switch use instead of `admin`. Into Harbor: the
//! destination project is created if missing and a project robot gets push and pull on it only. Out
//! of Harbor: a system robot gets `catalog:read` (Harbor's `/v2/_catalog` checks exactly that) and
//! pull on every project, nothing else. Made before the first Job, its credentials kept in the
//! Secret the Jobs read; after the flip (or when the switch is cancelled, or the Registry deleted)
//! the robot is deleted in Harbor, then its Secret. It must never log a secret or put one in a
//! message; it decides no phase.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use tracing::{info, warn};

use super::error::registry_id;
use super::harbor_api::{admin_client, admin_client_using};
use crate::crd::Registry;
use crate::harbor::{Access, HarborClient, HarborError, ProjectReq, RobotCreate, RobotPermission};
use crate::reconcile::context::Context;
use crate::render::labels::Owner;
use crate::render::migration::{
    ROBOT_PASSWORD_KEY, ROBOT_USERNAME_KEY, robot_name, robot_secret_name,
};
use crate::render::owner_reference;

/// Annotation of the robot Secret: the robot's id in Harbor (to delete it).
pub(super) const ROBOT_ID: &str = "registry.aisp.dev/harbor-robot-id";
/// Annotation of the robot Secret: when Harbor expires the robot (Unix seconds).
pub(super) const ROBOT_EXPIRES_AT: &str = "registry.aisp.dev/harbor-robot-expires-at";
/// Annotation of the robot Secret: `<secret>/<key>` of the admin password it was created with, so
/// it can be deleted after the spec stopped naming Harbor (a cancelled switch).
pub(super) const ADMIN_REF: &str = "registry.aisp.dev/harbor-admin-password-ref";
/// Harbor counts robot lifetimes in days; one day is the shortest it offers.
const LIFETIME_DAYS: i64 = 1;
/// A robot closer than this to its expiry is replaced before a new Job starts with it (a running
/// Job keeps the one it started with).
const RENEW_BEFORE_SECONDS: i64 = 6 * 3600;

fn secret_resource() -> ApiResource {
    ApiResource::erase::<Secret>(&())
}

/// The robot Secret of `registry` from the watch cache.
fn cached(registry: &Registry, ctx: &Context) -> Option<DynamicObject> {
    ctx.stores.get(
        &secret_resource(),
        registry.namespace().as_deref(),
        &robot_secret_name(registry),
    )
}

fn annotation_i64(secret: &DynamicObject, key: &str) -> Option<i64> {
    secret.annotations().get(key).and_then(|v| v.parse().ok())
}

/// Whether a robot recorded as expiring at `expires_at` (Unix seconds; `-1` never) is still good
/// for a Job starting at `now`.
pub(super) fn fresh_enough(expires_at: Option<i64>, now: Timestamp) -> bool {
    match expires_at {
        Some(-1) => true,
        Some(at) => at - now.as_second() > RENEW_BEFORE_SECONDS,
        None => false,
    }
}

/// Which way a switch copies, as far as Harbor is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    /// Into Harbor's project of this name: push and pull there.
    Into(String),
    /// Out of Harbor: read its catalog, pull from every project.
    OutOf,
}

/// The robot Harbor is asked to create for `direction`.
pub(super) fn robot_request(registry: &Registry, direction: &Direction) -> RobotCreate {
    let id = registry_id(registry);
    let (level, description, permissions) = match direction {
        Direction::Into(project) => (
            "project",
            format!("registry-operator: copies {id} into {project}; deleted after the switch"),
            vec![RobotPermission::repository(project, &["pull", "push"])],
        ),
        Direction::OutOf => (
            "system",
            format!("registry-operator: copies {id} out of Harbor; deleted after the switch"),
            vec![
                RobotPermission {
                    kind: "system".to_string(),
                    namespace: "/".to_string(),
                    access: vec![Access {
                        resource: "catalog".to_string(),
                        action: "read".to_string(),
                        effect: None,
                    }],
                },
                // `*`: every project (Harbor's scope `/project/*`).
                RobotPermission::repository("*", &["pull"]),
            ],
        ),
    };
    RobotCreate {
        name: robot_name(registry),
        description: Some(description),
        level: level.to_string(),
        disable: None,
        duration: LIFETIME_DAYS,
        permissions,
    }
}

/// The name Harbor gives the robot (its prefix `robot$`, and the project for a project robot).
fn full_name(registry: &Registry, direction: &Direction) -> String {
    match direction {
        Direction::Into(project) => format!("robot${project}+{}", robot_name(registry)),
        Direction::OutOf => format!("robot${}", robot_name(registry)),
    }
}

/// Make sure the migration robot exists for a Job of a switch going `direction`: reused when its
/// Secret is cached and either a Job already runs with it (`job_running`) or it is far from its
/// expiry; else (into Harbor) the project is created if missing, any robot of the same name is
/// deleted and a new one created. `Ok(true)` when something was created.
pub(super) async fn ensure(
    registry: &Registry,
    ctx: &Context,
    direction: &Direction,
    job_running: bool,
    now: Timestamp,
) -> Result<bool, String> {
    let existing = cached(registry, ctx);
    if let Some(secret) = &existing
        && (job_running || fresh_enough(annotation_i64(secret, ROBOT_EXPIRES_AT), now))
    {
        return Ok(false);
    }
    let client = admin_client(registry, ctx).await?;
    let id = registry_id(registry);
    if let Direction::Into(project) = direction {
        ensure_project(&client, &id, project).await?;
    }
    // A robot left by an earlier attempt (its Secret lost, or expiring) is replaced: Harbor refuses
    // a second robot of the same name.
    delete_robots_named(&client, &full_name(registry, direction)).await?;
    let robot = client
        .create_robot(&robot_request(registry, direction))
        .await
        .map_err(|e| format!("creating the migration robot in Harbor: {e}"))?;
    let password = robot.secret.expose().to_string();
    write_secret(
        registry,
        ctx,
        existing.is_some(),
        &robot.name,
        &password,
        robot.id,
        robot.expires_at.unwrap_or(-1),
    )
    .await?;
    info!(registry = %id, robot = %robot.name, expires_at = ?robot.expires_at, "migration robot created (its secret is never logged)");
    Ok(true)
}

/// Create the destination project (private) unless Harbor has it.
async fn ensure_project(client: &HarborClient, id: &str, project: &str) -> Result<(), String> {
    if client
        .find_project(project)
        .await
        .map_err(|e| format!("spec.migration.destinationProject {project:?}: {e}"))?
        .is_none()
    {
        let request = ProjectReq {
            project_name: Some(project.to_string()),
            public: Some(false),
            ..Default::default()
        };
        match client.create_project(&request).await {
            Ok(_) => info!(registry = %id, project, "destination project created in Harbor"),
            // Created meanwhile (by a RegistryProject, for example): fine.
            Err(HarborError::Conflict { .. }) => {}
            Err(e) => {
                return Err(format!(
                    "spec.migration.destinationProject {project:?}: creating it: {e}"
                ));
            }
        }
    }
    Ok(())
}

/// Delete every robot named `full_name`.
async fn delete_robots_named(client: &HarborClient, full_name: &str) -> Result<(), String> {
    let robots = client
        .find_robots(full_name)
        .await
        .map_err(|e| format!("listing robots in Harbor: {e}"))?;
    for robot in robots.iter().filter(|r| r.name == full_name) {
        delete_robot(client, robot.id).await?;
    }
    Ok(())
}

async fn delete_robot(client: &HarborClient, id: i64) -> Result<(), String> {
    match client.delete_robot(id).await {
        Ok(()) | Err(HarborError::NotFound { .. }) => Ok(()),
        Err(e) => Err(format!("deleting the migration robot {id} in Harbor: {e}")),
    }
}

async fn write_secret(
    registry: &Registry,
    ctx: &Context,
    replace: bool,
    username: &str,
    password: &str,
    id: i64,
    expires_at: i64,
) -> Result<(), String> {
    let name = robot_secret_name(registry);
    let namespace = registry.namespace().unwrap_or_default();
    let registry_name = registry.name_any();
    let owner = Owner::registry(&registry_name, &namespace);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(owner.labels("registry-operator", "migration-robot")),
            annotations: Some(BTreeMap::from([
                (ROBOT_ID.to_string(), id.to_string()),
                (ROBOT_EXPIRES_AT.to_string(), expires_at.to_string()),
                (ADMIN_REF.to_string(), {
                    let (secret, key) = crate::render::harbor_admin_password_ref(registry);
                    format!("{secret}/{key}")
                }),
            ])),
            owner_references: owner_reference(registry).map(|o| vec![o]),
            ..Default::default()
        },
        type_: Some("Opaque".to_string()),
        string_data: Some(BTreeMap::from([
            (ROBOT_USERNAME_KEY.to_string(), username.to_string()),
            (ROBOT_PASSWORD_KEY.to_string(), password.to_string()),
        ])),
        ..Default::default()
    };
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = if replace {
        api.replace(&name, &PostParams::default(), &secret).await
    } else {
        api.create(&PostParams::default(), &secret).await
    };
    result
        .map(drop)
        .map_err(|e| format!("writing Secret {namespace}/{name}: {e}"))
}

/// After the switch (or when it was cancelled, or the Registry goes): delete the migration robot in
/// Harbor, then its Secret. Nothing is sent when no robot Secret is cached. When Harbor no longer
/// serves (`harbor_kept` false: a cancelled switch into Harbor, a Registry being deleted) and cannot
/// be reached, the Secret goes anyway: Harbor expires the robot by itself within a day.
pub(super) async fn release(
    registry: &Registry,
    ctx: &Context,
    harbor_kept: bool,
) -> Result<(), String> {
    let Some(secret) = cached(registry, ctx) else {
        return Ok(());
    };
    let id = registry_id(registry);
    if let Some(robot) = annotation_i64(&secret, ROBOT_ID) {
        let recorded = secret
            .annotations()
            .get(ADMIN_REF)
            .and_then(|r| r.split_once('/'))
            .map(|(secret, key)| (secret.to_string(), key.to_string()));
        let client = match recorded {
            Some((secret, key)) => admin_client_using(registry, ctx, &secret, &key).await,
            None => admin_client(registry, ctx).await,
        };
        let deleted = match client {
            Ok(client) => delete_robot(&client, robot).await,
            Err(message) => Err(message),
        };
        match deleted {
            Ok(()) => {
                info!(registry = %id, robot, "migration robot deleted in Harbor");
            }
            Err(message) if harbor_kept => return Err(message),
            Err(message) => {
                warn!(registry = %id, robot, %message, "Harbor no longer serves; its migration robot expires by itself");
            }
        }
    }
    delete_secret(registry, ctx).await
}

/// Delete the robot Secret (404 is fine).
async fn delete_secret(registry: &Registry, ctx: &Context) -> Result<(), String> {
    let namespace = registry.namespace().unwrap_or_default();
    let name = robot_secret_name(registry);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(format!("deleting Secret {namespace}/{name}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_robot_is_reused_until_six_hours_before_it_expires() {
        let now: Timestamp = "2026-12-03T12:00:00Z".parse().unwrap();
        let at = |hours: i64| Some(now.as_second() + hours * 3600);
        assert!(fresh_enough(at(23), now));
        assert!(fresh_enough(at(7), now));
        assert!(!fresh_enough(at(6), now));
        assert!(!fresh_enough(at(-1), now));
        assert!(fresh_enough(Some(-1), now), "-1: never expires");
        assert!(
            !fresh_enough(None, now),
            "no record: replace rather than guess"
        );
    }
}
