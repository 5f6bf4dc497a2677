//! Status conditions: build them from what was observed, keep `lastTransitionTime` stable unless a
//! condition flips, and tell whether anything changed (so steady state writes nothing).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::Reason;

/// A desired condition before it is merged with the current ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DesiredCondition {
    /// Condition type, e.g. `Ready`.
    pub(crate) type_: &'static str,
    /// `True` or `False`.
    pub(crate) status: bool,
    /// CamelCase reason.
    pub(crate) reason: String,
    /// Human-readable message.
    pub(crate) message: String,
}

impl DesiredCondition {
    /// A condition the operator decides, with one of its [`Reason`]s.
    pub(crate) fn new(
        type_: &'static str,
        status: bool,
        reason: Reason,
        message: impl Into<String>,
    ) -> Self {
        Self::kept(type_, status, reason.as_str(), message)
    }

    /// A condition carried over as it is (its reason may come from an older operator).
    pub(crate) fn kept(
        type_: &'static str,
        status: bool,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

fn status_word(status: bool) -> &'static str {
    if status { "True" } else { "False" }
}

/// Merge desired conditions into `current`: the transition time is kept unless the status flips
/// (or the condition is new); conditions not desired any more are dropped.
pub(crate) fn merge_conditions(
    current: &[Condition],
    desired: &[DesiredCondition],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    desired
        .iter()
        .map(|want| {
            let previous = current.iter().find(|c| c.type_ == want.type_);
            let flipped = previous.is_none_or(|p| p.status != status_word(want.status));
            Condition {
                type_: want.type_.to_string(),
                status: status_word(want.status).to_string(),
                reason: want.reason.clone(),
                message: want.message.clone(),
                observed_generation: generation,
                last_transition_time: match previous {
                    Some(p) if !flipped => p.last_transition_time.clone(),
                    _ => now.clone(),
                },
            }
        })
        .collect()
}

/// Whether a condition of `type_` is `True` in `conditions`.
pub(crate) fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn transition_time_changes_only_on_flip() {
        let first = merge_conditions(
            &[],
            &[DesiredCondition::new(
                "Ready",
                false,
                Reason::Provisioning,
                "waiting",
            )],
            Some(1),
            &at(10),
        );
        assert_eq!(first[0].last_transition_time, at(10));
        let same = merge_conditions(
            &first,
            &[DesiredCondition::new(
                "Ready",
                false,
                Reason::Provisioning,
                "still waiting",
            )],
            Some(2),
            &at(20),
        );
        assert_eq!(
            same[0].last_transition_time,
            at(10),
            "no flip keeps the time"
        );
        assert_eq!(same[0].message, "still waiting");
        assert_eq!(same[0].observed_generation, Some(2));
        let flipped = merge_conditions(
            &same,
            &[DesiredCondition::new(
                "Ready",
                true,
                Reason::Available,
                "ok",
            )],
            Some(2),
            &at(30),
        );
        assert_eq!(flipped[0].last_transition_time, at(30));
        assert!(is_true(&flipped, "Ready"));
    }

    #[test]
    fn identical_inputs_give_identical_conditions() {
        let desired = [
            DesiredCondition::new("Ready", true, Reason::Available, "ok"),
            DesiredCondition::new("Degraded", false, Reason::AsExpected, ""),
        ];
        let first = merge_conditions(&[], &desired, Some(1), &at(10));
        let again = merge_conditions(&first, &desired, Some(1), &at(99));
        assert_eq!(first, again, "a repeated reconcile must not change status");
    }
}
