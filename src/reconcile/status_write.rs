//! Writes a custom resource's status (server-side apply, our one field manager) only when it changed,
//! and publishes an Event when Ready flips or its reason changes to one that is not mere progress. It
//! must not decide what the conditions say.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::warn;

use super::apply::FIELD_MANAGER;
use super::status::{DesiredCondition, is_true, merge_conditions};
use crate::crd::{ImagePolicyStatus, Meaning, Reason, RegistryStatus, condition};

/// A status with standard conditions and `observedGeneration`.
pub(crate) trait ConditionedStatus: Serialize + Clone + Default + PartialEq {
    fn conditions(&self) -> &[Condition];
    fn set_conditions(&mut self, conditions: Vec<Condition>);
    fn set_observed_generation(&mut self, generation: Option<i64>);
    /// What other objects follow in this status (a Registry's endpoint, read by its ImagePolicies):
    /// a first status that sets it is not held back ([`first_status_hold`]).
    fn followed(&self) -> Option<&str> {
        None
    }
}

/// Our statuses carry `conditions` and `observedGeneration` under the same names; `followed:` names
/// the field other objects follow, if any.
macro_rules! conditioned_status {
    ($status:ty $(, followed: $field:ident)?) => {
        impl ConditionedStatus for $status {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }
            fn set_conditions(&mut self, conditions: Vec<Condition>) {
                self.conditions = conditions;
            }
            fn set_observed_generation(&mut self, generation: Option<i64>) {
                self.observed_generation = generation;
            }
            $(fn followed(&self) -> Option<&str> {
                self.$field.as_deref()
            })?
        }
    };
}
pub(crate) use conditioned_status;
conditioned_status!(ImagePolicyStatus);
conditioned_status!(RegistryStatus, followed: endpoint);

