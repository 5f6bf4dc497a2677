//! The pure first step of a Registry pass: which mode serves now, what the spec asks, and so which
//! render [`Target`]s (mode + host) the pass renders. Reads only the Registry; never a client, and
//! never a rewritten copy of the Registry.

use crate::crd::{
    DEFAULT_HARBOR_VERSION, MigrationPhase, Registry, RegistryMode, UpgradeStatus, UpgradeStep,
};
use crate::render::HarborHold;
use crate::render::Target;
use crate::validate::upgrade::{UpgradeRefusal, harbor_upgrade};

/// What the spec asks relative to what serves, with the targets to render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The serving mode is the spec's mode: render the spec.
    Steady(Target),
    /// Harbor → K3d without `spec.migration.allowDowngrade`: keep rendering what serves.
    DowngradeRefused(Target),
    /// Copy from `from` (what serves, kept running; read-only from the freeze on) to `to` (the
    /// spec), then flip.
    Switch { from: Target, to: Target },
    /// The flip happened: `serving` (the spec) serves, `old` is still served, read-only, until the
    /// grace window ends and no pod uses its host; then it is retired.
    Grace { serving: Target, old: Target },
    /// `spec.harbor.version` is not a safe change from the running Harbor: apply nothing.
    UpgradeRefused(Target, UpgradeRefusal),
    /// A Harbor version change in progress, at `state.step`; `Target::hold` says which components
    /// still run the old version.
    Upgrade(Target, UpgradeStatus),
}

impl Plan {
    /// The target whose children this pass provisions (and, but for a switch, reports on).
    pub(crate) fn target(&self) -> &Target {
        match self {
            Self::Steady(target)
            | Self::DowngradeRefused(target)
            | Self::UpgradeRefused(target, _)
            | Self::Upgrade(target, _) => target,
            Self::Switch { to, .. } => to,
            Self::Grace { serving, .. } => serving,
        }
    }
}

/// Whether this pass belongs to a switch into or out of Harbor before its flip (its Jobs reach
/// Harbor as the migration robot, which lives exactly that long).
pub(crate) fn switching_with_harbor(plan: &Plan) -> bool {
    matches!(plan, Plan::Switch { from, to }
        if from.mode == RegistryMode::Harbor || to.mode == RegistryMode::Harbor)
}

/// The mode that serves images now: `status.mode`, or the spec's mode for a new Registry.
fn serving_mode(registry: &Registry) -> RegistryMode {
    registry
        .status
        .as_ref()
        .and_then(|s| s.mode)
        .unwrap_or(registry.spec.mode)
}

/// The mode that serves now, at the host it serves at (`spec.host` may already name the target,
/// e.g. Harbor's host, while the old registry keeps serving at `status.endpoint`).
fn serving(registry: &Registry) -> Target {
    Target {
        mode: serving_mode(registry),
        host: registry
            .status
            .as_ref()
            .and_then(|s| s.endpoint.clone())
            .or_else(|| registry.spec.host.clone()),
        frozen: false,
        hold: None,
    }
}

/// The side switched away from while the grace window runs: `status.migration.fromMode` at the host
/// it served at, still read-only.
fn in_grace(registry: &Registry) -> Option<Target> {
    let migration = registry.status.as_ref()?.migration.as_ref()?;
    let phase = migration.phase?;
    let from = migration.from_mode?;
    (matches!(phase, MigrationPhase::Switched | MigrationPhase::Grace)
        && from != registry.spec.mode)
        .then(|| Target {
            mode: from,
            host: migration.source.clone(),
            frozen: true,
            hold: None,
        })
}

/// Whether `spec.harbor.version` may replace the Harbor running now (`status.harborVersion`, set
/// once core rolled out; nothing to compare before).
fn harbor_version_change(registry: &Registry) -> Result<(), UpgradeRefusal> {
    let Some(running) = registry
        .status
        .as_ref()
        .and_then(|s| s.harbor_version.as_deref())
    else {
        return Ok(());
    };
    let harbor = registry.spec.harbor.as_ref();
    let wanted = harbor
        .and_then(|h| h.version.as_deref())
        .unwrap_or(DEFAULT_HARBOR_VERSION);
    harbor_upgrade(running, wanted, harbor.is_some_and(|h| h.allow_downgrade))
}

