//! What an ImagePolicy follows of its Registry: the endpoint, and during a switch's grace window the
//! old host (still allowed) and, with `spec.migration.rewriteImages`, the rewrite of the old host to
//! the new one. Pure: reads only the Registry given; decides nothing about the window itself.

use super::rewrite::ImageRewrite;
use crate::crd::{MigrationPhase, Registry, RegistryMode};

/// The parts of a Registry an ImagePolicy renders from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryFollow {
    /// `status.endpoint`.
    pub endpoint: Option<String>,
    /// The old host while the grace window runs (`status.migration.source`).
    pub previous_endpoint: Option<String>,
    /// The rewrite of the old host to the new one, when asked for and the window runs.
    pub rewrite: Option<ImageRewrite>,
}

/// Read what an ImagePolicy follows from its Registry.
pub fn follow(registry: &Registry) -> RegistryFollow {
    let Some(status) = registry.status.as_ref() else {
        return RegistryFollow::default();
    };
    let endpoint = status.endpoint.clone();
    let migration = status.migration.as_ref();
    let in_grace = migration
        .and_then(|m| m.phase)
        .is_some_and(|p| matches!(p, MigrationPhase::Switched | MigrationPhase::Grace));
    let previous_endpoint = migration
        .filter(|_| in_grace)
        .and_then(|m| m.source.clone())
        .filter(|source| Some(source) != endpoint.as_ref());
    let spec = registry.spec.migration.clone().unwrap_or_default();
    let rewrite = match (&previous_endpoint, &endpoint) {
        (Some(from), Some(to)) if spec.rewrite_images => Some(ImageRewrite {
            from_host: from.clone(),
            to_host: to.clone(),
            prefix: match status.mode {
                Some(RegistryMode::Harbor) => spec.destination_project,
                _ => String::new(),
            },
        }),
        _ => None,
    };
    RegistryFollow {
        endpoint,
        previous_endpoint,
        rewrite,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{MigrationSpec, MigrationStatus, RegistrySpec, RegistryStatus, Retention};

    fn registry(phase: MigrationPhase, rewrite_images: bool) -> Registry {
        let mut registry = Registry::new(
            "platform",
            RegistrySpec {
                mode: RegistryMode::Harbor,
                host: Some("harbor.example.com".into()),
                k3d: None,
                harbor: None,
                retention: Retention::Retain,
                migration: Some(MigrationSpec {
                    rewrite_images,
                    ..Default::default()
                }),
            },
        );
        registry.status = Some(RegistryStatus {
            mode: Some(RegistryMode::Harbor),
            endpoint: Some("harbor.example.com".into()),
            migration: Some(MigrationStatus {
                phase: Some(phase),
                source: Some("k3d-registry:5000".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        registry
    }

    #[test]
    fn the_old_host_is_followed_only_during_the_window() {
        let grace = follow(&registry(MigrationPhase::Grace, true));
        assert_eq!(
            grace.previous_endpoint.as_deref(),
            Some("k3d-registry:5000")
        );
        assert_eq!(
            grace.rewrite,
            Some(ImageRewrite {
                from_host: "k3d-registry:5000".into(),
                to_host: "harbor.example.com".into(),
                prefix: "library".into(),
            })
        );
        assert_eq!(
            follow(&registry(MigrationPhase::Grace, false)).rewrite,
            None
        );
        for phase in [MigrationPhase::Verifying, MigrationPhase::Retired] {
            let after = follow(&registry(phase, true));
            assert_eq!(after.previous_endpoint, None, "{phase:?}");
            assert_eq!(after.rewrite, None);
        }
    }
}
