//! Shared test support. `mod support;` from an integration test file, then
//! `use support::{FakeApiServer, ApiResourceSpec, Faults};`. Never used by `src/`.
//!
//! # FakeApiServer: an in-memory kube-apiserver on 127.0.0.1
//!
//! ```ignore
//! let server = FakeApiServer::builder()
//!     .with_core()                                   // built-in kinds, see core_resources()
//!     .with_crd(ApiResourceSpec::registry())         // registry.aisp.dev/v1alpha1 Registry
//!     .with_crd(ApiResourceSpec::image_policy())     // also cnpg_cluster(), kyverno_cluster_policy(),
//!                                                    // kyverno_validating_policy(), kyverno_image_validating_policy()
//!     .history_limit(1000)                           // retained watch events (410 Expired beyond)
//!     .bookmark_interval(Duration::from_secs(1))     // periodic BOOKMARKs
//!     .start();                                      // own thread + runtime on 127.0.0.1:0; stops on Drop
//! server.url();                                      // "http://127.0.0.1:<port>"
//! server.kubeconfig_path();                          // for `registry-operator run --kubeconfig` / KUBECONFIG
//! server.config();                                   // kube::Config (namespace "default")
//! let client = server.client().await;                // kube::Client (call inside a tokio runtime)
//!
//! // Direct store access; same store as the API, so watches fire. `resource` is a plural,
//! // a Kind, "group/plural" or "group/version/plural"; ns is "" for cluster-scoped kinds.
//! server.put_object(json!({...}));                   // create or replace, status included
//! server.patch_status("deployments", "ns", "name", json!({"availableReplicas": 1}));
//! server.merge_patch_object("Registry", "ns", "name", json!({"metadata": {"finalizers": null}}));
//! server.get_object("Deployment", "ns", "name");     // Option<serde_json::Value>
//! server.list_objects("configmaps", Some("ns"));     // Vec<Value>, ordered by ns/name
//! server.delete_object("registries", "ns", "name");  // finalizers respected, GC cascades
//! server.resource_version();                         // global rv counter: unchanged => no write happened
//! server.serve_resource(ApiResourceSpec::cnpg_cluster()); server.remove_group("postgresql.cnpg.io");
//!
//! // Request log and faults
//! server.request_log().count("patch", "Deployment"); // also .counts(), .writes(), .entries
//! server.writes();                                   // write requests logged (any outcome)
//! server.reset_log();
//! server.set_faults(Faults::failing(0.2, &[500, 409, 429]).verbs(&["patch"]).kinds(&["Deployment"])
//!     .latency(Duration::from_millis(50)).seed(7));
//! server.clear_faults(); server.drop_watches();
//! ```
//!
//! Note: kube-client retries 429/503/504 by itself (`Config::default_retry`), so injected 429s
//! are usually invisible to code using `kube::Client`; 500 and 409 reach it.
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
