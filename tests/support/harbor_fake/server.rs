//! The fake Harbor's HTTP side: serves a listener on a thread of its own, checks each request and
//! response against the swagger (recording violations), authenticates, and routes each operation to
//! the module that answers it ([`super::projects`], [`super::robots`], [`super::registries`],
//! [`super::policies`]); answers the system operations itself (ping, health, configurations and the
//! read-only flag, the GC schedule). It must not keep state of its own: all of it is [`State`].

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::{
    Answer, BASE_PATH, Logged, NOW, Operation, State, policies, projects, registries, robots,
};

/// Serves `listener` on a thread of its own until the returned sender fires (or is dropped).
pub(super) fn serve(
    listener: std::net::TcpListener,
    server_state: Arc<Mutex<State>>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let accept = async {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = Arc::clone(&server_state);
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let state = Arc::clone(&state);
                            async move { Ok::<_, Infallible>(handle(&state, request).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            };
            tokio::select! {
                _ = accept => {}
                _ = stopped => {}
            }
        });
        // Dropping the runtime drops every connection task: the port is closed.
    });
    (shutdown, thread)
}

async fn handle(state: &Mutex<State>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query: Vec<(String, String)> = request
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let headers = request.headers().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();

    let mut state = state.lock().unwrap();
    let swagger = Arc::clone(&state.swagger);
    let (operation_id, answer) = match swagger.find(&method, &path) {
        Err(violation) => {
            state.violations.push(violation.clone());
            (
                "<none>".to_string(),
                Answer::error(StatusCode::NOT_FOUND, violation),
            )
        }
        Ok(operation) => {
            let mut refused_by_check = false;
            let mut answer = if let Some(refused) = authenticate(&state, &operation, &headers) {
                refused
            } else {
                let violations = swagger.check_request(&operation, &query, &headers, &body);
                if violations.is_empty() {
                    dispatch(&mut state, &operation, &query, &headers, &body)
                } else {
                    refused_by_check = true;
                    let message = violations.join("; ");
                    state.violations.extend(violations);
                    Answer::error(StatusCode::BAD_REQUEST, message)
                }
            };
            if let (Some((id, _)), Some(body)) = (&state.tamper, answer.body.as_mut())
                && *id == operation.id
            {
                let (_, mut tamper) = state.tamper.take().expect("tamper");
                tamper(body);
            }
            let response = to_response(&answer);
            let body_bytes = answer
                .body
                .as_ref()
                .map(|b| b.to_string())
                .unwrap_or_default();
            if !refused_by_check {
                let violations = swagger.check_response(
                    &operation,
                    answer.status.as_u16(),
                    response.headers(),
                    body_bytes.as_bytes(),
                );
                state.violations.extend(violations);
            }
            state.requests.push(Logged {
                operation: operation.id.clone(),
                method: method.clone(),
                path: path.clone(),
                status: answer.status.as_u16(),
            });
            return response;
        }
    };
    state.requests.push(Logged {
        operation: operation_id,
        method,
        path,
        status: answer.status.as_u16(),
    });
    to_response(&answer)
}

fn to_response(answer: &Answer) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(answer.status)
        .header("X-Request-Id", "fake-harbor-request");
    if let Some(location) = &answer.location {
        builder = builder.header(hyper::header::LOCATION, location);
    }
    if let Some(total) = answer.total {
        builder = builder.header("X-Total-Count", total.to_string());
    }
    let body = match &answer.body {
        Some(body) => {
            builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
            Bytes::from(body.to_string())
        }
        None => Bytes::new(),
    };
    builder.body(Full::new(body)).expect("response")
}

/// `None` when the request may proceed; else the 401 answer.
fn authenticate(state: &State, operation: &Operation, headers: &HeaderMap) -> Option<Answer> {
    use base64::Engine;
    let anonymous = matches!(operation.id.as_str(), "getPing" | "getHealth");
    let given = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let valid = given.is_some_and(|value| {
        value
            .strip_prefix("Basic ")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|decoded| decoded == format!("admin:{}", state.password).as_bytes())
    });
    if valid || (given.is_none() && anonymous) {
        None
    } else {
        Some(Answer::error(StatusCode::UNAUTHORIZED, "unauthorized"))
    }
}

