//! The fake Harbor's robot accounts: `CreateRobot` (system or project level, one permission for a
//! project robot, a system robot's kinds and namespaces, Harbor's actions, duration and duplicate
//! rules; the lifetime counted from creation), `DeleteRobot`, `ListRobot` (Harbor's `q` query) and `RefreshSec` (a given or a new secret). It
//! must not serve HTTP nor check the swagger (that is [`super::server`]).

use hyper::StatusCode;
use serde_json::{Value, json};

use super::server::{q_filter, query_param};
use super::{Answer, BASE_PATH, NOW, Operation, State};

/// Answers the robot account operations; `None` for any other operation.
pub(super) fn dispatch(
    state: &mut State,
    operation: &Operation,
    query: &[(String, String)],
    body: &Value,
) -> Option<Answer> {
    let param = |name: &str| query_param(query, name);
    let answer = match operation.id.as_str() {
        "CreateRobot" => create_robot(state, body),
        "DeleteRobot" => {
            let id: i64 = operation.path_params["robot_id"]
                .parse()
                .expect("checked integer");
            match state.robots.remove(&id) {
                Some(_) => {
                    state.robot_secrets.remove(&id);
                    Answer::empty(StatusCode::OK)
                }
                None => Answer::error(StatusCode::NOT_FOUND, format!("robot {id} not found")),
            }
        }
        "ListRobot" => match q_filter(param("q")) {
            Err(message) => Answer::error(StatusCode::BAD_REQUEST, message),
            Ok(filter) => Answer::list(
                state
                    .robots
                    .values()
                    .filter(|r| filter(r))
                    .cloned()
                    .collect(),
            ),
        },
        "RefreshSec" => {
            let id: i64 = operation.path_params["robot_id"]
                .parse()
                .expect("checked integer");
            if !state.robots.contains_key(&id) {
                return Some(Answer::error(
                    StatusCode::NOT_FOUND,
                    format!("robot {id} not found"),
                ));
            }
            match body["secret"].as_str().filter(|s| !s.is_empty()) {
                Some(given) => {
                    state.robot_secrets.insert(id, given.to_string());
                    Answer::ok(json!({}))
                }
                None => {
                    let secret = format!("fake-robot-secret-{:016x}", fastrand::u64(..));
                    state.robot_secrets.insert(id, secret.clone());
                    Answer::ok(json!({"secret": secret}))
                }
            }
        }
        _ => return None,
    };
    Some(answer)
}

fn create_robot(state: &mut State, body: &Value) -> Answer {
    let name = body["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        return Answer::error(StatusCode::BAD_REQUEST, "the robot name is required");
    }
    let level = body["level"].as_str().unwrap_or_default();
    let permissions = body["permissions"].as_array().cloned().unwrap_or_default();
    let full_name = match level {
        "system" => {
            // Harbor's system robot: `system` permissions on namespace "/", `project` ones on "*"
            // (every project) or an existing project's name; nothing else.
            for permission in &permissions {
                let namespace = permission["namespace"].as_str().unwrap_or_default();
                let valid = match permission["kind"].as_str() {
                    Some("system") => namespace == "/",
                    Some("project") => {
                        namespace == "*" || state.projects.values().any(|p| p.name == namespace)
                    }
                    _ => false,
                };
                if !valid {
                    return Answer::error(
                        StatusCode::BAD_REQUEST,
                        format!("bad system robot permission {permission}"),
                    );
                }
            }
            format!("robot${name}")
        }
        "project" => {
            let [permission] = permissions.as_slice() else {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    "a project robot has exactly one permission",
                );
            };
            let project = permission["namespace"].as_str().unwrap_or_default();
            if permission["kind"] != "project"
                || !state.projects.values().any(|p| p.name == project)
            {
                return Answer::error(
                    StatusCode::NOT_FOUND,
                    format!("project {project} not found"),
                );
            }
            format!("robot${project}+{name}")
        }
        other => {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                format!("bad robot level {other:?}"),
            );
        }
    };
    let duration = body["duration"].as_i64().unwrap_or(-1);
    if duration == 0 || duration < -1 {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "the robot duration must be -1 or a positive number of days",
        );
    }
    for permission in &permissions {
        for access in permission["access"].as_array().into_iter().flatten() {
            let action = access["action"].as_str().unwrap_or_default();
            if !["pull", "push", "delete", "read", "list", "create"].contains(&action) {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    format!("bad robot action {action:?}"),
                );
            }
        }
    }
    if state
        .robots
        .values()
        .any(|r| r["name"] == full_name.as_str())
    {
        return Answer::error(
            StatusCode::CONFLICT,
            format!("robot {full_name} already exists"),
        );
    }
    let id = state.next_id;
    state.next_id += 1;
    // Harbor counts a robot's lifetime from the moment it is created (its clock, not a fixture's).
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let expires_at = if duration == -1 {
        -1
    } else {
        now_unix + duration * 86_400
    };
    let secret = format!("fake-robot-secret-{:016x}", fastrand::u64(..));
    state.robot_secrets.insert(id, secret.clone());
    state.robots.insert(
        id,
        json!({
            "id": id,
            "name": full_name,
            "description": body["description"].as_str().unwrap_or_default(),
            "level": level,
            "duration": duration,
            "editable": true,
            "disable": body["disable"].as_bool().unwrap_or(false),
            "expires_at": expires_at,
            "permissions": permissions,
            "creator_type": "local",
            "creator_ref": 1,
            "creation_time": NOW,
            "update_time": NOW,
        }),
    );
    Answer::created(
        format!("{BASE_PATH}/robots/{id}"),
        Some(
            json!({"id": id, "name": full_name, "secret": secret, "creation_time": NOW, "expires_at": expires_at}),
        ),
    )
}
