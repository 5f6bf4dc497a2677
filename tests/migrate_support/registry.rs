//! The CNCF distribution the migration tests copy between (one implementation, in tests/common).

#[path = "../common/distribution.rs"]
mod distribution;

pub use distribution::Distribution;
