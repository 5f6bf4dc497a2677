//! Test binary `render`: what the crate renders and generates (children of a Registry, Kyverno
//! policies, k3s `registries.yaml`, the CRDs), judged offline or by the real program that consumes it
//! (kube-apiserver admission, the Kyverno CLI, `docker-registry garbage-collect`). The operator never
//! runs here; its scenarios are in `tests/operator`. Golden snapshots: `tests/render/snapshots/`.
//! Run alone: `cargo test --test render` (one subject: `cargo test --test render harbor::`).

#[path = "../support/mod.rs"]
mod support;

/// The `render` command over files: samples (golden), fixtures, `--strict`, CRD drift.
mod cli;
/// The CRDs on a real kube-apiserver: samples and valid fixtures admitted, invalid ones refused.
mod crd_admission;
/// Property tests: arbitrary specs and documents never panic, every error names a field.
mod fuzz;
/// Harbor mode: golden snapshots, Pod Security "restricted", no secret in output.
mod harbor;
/// The Harbor REST API client against a stateful fake Harbor checked against Harbor's own swagger.
mod harbor_api;
/// The Harbor client's registry endpoints (the upstreams of proxy caches) against the same fake.
mod harbor_api_registries;
/// Harbor's database: managed CNPG gating, external and existing clusters, backups, CNPG schemas.
mod harbor_database;
/// The Harbor fixtures and render helpers `harbor` and `harbor_database` share (no tests).
mod harbor_fixtures;
/// Harbor mode against upstream Harbor releases and harbor-helm's templates.
mod harbor_upstream;
/// ImagePolicy: golden snapshots of both Kyverno flavours, upstream schemas, rules evaluated offline.
mod image_policy;
/// The ImagePolicy fixtures and render helpers `image_policy` uses (no tests).
mod image_policy_fixtures;
/// The grace-window image-rewrite policy: strict upstream schema, then the Kyverno CLI over a table.
mod image_rewrite;
/// The K3d registry's garbage-collection CronJob run for real by `docker-registry`.
mod k3d_gc;
/// Real cosign signatures judged by the Kyverno CLI (`kyverno apply --registry`).
mod kyverno_signatures;
/// The generated policies judged by the Kyverno CLI: the README's verdict table.
mod kyverno_verdicts;
/// The pull path: k3s `registries.yaml` of every mode, no cluster-DNS endpoint for nodes.
mod pull_path;
