//! The fake Harbor's registry endpoints (the upstreams of proxy-cache projects): `createRegistry`
//! (a name, an http(s) URL and a type Harbor permits; the access secret kept, answered masked),
//! `listRegistries`, `updateRegistry` (a registry endpoint's description, URL and credentials, each
//! only when sent; its type cannot change: `RegistryUpdate` has none) and `deleteRegistry` (refused
//! with 412 while a project, i.e. a proxy cache, uses the endpoint, as Harbor does), and test helpers
//! that read an endpoint's secret and edit an endpoint as Harbor's UI would. It must not serve HTTP
//! nor check the swagger (that is [`super::server`]).

use hyper::StatusCode;
use serde_json::{Value, json};

use super::server::{q_filter, query_param};
use super::{Answer, BASE_PATH, HarborFake, NOW, Operation, State};

/// Answers the registry endpoint operations; `None` for any other operation.
pub(super) fn dispatch(
    state: &mut State,
    operation: &Operation,
    query: &[(String, String)],
    body: &Value,
) -> Option<Answer> {
    let param = |name: &str| query_param(query, name);
    match operation.id.as_str() {
        "createRegistry" => Some(create_registry(state, body)),
        "listRegistries" => Some(match q_filter(param("q")) {
            Err(message) => Answer::error(StatusCode::BAD_REQUEST, message),
            Ok(filter) => Answer::list(
                state
                    .registries
                    .values()
                    .filter(|r| filter(r) && param("name").is_none_or(|n| r["name"] == n))
                    .cloned()
                    .collect(),
            ),
        }),
        _ => update_or_delete(state, operation, body),
    }
}

/// Answers `updateRegistry` and `deleteRegistry`; `None` for any other operation.
fn update_or_delete(state: &mut State, operation: &Operation, body: &Value) -> Option<Answer> {
    if operation.id != "updateRegistry" && operation.id != "deleteRegistry" {
        return None;
    }
    let id: i64 = operation.path_params["id"]
        .parse()
        .expect("checked integer");
    if !state.registries.contains_key(&id) {
        return Some(Answer::error(
            StatusCode::NOT_FOUND,
            format!("registry {id} not found"),
        ));
    }
    if operation.id == "deleteRegistry" {
        if let Some(project) = state.projects.values().find(|p| p.registry_id == Some(id)) {
            return Some(Answer::error(
                StatusCode::PRECONDITION_FAILED,
                format!(
                    "the registry {id} is referenced by the proxy cache project {}, can not be deleted",
                    project.name
                ),
            ));
        }
        state.registries.remove(&id);
        state.registry_secrets.remove(&id);
        return Some(Answer::empty(StatusCode::OK));
    }
    let registry = state.registries.get_mut(&id).expect("checked");
    if let Some(url) = body["url"].as_str() {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Some(Answer::error(StatusCode::BAD_REQUEST, "an http(s) url"));
        }
        registry["url"] = json!(url);
    }
    if let Some(description) = body["description"].as_str() {
        registry["description"] = json!(description);
    }
    let credential_sent = ["credential_type", "access_key", "access_secret"]
        .iter()
        .any(|field| body[*field].is_string());
    if credential_sent {
        // Each credential field sent replaces the one held; the others stay.
        let current = registry["credential"].clone();
        let field = |sent: &str, held: &str, default: &str| {
            body[sent]
                .as_str()
                .or_else(|| current[held].as_str())
                .unwrap_or(default)
                .to_string()
        };
        registry["credential"] = json!({
            "type": field("credential_type", "type", "basic"),
            "access_key": field("access_key", "access_key", ""),
            "access_secret": "*****",
        });
        if let Some(secret) = body["access_secret"].as_str() {
            state.registry_secrets.insert(id, secret.to_string());
        }
    }
    Some(Answer::empty(StatusCode::OK))
}

fn create_registry(state: &mut State, body: &Value) -> Answer {
    let name = body["name"].as_str().unwrap_or_default();
    let url = body["url"].as_str().unwrap_or_default();
    let kind = body["type"].as_str().unwrap_or_default();
    if name.is_empty() || !(url.starts_with("http://") || url.starts_with("https://")) {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "a registry needs a name and an http(s) url",
        );
    }
    // Harbor 2.15's PERMITTED_REGISTRY_TYPES_FOR_PROXY_CACHE plus plain docker-registry.
    const TYPES: &[&str] = &[
        "docker-hub",
        "harbor",
        "azure-acr",
        "ali-acr",
        "aws-ecr",
        "google-gcr",
        "github-ghcr",
        "docker-registry",
        "quay",
        "jfrog-artifactory",
    ];
    if !TYPES.contains(&kind) {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            format!("adapter factory for {kind} not found"),
        );
    }
    if state.registries.values().any(|r| r["name"] == name) {
        return Answer::error(
            StatusCode::CONFLICT,
            format!("registry {name} already exists"),
        );
    }
    let id = state.next_id;
    state.next_id += 1;
    let mut registry = json!({
        "id": id,
        "name": name,
        "url": url,
        "type": kind,
        "insecure": body["insecure"].as_bool().unwrap_or(false),
        "description": body["description"].as_str().unwrap_or_default(),
        "status": "healthy",
        "creation_time": NOW,
        "update_time": NOW,
    });
    if let Some(credential) = body["credential"].as_object() {
        registry["credential"] = json!({
            "type": credential.get("type").cloned().unwrap_or(json!("basic")),
            "access_key": credential.get("access_key").cloned().unwrap_or(json!("")),
            "access_secret": "*****",
        });
        if let Some(secret) = credential.get("access_secret").and_then(Value::as_str) {
            state.registry_secrets.insert(id, secret.to_string());
        }
    }
    state.registries.insert(id, registry);
    Answer::created(format!("{BASE_PATH}/registries/{id}"), None)
}

impl HarborFake {
    /// Changes the URL of the registry endpoint `name` as someone in Harbor's UI would (drift).
    pub fn tamper_registry_url(&self, name: &str, url: &str) {
        let mut state = self.state.lock().unwrap();
        let registry = state
            .registries
            .values_mut()
            .find(|r| r["name"] == name)
            .expect("registry endpoint");
        registry["url"] = json!(url);
    }

    /// The access secret the registry endpoint `name` holds (Harbor itself answers it masked).
    pub fn registry_secret(&self, name: &str) -> Option<String> {
        let state = self.state.lock().unwrap();
        let (id, _) = state.registries.iter().find(|(_, r)| r["name"] == name)?;
        state.registry_secrets.get(id).cloned()
    }
}