/// `spec.harbor.version`, without a leading `v`.
fn wanted_harbor_version(registry: &Registry) -> String {
    let version = registry
        .spec
        .harbor
        .as_ref()
        .and_then(|h| h.version.clone())
        .unwrap_or_else(|| DEFAULT_HARBOR_VERSION.to_string());
    version.trim_start_matches('v').to_string()
}

/// What render holds back at each step of an upgrade.
fn upgrade_target(registry: &Registry, state: UpgradeStatus) -> Plan {
    let backup = registry
        .spec
        .harbor
        .as_ref()
        .and_then(|h| h.database.as_ref())
        .is_some_and(|d| d.managed.is_some() && d.backup.is_some());
    let hold = |core_upgraded: bool, backup: bool| HarborHold {
        running: state.from.clone(),
        core_upgraded,
        backup,
    };
    // The Backup is taken once Harbor is read-only, and stays rendered until core is upgraded.
    let hold = match state.step {
        UpgradeStep::ReadOnly => Some(hold(false, false)),
        UpgradeStep::BackingUp => Some(hold(false, backup)),
        UpgradeStep::Core => Some(hold(true, backup)),
        UpgradeStep::Components | UpgradeStep::LeavingReadOnly => None,
    };
    Plan::Upgrade(
        Target {
            hold,
            ..Target::of_spec(registry)
        },
        state,
    )
}

/// Harbor → Harbor: continue an upgrade in progress, start one when the running version differs
/// from the spec's and the change is allowed, or refuse it.
fn harbor_plan(registry: &Registry) -> Plan {
    let wanted = wanted_harbor_version(registry);
    let status = registry.status.as_ref();
    let allow_downgrade = registry
        .spec
        .harbor
        .as_ref()
        .is_some_and(|h| h.allow_downgrade);
    if let Some(state) = status.and_then(|s| s.upgrade.clone()) {
        if state.to == wanted {
            return upgrade_target(registry, state);
        }
        // The spec moved again mid-upgrade: judged against the version that ran before it.
        return match harbor_upgrade(&state.from, &wanted, allow_downgrade) {
            Err(refusal) => Plan::UpgradeRefused(Target::of_spec(registry), refusal),
            Ok(()) if state.from == wanted => upgrade_target(
                registry,
                UpgradeStatus {
                    to: wanted,
                    step: UpgradeStep::Components,
                    message: None,
                    ..state
                },
            ),
            Ok(()) => upgrade_target(
                registry,
                UpgradeStatus {
                    to: wanted,
                    step: UpgradeStep::ReadOnly,
                    message: None,
                    ..state
                },
            ),
        };
    }
    match harbor_version_change(registry) {
        Err(refusal) => Plan::UpgradeRefused(Target::of_spec(registry), refusal),
        Ok(()) => match status.and_then(|s| s.harbor_version.clone()) {
            Some(running) if running.trim_start_matches('v') != wanted => upgrade_target(
                registry,
                UpgradeStatus {
                    from: running.trim_start_matches('v').to_string(),
                    to: wanted,
                    step: UpgradeStep::ReadOnly,
                    message: None,
                },
            ),
            _ => Plan::Steady(Target::of_spec(registry)),
        },
    }
}

