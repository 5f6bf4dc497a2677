//! A fake Harbor (REST API v2.0) on 127.0.0.1 that keeps state (projects and their quotas in
//! [`projects`], robot accounts in [`robots`], registry endpoints in [`registries`], immutability rules
//! and retention policies in [`policies`]; the read-only flag and the GC schedule in [`server`], which
//! also serves HTTP and routes each request) and answers like Harbor:
//! `201` with `Location` on create, `409` on a duplicate, `404`, `412` when deleting a project that
//! holds repositories or a registry endpoint a project uses, `401`
//! without or with wrong basic auth, errors as `{"errors":[{"code","message"}]}`. This file holds the
//! public API ([`HarborFake`]) and the state the modules share; it must not answer requests itself.
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

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hyper::StatusCode;
use serde_json::{Map, Value, json};

mod policies;
mod projects;
mod registries;
mod robots;
mod server;
mod swagger;

use projects::project_json;
use server::serve;
pub use swagger::{Operation, Swagger};

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
