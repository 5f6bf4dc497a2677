//! The one support tree every test binary shares (`#[path = "../support/mod.rs"] mod support;` in its
//! `main.rs`, then `use crate::support::…`). Builds, starts and checks nothing by itself; never used by `src/`.
//!
//! | module | what it gives |
//! |---|---|
//! | `common` | locating external tools and `../shared` schemas (the SKIPPED / `REGISTRY_OPERATOR_REQUIRE_TOOLS=1` rule), strict schemas, the metadata checker |
//! | `restricted` | the Pod Security "restricted" assertion |
//! | `policy` | Kyverno's wildcard/pattern semantics and a CEL interpreter, to evaluate generated policies offline |
//! | `fuzz` | proptest strategies (typed specs, arbitrary documents) |
//! | `harbor_fake` | a stateful fake Harbor REST API v2.0 whose every request and response is checked against Harbor's swagger (`../shared`) |
//! | `distribution`, `signing`, `verdict_cases` | a CNCF distribution on 127.0.0.1; cosign-signed images; the Kyverno verdict-table cases |
//! | `migrate` | content built with umoci/skopeo and a fault-injecting registry proxy, for `migrate` |
//! | `cluster`, `scenario` | the real control plane (below); the real operator binary run against it |
//!
//! # ControlPlane: a real kube-apiserver, etcd and kube-controller-manager on 127.0.0.1
//!
//! ```ignore
//! let Some(plane) = ControlPlane::builder()             // our CRDs + RBAC from config/default
//!     .with(Upstream::KyvernoClusterPolicyOnly)        // also Kyverno, KyvernoCelOnly, Cnpg (../shared)
//!     .start() else { return };                        // None = SKIPPED (tools missing, not in CI)
//! plane.operator_kubeconfig;                           // proxy URL + the shipped service account's token
//! plane.admin_kubeconfig; plane.kubectl();             // the harness's own identity (system:masters)
//!
//! // Objects, as the harness (users, kubelet, Kyverno, CNPG). `resource`: plural, Kind,
//! // "group/plural" or "group/version/plural"; ns is "" for cluster-scoped kinds.
//! plane.put_object(json!({...}));                      // server-side apply, then its status; panics on refusal
//! plane.try_put_object(json!({...}));                  // Err(server message) on refusal
//! plane.patch_status("deployments", "ns", "name", json!({"availableReplicas": 1}));
//! plane.merge_patch_object("Registry", "ns", "name", json!({"spec": {...}}));
//! plane.get_object("Deployment", "ns", "name");        // Option<serde_json::Value>
//! plane.list_objects("configmaps", Some("ns"));        // Vec<Value>, ordered by ns/name
//! plane.delete_object("registries", "ns", "name");     // background propagation: the real GC collects
//! plane.resource_version();                            // fingerprint of the operator's kinds: equal = no change
//! plane.install(Upstream::Cnpg); plane.remove_group("postgresql.cnpg.io");
//!
//! // The operator's requests, through the fault-injecting proxy
//! plane.request_log().count("patch", "Deployment");    // also .counts(), .writes(), .entries
//! plane.set_faults(Faults::failing(0.2, &[500, 409, 429]).verbs(&["patch"]).kinds(&["Deployment"])
//!     .latency(Duration::from_millis(50)).seed(7));
//! plane.clear_faults(); plane.drop_watches(); plane.reset_log();
//! plane.operator_permissions_used();                   // (verb, group/resource) from the audit log
//! ```
//!
//! Note: kube-client retries 429/503/504 by itself (`Config::default_retry`), so injected 429s
//! are usually invisible to code using `kube::Client`; 500 and 409 reach it.

// Each binary uses only part of this tree (the render tests never start a control plane), so items
// unused by one binary are expected; allowed here once, for the whole tree, instead of per item.
#![allow(dead_code)]

pub mod cluster;
pub mod common;
pub mod distribution;
pub mod fuzz;
pub mod harbor_fake;
pub mod migrate;
pub mod policy;
pub mod restricted;
pub mod scenario;
pub mod signing;
pub mod verdict_cases;
