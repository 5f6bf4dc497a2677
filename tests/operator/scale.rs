//! Scale run: the real binary against the real control plane holding many Registries and ImagePolicies
//! plus unrelated Pods and Secrets. Prints the figures the README quotes (idle RSS, RSS growth from
//! unrelated objects, time until every object is Ready, requests per object, steady-state writes)
//! and fails on the regressions that matter: unrelated objects cached, writes at rest (after a
//! restart too: a child cached from a list must match its render), objects left unreconciled. CI
//! runs a small size; `REGISTRY_OPERATOR_SCALE=full` runs 100 Registries, 1,000 ImagePolicies and
//! 10,000 unrelated objects (with `REGISTRY_OPERATOR_BIN` naming a release build for the memory
//! figures).

use std::time::{Duration, Instant};

use crate::support::cluster::RequestLog;
use crate::support::scenario::*;
use serde_json::{Value, json};

const NS: &str = "registry";

/// Regression limits of the CI size (10 Registries + 100 ImagePolicies), 20 % above what issue 17
/// reached: the figures of `cargo test --test operator scale:: -- --nocapture` (debug binary, as CI
/// runs it) on the real control plane, shared 2-core machine: 3.4 requests and 2.0 reconciles per
/// object from creation to Ready (the load runs with a resync longer than itself, so no periodic
/// pass is counted), 7,924 KiB anonymous memory loaded (the highest of the runs; heap and stacks;
/// VmRSS is mostly the mapped binary, whose size is not what this guards). Full size and release
/// figures: README "Performance".
const CI_REQUESTS_PER_OBJECT: f64 = 3.4 * 1.2;
const CI_RECONCILES_PER_OBJECT: f64 = 2.0 * 1.2;
const CI_ANON_LOADED_KIB: u64 = 7_924 * 12 / 10;

struct Size {
    registries: usize,
    policies: usize,
    /// Pods and as many Secrets, half of them in the Registries' namespace.
    unrelated_each: usize,
    resync: Duration,
}

fn size() -> Size {
    match std::env::var("REGISTRY_OPERATOR_SCALE").as_deref() {
        Ok("full") => Size {
            registries: 100,
            policies: 1000,
            unrelated_each: 5000,
            resync: Duration::from_secs(10),
        },
        _ => Size {
            registries: 10,
            policies: 100,
            unrelated_each: 1000,
            resync: Duration::from_secs(2),
        },
    }
}

fn image_policy(name: &str, registry: &str) -> Value {
    json!({
        "apiVersion": "registry.aisp.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": name},
        "spec": {
            "engine": "ClusterPolicy",
            "registryRef": {"name": registry, "namespace": NS},
            "namespaces": ["ai-apps"],
            "rules": {"disallowLatestTag": {}, "restrictRegistries": {}},
        },
    })
}

fn unrelated(server: &ControlPlane, count: usize) {
    for i in 0..count {
        let namespace = if i % 2 == 0 { NS } else { "apps" };
        server.put_object(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("unrelated-{i}"), "namespace": namespace, "labels": {"app": "web"}},
            "data": {"token": "cGxhY2Vob2xkZXI="}}));
        server.put_object(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("unrelated-{i}"), "namespace": namespace, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "ghcr.io/ai-platform/web:1.0.0"}]}}));
    }
}

fn unsettled(server: &ControlPlane, resource: &str, ns: Option<&str>) -> usize {
    server
        .list_objects(resource, ns)
        .iter()
        .filter(|o| !settled(o))
        .count()
}

