//! A fake Harbor (REST API v2.0) on 127.0.0.1 that keeps state (projects, robot accounts, registry
//! endpoints, the read-only flag, the GC schedule; immutability rules and retention policies in
//! [`policies`]; updating and deleting registry endpoints in [`registries`]) and answers like Harbor:
//! `201` with `Location` on create, `409` on a duplicate, `404`, `412` when deleting a project that
//! holds repositories or a registry endpoint a project uses, `401`
//! without or with wrong basic auth, errors as `{"errors":[{"code","message"}]}`.
//!
//! **Every request it receives and every response it sends is checked against Harbor's own API
//! description** (`../shared/schemas/harbor/swagger-v2.15.2.yaml`, see [`Swagger`]): the path template
//! and method exist; query parameters are declared and typed; a body is sent exactly when the operation
//! takes one and validates against its schema; every response status is declared (or a listed
//! [`KNOWN_GAPS`] entry) and its body validates against that status's schema. Definitions are strict:
//! unknown fields are errors, `readOnly` fields may not be sent. A request that fails the check is
//! answered `400` and recorded; a response that fails is recorded and sent anyway. Recorded violations
//! fail the test when the fake is dropped, unless the test took them ([`HarborFake::take_violations`]).
//!
//! ```ignore
//! let Some(harbor) = HarborFake::start() else { return };   // None: ../shared absent (SKIPPED)
//! let client = HarborClient::new(&harbor.url(), "admin", ADMIN_PASSWORD)?;
//! harbor.project("team-a");            // Option<Value>: the project as Harbor lists it
//! harbor.set_repo_count("team-a", 3);  // make it non-empty
//! harbor.requests();                   // what the client sent (operationId, method, path, status)
//! ```

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};

use super::common;

mod policies;
mod registries;

/// The admin password the fake accepts (user `admin`).
pub const ADMIN_PASSWORD: &str = "Harbor12345-fake";
/// Harbor's API base path (swagger `basePath`).
pub const BASE_PATH: &str = "/api/v2.0";
/// The fake's clock: every timestamp it reports.
const NOW: &str = "2026-07-01T12:00:00.000Z";

/// Answers real Harbor gives that its swagger (v2.15.2) does not declare: `(operationId or "*", status,
/// why)`. Any other undeclared status is a violation.
pub const KNOWN_GAPS: &[(&str, u16, &str)] = &[
    (
        "*",
        401,
        "the swagger's global `security: basic`: Harbor's auth middleware answers 401 for wrong credentials on every path",
    ),
    (
        "CreateRobot",
        409,
        "Harbor answers a duplicate robot name with 409 Conflict; the operation declares no 409",
    ),
    (
        "getRetention",
        404,
        "Harbor answers an unknown retention policy id with 404; the operation declares no 404",
    ),
];

// ============================================================================================
// The swagger, as a checker
// ============================================================================================

/// Harbor's swagger document and JSON Schema validators built from its definitions.
pub struct Swagger {
    doc: Value,
    /// `definitions` converted to JSON Schema draft 4, for requests (readOnly fields removed) and
    /// responses.
    request_definitions: Value,
    response_definitions: Value,
    validators: Mutex<HashMap<(String, bool), Arc<jsonschema::Validator>>>,
}

/// One operation of the swagger matched by a request.
#[derive(Clone, Debug)]
pub struct Operation {
    pub id: String,
    pub method: String,
    pub template: String,
    pub path_params: BTreeMap<String, String>,
    /// Parameters, `$ref`s resolved (path-level ones included).
    params: Vec<Value>,
    responses: Value,
}

impl Operation {
    /// `METHOD /path/template (operationId)`, for violation messages.
    pub fn label(&self) -> String {
        format!("{} {} ({})", self.method, self.template, self.id)
    }
}

impl Swagger {
    /// The swagger from `../shared` (or `REGISTRY_OPERATOR_SHARED_DIR`), parsed once per test binary;
    /// `None` (SKIPPED, or a panic under `REGISTRY_OPERATOR_REQUIRE_TOOLS=1`) when absent.
    pub fn shared() -> Option<Arc<Swagger>> {
        static SWAGGER: OnceLock<Option<Arc<Swagger>>> = OnceLock::new();
        SWAGGER
            .get_or_init(|| {
                let file = common::shared_schemas()?.join("harbor/swagger-v2.15.2.yaml");
                if !file.is_file() {
                    common::missing(
                        "../shared/schemas/harbor/swagger-v2.15.2.yaml",
                        "place Harbor's api/v2.0/swagger.yaml (v2.15.2) there",
                    );
                    return None;
                }
                Some(Arc::new(Swagger::load(&file)))
            })
            .clone()
    }

