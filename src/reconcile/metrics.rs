//! Prometheus metrics of the controllers (reconciles, failures by reason, durations, objects applied)
//! and their text exposition. Counting only; no HTTP here.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry as PromRegistry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabel {
    controller: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabel {
    controller: String,
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// The operator's metrics.
pub struct Metrics {
    registry: PromRegistry,
    reconciles: Family<ControllerLabel, Counter>,
    failures: Family<FailureLabel, Counter>,
    duration: Family<ControllerLabel, Histogram>,
    applied: Family<KindLabel, Counter>,
    triggers: Family<TriggerLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = PromRegistry::with_prefix("registry_operator");
        let reconciles = Family::<ControllerLabel, Counter>::default();
        let failures = Family::<FailureLabel, Counter>::default();
        let duration = Family::<ControllerLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
        });
        let applied = Family::<KindLabel, Counter>::default();
        let triggers = Family::<TriggerLabel, Counter>::default();
        registry.register("reconciles", "Reconciliations run", reconciles.clone());
        registry.register(
            "reconcile_failures",
            "Reconciliations that failed, by reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciliations",
            duration.clone(),
        );
        registry.register(
            "objects_applied",
            "Objects sent with server-side apply",
            applied.clone(),
        );
        registry.register(
            "triggers",
            "Watch events that asked a controller to reconcile an object (after predicates), by source",
            triggers.clone(),
        );
        Self {
            registry,
            reconciles,
            failures,
            duration,
            applied,
            triggers,
        }
    }
}

impl Metrics {
    /// Count one reconciliation and its duration.
    pub fn reconciled(&self, controller: &str, seconds: f64) {
        let label = ControllerLabel {
            controller: controller.to_string(),
        };
        self.reconciles.get_or_create(&label).inc();
        self.duration.get_or_create(&label).observe(seconds);
    }

    /// Count one failed reconciliation.
    pub fn failed(&self, controller: &str, reason: &str) {
        self.failures
            .get_or_create(&FailureLabel {
                controller: controller.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Count one applied object of `kind`.
    pub fn applied(&self, kind: &str) {
        self.applied
            .get_or_create(&KindLabel {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Count one watch event passed on to `controller` from `source` (the watched kind, or `self`).
    pub fn triggered(&self, controller: &str, source: &str) {
        self.triggers
            .get_or_create(&TriggerLabel {
                controller: controller.to_string(),
                source: source.to_string(),
            })
            .inc();
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_contains_counted_series() {
        let metrics = Metrics::default();
        metrics.reconciled("registry", 0.02);
        metrics.failed("registry", "ApplyFailed");
        metrics.applied("Deployment");
        metrics.triggered("registry", "Deployment");
        let text = metrics.encode();
        assert!(
            text.contains("registry_operator_reconciles_total{controller=\"registry\"} 1"),
            "{text}"
        );
        assert!(text.contains("registry_operator_reconcile_failures_total{controller=\"registry\",reason=\"ApplyFailed\"} 1"));
        assert!(text.contains("registry_operator_objects_applied_total{kind=\"Deployment\"} 1"));
        assert!(text.contains("registry_operator_reconcile_duration_seconds_bucket"));
        assert!(text.contains(
            "registry_operator_triggers_total{controller=\"registry\",source=\"Deployment\"} 1"
        ));
    }
}