fn dispatch(
    state: &mut State,
    operation: &Operation,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
) -> Answer {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match operation.id.as_str() {
        "getPing" => Answer::ok(json!("Pong")),
        "getHealth" => {
            let components: Vec<Value> = [
                "core",
                "database",
                "jobservice",
                "portal",
                "redis",
                "registry",
                "registryctl",
                "trivy",
            ]
            .iter()
            .map(|name| json!({"name": name, "status": "healthy"}))
            .collect();
            Answer::ok(json!({"status": "healthy", "components": components}))
        }
        "getConfigurations" => Answer::ok(json!({
            "auth_mode": {"value": "db_auth", "editable": true},
            "read_only": {"value": state.read_only, "editable": true},
            "project_creation_restriction": {"value": "adminonly", "editable": true},
            "robot_name_prefix": {"value": "robot$", "editable": true},
        })),
        "updateConfigurations" => {
            if let Some(read_only) = body["read_only"].as_bool() {
                state.read_only = read_only;
            }
            Answer::empty(StatusCode::OK)
        }
        "getGCSchedule" => match &state.gc {
            None => Answer::empty(StatusCode::OK),
            Some(schedule) => Answer::ok(json!({
                "id": 1,
                "job_name": "GARBAGE_COLLECTION",
                "job_kind": "SCHEDULE",
                "job_parameters": schedule.get("parameters").map(Value::to_string).unwrap_or_else(|| "{}".to_string()),
                "schedule": gc_schedule_json(&schedule["schedule"]),
                "job_status": "",
                "deleted": false,
                "creation_time": NOW,
                "update_time": NOW,
            })),
        },
        "createGCSchedule" | "updateGCSchedule" => {
            if let Err(message) = check_schedule(&body["schedule"]) {
                return Answer::error(StatusCode::BAD_REQUEST, message);
            }
            if operation.id == "createGCSchedule" && state.gc.is_some() {
                return Answer::error(StatusCode::CONFLICT, "the GC schedule already exists");
            }
            let created = state.gc.is_none() && operation.id == "createGCSchedule";
            state.gc = Some(body);
            if created {
                Answer::created(format!("{BASE_PATH}/system/gc/schedule"), None)
            } else {
                Answer::empty(StatusCode::OK)
            }
        }
        _ if let Some(answer) = projects::dispatch(state, operation, query, headers, &body) => {
            answer
        }
        _ if let Some(answer) = robots::dispatch(state, operation, query, &body) => answer,
        _ if let Some(answer) = policies::dispatch(state, operation, headers, &body) => answer,
        _ if let Some(answer) = registries::dispatch(state, operation, query, &body) => answer,
        other => Answer::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the fake Harbor does not implement {other}"),
        ),
    }
}

fn gc_schedule_json(schedule: &Value) -> Value {
    let mut out = json!({"type": schedule["type"].clone()});
    if let Some(cron) = schedule["cron"].as_str() {
        out["cron"] = json!(cron);
    }
    if schedule["type"] != "None" && schedule["type"] != "Manual" {
        out["next_scheduled_time"] = json!(NOW);
    }
    out
}

/// Harbor refuses a `Custom` schedule without a six-field cron.
fn check_schedule(schedule: &Value) -> Result<(), String> {
    match schedule["type"].as_str() {
        None => Err("schedule.type is required".to_string()),
        Some("Custom") => match schedule["cron"].as_str() {
            Some(cron) if cron.split_whitespace().count() == 6 => Ok(()),
            _ => Err("a Custom schedule needs a six-field cron (seconds first)".to_string()),
        },
        Some(_) => Ok(()),
    }
}

/// The value of the query parameter `name`, if the request sent it.
pub(super) fn query_param<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Harbor's `q` query (`key=value,key=~fuzzy`), for the keys the fake supports: `name`, `level`.
pub(super) type Filter = Box<dyn Fn(&Value) -> bool>;

pub(super) fn q_filter(q: Option<&str>) -> Result<Filter, String> {
    let mut terms = Vec::new();
    for term in q.unwrap_or_default().split(',').filter(|t| !t.is_empty()) {
        let Some((key, value)) = term.split_once('=') else {
            return Err(format!("bad query term {term:?}"));
        };
        let key = key.to_ascii_lowercase();
        if !["name", "level"].contains(&key.as_str()) {
            return Err(format!("the fake does not support the query key {key}"));
        }
        terms.push((key, value.to_string()));
    }
    Ok(Box::new(move |item: &Value| {
        terms.iter().all(|(key, value)| {
            let field = item[key.as_str()].as_str().unwrap_or_default();
            match value.strip_prefix('~') {
                Some(fuzzy) => field.contains(fuzzy),
                // Harbor stores a robot's name without the `robot$` prefix (`project+NAME`) and
                // matches that; the fake also matches the short name.
                None => {
                    field == value
                        || field.strip_prefix("robot$") == Some(value.as_str())
                        || field.rsplit(['+', '$']).next() == Some(value.as_str())
                }
            }
        })
    }))
}
