//! registry-operator: a Kubernetes operator for the platform's container registry (k3d or Harbor)
//! and the Kyverno policies that restrict images to it. `main.rs` only dispatches to these modules.
#![forbid(unsafe_code)]

pub mod cli;
pub mod crd;
pub mod harbor;
pub mod migrate;
pub mod reconcile;
pub mod render;
pub mod secrets;
pub mod validate;