/// The series of one metric from /metrics, by their labels (e.g. `registry_operator_triggers_total`:
/// what asked for reconciles, by controller and source).
fn series(operator: &Operator, metric: &str) -> Vec<String> {
    operator
        .http_get("/metrics")
        .map(|(_, text)| {
            text.lines()
                .filter(|l| l.starts_with(&format!("{metric}{{")))
                .map(|l| l.trim_start_matches(metric).to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Requests by verb, kind and subresource, most frequent first.
fn breakdown(log: &RequestLog) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for entry in &log.entries {
        let mut key = format!("{} {}", entry.verb, entry.kind.as_deref().unwrap_or("-"));
        if let Some(sub) = &entry.subresource {
            key = format!("{key}/{sub}");
        }
        *counts.entry(key).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    counts
        .iter()
        .map(|(key, count)| format!("{key} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reconciles counted by both controllers, from /metrics.
fn reconciles(operator: &Operator) -> f64 {
    operator.metric_total("registry_operator_reconciles_total")
}

#[test]
fn many_objects_reconcile_once_and_unrelated_ones_are_not_cached() {
    let size = size();
    let Some(server) = server_with_kyverno() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    // Two operator processes. The first runs the load with a resync longer than any load takes, so
    // its reconcile count holds only the passes from creation to Ready (issue 17 counts those; a
    // periodic resync of an object already Ready is not one of them). The second, started once all
    // is Ready, runs with `size.resync` for the at-rest checks: its restart and five resync periods.
    //
    // The production requeue delay for objects not ready yet (`run --requeue`, default 10s), not the
    // 300ms other scenarios use to go fast: children are watched, so their readiness triggers the
    // reconcile that reports it, and polling every 300ms would be what this run measures. The
    // production debounce (`run --debounce`, default 1s) too: it merges a child's creation echo and
    // its status moments later into one reconcile.
    let production = ["--requeue", "10s", "--debounce", "1s"];
    let mut operator = Operator::start(
        &server,
        logs.path(),
        &[&["--resync", "1h"], &production[..]].concat(),
    );
    wait_for("operator ready", Duration::from_secs(60), || {
        operator.http_get("/readyz").filter(|r| r.0 == 200)
    });
    std::thread::sleep(Duration::from_secs(2));
    let rss_idle = operator.rss_kib();
    let anon_idle = operator.rss_anon_kib();

    unrelated(&server, size.unrelated_each);
    std::thread::sleep(Duration::from_secs(3));
    let rss_unrelated = operator.rss_kib();
    let growth = rss_unrelated.saturating_sub(rss_idle);

    server.reset_log();
    let cpu_before = operator.cpu_seconds();
    let reconciles_at_start = reconciles(&operator);
    let started = Instant::now();
    for i in 0..size.registries {
        server.put_object(k3d_registry(
            NS,
            &format!("r{i:03}"),
            json!({"adopt": "Never"}),
        ));
    }
    for i in 0..size.policies {
        let registry = format!("r{:03}", i % size.registries);
        server.put_object(image_policy(&format!("p{i:04}"), &registry));
    }
    let objects = size.registries + size.policies;
    let mut registries_ready = None;
    wait_for(
        "every Registry and ImagePolicy Ready",
        Duration::from_secs(600),
        || {
            play_the_cluster(&server, NS);
            if registries_ready.is_none() && unsettled(&server, "registries", Some(NS)) == 0 {
                registries_ready = Some(started.elapsed());
            }
            let left = unsettled(&server, "registries", Some(NS))
                + unsettled(&server, "imagepolicies", None);
            std::thread::sleep(Duration::from_millis(200));
            (left == 0).then_some(())
        },
    );
    let until_ready = started.elapsed();
    let cpu = operator.cpu_seconds() - cpu_before;
    let load_reconciles = reconciles(&operator) - reconciles_at_start;
    let load_triggers = series(&operator, "registry_operator_triggers_total");
    let load_reconciles_by = series(&operator, "registry_operator_reconciles_total");
    let registries_ready = registries_ready.unwrap_or(until_ready);
    let log = server.request_log();
    let requests = log.entries.len();
    let writes = log.writes().len();
    let cluster_policies = server.list_objects("clusterpolicies", None).len();
    std::thread::sleep(Duration::from_secs(2));
    let rss_loaded = operator.rss_kib();
    let anon_loaded = operator.rss_anon_kib();

    // Nothing is left to do: over a second, the first operator makes no request (a held status
    // write, a requeue of something already Ready would show here). Then a restart, with `size.resync`.
    server.reset_log();
    std::thread::sleep(Duration::from_secs(1));
    let after_load = server.request_log().entries.len();
    operator.kill();
    let resync = format!("{}s", size.resync.as_secs());
    let operator = Operator::start(
        &server,
        logs.path(),
        &[&["--resync", resync.as_str()], &production[..]].concat(),
    );
    wait_for("restarted operator ready", Duration::from_secs(60), || {
        operator.http_get("/readyz").filter(|r| r.0 == 200)
    });
    // Its first pass over everything, then five resync periods.
    std::thread::sleep(size.resync + Duration::from_millis(1500));
    let restart_writes: Vec<String> = server
        .request_log()
        .writes()
        .iter()
        .map(|w| format!("{} {}", w.verb, w.path))
        .collect();
    server.reset_log();
    let version = server.resource_version();
    let reconciles_before = reconciles(&operator);
    std::thread::sleep(size.resync * 5 + Duration::from_millis(500));
    let resynced = reconciles(&operator) - reconciles_before;
    let steady = server.request_log();
    let steady_writes: Vec<String> = steady
        .writes()
        .iter()
        .map(|w| format!("{} {}", w.verb, w.path))
        .collect();

    println!(
        "FIGURES scale {} Registries + {} ImagePolicies ({cluster_policies} ClusterPolicies) + {} unrelated Pods/Secrets; \
         idle RSS {rss_idle} KiB (anon {anon_idle} KiB); after unrelated objects {rss_unrelated} KiB (growth {growth} KiB); \
         Registries Ready after {registries_ready:.1?}, all Ready after {until_ready:.1?} (operator CPU {cpu:.1} s, {load_reconciles} reconciles); {requests} requests ({:.1}/object), {writes} writes ({:.1}/object); \
         RSS loaded {rss_loaded} KiB (anon {anon_loaded} KiB); {after_load} requests in the second after; restarted: {} writes; 5 resyncs ({resynced} reconciles): {} requests, {} writes; \
         {:.1} reconciles/object, {:.1} ms CPU/object\n  requests: {}\n  reconciles: {}\n  triggers: {}",
        size.registries,
        size.policies,
        2 * size.unrelated_each,
        requests as f64 / objects as f64,
        writes as f64 / objects as f64,
        restart_writes.len(),
        steady.entries.len(),
        steady_writes.len(),
        load_reconciles / objects as f64,
        cpu * 1000.0 / objects as f64,
        breakdown(&log),
        load_reconciles_by.join(", "),
        load_triggers.join(", "),
    );
    assert_eq!(cluster_policies, 2 * size.policies, "two rules per policy");
    if std::env::var("REGISTRY_OPERATOR_SCALE").as_deref() != Ok("full") {
        let per_object = requests as f64 / objects as f64;
        assert!(
            per_object <= CI_REQUESTS_PER_OBJECT,
            "requests per object regressed: {per_object:.1} > {CI_REQUESTS_PER_OBJECT:.1}"
        );
        let reconciles_per_object = load_reconciles / objects as f64;
        assert!(
            reconciles_per_object <= CI_RECONCILES_PER_OBJECT,
            "reconciles per object regressed: {reconciles_per_object:.1} > {CI_RECONCILES_PER_OBJECT:.1}"
        );
        assert!(
            anon_loaded <= CI_ANON_LOADED_KIB,
            "loaded memory regressed: {anon_loaded} KiB anonymous > {CI_ANON_LOADED_KIB} KiB"
        );
    }
    assert!(
        growth < 2 * 1024,
        "unrelated objects must not be cached: RSS grew {growth} KiB"
    );
    assert_eq!(after_load, 0, "requests after everything was Ready");
    assert!(
        restart_writes.is_empty(),
        "a restart with everything Ready wrote: {restart_writes:#?}"
    );
    assert!(
        steady_writes.is_empty(),
        "steady state wrote: {steady_writes:#?}"
    );
    // Reads too: every resync answers from the caches (the KEP-1755 announcement included).
    let steady_reads: Vec<String> = steady
        .entries
        .iter()
        .map(|r| format!("{} {}", r.verb, r.path))
        .collect();
    assert!(
        steady_reads.is_empty(),
        "steady state read from the API server: {steady_reads:#?}"
    );
    assert_eq!(
        server.resource_version(),
        version,
        "nothing changed at rest"
    );
    assert!(
        resynced >= (2 * objects) as f64,
        "five resync periods reconcile every object several times (got {resynced})"
    );
    assert!(
        !operator.log().contains("panicked"),
        "the operator panicked"
    );
}
