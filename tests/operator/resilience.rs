//! Scenario tests of the Registry controller under restarts, faults and at rest: the real binary
//! against the real control plane. Also prints the first-reconcile request figure quoted in the README.

use std::time::Duration;

use crate::support::cluster::Faults;
use crate::support::scenario::*;
use serde_json::json;

const NS: &str = "registry";
const T: Duration = Duration::from_secs(60);

fn all_ready(server: &ControlPlane, names: &[String]) -> bool {
    names.iter().all(|name| {
        server
            .get_object("registries", NS, name)
            .and_then(|r| condition(&r, "Ready"))
            .is_some_and(|c| c["status"] == "True")
    })
}

/// Mark every child Deployment/PVC ready, as kubelet and the volume provisioner would.
fn mark_all_ready(server: &ControlPlane, names: &[String]) {
    for name in names {
        mark_k3d_children_ready(server, NS, name);
    }
}

fn assert_no_duplicates(server: &ControlPlane, names: &[String]) {
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

fn registries(server: &ControlPlane, count: usize) -> Vec<String> {
    let names: Vec<String> = (0..count).map(|i| format!("r{i:03}")).collect();
    for name in &names {
        server.put_object(k3d_registry(NS, name, json!({"adopt": "Never"})));
    }
    names
}

#[test]
fn operator_killed_mid_reconcile_converges_without_duplicates() {
    let Some(server) = server() else {
        return;
    };
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
    let Some(server) = server() else {
        return;
    };
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
    let Some(server) = server() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let operator = Operator::start(&server, logs.path(), &[]);
    let names = registries(&server, 3);
    wait_for("Ready", T, || {
        mark_all_ready(&server, &names);
        all_ready(&server, &names).then_some(())
    });
    // Let the last status write land, then watch five resync periods (--resync 1s).
    std::thread::sleep(Duration::from_millis(1500));
    server.reset_log();
    let version = server.resource_version();
    let before = operator.metric_total("registry_operator_reconciles_total");
    std::thread::sleep(Duration::from_millis(5500));
    let resynced = operator.metric_total("registry_operator_reconciles_total") - before;
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
        resynced >= (3 * 4) as f64,
        "resyncs happened: {resynced} reconciles"
    );
    // They read nothing from the API server either (the KEP-1755 announcement is watched).
    assert_eq!(
        log.count("get", "ConfigMap"),
        0,
        "the announcement comes from its cache"
    );
}

/// Figure for the README: requests of a first reconcile (memory and scale: tests/operator/scale.rs).
#[test]
fn measure_first_reconcile_requests() {
    let Some(server) = server() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let operator = Operator::start(&server, logs.path(), &["--resync", "5m"]);
    wait_for("operator ready", T, || {
        operator.http_get("/readyz").filter(|r| r.0 == 200)
    });
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
    println!("FIGURES first-reconcile requests={first_total} writes={first_writes}");
    assert!(
        first_writes >= 5,
        "a first reconcile applies 4 children and a status"
    );
}
