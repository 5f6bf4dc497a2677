//! Test binary `packaging`: what ships beside the operator's code, read as files and checked with
//! the real tools, never a cluster: the install tree `config/` (kubectl kustomize, strict schemas),
//! the Dockerfile, the security scanners' verdict (checkov, Pod Security "restricted") and the
//! Argo CD integration (Lua health checks run by `lua5.4`). Run alone: `cargo test --test packaging`.

#[path = "../support/mod.rs"]
mod support;

/// Argo CD: Lua health checks, the argocd-cm patch, example Applications, no tracking metadata.
mod argocd;
/// The Dockerfile's invariants (checked, not built: no Docker engine here).
mod dockerfile;
/// `config/`: every kustomization builds offline, strict schemas, the manager Deployment's settings.
mod install_config;
/// checkov over rendered samples and `config/default`; Pod Security "restricted".
mod security_checks;
