//! Scenario tests of the Registry controller under restarts, faults and at rest: the real binary
//! against the fake API server. Also prints the request and memory figures quoted in the README.

mod scenario;
mod support;

use std::time::Duration;

use scenario::*;
use serde_json::json;
use support::Faults;

const NS: &str = "registry";
const T: Duration = Duration::from_secs(60);

fn all_ready(server: &support::FakeApiServer, names: &[String]) -> bool {
    names.iter().all(|name| {
        server
            .get_object("registries", NS, name)
            .and_then(|r| condition(&r, "Ready"))
            .is_some_and(|c| c["status"] == "True")
    })
}

/// Mark every child Deployment/PVC ready, as kubelet and the volume provisioner would.
fn mark_all_ready(server: &support::FakeApiServer, names: &[String]) {
    for name in names {
        let child = format!("{name}-distribution");
        if server.get_object("deployments", NS, &child).is_some()
            && server
                .get_object("persistentvolumeclaims", NS, &child)
                .is_some()
        {
            mark_k3d_children_ready(server, NS, name);
        }
    }
}

fn assert_no_duplicates(server: &support::FakeApiServer, names: &[String]) {
    for name in names {
        for resource in ["deployments", "services", "persistentvolumeclaims"] {
            assert_eq!(
                children_of(server, resource, NS, name).len(),
                1,
                "{resource} of {name}"
            );
        }
    }
    assert_eq!(server.list_objects("deployments", None).len(), names.len());
}

fn registries(server: &support::FakeApiServer, count: usize) -> Vec<String> {
    let names: Vec<String> = (0..count).map(|i| format!("r{i:03}")).collect();
    for name in &names {
        server.put_object(k3d_registry(NS, name, json!({"adopt": "Never"})));
    }
    names
}

#[test]
fn operator_killed_mid_reconcile_converges_without_duplicates() {
    let server = server();
    let logs = tempfile::tempdir().unwrap();
    let names = registries(&server, 8);
    let mut first = Operator::start(&server, logs.path(), &[]);
    wait_for("first child", T, || {
        (!server.list_objects("deployments", None).is_empty()).then_some(())
    });
    first.kill();
    let second = Operator::start(&server, logs.path(), &[]);
    wait_for("every Registry Ready", T, || {
        mark_all_ready(&server, &names);
        all_ready(&server, &names).then_some(())
    });
    assert_no_duplicates(&server, &names);
    assert!(!second.log().contains("panicked"), "{}", second.log());
}

#[test]
fn dropped_watches_and_failing_writes_converge_once_faults_stop() {
    let server = server();
    let logs = tempfile::tempdir().unwrap();
    let operator = Operator::start(&server, logs.path(), &[]);
    // kube's client retries 429 by itself, so 500 and 409 are what reach the controller.
    server.set_faults(
        Faults::failing(0.2, &[500, 409])
            .verbs(&["create", "update", "patch", "delete"])
            .seed(42),
    );
    let names = registries(&server, 6);
    let faulty_until = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < faulty_until {
        std::thread::sleep(Duration::from_secs(3));
        server.drop_watches();
        mark_all_ready(&server, &names);
    }
    let injected = server
        .request_log()
        .entries
        .iter()
        .filter(|e| e.injected)
        .count();
    assert!(
        injected > 0,
        "the fault injection must have hit some writes"
    );
    server.clear_faults();
    wait_for("every Registry Ready after faults stop", T, || {
        mark_all_ready(&server, &names);
        all_ready(&server, &names).then_some(())
    });
    assert_no_duplicates(&server, &names);
    let log = operator.log();
    assert!(!log.contains("panicked"), "operator panicked:\n{log}");
    assert!(
        log.contains("reconcile failed"),
        "injected failures must be reported and retried"
    );
}

#[test]
fn steady_state_sends_no_writes_across_five_resyncs() {
    let server = server();
    let logs = tempfile::tempdir().unwrap();
    let _operator = Operator::start(&server, logs.path(), &[]);
    let names = registries(&server, 3);
    wait_for("Ready", T, || {
        mark_all_ready(&server, &names);
        all_ready(&server, &names).then_some(())
    });
    // Let the last status write land, then watch five resync periods (--resync 1s).
    std::thread::sleep(Duration::from_millis(1500));
    server.reset_log();
    let version = server.resource_version();
    std::thread::sleep(Duration::from_millis(5500));
    let log = server.request_log();
    let writes: Vec<String> = log
        .writes()
        .iter()
        .map(|w| format!("{} {}", w.verb, w.path))
        .collect();
    assert!(writes.is_empty(), "steady state wrote: {writes:#?}");
    assert_eq!(
        server.resource_version(),
        version,
        "no resourceVersion changed"
    );
    assert!(
        log.count("get", "ConfigMap") >= 3 * 5,
        "resyncs happened (each reads the KEP-1755 ConfigMap)"
    );
}

/// Figures for the README: requests of a first reconcile and idle memory with 100 Registries.
#[test]
fn measure_first_reconcile_requests_and_idle_rss() {
    let server = server();
    let logs = tempfile::tempdir().unwrap();
    let operator = Operator::start(&server, logs.path(), &["--resync", "5m"]);
    wait_for("operator ready", T, || {
        operator.http_get("/readyz").filter(|r| r.0 == 200)
    });
    let rss_empty = rss_kib(operator.pid());
    server.reset_log();
    let one = registries(&server, 1);
    wait_for("first Registry Ready", T, || {
        mark_all_ready(&server, &one);
        all_ready(&server, &one).then_some(())
    });
    let log = server.request_log();
    let first_total = log
        .entries
        .iter()
        .filter(|e| e.kind.as_deref() != Some("Event"))
        .count();
    let first_writes = log.writes().len();

    let names: Vec<String> = (1..100).map(|i| format!("r{i:03}")).collect();
    for name in &names {
        server.put_object(k3d_registry(NS, name, json!({"adopt": "Never"})));
    }
    let mut all = one.clone();
    all.extend(names);
    wait_for("100 Registries Ready", Duration::from_secs(120), || {
        mark_all_ready(&server, &all);
        all_ready(&server, &all).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let rss_100 = rss_kib(operator.pid());
    // 10,000 objects the operator must not cache: its watches are label-selected.
    for i in 0..5000 {
        server.put_object(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("unrelated-{i}"), "namespace": "apps"}, "data": {"k": "dmFsdWU="}}));
        server.put_object(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("unrelated-{i}"), "namespace": "apps"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}));
    }
    std::thread::sleep(Duration::from_secs(3));
    let rss_unrelated = rss_kib(operator.pid());
    let growth = rss_unrelated.saturating_sub(rss_100);
    println!(
        "FIGURES first-reconcile requests={first_total} writes={first_writes}; idle RSS: 0 Registries {rss_empty} KiB, 100 Registries {rss_100} KiB, +10000 unrelated Pods/Secrets {rss_unrelated} KiB (growth {growth} KiB)"
    );
    assert!(
        first_writes >= 5,
        "a first reconcile applies 4 children and a status"
    );
    assert!(
        growth < 8 * 1024,
        "unrelated objects must not be cached (grew {growth} KiB)"
    );
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
