//! Fault injection (deterministic, seeded) and the request log. It must not touch objects.

use std::collections::BTreeMap;
use std::time::Duration;

/// Which requests fail and how. Discovery requests (`/api`, `/apis`, `/version`) are never
/// faulted. `verbs`/`kinds` empty means "all".
#[derive(Clone, Debug)]
pub struct Faults {
    /// Probability in [0, 1] that a matching request fails.
    pub failure_rate: f64,
    /// Status codes to pick from (uniformly) for failures; 500, 409 and 429 have proper
    /// `Status` bodies (429 also gets `Retry-After: 1`).
    pub codes: Vec<u16>,
    /// Verbs as logged: get, list, watch, create, update, patch, delete, deletecollection.
    pub verbs: Vec<String>,
    /// Kinds (e.g. `ConfigMap`) the faults apply to.
    pub kinds: Vec<String>,
    /// Delay added before every matching request is served (failing or not).
    pub latency: Duration,
    /// Seed of the RNG deciding failures, so runs are reproducible.
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            failure_rate: 0.0,
            codes: vec![500],
            verbs: Vec::new(),
            kinds: Vec::new(),
            latency: Duration::ZERO,
            seed: 42,
        }
    }
}

impl Faults {
    pub fn failing(failure_rate: f64, codes: &[u16]) -> Self {
        Self {
            failure_rate,
            codes: codes.to_vec(),
            ..Self::default()
        }
    }
    pub fn verbs(mut self, verbs: &[&str]) -> Self {
        self.verbs = verbs.iter().map(|v| v.to_string()).collect();
        self
    }
    pub fn kinds(mut self, kinds: &[&str]) -> Self {
        self.kinds = kinds.iter().map(|v| v.to_string()).collect();
        self
    }
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn matches(&self, verb: &str, kind: Option<&str>) -> bool {
        let verb_ok = self.verbs.is_empty() || self.verbs.iter().any(|v| v == verb);
        let kind_ok =
            self.kinds.is_empty() || kind.is_some_and(|k| self.kinds.iter().any(|f| f == k));
        verb_ok && kind_ok
    }
}

/// Active faults plus their RNG.
pub struct FaultState {
    faults: Option<Faults>,
    rng: fastrand::Rng,
}

/// What fault injection decided for one request.
pub struct FaultDecision {
    pub latency: Duration,
    pub fail_with: Option<u16>,
}

impl FaultState {
    pub fn new() -> Self {
        Self {
            faults: None,
            rng: fastrand::Rng::with_seed(42),
        }
    }

    pub fn set(&mut self, faults: Option<Faults>) {
        if let Some(f) = &faults {
            self.rng = fastrand::Rng::with_seed(f.seed);
        }
        self.faults = faults;
    }

    pub fn decide(&mut self, verb: &str, kind: Option<&str>) -> FaultDecision {
        let none = FaultDecision {
            latency: Duration::ZERO,
            fail_with: None,
        };
        let Some(f) = self.faults.as_ref().filter(|f| f.matches(verb, kind)) else {
            return none;
        };
        let fail = f.failure_rate > 0.0 && !f.codes.is_empty() && self.rng.f64() < f.failure_rate;
        FaultDecision {
            latency: f.latency,
            fail_with: fail.then(|| f.codes[self.rng.usize(..f.codes.len())]),
        }
    }
}

/// One served request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    /// get, list, watch, create, update, patch, delete, deletecollection, or `discovery`.
    pub verb: String,
    pub path: String,
    /// Kind of the addressed resource (e.g. `Deployment`); None for discovery.
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// HTTP status code of the response (a watch logs 200 when the stream starts).
    pub status: u16,
    pub field_manager: Option<String>,
    /// Whether fault injection produced this response.
    pub injected: bool,
}

const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// A snapshot of the request log.
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    pub entries: Vec<LoggedRequest>,
}

impl RequestLog {
    /// Number of requests with this verb on this kind (e.g. `("patch", "Deployment")`).
    pub fn count(&self, verb: &str, kind: &str) -> usize {
        self.entries
            .iter()
            .filter(|e| e.verb == verb && e.kind.as_deref() == Some(kind))
            .count()
    }

    /// Counts keyed by (verb, kind); discovery requests use kind `""`.
    pub fn counts(&self) -> BTreeMap<(String, String), usize> {
        let mut out = BTreeMap::new();
        for e in &self.entries {
            *out.entry((e.verb.clone(), e.kind.clone().unwrap_or_default()))
                .or_insert(0) += 1;
        }
        out
    }

    /// Write requests (create/update/patch/delete/deletecollection), whatever their outcome.
    pub fn writes(&self) -> Vec<&LoggedRequest> {
        self.entries
            .iter()
            .filter(|e| WRITE_VERBS.contains(&e.verb.as_str()))
            .collect()
    }
}
