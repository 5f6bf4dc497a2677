//! What a Registry pass reports: the status, conditions and requeue of each branch (a refusal that
//! applies nothing, a refused apply, a steady pass, a switch pass), built from what was rendered and
//! what the watch caches show. Pure: writes nothing; the controller writes the one status of a pass.

use std::time::Duration;

use kube::core::object::HasStatus;
use kube::runtime::controller::Action;

use super::harbor;
use crate::crd::{
    MigrationPhase, Reason, Registry, RegistryMode, RegistryPhase, RegistryStatus, condition,
};
use crate::reconcile::apply::ApplyError;
use crate::reconcile::children::{ChildStores, readiness};
use crate::reconcile::context::Settings;
use crate::reconcile::status::DesiredCondition;
use crate::render::{self, Rendered, Target};

/// What one pass writes and when it looks again.
pub(super) struct Outcome {
    /// The status to write (conditions and `observedGeneration` are filled in when written).
    pub(super) status: RegistryStatus,
    /// The conditions, merged with the current ones when written.
    pub(super) conditions: Vec<DesiredCondition>,
    /// When to reconcile again.
    pub(super) action: Action,
    /// A switch finished: the note of the `Switched` Event.
    pub(super) switched: Option<String>,
}

/// A steady pass (or one whose downgrade is refused), after its children were applied.
pub(super) struct Steady {
    /// What was rendered and for which target.
    pub(super) target: Target,
    pub(super) rendered: Rendered,
    /// `spec.mode` asks for K3d while Harbor serves, without `allowDowngrade`.
    pub(super) downgrade_refused: bool,
    /// What reading the KEP-1755 announcement found wrong with it.
    pub(super) observed_problem: Option<String>,
    /// Unfinished garbage-collection Jobs of the hosted K3d registry (it is rendered read-only).
    pub(super) gc_open: Vec<super::gc_window::OpenGc>,
    /// What was observed, when the render waits for the NodePort the API server allocates to the
    /// Service it creates (`access::snippet_with_allocated_port` completes it after the apply).
    pub(super) awaiting_port: Option<Box<render::Observed>>,
}

/// Status fields carried over from the current status (migration progress is owned elsewhere).
pub(super) fn status_base(registry: &Registry) -> RegistryStatus {
    let current = registry.status().cloned().unwrap_or_default();
    RegistryStatus {
        migration: current.migration,
        harbor_version: current.harbor_version,
        upgrade: current.upgrade,
        ..Default::default()
    }
}

/// A pass that applies nothing: the spec, a port or a missing dependency stops it.
fn nothing_applied(
    registry: &Registry,
    phase: RegistryPhase,
    conditions: [DesiredCondition; 3],
    action: Action,
) -> Outcome {
    Outcome {
        status: RegistryStatus {
            phase: Some(phase),
            ..status_base(registry)
        },
        conditions: conditions.into(),
        action,
        switched: None,
    }
}

/// The spec breaks a rule (`message` names the field); wait for it to change.
pub(super) fn invalid_spec(registry: &Registry, message: String) -> Outcome {
    let reason = Reason::InvalidSpec;
    let conditions = [
        DesiredCondition::new(condition::READY, false, reason, message),
        DesiredCondition::new(
            condition::PROGRESSING,
            false,
            reason,
            "waiting for the spec to be fixed",
        ),
        DesiredCondition::new(condition::DEGRADED, false, reason, ""),
    ];
    nothing_applied(
        registry,
        RegistryPhase::Invalid,
        conditions,
        Action::await_change(),
    )
}

/// `spec.k3d.nodePort` is taken; the other Service is not watched, so look again at the next resync.
pub(super) fn node_port_conflict(registry: &Registry, conflict: &str, resync: Duration) -> Outcome {
    let reason = Reason::NodePortConflict;
    let conditions = [
        DesiredCondition::new(condition::READY, false, reason, conflict),
        DesiredCondition::new(condition::PROGRESSING, false, reason, "nothing applied"),
        DesiredCondition::new(condition::DEGRADED, true, reason, conflict),
    ];
    nothing_applied(
        registry,
        RegistryPhase::Degraded,
        conditions,
        Action::requeue(resync),
    )
}