    pub fn load(file: &Path) -> Swagger {
        let text = std::fs::read_to_string(file).expect("read the swagger");
        let doc: Value = yaml_serde::from_str(&text).expect("parse the swagger");
        assert_eq!(doc["swagger"], "2.0", "a Swagger 2.0 document");
        assert_eq!(doc["basePath"], BASE_PATH);
        let convert_all = |request: bool| {
            let definitions = doc["definitions"].as_object().expect("definitions");
            Value::Object(
                definitions
                    .iter()
                    .map(|(name, schema)| (name.clone(), to_json_schema(schema, request)))
                    .collect(),
            )
        };
        Swagger {
            request_definitions: convert_all(true),
            response_definitions: convert_all(false),
            doc,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// The operation for `method` and a request path (`/api/v2.0/...`); literal segments win over
    /// `{parameters}`.
    pub fn find(&self, method: &str, path: &str) -> Result<Operation, String> {
        let Some(rest) = path.strip_prefix(BASE_PATH) else {
            return Err(format!("{path} is outside the base path {BASE_PATH}"));
        };
        let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        let mut best: Option<(usize, &String, BTreeMap<String, String>)> = None;
        for (template, _) in self.doc["paths"].as_object().expect("paths") {
            let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let mut params = BTreeMap::new();
            let mut literal = 0;
            let matched = parts.iter().zip(&segments).all(|(part, segment)| {
                if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    params.insert(name.to_string(), percent_decode(segment));
                    !segment.is_empty()
                } else {
                    literal += 1;
                    part == segment
                }
            });
            if matched && best.as_ref().is_none_or(|(l, _, _)| literal > *l) {
                best = Some((literal, template, params));
            }
        }
        let Some((_, template, path_params)) = best else {
            return Err(format!("no path template of the swagger matches {path}"));
        };
        let item = &self.doc["paths"][template];
        let lower = method.to_ascii_lowercase();
        let Some(op) = item.get(&lower) else {
            return Err(format!(
                "{method} is not an operation of {template} in the swagger"
            ));
        };
        let params = item["parameters"]
            .as_array()
            .into_iter()
            .chain(op["parameters"].as_array())
            .flatten()
            .map(|p| self.resolve(p, "parameters"))
            .collect();
        Ok(Operation {
            id: op["operationId"].as_str().expect("operationId").to_string(),
            method: method.to_string(),
            template: template.clone(),
            path_params,
            params,
            responses: op["responses"].clone(),
        })
    }

    fn resolve(&self, value: &Value, section: &str) -> Value {
        match value["$ref"].as_str() {
            Some(reference) => {
                let prefix = format!("#/{section}/");
                let name = reference
                    .strip_prefix(&prefix)
                    .unwrap_or_else(|| panic!("unexpected $ref {reference}"));
                self.doc[section][name].clone()
            }
            None => value.clone(),
        }
    }

    /// Violations of `operation`'s parameters and body by a request.
    pub fn check_request(
        &self,
        operation: &Operation,
        query: &[(String, String)],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Vec<String> {
        let op = operation.label();
        let mut errors = Vec::new();
        let declared = |location: &str, name: &str| {
            operation.params.iter().find(|p| {
                p["in"] == location
                    && p["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        };
        for (name, value) in query {
            match declared("query", name) {
                None => errors.push(format!("{op}: query parameter {name:?} is not declared")),
                Some(param) => errors
                    .extend(check_simple(param, value).map(|e| format!("{op}: query {name}: {e}"))),
            }
        }
        for (name, value) in &operation.path_params {
            match declared("path", name) {
                None => errors.push(format!("{op}: path parameter {name} is not declared")),
                Some(param) => errors
                    .extend(check_simple(param, value).map(|e| format!("{op}: path {name}: {e}"))),
            }
        }
        for param in &operation.params {
            let name = param["name"].as_str().unwrap_or_default();
            let required = param["required"] == true;
            match param["in"].as_str() {
                Some("query") if required && !query.iter().any(|(n, _)| n == name) => {
                    errors.push(format!("{op}: required query parameter {name} missing"));
                }
                Some("header") => {
                    if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
                        errors.extend(
                            check_simple(param, value).map(|e| format!("{op}: header {name}: {e}")),
                        );
                    }
                }
                _ => {}
            }
        }
        let body_param = operation.params.iter().find(|p| p["in"] == "body");
        let empty = body.iter().all(u8::is_ascii_whitespace);
        match (body_param, empty) {
            (None, true) => {}
            (None, false) => {
                errors.push(format!("{op}: the operation takes no body, one was sent"))
            }
            (Some(param), true) => {
                if param["required"] == true {
                    errors.push(format!("{op}: the body ({}) is required", param["name"]));
                }
            }
            (Some(param), false) => {
                let content_type = headers
                    .get(hyper::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !content_type.starts_with("application/json") {
                    errors.push(format!(
                        "{op}: body sent as {content_type:?}, the API consumes application/json"
                    ));
                }
                match serde_json::from_slice::<Value>(body) {
                    Err(e) => errors.push(format!("{op}: the body is not JSON: {e}")),
                    Ok(instance) => errors.extend(
                        self.validate(&param["schema"], true, &instance)
                            .into_iter()
                            .map(|e| format!("{op}: request body: {e}")),
                    ),
                }
            }
        }
        errors
    }

    /// Violations of `operation`'s declared responses by one the fake sends.
    pub fn check_response(
        &self,
        operation: &Operation,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Vec<String> {
        let op = operation.label();
        let mut errors = Vec::new();
        let empty = body.iter().all(u8::is_ascii_whitespace);
        let instance = if empty {
            None
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(value) => Some(value),
                Err(e) => return vec![format!("{op}: response {status} is not JSON: {e}")],
            }
        };
        let errors_schema = json!({"$ref": "#/definitions/Errors"});
        let mut validate = |schema: &Value, instance: &Value| {
            errors.extend(
                self.validate(schema, false, instance)
                    .into_iter()
                    .map(|e| format!("{op}: response {status}: {e}")),
            );
        };
        let declared = operation
            .responses
            .get(status.to_string())
            .or_else(|| operation.responses.get("default"))
            .map(|r| self.resolve(r, "responses"));
        let Some(response) = declared else {
            let gap = KNOWN_GAPS
                .iter()
                .any(|(id, code, _)| (*id == "*" || *id == operation.id) && *code == status);
            if !gap {
                return vec![format!(
                    "{op}: status {status} is not declared in the swagger"
                )];
            }
            if let Some(instance) = &instance {
                validate(&errors_schema, instance);
            }
            return errors;
        };
        match (&response.get("schema"), &instance) {
            (Some(schema), Some(instance)) => validate(schema, instance),
            (Some(_), None) if status < 300 => {
                // go-swagger writes nothing for a nil payload (getGCSchedule without a schedule).
                if operation.id != "getGCSchedule" {
                    errors.push(format!("{op}: response {status} must carry a body"));
                }
            }
            (Some(_), None) => {}
            // Harbor's error middleware writes `Errors` for every error, declared schema or not.
            (None, Some(instance)) if status >= 400 => validate(&errors_schema, instance),
            (None, Some(_)) => errors.push(format!(
                "{op}: response {status} declares no body, one was sent"
            )),
            (None, None) => {}
        }
        if response["headers"].get("Location").is_some()
            && !headers.contains_key(hyper::header::LOCATION)
        {
            errors.push(format!("{op}: response {status} lacks its Location header"));
        }
        errors
    }

    /// Validation errors of `instance` against a swagger schema (may be a `$ref` into `definitions`).
    pub fn validate(&self, schema: &Value, request: bool, instance: &Value) -> Vec<String> {
        let key = (schema.to_string(), request);
        let validator = {
            let mut cache = self.validators.lock().unwrap();
            Arc::clone(cache.entry(key).or_insert_with(|| {
                let definitions = if request {
                    &self.request_definitions
                } else {
                    &self.response_definitions
                };
                let root = json!({
                    "definitions": definitions,
                    "allOf": [to_json_schema(schema, request)],
                });
                Arc::new(
                    jsonschema::draft4::options()
                        .should_validate_formats(true)
                        .build(&root)
                        .unwrap_or_else(|e| {
                            panic!("swagger schema {schema} does not compile: {e}")
                        }),
                )
            }))
        };
        validator
            .iter_errors(instance)
            .map(|e| format!("{e} at {:?}", e.instance_path().to_string()))
            .collect()
    }
}

/// A Swagger 2.0 schema as JSON Schema draft 4:
/// - `x-nullable` / `x-isnullable` → `null` allowed;
/// - objects with `properties` get `additionalProperties: false` (unknown fields are errors);
/// - `type: object` with neither `properties` nor `additionalProperties` is go-swagger's `interface{}`
///   (any JSON value: Harbor's GC `parameters` values are booleans and numbers), so it accepts anything;
/// - for requests, `readOnly` properties are removed (sending one is then an unknown field).
fn to_json_schema(schema: &Value, request: bool) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    if let Some(reference) = map.get("$ref") {
        return json!({ "$ref": reference });
    }
    let mut out = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "properties" => {
                let properties = value
                    .as_object()
                    .expect("properties")
                    .iter()
                    .filter(|(_, p)| !(request && p["readOnly"] == true))
                    .map(|(name, p)| (name.clone(), to_json_schema(p, request)))
                    .collect();
                out.insert(key.clone(), Value::Object(properties));
            }
            "items" => {
                out.insert(key.clone(), to_json_schema(value, request));
            }
            "additionalProperties" if value.is_object() => {
                out.insert(key.clone(), to_json_schema(value, request));
            }
            "allOf" | "anyOf" | "oneOf" => {
                let list = value
                    .as_array()
                    .expect("list")
                    .iter()
                    .map(|s| to_json_schema(s, request))
                    .collect();
                out.insert(key.clone(), Value::Array(list));
            }
            k if k.starts_with("x-")
                || k == "example"
                || k == "readOnly"
                || k == "discriminator" => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    let nullable = map.get("x-nullable") == Some(&Value::Bool(true))
        || map.get("x-isnullable") == Some(&Value::Bool(true));
    if nullable && let Some(Value::String(kind)) = out.get("type").cloned() {
        out.insert("type".to_string(), json!([kind, "null"]));
    }
    let is_object = out.get("type") == Some(&json!("object"));
    if is_object && !out.contains_key("properties") && !out.contains_key("additionalProperties") {
        return json!({});
    }
    if out.contains_key("properties") && !out.contains_key("additionalProperties") {
        out.insert("additionalProperties".to_string(), Value::Bool(false));
    }
    Value::Object(out)
}

/// Type check of a query, path or header parameter value.
fn check_simple(param: &Value, value: &str) -> Option<String> {
    match param["type"].as_str() {
        Some("integer") if value.parse::<i64>().is_err() => {
            Some(format!("{value:?} is not an integer"))
        }
        Some("boolean") if value != "true" && value != "false" => {
            Some(format!("{value:?} is not a boolean"))
        }
        _ if param["minLength"]
            .as_u64()
            .is_some_and(|min| (value.len() as u64) < min) =>
        {
            Some(format!("{value:?} is shorter than {}", param["minLength"]))
        }
        _ => None,
    }
}

fn percent_decode(segment: &str) -> String {
    form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

// ============================================================================================
// The fake
// ============================================================================================

/// One request the fake answered.
#[derive(Clone, Debug)]
pub struct Logged {
    pub operation: String,
    pub method: String,
    pub path: String,
    pub status: u16,
}

type Tamper = Box<dyn FnMut(&mut Value) + Send>;

struct FakeProject {
    id: i64,
    name: String,
    public: bool,
    metadata: Map<String, Value>,
    storage_limit: i64,
    registry_id: Option<i64>,
    repo_count: i64,
}

struct State {
    swagger: Arc<Swagger>,
    password: String,
    next_id: i64,
    projects: BTreeMap<i64, FakeProject>,
    robots: BTreeMap<i64, Value>,
    /// The current secret of each robot (Harbor keeps only a hash; tests compare copies with it).
    robot_secrets: BTreeMap<i64, String>,
    registries: BTreeMap<i64, Value>,
    /// The current access secret of each registry endpoint (Harbor answers it masked; tests compare).
    registry_secrets: BTreeMap<i64, String>,
    /// Immutability rules by id: (project id, rule as `ListImmuRules` shows it).
    immutable: BTreeMap<i64, (i64, Value)>,
    /// Retention policies by id, as `getRetention` shows them.
    retentions: BTreeMap<i64, Value>,
    read_only: bool,
    gc: Option<Value>,
    violations: Vec<String>,
    requests: Vec<Logged>,
    tamper: Option<(String, Tamper)>,
}

/// A stateful fake Harbor checked against Harbor's swagger (see the module documentation).
pub struct HarborFake {
    url: String,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What a handler answers: status, extra headers, JSON body.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: Option<Value>,
    total: Option<usize>,
}

impl Answer {
    fn ok(body: Value) -> Answer {
        Answer {
            status: StatusCode::OK,
            location: None,
            body: Some(body),
            total: None,
        }
    }
    fn empty(status: StatusCode) -> Answer {
        Answer {
            status,
            location: None,
            body: None,
            total: None,
        }
    }
    fn list(items: Vec<Value>) -> Answer {
        Answer {
            total: Some(items.len()),
            ..Answer::ok(Value::Array(items))
        }
    }
    fn created(location: String, body: Option<Value>) -> Answer {
        Answer {
            status: StatusCode::CREATED,
            location: Some(location),
            body,
            total: None,
        }
    }
    fn error(status: StatusCode, message: impl Into<String>) -> Answer {
        let code = match status {
            StatusCode::BAD_REQUEST => "BAD_REQUEST",
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
            StatusCode::NOT_FOUND => "NOT_FOUND",
            StatusCode::CONFLICT => "CONFLICT",
            StatusCode::PRECONDITION_FAILED => "PRECONDITION",
            _ => "UNKNOWN",
        };
        Answer {
            status,
            location: None,
            body: Some(json!({"errors": [{"code": code, "message": message.into()}]})),
            total: None,
        }
    }
}

impl HarborFake {
    /// Starts a fake Harbor with an admin password of [`ADMIN_PASSWORD`]; `None` when the swagger is
    /// absent (SKIPPED, or a panic under `REGISTRY_OPERATOR_REQUIRE_TOOLS=1`).
    pub fn start() -> Option<HarborFake> {
        Some(HarborFake::with_swagger(Swagger::shared()?))
    }

    pub fn with_swagger(swagger: Arc<Swagger>) -> HarborFake {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake Harbor");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let mut projects = BTreeMap::new();
        // Harbor always has `library` (public, id 1).
        projects.insert(
            1,
            FakeProject {
                id: 1,
                name: "library".to_string(),
                public: true,
                metadata: Map::new(),
                storage_limit: -1,
                registry_id: None,
                repo_count: 0,
            },
        );
        let state = Arc::new(Mutex::new(State {
            swagger,
            password: ADMIN_PASSWORD.to_string(),
            next_id: 2,
            projects,
            robots: BTreeMap::new(),
            robot_secrets: BTreeMap::new(),
            registries: BTreeMap::new(),
            registry_secrets: BTreeMap::new(),
            immutable: BTreeMap::new(),
            retentions: BTreeMap::new(),
            read_only: false,
            gc: None,
            violations: Vec::new(),
            requests: Vec::new(),
            tamper: None,
        }));
        let (shutdown, thread) = serve(listener, Arc::clone(&state));
        HarborFake {
            url,
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` (the client appends `/api/v2.0`).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Answers again on the same address, with the same state, after [`HarborFake::stop`].
    pub fn restart(&mut self) {
        self.stop();
        let address = self.url.trim_start_matches("http://");
        let listener = std::net::TcpListener::bind(address).expect("bind the fake Harbor again");
        listener.set_nonblocking(true).expect("nonblocking");
        let (shutdown, thread) = serve(listener, Arc::clone(&self.state));
        self.shutdown = Some(shutdown);
        self.thread = Some(thread);
    }

    /// Requests with these operationIds answered so far.
    pub fn count(&self, operations: &[&str]) -> usize {
        self.requests()
            .iter()
            .filter(|r| operations.contains(&r.operation.as_str()))
            .count()
    }

    /// The current secret of the robot with this full name (`robot$project+name`).
    pub fn robot_secret(&self, full_name: &str) -> Option<String> {
        let state = self.state.lock().unwrap();
        let (id, _) = state.robots.iter().find(|(_, r)| r["name"] == full_name)?;
        state.robot_secrets.get(id).cloned()
    }

    /// Changes a project as someone in Harbor's UI would (drift): visibility, storage limit in bytes.
    pub fn tamper_project(&self, name: &str, public: Option<bool>, storage_limit: Option<i64>) {
        let mut state = self.state.lock().unwrap();
        let project = state
            .projects
            .values_mut()
            .find(|p| p.name == name)
            .expect("project");
        if let Some(public) = public {
            project.public = public;
        }
        if let Some(limit) = storage_limit {
            project.storage_limit = limit;
        }
    }

    /// Stops answering: the port is closed when this returns (Harbor down).
    pub fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the fake Harbor's thread");
        }
    }

    /// Recorded swagger violations, cleared (a test that provokes them takes them, so drop does not fail).
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().violations)
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Requests that would change Harbor's state (anything but GET/HEAD).
    pub fn writes(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method != "GET" && r.method != "HEAD")
            .count()
    }

    /// The project named `name` as `listProjects` shows it.
    pub fn project(&self, name: &str) -> Option<Value> {
        let state = self.state.lock().unwrap();
        state
            .projects
            .values()
            .find(|p| p.name == name)
            .map(project_json)
    }

    /// Pretends `count` repositories were pushed into the project.
    pub fn set_repo_count(&self, name: &str, count: i64) {
        let mut state = self.state.lock().unwrap();
        let project = state
            .projects
            .values_mut()
            .find(|p| p.name == name)
            .expect("project");
        project.repo_count = count;
    }

    /// Robot accounts as `ListRobot` shows them.
    pub fn robots(&self) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .robots
            .values()
            .cloned()
            .collect()
    }

    /// Registry endpoints as `listRegistries` shows them.
    pub fn registries(&self) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .registries
            .values()
            .cloned()
            .collect()
    }

    pub fn read_only(&self) -> bool {
        self.state.lock().unwrap().read_only
    }

    /// Changes the next response body of `operation_id` (to prove the response check bites).
    pub fn tamper_next_response(
        &self,
        operation_id: &str,
        tamper: impl FnMut(&mut Value) + Send + 'static,
    ) {
        self.state.lock().unwrap().tamper = Some((operation_id.to_string(), Box::new(tamper)));
    }
}

impl Drop for HarborFake {
    fn drop(&mut self) {
        self.stop();
        let violations = self.take_violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "the fake Harbor saw {} swagger violation(s):\n  {}",
                violations.len(),
                violations.join("\n  ")
            );
        }
    }
}

/// Serves `listener` on a thread of its own until the returned sender fires (or is dropped).
fn serve(
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
    let param = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
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
        "createProject" => create_project(state, &body),
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
                return Answer::error(StatusCode::NOT_FOUND, format!("project {key} not found"));
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
                        return Answer::error(
                            StatusCode::PRECONDITION_FAILED,
                            format!(
                                "the project {} contains repositories, can not be deleted",
                                project.name
                            ),
                        );
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
        "CreateRobot" => create_robot(state, &body),
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
                return Answer::error(StatusCode::NOT_FOUND, format!("robot {id} not found"));
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
        "listQuotas" => {
            if param("reference").is_some_and(|r| r != "project") {
                return Answer::list(Vec::new());
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
                return Answer::error(StatusCode::BAD_REQUEST, "hard.storage is required");
            };
            if storage == 0 || storage < -1 {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    "the storage limit must be -1 or a positive number of bytes",
                );
            }
            match state.projects.get_mut(&id) {
                Some(project) => {
                    project.storage_limit = storage;
                    Answer::empty(StatusCode::OK)
                }
                None => Answer::error(StatusCode::NOT_FOUND, format!("quota {id} not found")),
            }
        }
        "createRegistry" => create_registry(state, &body),
        "listRegistries" => match q_filter(param("q")) {
            Err(message) => Answer::error(StatusCode::BAD_REQUEST, message),
            Ok(filter) => Answer::list(
                state
                    .registries
                    .values()
                    .filter(|r| filter(r) && param("name").is_none_or(|n| r["name"] == n))
                    .cloned()
                    .collect(),
            ),
        },
        _ if let Some(answer) = policies::dispatch(state, operation, headers, &body) => answer,
        _ if let Some(answer) = registries::dispatch(state, operation, &body) => answer,
        other => Answer::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the fake Harbor does not implement {other}"),
        ),
    }
}

fn project_json(project: &FakeProject) -> Value {
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

fn create_robot(state: &mut State, body: &Value) -> Answer {
    let name = body["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        return Answer::error(StatusCode::BAD_REQUEST, "the robot name is required");
    }
    let level = body["level"].as_str().unwrap_or_default();
    let permissions = body["permissions"].as_array().cloned().unwrap_or_default();
    let full_name = match level {
        "system" => format!("robot${name}"),
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

/// Harbor's `q` query (`key=value,key=~fuzzy`), for the keys the fake supports: `name`, `level`.
type Filter = Box<dyn Fn(&Value) -> bool>;

fn q_filter(q: Option<&str>) -> Result<Filter, String> {
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
