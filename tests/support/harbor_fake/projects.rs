//! The fake Harbor's projects and their quotas: `listProjects` (a loose name match, as Harbor's),
//! `createProject` (Harbor's name rule, duplicates refused, a proxy cache's `registry_id` checked),
//! `updateProject`, `deleteProject` (refused with 412 while it holds repositories; its robots, rules
//! and retention policy go with it), `getProjectSummary`, `listQuotas` and `updateQuota`. It must not
//! serve HTTP nor check the swagger (that is [`super::server`]).

use hyper::StatusCode;
use hyper::header::HeaderMap;
use serde_json::{Map, Value, json};

use super::server::query_param;
use super::{Answer, BASE_PATH, FakeProject, NOW, Operation, State, policies};

/// Answers the project and quota operations; `None` for any other operation.
pub(super) fn dispatch(
    state: &mut State,
    operation: &Operation,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &Value,
) -> Option<Answer> {
    let param = |name: &str| query_param(query, name);
    let answer = match operation.id.as_str() {
        "listProjects" => {
            // Harbor matches `name` loosely (a substring); the client must filter.
            let name = param("name").unwrap_or_default();
            Answer::list(
                state
                    .projects
                    .values()
                    .filter(|p| p.name.contains(name))
                    .map(project_json)
                    .collect(),
            )
        }
        "createProject" => create_project(state, body),
        "updateProject" | "deleteProject" | "getProjectSummary" => {
            let by_name = headers
                .get("X-Is-Resource-Name")
                .is_some_and(|v| v == "true");
            let key = &operation.path_params["project_name_or_id"];
            let found = state
                .projects
                .values()
                .find(|p| match key.parse::<i64>() {
                    Ok(id) if !by_name => p.id == id,
                    _ => p.name == *key,
                })
                .map(|p| p.id);
            let Some(id) = found else {
                return Some(Answer::error(
                    StatusCode::NOT_FOUND,
                    format!("project {key} not found"),
                ));
            };
            match operation.id.as_str() {
                "updateProject" => {
                    let project = state.projects.get_mut(&id).expect("project");
                    if let Some(public) = body["public"].as_bool() {
                        project.public = public;
                    }
                    if let Some(metadata) = body["metadata"].as_object() {
                        for (key, value) in metadata {
                            if key == "public" {
                                project.public = value == "true";
                            } else {
                                project.metadata.insert(key.clone(), value.clone());
                            }
                        }
                    }
                    Answer::empty(StatusCode::OK)
                }
                "deleteProject" => {
                    let project = &state.projects[&id];
                    if project.repo_count > 0 {
                        return Some(Answer::error(
                            StatusCode::PRECONDITION_FAILED,
                            format!(
                                "the project {} contains repositories, can not be deleted",
                                project.name
                            ),
                        ));
                    }
                    state.projects.remove(&id);
                    policies::project_deleted(state, id);
                    state.robots.retain(|_, r| {
                        !r["permissions"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|p| p["namespace"] == key.as_str())
                    });
                    Answer::empty(StatusCode::OK)
                }
                _ => {
                    let project = &state.projects[&id];
                    let mut summary = json!({
                        "repo_count": project.repo_count,
                        "project_admin_count": 1,
                        "quota": {"hard": {"storage": project.storage_limit}, "used": {"storage": 0}},
                    });
                    if let Some(registry) =
                        project.registry_id.and_then(|r| state.registries.get(&r))
                    {
                        summary["registry"] = registry.clone();
                    }
                    Answer::ok(summary)
                }
            }
        }
        "listQuotas" => {
            if param("reference").is_some_and(|r| r != "project") {
                return Some(Answer::list(Vec::new()));
            }
            let wanted = param("reference_id").map(str::to_string);
            Answer::list(
                state
                    .projects
                    .values()
                    .filter(|p| wanted.as_ref().is_none_or(|w| *w == p.id.to_string()))
                    .map(quota_json)
                    .collect(),
            )
        }
        "updateQuota" => {
            let id: i64 = operation.path_params["id"]
                .parse()
                .expect("checked integer");
            let Some(storage) = body["hard"]["storage"].as_i64() else {
                return Some(Answer::error(
                    StatusCode::BAD_REQUEST,
                    "hard.storage is required",
                ));
            };
            if storage == 0 || storage < -1 {
                return Some(Answer::error(
                    StatusCode::BAD_REQUEST,
                    "the storage limit must be -1 or a positive number of bytes",
                ));
            }
            match state.projects.get_mut(&id) {
                Some(project) => {
                    project.storage_limit = storage;
                    Answer::empty(StatusCode::OK)
                }
                None => Answer::error(StatusCode::NOT_FOUND, format!("quota {id} not found")),
            }
        }
        _ => return None,
    };
    Some(answer)
}

pub(super) fn project_json(project: &FakeProject) -> Value {
    let mut metadata = project.metadata.clone();
    metadata.insert(
        "public".to_string(),
        json!(if project.public { "true" } else { "false" }),
    );
    let mut value = json!({
        "project_id": project.id,
        "owner_id": 1,
        "owner_name": "admin",
        "name": project.name,
        "creation_time": NOW,
        "update_time": NOW,
        "deleted": false,
        "togglable": true,
        "current_user_role_id": 1,
        "current_user_role_ids": [1],
        "repo_count": project.repo_count,
        "metadata": metadata,
        "cve_allowlist": {"id": project.id, "project_id": project.id, "items": [], "creation_time": NOW, "update_time": NOW},
    });
    if let Some(registry) = project.registry_id {
        value["registry_id"] = json!(registry);
    }
    value
}

/// A project's quota as `listQuotas` shows it (the fake gives a quota its project's id).
fn quota_json(project: &FakeProject) -> Value {
    json!({
        "id": project.id,
        "ref": {"id": project.id, "name": project.name, "owner_name": "admin"},
        "hard": {"storage": project.storage_limit},
        "used": {"storage": 0},
        "creation_time": NOW,
        "update_time": NOW,
    })
}

fn create_project(state: &mut State, body: &Value) -> Answer {
    let Some(name) = body["project_name"].as_str() else {
        return Answer::error(StatusCode::BAD_REQUEST, "project_name is required");
    };
    if !valid_project_name(name) {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            format!(
                "project name {name:?} is invalid: lowercase letters, digits and ._- between them, 1-255 characters"
            ),
        );
    }
    if state.projects.values().any(|p| p.name == name) {
        return Answer::error(
            StatusCode::CONFLICT,
            format!("The project named {name} already exists"),
        );
    }
    let registry_id = body["registry_id"].as_i64().filter(|id| *id != 0);
    if let Some(id) = registry_id
        && !state.registries.contains_key(&id)
    {
        return Answer::error(StatusCode::BAD_REQUEST, format!("registry {id} not found"));
    }
    let mut metadata: Map<String, Value> =
        body["metadata"].as_object().cloned().unwrap_or_default();
    let public = body["public"]
        .as_bool()
        .or_else(|| metadata.remove("public").map(|v| v == "true"))
        .unwrap_or(false);
    metadata.remove("public");
    let id = state.next_id;
    state.next_id += 1;
    state.projects.insert(
        id,
        FakeProject {
            id,
            name: name.to_string(),
            public,
            metadata,
            storage_limit: body["storage_limit"].as_i64().unwrap_or(-1),
            registry_id,
            repo_count: 0,
        },
    );
    Answer::created(format!("{BASE_PATH}/projects/{id}"), None)
}

/// Harbor's project name rule (`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`, at most 255).
fn valid_project_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split(['.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}