/// Decide the plan for a Registry.
pub(crate) fn plan(registry: &Registry) -> Plan {
    let wanted = registry.spec.mode;
    let downgrade_allowed = registry
        .spec
        .migration
        .as_ref()
        .is_some_and(|m| m.allow_downgrade);
    if serving_mode(registry) == wanted
        && let Some(old) = in_grace(registry)
    {
        return Plan::Grace {
            serving: Target::of_spec(registry),
            old,
        };
    }
    match (serving_mode(registry), wanted) {
        (RegistryMode::Harbor, RegistryMode::Harbor) => harbor_plan(registry),
        (a, b) if a == b => Plan::Steady(Target::of_spec(registry)),
        (RegistryMode::Harbor, RegistryMode::K3d) if !downgrade_allowed => {
            Plan::DowngradeRefused(serving(registry))
        }
        _ => Plan::Switch {
            from: Target {
                frozen: super::migration::source_frozen(&super::migration::recorded(registry)),
                ..serving(registry)
            },
            to: Target::of_spec(registry),
        },
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::crd::{MigrationSpec, MigrationStatus, RegistrySpec, RegistryStatus, Retention};

    /// A Registry asking for `spec_mode` at Harbor's host while `serving` serves.
    pub(in crate::reconcile::registry) fn registry(
        spec_mode: RegistryMode,
        serving: Option<RegistryMode>,
        allow_downgrade: bool,
    ) -> Registry {
        let mut registry = Registry::new(
            "platform",
            RegistrySpec {
                mode: spec_mode,
                host: Some("harbor.ai-platform.localhost".into()),
                k3d: None,
                harbor: None,
                retention: Retention::Retain,
                migration: Some(MigrationSpec {
                    allow_downgrade,
                    ..Default::default()
                }),
            },
        );
        registry.metadata.namespace = Some("registry".into());
        registry.status = Some(RegistryStatus {
            mode: serving,
            migration: Some(MigrationStatus::default()),
            ..Default::default()
        });
        registry
    }

    fn target(mode: RegistryMode, host: &str) -> Target {
        Target {
            mode,
            host: Some(host.into()),
            frozen: false,
            hold: None,
        }
    }

    #[test]
    fn plans_follow_serving_mode_and_downgrade_flag() {
        const HARBOR: &str = "harbor.ai-platform.localhost";
        assert_eq!(
            plan(&registry(RegistryMode::K3d, None, false)),
            Plan::Steady(target(RegistryMode::K3d, HARBOR))
        );
        assert_eq!(
            plan(&registry(
                RegistryMode::Harbor,
                Some(RegistryMode::Harbor),
                false
            )),
            Plan::Steady(target(RegistryMode::Harbor, HARBOR))
        );
        assert_eq!(
            plan(&registry(
                RegistryMode::Harbor,
                Some(RegistryMode::K3d),
                false
            )),
            Plan::Switch {
                from: target(RegistryMode::K3d, HARBOR),
                to: target(RegistryMode::Harbor, HARBOR),
            }
        );
        assert_eq!(
            plan(&registry(
                RegistryMode::K3d,
                Some(RegistryMode::Harbor),
                false
            )),
            Plan::DowngradeRefused(target(RegistryMode::Harbor, HARBOR))
        );
        assert_eq!(
            plan(&registry(
                RegistryMode::K3d,
                Some(RegistryMode::Harbor),
                true
            )),
            Plan::Switch {
                from: target(RegistryMode::Harbor, HARBOR),
                to: target(RegistryMode::K3d, HARBOR),
            }
        );
    }

    #[test]
    fn what_serves_renders_at_the_endpoint_it_serves_at_never_at_the_new_spec_host() {
        let mut switching = registry(RegistryMode::Harbor, Some(RegistryMode::K3d), false);
        switching.status.as_mut().unwrap().endpoint = Some("k3d-registry:5000".into());
        let Plan::Switch { from, to } = plan(&switching) else {
            panic!("a switch")
        };
        assert_eq!(from, target(RegistryMode::K3d, "k3d-registry:5000"));
        assert_eq!(
            to,
            target(RegistryMode::Harbor, "harbor.ai-platform.localhost")
        );
        assert_eq!(
            switching.spec.host.as_deref(),
            Some("harbor.ai-platform.localhost"),
            "the Registry itself is never rewritten"
        );
    }
}
