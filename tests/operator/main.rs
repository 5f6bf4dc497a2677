//! Test binary `operator`: the release-style `registry-operator run` binary (a child process) against
//! the real control plane of `tests/support/cluster` (kube-apiserver, etcd, kube-controller-manager),
//! with the shipped RBAC and a fault-injecting proxy; one control plane per test. What it renders is
//! tested without it in `tests/render`. Needs `tests/tools/build.sh controlplane` (else SKIPPED).
//! Run alone: `cargo nextest run --test operator` (one subject: add a filter such as `k3d::`).

#[path = "../support/mod.rs"]
mod support;

/// The harness itself: control plane, shipped RBAC, garbage collection, proxy faults.
mod control_plane;
/// Harbor day-2 objects on CloudNativePG's CRDs (role, database, backups) and the K3d GC CronJob.
mod day2;
/// Refused applies (a ValidatingAdmissionPolicy): Ready=False, an Event, backoff, recovery.
mod failures;
/// Kyverno and CloudNativePG installed after the operator, or removed: no restart, no gap, quiet at rest.
mod gitops_order;
/// Harbor mode: bring-up with and without CNPG, generated secrets kept and never shown.
mod harbor;
/// The ImagePolicy controller, with and without the Kyverno kinds served.
mod image_policy;
/// The Registry controller in K3d mode: create, adopt, edit, invalid spec, delete.
mod k3d;
/// Kyverno's real admission controller admitting the generated policies and judging Pods.
mod kyverno_admission;
/// RegistryProjects: Harbor project, robot pull Secrets, drift, rotation, outage, delete, K3d refused.
mod project;
/// RegistryProjects' immutability rules and tag retention through Harbor's API: created, drift corrected.
mod project_policies;
/// Proxy-cache RegistryProjects: the upstream endpoint with its credentials, drift, a plain project refused.
mod project_proxy;
/// Restarts, injected faults and zero writes at rest.
mod resilience;
/// Many Registries, ImagePolicies and unrelated objects: memory, writes, time to Ready.
mod scale;
/// Random create/update/delete under 20 % failures, then convergence.
mod soak;
/// The staged K3d → Harbor switch: every phase, grace window, a failed migration, a refused downgrade.
mod switch;
/// Other switch paths: Harbor → K3d, cancel, an adopted source, the image rewrite.
mod switch_paths;
/// The switch with the operator killed: ten random kills, then once in every phase; each phase runs once.
mod switch_restarts;
/// Harbor version changes: refused paths; read-only, backup, core first, resumed after kills.
mod upgrade;
