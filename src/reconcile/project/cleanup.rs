//! The RegistryProject finalizer's work: delete its robots, its Secrets, and the Harbor project when
//! it is empty or `retention: Delete`, then a proxy cache's registry endpoint (Harbor refuses to
//! delete an endpoint a project still uses: it goes only once the project is gone, and stays with a
//! kept project). It must never delete a project holding repositories against `retention: Retain`,
//! nor log a secret.

use std::collections::BTreeSet;

use kube::runtime::controller::Action;
use tracing::{info, warn};

use super::proxy::delete_endpoint;
use super::secrets::delete_secrets;
use super::{ProjectContext, ProjectError, harbor_client, project_id, registry_of};
use crate::crd::{RegistryMode, RegistryProject, Retention};
use crate::harbor::HarborError;
use crate::harbor::plan::RobotRole;

/// Before the RegistryProject goes: its robots, its Secrets, the project when it is empty or
/// `retention: Delete` (Harbor refuses to delete a project holding repositories: it is then kept),
/// and a proxy cache's registry endpoint once the project is gone.
pub(super) async fn cleanup(
    project: &RegistryProject,
    ctx: &ProjectContext,
) -> Result<Action, ProjectError> {
    let id = project_id(project);
    if let Some(registry) =
        registry_of(project, ctx).filter(|r| r.spec.mode == RegistryMode::Harbor)
    {
        let name = project.project_name();
        let client = harbor_client(&registry, &ctx.base)
            .await
            .map_err(ProjectError::Harbor)?;
        let failed = |e: HarborError| ProjectError::Harbor(e.to_string());
        for role in [RobotRole::Pull, RobotRole::Push] {
            let full_name = role.full_name(&name);
            let robots = client
                .find_robots(&format!("{name}+{}", role.short()))
                .await
                .map_err(failed)?;
            for robot in robots.iter().filter(|r| r.name == full_name) {
                match client.delete_robot(robot.id).await {
                    Ok(()) | Err(HarborError::NotFound { .. }) => {}
                    Err(e) => return Err(failed(e)),
                }
            }
        }
        let mut project_gone = true;
        if client.find_project(&name).await.map_err(failed)?.is_some() {
            let empty = client.project_is_empty(&name).await.map_err(failed)?;
            if empty || project.spec.retention == Retention::Delete {
                match client.delete_project(&name).await {
                    Ok(()) => {
                        info!(registry_project = %id, harbor_project = %name, "Harbor project deleted")
                    }
                    Err(HarborError::Refused {
                        status: 412,
                        message,
                        ..
                    }) => {
                        project_gone = false;
                        warn!(registry_project = %id, harbor_project = %name, %message, "Harbor project kept: it holds repositories")
                    }
                    Err(e) => return Err(failed(e)),
                }
            } else {
                project_gone = false;
                info!(registry_project = %id, harbor_project = %name, "Harbor project kept (retention Retain, not empty)");
            }
        }
        if project_gone && project.spec.proxy_cache.is_some() {
            delete_endpoint(&client, &id, &name).await.map_err(failed)?;
        }
    }
    delete_secrets(project, ctx, &BTreeSet::new())
        .await
        .map_err(ProjectError::Secret)?;
    Ok(Action::await_change())
}
