//! `FakeApiServer`: a stateful in-memory stand-in for kube-apiserver on 127.0.0.1, and its
//! builder and test helpers. Test support only; it must never be used from `src/`.

mod apply;
mod discovery;
mod faults;
mod gc;
mod kubeconfig;
mod patch;
mod resources;
mod select;
mod server;
mod status;
mod store;
mod watch;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use faults::{Faults, LoggedRequest, RequestLog};
pub use resources::{ApiResourceSpec, core_resources};

use server::{Shared, lock};
use store::{Scope, State, meta_str};

/// Manager name recorded in managedFields for writes made through the test helpers.
pub const TEST_MANAGER: &str = "fake-api-test";

/// Configures which resources are served and the watch tuning knobs.
#[must_use]
pub struct FakeApiServerBuilder {
    resources: Vec<ApiResourceSpec>,
    history_limit: usize,
    bookmark_interval: Duration,
}

#[allow(dead_code)]
impl FakeApiServerBuilder {
    /// Serves the built-in kinds (see [`core_resources`]).
    pub fn with_core(mut self) -> Self {
        for r in core_resources() {
            self = self.with_crd(r);
        }
        self
    }

    /// Serves one more resource (a CRD or any other kind). Re-adding is ignored.
    pub fn with_crd(mut self, spec: ApiResourceSpec) -> Self {
        if !self.resources.contains(&spec) {
            self.resources.push(spec);
        }
        self
    }

    /// How many watch events are retained for resuming watches (default 1000); watches and
    /// continue tokens older than that get 410 Expired.
    pub fn history_limit(mut self, events: usize) -> Self {
        self.history_limit = events;
        self
    }

    /// How often watches with `allowWatchBookmarks=true` get a BOOKMARK (default 1 s).
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.bookmark_interval = every;
        self
    }

    /// Binds 127.0.0.1 on a random port, writes the kubeconfig and starts the server thread.
    /// Panics if the socket, thread or temp dir cannot be created (test environment failure).
    pub fn start(self) -> FakeApiServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address").to_string();
        let url = format!("http://{address}");
        let state = State::new(self.resources, self.history_limit);
        let shared = Arc::new(Shared::new(state, self.bookmark_interval, address));
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel();
        let thread = server::spawn(shared.clone(), listener, shutdown_rx)
            .expect("start fake apiserver thread");
        let dir = tempfile::tempdir().expect("temp dir for kubeconfig");
        let kubeconfig = kubeconfig::write(dir.path(), &url).expect("write kubeconfig");
        FakeApiServer {
            shared,
            url,
            kubeconfig,
            _dir: dir,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }
}

/// A running fake API server. Stops (closing every connection and watch) when dropped.
pub struct FakeApiServer {
    shared: Arc<Shared>,
    url: String,
    kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[allow(dead_code)]
impl FakeApiServer {
    pub fn builder() -> FakeApiServerBuilder {
        FakeApiServerBuilder {
            resources: Vec::new(),
            history_limit: 1000,
            bookmark_interval: Duration::from_secs(1),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig file (context `fake-kube-apiserver`, namespace `default`) for this server.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A `kube::Config` for this server (default namespace `default`).
    pub fn config(&self) -> kube::Config {
        kube::Config::new(self.url.parse().expect("server url is a valid URI"))
    }

    /// A `kube::Client` for this server. Must be called inside a tokio runtime.
    pub async fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config()).expect("kube client for the fake apiserver")
    }

    // ----- request log and faults -----

    /// A snapshot of every request served since start or the last `reset_log()`.
    pub fn request_log(&self) -> RequestLog {
        RequestLog {
            entries: lock(&self.shared.log).clone(),
        }
    }

    pub fn reset_log(&self) {
        lock(&self.shared.log).clear();
    }

    /// Number of write requests (create/update/patch/delete/deletecollection) in the log,
    /// whatever their outcome (a no-op apply counts; see `resource_version()` for real changes).
    pub fn writes(&self) -> usize {
        self.request_log().writes().len()
    }

    pub fn set_faults(&self, faults: Faults) {
        lock(&self.shared.faults).set(Some(faults));
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).set(None);
    }

    /// Ends every open watch stream (clients see the stream close and re-watch).
    pub fn drop_watches(&self) {
        self.shared.drop_watches.send_modify(|epoch| *epoch += 1);
    }

    // ----- served resources -----