/// A database on CloudNativePG needs kinds (`missing`, `plural.group`) that are not served.
pub(super) fn cnpg_missing(registry: &Registry, missing: &[String], resync: Duration) -> Outcome {
    let field = if cnpg_database(registry).is_some() {
        "spec.harbor.database.cnpg"
    } else {
        "spec.harbor.database.managed"
    };
    let message = format!(
        "{field} needs CloudNativePG, whose {} {} not served: install (or upgrade) its operator or set spec.harbor.database.external",
        missing.join(", "),
        if missing.len() == 1 { "is" } else { "are" },
    );
    blocked(registry, Reason::CNPGNotInstalled, &message, resync)
}

/// The existing CloudNativePG Cluster (`namespace/name`) named by `spec.harbor.database.cnpg` is absent.
pub(super) fn cnpg_cluster_not_found(
    registry: &Registry,
    cluster: &str,
    resync: Duration,
) -> Outcome {
    let message = format!(
        "spec.harbor.database.cnpg.clusterRef: CloudNativePG Cluster {cluster} not found; create it or point clusterRef at an existing one"
    );
    blocked(registry, Reason::ClusterNotFound, &message, resync)
}

/// Harbor serves, but the settings kept through its API (`spec.harbor.readOnly`, `spec.harbor.gc`)
/// could not be read or written: `Degraded=True`, reason `HarborUnavailable`, and a sooner look again.
pub(super) fn harbor_api_failed(
    mut outcome: Outcome,
    message: &str,
    settings: &Settings,
) -> Outcome {
    outcome
        .conditions
        .retain(|c| c.type_ != condition::DEGRADED);
    outcome.conditions.push(DesiredCondition::new(
        condition::DEGRADED,
        true,
        Reason::HarborUnavailable,
        message,
    ));
    outcome.action = Action::requeue(settings.requeue_not_ready);
    outcome
}

/// `spec.harbor.version` is no safe change from the running Harbor (see `validate::upgrade`); the
/// running Harbor keeps serving, and its status fields stay as they are.
pub(super) fn upgrade_refused(registry: &Registry, message: &str, resync: Duration) -> Outcome {
    let mut outcome = blocked(registry, Reason::UpgradeRefused, message, resync);
    let current = registry.status().cloned().unwrap_or_default();
    outcome.status.endpoint = current.endpoint;
    outcome.status.mode = current.mode;
    outcome.status.k3s_registries_yaml = current.k3s_registries_yaml;
    outcome
}

fn cnpg_database(registry: &Registry) -> Option<&crate::crd::CnpgDatabase> {
    registry
        .spec
        .harbor
        .as_ref()?
        .database
        .as_ref()?
        .cnpg
        .as_ref()
}

/// Nothing applied until someone acts (install a dependency, create what the spec names); looked at
/// again every resync, since what is missing is not watched.
fn blocked(registry: &Registry, reason: Reason, message: &str, resync: Duration) -> Outcome {
    let conditions = [
        DesiredCondition::new(condition::READY, false, reason, message),
        DesiredCondition::new(condition::PROGRESSING, false, reason, "nothing applied"),
        DesiredCondition::new(condition::DEGRADED, false, Reason::AsExpected, ""),
    ];
    nothing_applied(
        registry,
        RegistryPhase::Degraded,
        conditions,
        Action::requeue(resync),
    )
}

