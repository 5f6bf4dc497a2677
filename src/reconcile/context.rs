//! Shared state of the controllers: client, watch caches, the optional kinds served, settings,
//! metrics, events and the per-object backoff of transient failures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use tokio::sync::watch;

use super::children::ChildStores;
use super::discovery::Served;
use super::metrics::Metrics;

/// Timing and identity settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Requeue delay while children are not ready yet; also how long a new object's first status
    /// waits while it only reports progress (`status_write::first_status_hold`).
    pub requeue_not_ready: Duration,
    /// How often, at most, a switch's grace window counts the pods using the old host.
    pub pod_count_interval: Duration,
    /// Requeue delay once everything is ready (periodic resync).
    pub resync: Duration,
    /// First backoff after a transient failure; doubles per consecutive failure.
    pub backoff_base: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// Namespace the operator runs in (excluded from ImagePolicies by default).
    pub operator_namespace: String,
    /// The operator's own image, run by migration Jobs.
    pub operator_image: String,
    /// Harbor's REST API for every Harbor Registry (operator outside the cluster); unset: each
    /// Registry's core Service.
    pub harbor_api_url: Option<String>,
}

/// Everything a reconcile needs.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Watch caches of managed children.
    pub stores: ChildStores,
    /// Settings.
    pub settings: Settings,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Kubernetes Events publisher.
    pub recorder: Recorder,
    /// Which optional kinds (Kyverno, CloudNativePG) are served right now.
    pub served: watch::Receiver<Served>,
    /// The KEP-1755 announcement `kube-public/local-registry-hosting` (whoever wrote it), watched
    /// by name so a K3d reconcile reads it from memory instead of the API server.
    pub announcement: Store<ConfigMap>,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// Build a context.
    pub fn new(
        client: Client,
        stores: ChildStores,
        settings: Settings,
        metrics: Arc<Metrics>,
        recorder: Recorder,
        served: watch::Receiver<Served>,
        announcement: Store<ConfigMap>,
    ) -> Self {
        Self {
            client,
            stores,
            settings,
            metrics,
            recorder,
            served,
            announcement,
            failures: Mutex::default(),
        }
    }

    /// Record one more consecutive failure of `key`; returns the delay before the retry.
    pub fn next_backoff(&self, key: &str) -> Duration {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = failures.entry(key.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        backoff_delay(
            self.settings.backoff_base,
            self.settings.backoff_max,
            *count,
        )
    }

    /// Forget the failures of `key` after a success.
    pub fn reset_backoff(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
    }
}

/// `base * 2^(failures-1)`, capped at `max`.
pub fn backoff_delay(base: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
    base.saturating_mul(factor).min(max)
}

/// Hash of what a watch predicate compares. It lives in this process's memory only (never stored or
/// sent), so `DefaultHasher` is fine here; a hash that is stored uses SHA-256 (`apply::APPLIED_HASH`).
pub(crate) fn predicate_hash(value: impl std::hash::Hash) -> Option<u64> {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    Some(BuildHasherDefault::<DefaultHasher>::default().hash_one(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(60);
        assert_eq!(backoff_delay(base, max, 1), Duration::from_millis(500));
        assert_eq!(backoff_delay(base, max, 2), Duration::from_secs(1));
        assert_eq!(backoff_delay(base, max, 4), Duration::from_secs(4));
        assert_eq!(backoff_delay(base, max, 30), max);
    }
}
