//! A small typed client for Harbor's REST API v2.0 (`/api/v2.0`), only the endpoints the operator uses:
//! system configuration (read-only switch), the garbage-collection schedule, projects, robot accounts,
//! immutability rules and tag retention, registry endpoints (for proxy-cache projects) and
//! reachability; and [`plan`] / [`policies`], the pure plan of a `RegistryProject` (which writes
//! Harbor needs, which Secrets to write). Every request and response body is a
//! struct of [`types`] whose field names are those of Harbor's own API description (swagger
//! `api/v2.0/swagger.yaml`, v2.15.2); the tests run the client against a fake Harbor that checks every
//! request and response against that description (`tests/support/harbor_fake.rs`).
//!
//! Credentials never appear in `Debug`, `Display`, errors or logs: see [`Secret`].

pub mod client;
pub mod plan;
pub mod policies;
pub mod types;

pub use client::{ClientOptions, HarborClient, HarborError};
pub use types::*;
