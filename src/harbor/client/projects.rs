//! [`HarborClient`] methods for a project and what hangs off it: the project itself
//! (`/projects`), its robot accounts (`/robots`), its storage quota (`/quotas`) and the registry
//! endpoint of a proxy cache (`/registries`). Each names its swagger `operationId`; none logs or
//! returns a credential outside the typed answer.

use reqwest::Method;

use super::{HarborClient, HarborError};
use crate::harbor::types::{
    Project, ProjectReq, ProjectSummary, Quota, QuotaUpdateReq, Registry, Robot, RobotCreate,
    RobotCreated, RobotSec, Secret,
};

impl HarborClient {
    // ---- projects ----

    /// The project named `name` (`GET /projects?name=`, operationId `listProjects`). Harbor matches
    /// `name` loosely, so the answer is filtered to the exact name here.
    pub async fn find_project(&self, name: &str) -> Result<Option<Project>, HarborError> {
        let mut call = self.call("listProjects", Method::GET, &["projects"]);
        call.url
            .query_pairs_mut()
            .append_pair("name", name)
            .append_pair("page_size", "100");
        let projects: Vec<Project> = self.json(call, "projects").await?;
        Ok(projects.into_iter().find(|p| p.name == name))
    }

    /// `POST /projects` (operationId `createProject`); returns the new project's id (from `Location`).
    pub async fn create_project(&self, project: &ProjectReq) -> Result<i64, HarborError> {
        let what = format!(
            "project {:?}",
            project.project_name.as_deref().unwrap_or_default()
        );
        let call = self
            .call("createProject", Method::POST, &["projects"])
            .with_body(project)?;
        self.created_id(call, &what).await
    }

    /// `PUT /projects/{project_name_or_id}` (operationId `updateProject`), by name.
    pub async fn update_project(
        &self,
        name: &str,
        project: &ProjectReq,
    ) -> Result<(), HarborError> {
        let mut call = self
            .call("updateProject", Method::PUT, &["projects", name])
            .with_body(project)?;
        call.resource_name = true;
        self.send(call, &format!("project {name:?}"))
            .await
            .map(drop)
    }

    /// `DELETE /projects/{project_name_or_id}` (operationId `deleteProject`), by name. Harbor refuses
    /// (412, [`HarborError::Refused`]) while the project holds repositories.
    pub async fn delete_project(&self, name: &str) -> Result<(), HarborError> {
        let mut call = self.call("deleteProject", Method::DELETE, &["projects", name]);
        call.resource_name = true;
        self.send(call, &format!("project {name:?}"))
            .await
            .map(drop)
    }

    /// `GET /projects/{project_name_or_id}/summary` (operationId `getProjectSummary`), by name.
    pub async fn project_summary(&self, name: &str) -> Result<ProjectSummary, HarborError> {
        let mut call = self.call(
            "getProjectSummary",
            Method::GET,
            &["projects", name, "summary"],
        );
        call.resource_name = true;
        self.json(call, &format!("project {name:?}")).await
    }

    /// Whether the project holds no repository (`getProjectSummary`, `repo_count == 0`).
    pub async fn project_is_empty(&self, name: &str) -> Result<bool, HarborError> {
        Ok(self.project_summary(name).await?.repo_count == 0)
    }

    // ---- robot accounts ----

    /// `POST /robots` (operationId `CreateRobot`). The answer is the only time Harbor shows the secret.
    pub async fn create_robot(&self, robot: &RobotCreate) -> Result<RobotCreated, HarborError> {
        let call = self
            .call("CreateRobot", Method::POST, &["robots"])
            .with_body(robot)?;
        self.json(call, &format!("robot {:?}", robot.name)).await
    }

    /// `DELETE /robots/{robot_id}` (operationId `DeleteRobot`).
    pub async fn delete_robot(&self, id: i64) -> Result<(), HarborError> {
        let id = id.to_string();
        let call = self.call("DeleteRobot", Method::DELETE, &["robots", &id]);
        self.send(call, &format!("robot {id}")).await.map(drop)
    }

