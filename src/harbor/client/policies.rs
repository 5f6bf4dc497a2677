//! [`HarborClient`] methods for a project's tag policies: immutability rules
//! (`/projects/{project_name_or_id}/immutabletagrules`) and the tag retention policy (`/retentions`,
//! bound to the project by its metadata `retention_id`); and the update of a proxy cache's registry
//! endpoint. Each names its swagger `operationId`.

use reqwest::Method;

use super::{HarborClient, HarborError};
use crate::harbor::types::{ImmutableRule, RegistryUpdate, RetentionPolicy};

impl HarborClient {
    /// `GET /projects/{project_name_or_id}/immutabletagrules` (operationId `ListImmuRules`), by name.
    /// A project holds at most 15 rules; one page of 100 has them all.
    pub async fn immutable_rules(&self, project: &str) -> Result<Vec<ImmutableRule>, HarborError> {
        let mut call = self.call(
            "ListImmuRules",
            Method::GET,
            &["projects", project, "immutabletagrules"],
        );
        call.resource_name = true;
        call.url.query_pairs_mut().append_pair("page_size", "100");
        self.json(call, &format!("project {project:?}")).await
    }

    /// `POST /projects/{project_name_or_id}/immutabletagrules` (operationId `CreateImmuRule`), by
    /// name.
    pub async fn create_immutable_rule(
        &self,
        project: &str,
        rule: &ImmutableRule,
    ) -> Result<(), HarborError> {
        let mut call = self
            .call(
                "CreateImmuRule",
                Method::POST,
                &["projects", project, "immutabletagrules"],
            )
            .with_body(rule)?;
        call.resource_name = true;
        self.send(call, &format!("project {project:?}"))
            .await
            .map(drop)
    }

    /// `PUT /projects/{project_name_or_id}/immutabletagrules/{immutable_rule_id}` (operationId
    /// `UpdateImmuRule`), by name.
    pub async fn update_immutable_rule(
        &self,
        project: &str,
        id: i64,
        rule: &ImmutableRule,
    ) -> Result<(), HarborError> {
        let id = id.to_string();
        let mut call = self
            .call(
                "UpdateImmuRule",
                Method::PUT,
                &["projects", project, "immutabletagrules", &id],
            )
            .with_body(rule)?;
        call.resource_name = true;
        self.send(call, &format!("immutable tag rule {id}"))
            .await
            .map(drop)
    }

    /// `DELETE /projects/{project_name_or_id}/immutabletagrules/{immutable_rule_id}` (operationId
    /// `DeleteImmuRule`), by name.
    pub async fn delete_immutable_rule(&self, project: &str, id: i64) -> Result<(), HarborError> {
        let id = id.to_string();
        let mut call = self.call(
            "DeleteImmuRule",
            Method::DELETE,
            &["projects", project, "immutabletagrules", &id],
        );
        call.resource_name = true;
        self.send(call, &format!("immutable tag rule {id}"))
            .await
            .map(drop)
    }

    /// `GET /retentions/{id}` (operationId `getRetention`); `None` when Harbor has no such policy.
    pub async fn retention(&self, id: i64) -> Result<Option<RetentionPolicy>, HarborError> {
        let id = id.to_string();
        let call = self.call("getRetention", Method::GET, &["retentions", &id]);
        match self.json(call, &format!("retention policy {id}")).await {
            Ok(policy) => Ok(Some(policy)),
            Err(HarborError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /retentions` (operationId `createRetention`): Harbor binds the policy to the project of
    /// its `scope` (project metadata `retention_id`). Returns the new policy's id.
    pub async fn create_retention(&self, policy: &RetentionPolicy) -> Result<i64, HarborError> {
        let call = self
            .call("createRetention", Method::POST, &["retentions"])
            .with_body(policy)?;
        self.created_id(call, "retention policy").await
    }

    /// `PUT /retentions/{id}` (operationId `updateRetention`).
    pub async fn update_retention(
        &self,
        id: i64,
        policy: &RetentionPolicy,
    ) -> Result<(), HarborError> {
        let id = id.to_string();
        let call = self
            .call("updateRetention", Method::PUT, &["retentions", &id])
            .with_body(policy)?;
        self.send(call, &format!("retention policy {id}"))
            .await
            .map(drop)
    }

    /// `DELETE /retentions/{id}` (operationId `deleteRetention`).
    pub async fn delete_retention(&self, id: i64) -> Result<(), HarborError> {
        let id = id.to_string();
        let call = self.call("deleteRetention", Method::DELETE, &["retentions", &id]);
        self.send(call, &format!("retention policy {id}"))
            .await
            .map(drop)
    }

    /// `PUT /registries/{id}` (operationId `updateRegistry`): a proxy cache's endpoint URL or
    /// credentials put back.
    pub async fn update_registry(
        &self,
        id: i64,
        update: &RegistryUpdate,
    ) -> Result<(), HarborError> {
        let id = id.to_string();
        let call = self
            .call("updateRegistry", Method::PUT, &["registries", &id])
            .with_body(update)?;
        self.send(call, &format!("registry endpoint {id}"))
            .await
            .map(drop)
    }
}
