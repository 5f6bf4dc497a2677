//! Test binary `migrate`: the `registry-operator migrate` command (the copy a K3d → Harbor switch
//! runs in its Job) against real registries on 127.0.0.1, with content built by umoci/skopeo and a
//! fault-injecting proxy (`tests/support/migrate`). Needs `docker-registry`, `skopeo` and `umoci`
//! (else SKIPPED). The switch as the operator drives it is in `tests/operator/switch.rs`.
//! Run alone: `cargo test --test migrate`.

#[path = "../support/mod.rs"]
mod support;

/// Catch-up after pushes during the bulk copy, a frozen (read-only) source, `--verify-only`.
mod catch_up;
/// Copy, resume after kill, a flaky destination, basic and bearer auth, referrers, no secret logged.
mod real_registries;
