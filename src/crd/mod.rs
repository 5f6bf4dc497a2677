//! The registry.aisp.dev/v1alpha1 API: `Registry`, `ImagePolicy` and `RegistryProject` types and their CRD generation.
//! Pure data definitions; this module must not import `render`, `reconcile` or `migrate`.

mod common;
pub mod generate;
mod harbor;
mod image_policy;
mod project;
mod reason;
mod registry;
pub mod schema;

pub use common::*;
pub use harbor::*;
pub use image_policy::*;
pub use project::*;
pub use reason::*;
pub use registry::*;

/// API group of every kind this operator serves.
pub const GROUP: &str = "registry.aisp.dev";
/// API version of every kind this operator serves.
pub const VERSION: &str = "v1alpha1";