/// A child the API server refused (Ready=False, reason `ApplyFailed`, the child and the server's
/// message; what the status said of the serving registry is kept). `None` for other apply errors,
/// which are only logged and counted. The pass fails either way and backs off.
pub(super) fn refused(registry: &Registry, error: &ApplyError) -> Option<Outcome> {
    let ApplyError::Refused(refusal) = error else {
        return None;
    };
    let current = registry.status().cloned().unwrap_or_default();
    Some(Outcome {
        conditions: refusal.conditions(&current.conditions),
        status: RegistryStatus {
            phase: Some(RegistryPhase::Degraded),
            ..current
        },
        action: Action::await_change(),
        switched: None,
    })
}

/// Why children of `rendered` are not ready yet (empty when all are), including what render holds back.
pub(super) fn waiting_on(rendered: &Rendered, stores: &ChildStores) -> Vec<String> {
    let mut waiting: Vec<String> = rendered
        .objects
        .iter()
        .filter_map(|object| readiness(&object.resource.kind, stores.live(object).as_ref()))
        .filter_map(Result::err)
        .collect();
    waiting.extend(rendered.held_back.clone());
    waiting
}

/// A steady pass: Ready once every child is; Degraded by render's warnings or a refused downgrade.
pub(super) fn steady(
    registry: &Registry,
    pass: &Steady,
    stores: &ChildStores,
    settings: &Settings,
) -> Outcome {
    let Steady {
        target,
        rendered,
        downgrade_refused,
        observed_problem,
        gc_open,
        awaiting_port: _,
    } = pass;
    // Read now, from the same caches as the Harbor part conditions below (not before the apply):
    // Ready must never be True beside a part that is not, nor False when all parts are.
    let waiting = waiting_on(rendered, stores);
    let ready = waiting.is_empty();
    let mut warnings = rendered.warnings.clone();
    if *downgrade_refused {
        warnings.push("spec.mode: switching from Harbor back to K3d is refused (the k3d registry has no projects, scanning or access control); set spec.migration.allowDowngrade: true to copy the images back, or set spec.mode back to Harbor".to_string());
    }
    warnings.extend(observed_problem.clone());
    let ready_message = if ready && rendered.adopted {
        // k3d runs that registry outside the cluster; the operator does not probe it.
        format!(
            "serving at {} (adopted from kube-public/local-registry-hosting; its reachability is not checked by the operator)",
            rendered.endpoint.as_deref().unwrap_or("-")
        )
    } else if ready {
        format!("serving at {}", rendered.endpoint.as_deref().unwrap_or("-"))
    } else {
        waiting.join("; ")
    };
    let ready_reason = if ready {
        Reason::Available
    } else if rendered.held_back.is_some() {
        Reason::WaitingForDatabase
    } else {
        Reason::Provisioning
    };
    let (progressing_reason, progressing_message) = if !gc_open.is_empty() {
        let jobs: Vec<&str> = gc_open.iter().map(|g| g.name.as_str()).collect();
        (
            Reason::GarbageCollecting,
            format!(
                "read-only while garbage collection runs (Job {}); writable again when it finished",
                jobs.join(", ")
            ),
        )
    } else if ready {
        (Reason::Reconciled, String::new())
    } else {
        (Reason::WaitingForChildren, waiting.join("; "))
    };
    let degraded_reason = if warnings.is_empty() {
        Reason::AsExpected
    } else if *downgrade_refused {
        Reason::DowngradeRefused
    } else {
        Reason::Conflict
    };
    let mut conditions = vec![
        DesiredCondition::new(condition::READY, ready, ready_reason, ready_message),
        DesiredCondition::new(
            condition::PROGRESSING,
            !ready || !gc_open.is_empty(),
            progressing_reason,
            progressing_message,
        ),
        DesiredCondition::new(
            condition::DEGRADED,
            !warnings.is_empty(),
            degraded_reason,
            warnings.join("; "),
        ),
    ];
    if target.mode == RegistryMode::Harbor {
        conditions.extend(harbor::conditions(registry, rendered, stores));
    }
    // A finished switch keeps saying so (`Migrating=False`, reason `Retired`).
    if let Some(migration) = status_base(registry)
        .migration
        .filter(|m| m.phase == Some(MigrationPhase::Retired))
    {
        conditions.push(DesiredCondition::new(
            condition::MIGRATING,
            false,
            Reason::Retired,
            migration.message.clone().unwrap_or_default(),
        ));
    }
    let mut base = status_base(registry);
    // A switch set back before its flip was cancelled: its record goes (a later switch starts over).
    if base
        .migration
        .as_ref()
        .and_then(|m| m.phase)
        .is_some_and(|p| {
            !matches!(
                p,
                MigrationPhase::Switched | MigrationPhase::Grace | MigrationPhase::Retired
            )
        })
    {
        base.migration = None;
    }
    let status = RegistryStatus {
        phase: Some(if ready {
            RegistryPhase::Ready
        } else {
            RegistryPhase::Provisioning
        }),
        endpoint: rendered.endpoint.clone(),
        mode: Some(target.mode),
        k3s_registries_yaml: rendered.k3s_registries_yaml.clone(),
        harbor_version: running_harbor_version(registry, rendered, stores)
            .or_else(|| base.harbor_version.clone()),
        last_backup_time: last_backup_time(rendered, stores),
        ..base
    };
    Outcome {
        status,
        conditions,
        action: Action::requeue(if ready {
            settings.resync
        } else {
            settings.requeue_not_ready
        }),
        switched: None,
    }
}