/// Merge `desired` into the object's conditions and write `status` through `api` unless nothing
/// changed (so a steady state writes nothing); publish an Event when `event_worthy` says so (a
/// failure, a recovery, Ready lost; not the way to the first Ready), never again while it stays the same.
/// A fresh object's first status is held back for up to `hold` after its creation while it only
/// reports progress ([`first_status_hold`]): `Ok(Some(left))` says nothing was written and when to look
/// again.
pub(crate) async fn write_status<K>(
    api: &Api<K>,
    recorder: &Recorder,
    object: &K,
    mut status: K::Status,
    desired: &[DesiredCondition],
    hold: Duration,
) -> Result<Option<Duration>, kube::Error>
where
    K: Resource<DynamicType = ()> + HasStatus + Clone + DeserializeOwned + Debug,
    K::Status: ConditionedStatus + DeserializeOwned,
{
    let key = format!(
        "{}/{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any(),
        object.uid().unwrap_or_default()
    );
    let seen_version = object.resource_version().unwrap_or_default();
    let current = written_since(&key, &seen_version)
        .unwrap_or_else(|| object.status().cloned().unwrap_or_default());
    let now = Timestamp::now();
    if let Some(left) = first_status_hold(
        !current.conditions().is_empty() || news_for_others(&current, &status),
        object.meta().creation_timestamp.as_ref().map(|t| t.0),
        now,
        desired,
        hold,
    ) {
        return Ok(Some(left));
    }
    let generation = object.meta().generation;
    status.set_observed_generation(generation);
    status.set_conditions(merge_conditions(
        current.conditions(),
        desired,
        generation,
        &Time(now),
    ));
    if status == current {
        return Ok(None);
    }
    let last_progress = PROGRESS_WRITTEN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .copied();
    if let Some(left) =
        progress_message_hold(&current, &status, last_progress, Instant::now(), hold)
    {
        return Ok(Some(left));
    }
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let written = api
        .patch_status(
            &object.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await;
    match written {
        // Deleted since the cache saw it (the watch catches up): nothing left to report on, and
        // retrying with backoff would only repeat the 404.
        Err(kube::Error::Api(response)) if response.code == 404 => return Ok(None),
        other => other?,
    };
    remember_written(key.clone(), seen_version, &status);
    remember_progress_write(&key, status.conditions());
    if tracing::enabled!(tracing::Level::DEBUG) {
        let changed: Vec<String> = status
            .conditions()
            .iter()
            .filter(|c| !current.conditions().contains(c))
            .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
            .collect();
        // Names only, never values: which other status fields this write changed.
        let fields = |status: &K::Status| match serde_json::to_value(status) {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        };
        let (before, after) = (fields(&current), fields(&status));
        let fields_changed: std::collections::BTreeSet<&String> = after
            .keys()
            .chain(before.keys())
            .filter(|key| *key != "conditions" && before.get(*key) != after.get(*key))
            .collect();
        tracing::debug!(kind = %K::kind(&()), name = %object.name_any(), namespace = ?object.namespace(), ?changed, ?fields_changed, "status written");
    }
    let was_ready = is_true(current.conditions(), condition::READY);
    let now_ready = is_true(status.conditions(), condition::READY);
    let reason_of = |conditions: &[Condition]| {
        conditions
            .iter()
            .find(|c| c.type_ == condition::READY)
            .map(|c| c.reason.clone())
    };
    let previous_reason = reason_of(current.conditions());
    let ready = status
        .conditions()
        .iter()
        .find(|c| c.type_ == condition::READY);
    let failed_since_ready = ready.is_some_and(|c| remember_failure(&key, &c.reason, now_ready));
    if let Some(ready) = ready.filter(|c| {
        event_worthy(
            previous_reason.as_deref().map(|r| (r, was_ready)),
            (&c.reason, now_ready),
            failed_since_ready,
        )
    }) {
        let event = KubeEvent {
            type_: if now_ready {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: ready.reason.clone(),
            note: Some(ready.message.chars().take(1000).collect()),
            action: "Reconcile".to_string(),
            secondary: None,
        };
        let reference = object.object_ref(&());
        if let Err(e) = recorder.publish(&event, &reference).await {
            warn!(kind = %K::kind(&()), name = %object.name_any(), namespace = ?object.namespace(), error = %e, "publishing event failed");
        }
    }
    Ok(None)
}

/// How much longer a fresh object's first status waits, if it waits: while the object has no status
/// yet, was created less than `hold` ago, and would only report progress (Ready `False` for a
/// `Progressing` reason, nothing `Degraded`). A burst of new objects then writes one status each
/// (usually Ready) instead of one per step on the way (issue 17); a failure, a warning or a slow
/// step still shows within `hold`.
pub(crate) fn first_status_hold(
    has_status: bool,
    created: Option<Timestamp>,
    now: Timestamp,
    desired: &[DesiredCondition],
    hold: Duration,
) -> Option<Duration> {
    if has_status {
        return None;
    }
    let only_progress = desired.iter().all(|c| match c.type_ {
        condition::READY => !c.status && !worth_an_event(&c.reason),
        condition::DEGRADED => !c.status,
        _ => true,
    }) && desired.iter().any(|c| c.type_ == condition::READY);
    if !only_progress {
        return None;
    }
    let age = Duration::try_from(now.duration_since(created?)).unwrap_or_default();
    hold.checked_sub(age).filter(|left| !left.is_zero())
}

/// Whether `new` tells other objects something `current` did not (a Registry's endpoint): such a
/// first status is not held, or each ImagePolicy of a new Registry would wait for it and reconcile
/// once more when it comes.
fn news_for_others<S: ConditionedStatus>(current: &S, new: &S) -> bool {
    new.followed().is_some() && new.followed() != current.followed()
}

/// How much longer a status that changes only the words of its progress waits, if it waits: when it
/// differs from the current one in condition messages alone (so a warning already shown stays, and
/// a new one changes `Degraded`), Ready stays `False` for the same `Progressing` reason, and this
/// process wrote such a progress status less than `hold` ago (`last_progress`). A Registry coming
/// up then reports "PersistentVolumeClaim … is Pending", "Deployment …: 0/1 replicas ready", … at
/// most once per `hold` instead of once per step (issue 17); a new reason, Ready, a failure or a
/// new warning is written at once.
pub(crate) fn progress_message_hold<S: ConditionedStatus>(
    current: &S,
    new: &S,
    last_progress: Option<Instant>,
    now: Instant,
    hold: Duration,
) -> Option<Duration> {
    let ready = |status: &S| {
        status
            .conditions()
            .iter()
            .find(|c| c.type_ == condition::READY)
            .map(|c| (c.status.clone(), c.reason.clone()))
    };
    let (was, will) = (ready(current)?, ready(new)?);
    let still_progress = was == will && will.0 == "False" && !worth_an_event(&will.1);
    let without_messages = |status: &S| {
        let mut status = status.clone();
        let conditions = status
            .conditions()
            .iter()
            .map(|c| Condition {
                message: String::new(),
                ..c.clone()
            })
            .collect();
        status.set_conditions(conditions);
        status
    };
    if !still_progress || without_messages(current) != without_messages(new) {
        return None;
    }
    let since = now.checked_duration_since(last_progress?)?;
    hold.checked_sub(since).filter(|left| !left.is_zero())
}

/// Whether a change of Ready (`previous` reason and state, none before the first status; `now`) is
/// worth an Event: a failure or a new failure reason, a recovery from a failure (also through a
/// progress reason: `failed_since_ready`), Ready lost; not progress on the way to Ready nor the first
/// Ready after creation (it shows in the status; an Event per object created cost one request each:
/// issue 17).
fn event_worthy(
    previous: Option<(&str, bool)>,
    now: (&str, bool),
    failed_since_ready: bool,
) -> bool {
    let (reason, ready) = now;
    let Some((previous_reason, was_ready)) = previous else {
        return !ready && worth_an_event(reason);
    };
    if ready && !was_ready {
        return failed_since_ready || worth_an_event(previous_reason);
    }
    was_ready != ready || (previous_reason != reason && worth_an_event(reason))
}

/// Whether a change of Ready's reason (Ready not flipping) is worth an Event: not when it only says
/// how far provisioning got (a `Progressing` reason such as `WaitingForKyverno`); those show in the
/// status and would cost a request per step per object.
fn worth_an_event(reason: &str) -> bool {
    Reason::ALL
        .iter()
        .find(|r| r.as_str() == reason)
        .is_none_or(|r| r.meaning() != Meaning::Progressing)
}

/// Statuses this process wrote, by object, with the resourceVersion the object had when the write was
/// decided. A reconcile that runs before the watch cache shows the write (it still holds that
/// version) compares with what was written, not with the stale status: otherwise it writes the same
/// status again and publishes its Event twice. An entry goes as soon as the cache moves on. The
/// status is kept as compact JSON text: a parsed tree takes several times its bytes, and entries stay
/// until the object's next reconcile (issue 17: loaded memory).
static WRITTEN: LazyLock<Mutex<HashMap<String, (String, String)>>> = LazyLock::new(Mutex::default);
/// Entries kept at most (objects deleted right after a write never clear theirs).
const WRITTEN_MAX: usize = 10_000;

fn written_since<S: DeserializeOwned>(key: &str, seen_version: &str) -> Option<S> {
    let mut written = WRITTEN.lock().unwrap_or_else(|p| p.into_inner());
    let (version, status) = written.get(key)?;
    if version != seen_version {
        written.remove(key);
        return None;
    }
    serde_json::from_str(status).ok()
}

/// Objects (the `write_status` key) whose Ready went to a failure reason since they were last Ready,
/// so their next Ready is told as a recovery even when progress came in between (`ApplyFailed` →
/// `Provisioning` → `Available`). Kept in memory only: after a restart a recovery is told only when
/// it comes straight from the failure, and Events are best-effort anyway.
static FAILED: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);

/// Record the Ready just written; whether `key` had failed since it was last Ready.
fn remember_failure(key: &str, reason: &str, ready: bool) -> bool {
    let mut failed = FAILED.lock().unwrap_or_else(|p| p.into_inner());
    let had_failed = failed.contains(key);
    if ready {
        failed.remove(key);
    } else if worth_an_event(reason) {
        if failed.len() >= WRITTEN_MAX {
            failed.clear();
        }
        failed.insert(key.to_string());
    }
    had_failed
}

/// When this process last wrote each object's status (the `write_status` key) while it reported
/// progress only; an entry goes when a status that is not progress is written.
static PROGRESS_WRITTEN: LazyLock<Mutex<HashMap<String, Instant>>> = LazyLock::new(Mutex::default);

fn remember_progress_write(key: &str, conditions: &[Condition]) {
    let progress = conditions
        .iter()
        .find(|c| c.type_ == condition::READY)
        .is_some_and(|c| c.status == "False" && !worth_an_event(&c.reason));
    let mut written = PROGRESS_WRITTEN.lock().unwrap_or_else(|p| p.into_inner());
    if !progress {
        written.remove(key);
        return;
    }
    if written.len() >= WRITTEN_MAX {
        written.clear();
    }
    written.insert(key.to_string(), Instant::now());
}

fn remember_written<S: Serialize>(key: String, seen_version: String, status: &S) {
    let Ok(value) = serde_json::to_string(status) else {
        return;
    };
    let mut written = WRITTEN.lock().unwrap_or_else(|p| p.into_inner());
    if written.len() >= WRITTEN_MAX {
        written.clear();
    }
    written.insert(key, (seen_version, value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_objects_first_status_waits_only_while_it_reports_progress() {
        let created: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let at = |secs: i64| created + k8s_openapi::jiff::SignedDuration::from_secs(secs);
        let hold = Duration::from_secs(10);
        let progress = [
            DesiredCondition::new(condition::READY, false, Reason::WaitingForKyverno, "w"),
            DesiredCondition::new(condition::PROGRESSING, true, Reason::WaitingForKyverno, "w"),
            DesiredCondition::new(condition::DEGRADED, false, Reason::AsExpected, ""),
        ];
        let first = |has_status, now, desired: &[DesiredCondition]| {
            first_status_hold(has_status, Some(created), now, desired, hold)
        };
        assert_eq!(first(false, at(3), &progress), Some(Duration::from_secs(7)));
        // Held no longer: the hold is over, a status exists, no creation time, no hold asked.
        assert_eq!(first(false, at(10), &progress), None);
        assert_eq!(first(false, at(60), &progress), None);
        assert_eq!(first(true, at(3), &progress), None);
        assert_eq!(first_status_hold(false, None, at(3), &progress, hold), None);
        assert_eq!(
            first_status_hold(false, Some(created), at(3), &progress, Duration::ZERO),
            None
        );
        // Not mere progress: Ready, a failure, a warning: written at once.
        let ready = [DesiredCondition::new(
            condition::READY,
            true,
            Reason::PoliciesReady,
            "r",
        )];
        let failed = [DesiredCondition::new(
            condition::READY,
            false,
            Reason::ApplyFailed,
            "f",
        )];
        let mut warned = progress.clone();
        warned[2] = DesiredCondition::new(condition::DEGRADED, true, Reason::Warnings, "x");
        assert_eq!(first(false, at(1), &ready), None);
        assert_eq!(first(false, at(1), &failed), None);
        assert_eq!(first(false, at(1), &warned), None);
        assert_eq!(first(false, at(1), &[]), None, "no Ready: nothing to judge");
    }

    #[test]
    fn a_registrys_first_endpoint_is_news_for_its_policies_nothing_else_is() {
        let with = |endpoint: Option<&str>| RegistryStatus {
            endpoint: endpoint.map(str::to_string),
            ..Default::default()
        };
        let none = with(None);
        let first = with(Some("r.ns.svc.cluster.local:5000"));
        assert!(news_for_others(&none, &first));
        assert!(news_for_others(&first, &with(Some("harbor.example.com"))));
        assert!(!news_for_others(&first, &first.clone()));
        assert!(!news_for_others(&none, &none.clone()));
        assert!(
            !news_for_others(&ImagePolicyStatus::default(), &ImagePolicyStatus::default()),
            "an ImagePolicy's status is followed by nobody"
        );
    }

    #[test]
    fn a_progress_message_is_rewritten_at_most_once_per_hold_other_changes_at_once() {
        let hold = Duration::from_secs(10);
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let status = |ready: (bool, Reason, &str), degraded: bool| {
            let mut status = RegistryStatus::default();
            let (ready, reason, message) = ready;
            status.set_conditions(vec![
                Condition {
                    type_: condition::READY.into(),
                    status: if ready { "True" } else { "False" }.into(),
                    reason: reason.as_str().into(),
                    message: message.into(),
                    observed_generation: Some(1),
                    last_transition_time: Time(Timestamp::UNIX_EPOCH),
                },
                Condition {
                    type_: condition::DEGRADED.into(),
                    status: if degraded { "True" } else { "False" }.into(),
                    reason: "AsExpected".into(),
                    message: String::new(),
                    observed_generation: Some(1),
                    last_transition_time: Time(Timestamp::UNIX_EPOCH),
                },
            ]);
            status
        };
        let pending = status((false, Reason::Provisioning, "claim Pending"), false);
        let starting = status((false, Reason::Provisioning, "0/1 replicas ready"), false);
        let held = |new: &RegistryStatus, last: Option<u64>, now: u64| {
            progress_message_hold(&pending, new, last.map(at), at(now), hold)
        };
        // Only the message changed, 3 s after the last progress write: waits the 7 s left.
        assert_eq!(held(&starting, Some(0), 3), Some(Duration::from_secs(7)));
        // Written: the hold is over, no progress write remembered (e.g. after a restart), no hold.
        assert_eq!(held(&starting, Some(0), 10), None);
        assert_eq!(held(&starting, None, 3), None);
        assert_eq!(
            progress_message_hold(&pending, &starting, Some(at(0)), at(3), Duration::ZERO),
            None
        );
        // Anything but the words of the progress: written at once.
        let ready = status((true, Reason::Available, "ok"), false);
        let failed = status((false, Reason::ApplyFailed, "refused"), false);
        let warned = status((false, Reason::Provisioning, "claim Pending"), true);
        let other_reason = status((false, Reason::WaitingForDatabase, "database"), false);
        let mut other_field = starting.clone();
        other_field.endpoint = Some("r.registry.svc.cluster.local:5000".into());
        for new in [&ready, &failed, &warned, &other_reason, &other_field] {
            assert_eq!(held(new, Some(0), 3), None, "{new:?}");
        }
        // A warning already shown: the progress words under it wait like any other.
        let warned_starting = status((false, Reason::Provisioning, "0/1 replicas ready"), true);
        assert_eq!(
            progress_message_hold(&warned, &warned_starting, Some(at(0)), at(3), hold),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn progress_reasons_get_no_event_of_their_own_failures_and_unknown_ones_do() {
        assert!(!worth_an_event("WaitingForKyverno"));
        assert!(!worth_an_event("Provisioning"));
        assert!(worth_an_event("ApplyFailed"));
        assert!(worth_an_event("PolicyNotReady"));
        assert!(worth_an_event("PoliciesReady"));
        assert!(worth_an_event("SomethingNew"), "unknown: say it");
    }

    #[test]
    fn events_tell_failures_recoveries_and_losses_not_the_way_to_the_first_ready() {
        // Creation: progress, then Ready: no Event.
        assert!(!event_worthy(None, ("WaitingForKyverno", false), false));
        assert!(!event_worthy(
            Some(("WaitingForKyverno", false)),
            ("PoliciesReady", true),
            false
        ));
        assert!(!event_worthy(
            Some(("Provisioning", false)),
            ("Available", true),
            false
        ));
        assert!(!event_worthy(None, ("Available", true), false));
        // A failure, a new failure, a recovery, Ready lost: an Event each.
        assert!(event_worthy(None, ("ApplyFailed", false), false));
        assert!(event_worthy(
            Some(("Provisioning", false)),
            ("ApplyFailed", false),
            false
        ));
        assert!(event_worthy(
            Some(("ApplyFailed", false)),
            ("PolicyNotReady", false),
            false
        ));
        assert!(event_worthy(
            Some(("ApplyFailed", false)),
            ("Available", true),
            false
        ));
        assert!(event_worthy(
            Some(("Available", true)),
            ("Provisioning", false),
            false
        ));
        // Ready after a failure with progress in between: a recovery.
        assert!(event_worthy(
            Some(("Provisioning", false)),
            ("Available", true),
            true
        ));
        // The same failure again, or progress after a failure: nothing new to say.
        assert!(!event_worthy(
            Some(("ApplyFailed", false)),
            ("ApplyFailed", false),
            false
        ));
        assert!(!event_worthy(
            Some(("ApplyFailed", false)),
            ("Provisioning", false),
            false
        ));
    }
}
