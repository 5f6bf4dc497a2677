//! The fake Harbor's `updateRegistry` (a registry endpoint's URL and credentials; its type cannot
//! change: `RegistryUpdate` has none) and a test helper that edits an endpoint as Harbor's UI would.

use hyper::StatusCode;
use serde_json::{Value, json};

use super::{Answer, HarborFake, Operation, State};

/// Answers `updateRegistry`; `None` for any other operation.
pub(super) fn dispatch(state: &mut State, operation: &Operation, body: &Value) -> Option<Answer> {
    if operation.id != "updateRegistry" {
        return None;
    }
    let id: i64 = operation.path_params["id"]
        .parse()
        .expect("checked integer");
    let Some(registry) = state.registries.get_mut(&id) else {
        return Some(Answer::error(
            StatusCode::NOT_FOUND,
            format!("registry {id} not found"),
        ));
    };
    if let Some(url) = body["url"].as_str() {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Some(Answer::error(StatusCode::BAD_REQUEST, "an http(s) url"));
        }
        registry["url"] = json!(url);
    }
    if let Some(key) = body["access_key"].as_str() {
        registry["credential"] = json!({
            "type": body["credential_type"].as_str().unwrap_or("basic"),
            "access_key": key,
            "access_secret": "*****",
        });
    }
    Some(Answer::empty(StatusCode::OK))
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
}
