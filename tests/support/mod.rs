//! Shared test support: `mod support;` from an integration test, then `use support::cluster::…`.
//! Never used by `src/`.
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

pub mod cluster;