/// The Harbor version running: the tag of the core Deployment's image once that Deployment has rolled
/// out (not the version asked for, which may still be rolling out); None before.
pub(super) fn running_harbor_version(
    registry: &Registry,
    rendered: &Rendered,
    stores: &ChildStores,
) -> Option<String> {
    let core_name = render::harbor_component_name(&kube::ResourceExt::name_any(registry), "core");
    let core = rendered
        .objects
        .iter()
        .find(|o| o.resource.kind == "Deployment" && o.name() == core_name)?;
    let live = stores.live(core)?;
    readiness(&core.resource.kind, Some(&live))?.ok()?;
    let image = live
        .data
        .pointer("/spec/template/spec/containers/0/image")?
        .as_str()?;
    version_of_image(image)
}

/// The managed database's last successful backup, when render asked for backups (a `ScheduledBackup`)
/// and CloudNativePG reported one on the Cluster.
fn last_backup_time(rendered: &Rendered, stores: &ChildStores) -> Option<String> {
    let objects = &rendered.objects;
    objects
        .iter()
        .find(|o| o.resource.kind == "ScheduledBackup")?;
    let cluster = objects
        .iter()
        .find(|o| o.resource.kind == "Cluster" && o.resource.group == "postgresql.cnpg.io")?;
    let live = stores.live(cluster)?;
    let time = live
        .data
        .pointer("/status/lastSuccessfulBackup")?
        .as_str()?;
    Some(time.to_string())
}

/// `2.15.2` from `docker.io/goharbor/harbor-core:v2.15.2` (a digest suffix is ignored).
fn version_of_image(image: &str) -> Option<String> {
    let without_digest = image.split('@').next()?;
    let (_, tag) = without_digest.rsplit_once(':')?;
    (!tag.contains('/')).then(|| tag.trim_start_matches('v').to_string())
}

#[cfg(test)]
mod tests {
    use super::version_of_image;

    #[test]
    fn the_version_is_the_core_image_tag() {
        assert_eq!(
            version_of_image("docker.io/goharbor/harbor-core:v2.15.2").as_deref(),
            Some("2.15.2")
        );
        assert_eq!(
            version_of_image("registry.local:5000/goharbor/harbor-core:v2.14.0@sha256:abc")
                .as_deref(),
            Some("2.14.0")
        );
        assert_eq!(version_of_image("registry.local:5000/harbor-core"), None);
    }
}