    /// Starts serving another resource at runtime (e.g. "CNPG gets installed").
    pub fn serve_resource(&self, spec: ApiResourceSpec) {
        let mut state = self.shared.lock_state();
        if !state.resources.contains(&spec) {
            state.resources.push(spec);
        }
    }

    /// Stops serving every resource of `group` (its paths and discovery return 404);
    /// stored objects are kept and reappear if the group is served again.
    pub fn remove_group(&self, group: &str) {
        self.shared
            .lock_state()
            .resources
            .retain(|r| r.group != group);
    }

    // ----- direct store access (same store as the API, so watches fire) -----

    /// The current global resourceVersion counter (bumped by every real change).
    pub fn resource_version(&self) -> u64 {
        self.shared.lock_state().rv
    }

    /// Whether `resource` (any form `get_object` accepts) is currently served.
    pub fn served(&self, resource: &str) -> bool {
        let state = self.shared.lock_state();
        resources::resolve(&state.resources, resource).is_some()
    }

    fn resolve(&self, resource: &str) -> ApiResourceSpec {
        let state = self.shared.lock_state();
        resources::resolve(&state.resources, resource)
            .cloned()
            .unwrap_or_else(|| panic!("fake apiserver does not serve {resource:?}"))
    }

    /// An object by resource reference (`deployments`, `Deployment`, `apps/deployments`,
    /// `events.k8s.io/v1/events`...), namespace (`""` for cluster-scoped) and name.
    pub fn get_object(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        let res = self.resolve(resource);
        self.shared.lock_state().get(&res, ns, name).cloned()
    }

    /// All objects of a resource, in one namespace or (None) all, ordered by namespace/name.
    pub fn list_objects(&self, resource: &str, ns: Option<&str>) -> Vec<Value> {
        let res = self.resolve(resource);
        self.shared
            .lock_state()
            .list(&res, ns)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Creates or replaces `obj` (found by its apiVersion/kind/metadata), status included,
    /// as manager `fake-api-test`. Panics on an unserved kind or an invalid object.
    pub fn put_object(&self, obj: Value) -> Value {
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let mut state = self.shared.lock_state();
        let res = state
            .find_kind(api_version, kind)
            .unwrap_or_else(|| panic!("fake apiserver does not serve {api_version} {kind}"));
        let ns = if res.namespaced {
            meta_str(&obj, "namespace").unwrap_or("default").to_string()
        } else {
            String::new()
        };
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let result = if state.get(&res, &ns, &name).is_some() {
            let mut obj = obj;
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            state.replace(&res, &ns, &name, obj, TEST_MANAGER, Scope::Everything, None)
        } else {
            state.create(&res, &ns, obj, TEST_MANAGER, Scope::Everything)
        };
        result.unwrap_or_else(|e| panic!("put_object failed: {}", e.to_status()))
    }

    /// JSON-merge-patches `status` of an object (like a controller writing `/status`).
    /// Panics if the object does not exist.
    pub fn patch_status(&self, resource: &str, ns: &str, name: &str, status_patch: Value) -> Value {
        self.merge_patch_scoped(
            resource,
            ns,
            name,
            serde_json::json!({ "status": status_patch }),
            Scope::Status,
        )
    }

    /// JSON-merge-patches an object (status included). Panics if the object does not exist.
    pub fn merge_patch_object(&self, resource: &str, ns: &str, name: &str, patch: Value) -> Value {
        self.merge_patch_scoped(resource, ns, name, patch, Scope::Everything)
    }

    fn merge_patch_scoped(
        &self,
        resource: &str,
        ns: &str,
        name: &str,
        patch: Value,
        scope: Scope,
    ) -> Value {
        let res = self.resolve(resource);
        let mut state = self.shared.lock_state();
        let mut obj = state
            .get(&res, ns, name)
            .cloned()
            .unwrap_or_else(|| panic!("{resource} {ns}/{name} not found"));
        json_patch::merge(&mut obj, &patch);
        state
            .replace(&res, ns, name, obj, TEST_MANAGER, scope, None)
            .unwrap_or_else(|e| panic!("patch failed: {}", e.to_status()))
    }

    /// Deletes an object like the API would (finalizers respected, GC cascades).
    /// Returns its last state, or None if it did not exist.
    pub fn delete_object(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        let res = self.resolve(resource);
        self.shared
            .lock_state()
            .delete(&res, ns, name, gc::Propagation::Background)
            .ok()
    }
}