    /// Robots whose name is `name` (`GET /robots?q=name=<name>`, operationId `ListRobot`): the
    /// short name given at creation or the full `robot$…` name.
    pub async fn find_robots(&self, name: &str) -> Result<Vec<Robot>, HarborError> {
        let mut call = self.call("ListRobot", Method::GET, &["robots"]);
        call.url
            .query_pairs_mut()
            .append_pair("q", &format!("name={name}"))
            .append_pair("page_size", "100");
        self.json(call, "robots").await
    }

    /// `PATCH /robots/{robot_id}` (operationId `RefreshSec`) with an empty `RobotSec`: Harbor generates
    /// a new secret and answers it (the old one stops working at once).
    pub async fn refresh_robot_secret(&self, id: i64) -> Result<Secret, HarborError> {
        let id = id.to_string();
        let call = self
            .call("RefreshSec", Method::PATCH, &["robots", &id])
            .with_body(&RobotSec::default())?;
        let answer: RobotSec = self.json(call, &format!("robot {id}")).await?;
        answer.secret.ok_or_else(|| HarborError::Decode {
            operation: "RefreshSec",
            message: "no secret in the answer".to_string(),
        })
    }

    // ---- quotas ----

    /// The quota of project `project_id` (`GET /quotas?reference=project&reference_id=`, operationId
    /// `listQuotas`).
    pub async fn project_quota(&self, project_id: i64) -> Result<Option<Quota>, HarborError> {
        let mut call = self.call("listQuotas", Method::GET, &["quotas"]);
        call.url
            .query_pairs_mut()
            .append_pair("reference", "project")
            .append_pair("reference_id", &project_id.to_string());
        let quotas: Vec<Quota> = self.json(call, "quotas").await?;
        Ok(quotas.into_iter().next())
    }

    /// `PUT /quotas/{id}` (operationId `updateQuota`): the storage limit in bytes (`-1` unlimited).
    pub async fn update_storage_quota(&self, id: i64, storage: i64) -> Result<(), HarborError> {
        let quota = id.to_string();
        let body = QuotaUpdateReq {
            hard: [("storage".to_string(), storage)].into_iter().collect(),
        };
        let call = self
            .call("updateQuota", Method::PUT, &["quotas", &quota])
            .with_body(&body)?;
        self.send(call, &format!("quota {quota}")).await.map(drop)
    }

    // ---- registry endpoints (proxy caches) ----

    /// `POST /registries` (operationId `createRegistry`); returns the new endpoint's id.
    pub async fn create_registry(&self, registry: &Registry) -> Result<i64, HarborError> {
        let call = self
            .call("createRegistry", Method::POST, &["registries"])
            .with_body(registry)?;
        self.created_id(call, &format!("registry endpoint {:?}", registry.name))
            .await
    }

    /// The registry endpoint named `name` (`GET /registries?q=name=<name>`, operationId
    /// `listRegistries`).
    pub async fn find_registry(&self, name: &str) -> Result<Option<Registry>, HarborError> {
        let mut call = self.call("listRegistries", Method::GET, &["registries"]);
        call.url
            .query_pairs_mut()
            .append_pair("q", &format!("name={name}"))
            .append_pair("page_size", "100");
        let registries: Vec<Registry> = self.json(call, "registry endpoints").await?;
        Ok(registries.into_iter().find(|r| r.name == name))
    }

    /// `DELETE /registries/{id}` (operationId `deleteRegistry`). Harbor refuses (412,
    /// [`HarborError::Refused`]) while a project (a proxy cache) or a replication policy uses it.
    pub async fn delete_registry(&self, id: i64) -> Result<(), HarborError> {
        let id = id.to_string();
        let call = self.call("deleteRegistry", Method::DELETE, &["registries", &id]);
        self.send(call, &format!("registry endpoint {id}"))
            .await
            .map(drop)
    }
}
