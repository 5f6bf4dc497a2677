//! Why a Registry pass fails (every failure is transient and retried with backoff) and the
//! `namespace/name` the controller logs and backs off by. Types only; no decisions.

use kube::ResourceExt;

use super::{access, harbor};
use crate::crd::Registry;
use crate::reconcile::apply::ApplyError;
use crate::render::RenderError;

/// Why a Registry reconcile failed; all are transient and retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Reading cluster state failed.
    #[error("reading {what}: {source}")]
    Read {
        what: &'static str,
        source: kube::Error,
    },
    /// Applying or pruning children failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Writing the status failed.
    #[error("writing status: {0}")]
    Status(kube::Error),
    /// Cleanup on deletion failed.
    #[error("cleanup: {0}")]
    Cleanup(kube::Error),
    /// The finalizer machinery failed (adding/removing the finalizer).
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// A Harbor step (generated Secrets) failed.
    #[error(transparent)]
    Harbor(#[from] harbor::HarborError),
    /// Render failed for a reason that is not the user's (a bug).
    #[error("render: {0}")]
    Render(RenderError),
    /// Reading what render needs, or copying a public value of a generated Secret, failed.
    #[error(transparent)]
    Access(#[from] access::AccessError),
}

impl ReconcileError {
    /// Short CamelCase reason for metrics and logs.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Read { .. } => "ReadFailed",
            Self::Apply(_) => "ApplyFailed",
            Self::Status(_) => "StatusFailed",
            Self::Cleanup(_) => "CleanupFailed",
            Self::Finalizer(_) => "FinalizerFailed",
            Self::Render(_) => "RenderFailed",
            Self::Harbor(_) => "SecretsFailed",
            Self::Access(access::AccessError::Read { .. }) => "ReadFailed",
            Self::Access(access::AccessError::Missing { .. }) => "SecretsFailed",
        }
    }
}

/// `namespace/name` of a Registry.
pub(crate) fn registry_id(registry: &Registry) -> String {
    format!(
        "{}/{}",
        registry.namespace().unwrap_or_default(),
        registry.name_any()
    )
}
