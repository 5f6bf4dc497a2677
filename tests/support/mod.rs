//! Shared test support. `mod support;` from an integration test file, then
//! `use support::{FakeApiServer, ApiResourceSpec, Faults};`. Never used by `src/`.
//!
//! # FakeApiServer: an in-memory kube-apiserver on 127.0.0.1
//!
//! ```ignore
//! let server = FakeApiServer::builder()
//!     .with_core()                                   // built-in kinds, see core_resources()
//!     .with_crd(ApiResourceSpec::registry())         // registry.aisp.dev/v1alpha1 Registry
//!     .with_crd(ApiResourceSpec::image_policy())
//!     .history_limit(1000)                           // retained watch events (410 beyond)
//!     .bookmark_interval(Duration::from_secs(1))
//!     .start();                                      // own thread + runtime; stops on Drop
//! let client = server.client().await;                // kube::Client (inside a tokio runtime)
//! server.kubeconfig_path();                          // for `registry-operator run --kubeconfig`
//! server.put_object(json!({...}));                   // create/replace incl. status; watches fire
//! server.patch_status("deployments", "ns", "name", json!({"availableReplicas": 1}));
//! server.get_object("Deployment", "ns", "name");     // Option<serde_json::Value>
//! server.request_log().count("patch", "Deployment"); server.writes(); server.reset_log();
//! server.resource_version();                         // global rv counter: no change => same value
//! server.set_faults(Faults::failing(0.2, &[500, 409, 429]).verbs(&["patch"]).kinds(&["Deployment"]));
//! server.clear_faults(); server.drop_watches();
//! ```
//!
//! Known simplifications (documented so scenario tests do not rely on them):
//! - strategic merge patch = JSON merge patch + per-`name` merge of lists; no `$patch` directives;
//! - server-side apply tracks leaf field paths; lists merge by item `name`, other lists are atomic;
//! - namespaces need not exist before objects are created in them; no admission, no validation
//!   against schemas, no dryRun, no RBAC; aggregated discovery is not served (kube falls back);
//! - list pages read the current state (no snapshot); `Foreground` deletion acts as `Background`;
//!   GC only deletes dependents whose owner was deleted through the server;
//! - a MODIFIED event that makes an object stop matching a watch's label selector is not
//!   turned into DELETED; discovery requests are never fault-injected.

pub mod fake_api;

#[allow(unused_imports)]
pub use fake_api::{
    ApiResourceSpec, FakeApiServer, Faults, LoggedRequest, RequestLog, core_resources,
};
