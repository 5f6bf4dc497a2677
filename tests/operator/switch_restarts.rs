//! Scenario tests of a K3d → Harbor switch whose operator is killed, with the real binary and the
//! real control plane: killed ten times at random points, and once in every phase after the status
//! recorded it; each time the switch resumes where it stood, runs each phase (Job, robot, flip) once,
//! and completes. It must not reach into the operator's state: only the cluster and Harbor's API.

use std::time::Duration;

use super::switch::{
    complete_running_jobs, mark_everything_ready, registry, serving_k3d, switch_server,
};
use crate::support::cluster::ControlPlane;
use crate::support::scenario::*;
use serde_json::json;

const NS: &str = "registry";
const T: Duration = Duration::from_secs(60);
const K3D_ENDPOINT: &str = "platform-distribution.registry.svc.cluster.local:5000";
const HARBOR: &str = "harbor.ai-platform.localhost";

/// A serving K3d Registry, switched to Harbor (grace window `grace`) while no operator runs: the
/// starting point of both tests. `None`: SKIPPED.
struct Switching {
    server: ControlPlane,
    harbor: crate::support::harbor_fake::HarborFake,
    url: String,
    logs: tempfile::TempDir,
}

fn switching(grace: &str) -> Option<Switching> {
    let server = switch_server()?;
    let harbor = harbor_for_switch(&server, NS)?;
    let url = harbor.url();
    let logs = tempfile::tempdir().unwrap();
    {
        let _operator = Operator::start(&server, logs.path(), &["--harbor-api-url", &url]);
        serving_k3d(&server);
    }
    server.merge_patch_object(
        "registries",
        NS,
        "platform",
        json!({"spec": {"migration": {"grace": grace}}}),
    );
    switch_to_harbor(&server, NS, "platform", HARBOR);
    Some(Switching {
        server,
        harbor,
        url,
        logs,
    })
}

#[test]
fn operator_killed_ten_times_during_a_switch_still_completes_it_once() {
    let Some(Switching {
        server,
        harbor,
        url,
        logs,
    }) = switching("0")
    else {
        return;
    };
    // Kill the operator at varying points of the switch (seeded delays), playing the cluster's part.
    let mut rng = fastrand::Rng::with_seed(7);
    for round in 0..10 {
        let mut operator = Operator::start(&server, logs.path(), &["--harbor-api-url", &url]);
        std::thread::sleep(Duration::from_millis(rng.u64(150..900)));
        mark_everything_ready(&server);
        if round >= 3 {
            complete_running_jobs(&server);
        }
        operator.kill();
        assert!(
            !operator.log().contains("panicked"),
            "round {round}: {}",
            operator.log()
        );
    }
    let _operator = Operator::start(&server, logs.path(), &["--harbor-api-url", &url]);
    wait_for("switch completed", T, || {
        mark_everything_ready(&server);
        complete_running_jobs(&server);
        let r = registry(&server);
        (r["status"]["endpoint"] == HARBOR
            && server
                .get_object("deployments", NS, "platform-distribution")
                .is_none())
        .then_some(())
    });
    assert_eq!(registry(&server)["status"]["migration"]["phase"], "Retired");
    // However often it was killed between creating the robot and storing it, none is left.
    wait_for("no migration robot left in Harbor", T, || {
        harbor.robots().is_empty().then_some(())
    });
    assert!(harbor.take_violations().is_empty());
    for job in [
        "platform-migrate-2",
        "platform-catchup-2",
        "platform-verify-2",
    ] {
        assert!(
            server.get_object("jobs", NS, job).is_none(),
            "{job}: one successful attempt per phase, no duplicate Job"
        );
    }
    for resource in ["deployments", "statefulsets", "services"] {
        let names: Vec<String> = children_of(&server, resource, NS, "platform")
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "duplicate {resource}: {names:?}");
    }
    assert!(
        server
            .get_object("persistentvolumeclaims", NS, "platform-distribution")
            .is_some(),
        "k3d data kept"
    );
}

/// The operator is killed once in every phase (after the status recorded it) and restarted: each
/// phase resumes where it stood, and no phase runs twice.
#[test]
fn killed_in_every_phase_the_switch_resumes_and_runs_each_phase_once() {
    let Some(Switching {
        server,
        harbor,
        url,
        logs,
    }) = switching("1s")
    else {
        return;
    };
    // A pod naming the old host holds Grace until it is deleted: with a 1s window and no such pod,
    // Grace can pass into Retired before the phase is observed and the operator killed there.
    server.put_object(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "old-app", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": format!("{K3D_ENDPOINT}/ai/app:1.0")}]},
    }));
    let phases = [
        ("Copying", Some("platform-migrate-1")),
        ("Freezing", None),
        ("CatchingUp", Some("platform-catchup-1")),
        ("Verifying", Some("platform-verify-1")),
        ("Grace", None),
    ];
    for (phase, job) in phases {
        let mut operator = Operator::start(&server, logs.path(), &["--harbor-api-url", &url]);
        wait_for(&format!("phase {phase}"), T, || {
            if phase != "Freezing" {
                mark_everything_ready(&server);
            }
            let recorded = registry(&server)["status"]["migration"]["phase"] == phase;
            let job_created = job.is_none_or(|j| server.get_object("jobs", NS, j).is_some());
            (recorded && job_created).then_some(())
        });
        operator.kill();
        assert!(!operator.log().contains("panicked"), "{}", operator.log());
        if let Some(job) = job {
            let report = r#"{"repositories":1,"tags":2,"blobsCopied":0,"blobsSkipped":0,"bytesCopied":0,"problems":0}"#;
            complete_migration_job(&server, NS, job, report);
        }
    }
    server.delete_object("pods", "default", "old-app");
    let _operator = Operator::start(&server, logs.path(), &["--harbor-api-url", &url]);
    let retired = wait_for("Retired", T, || {
        mark_everything_ready(&server);
        let r = registry(&server);
        (r["status"]["migration"]["phase"] == "Retired").then_some(r)
    });
    assert_eq!(retired["status"]["endpoint"], HARBOR);
    for job in [
        "platform-migrate-2",
        "platform-catchup-2",
        "platform-verify-2",
    ] {
        assert!(
            server.get_object("jobs", NS, job).is_none(),
            "{job}: a phase ran twice"
        );
    }
    let switched_events = server
        .list_objects("events.k8s.io/v1/events", None)
        .into_iter()
        .filter(|e| e["reason"] == "Switched")
        .count();
    assert_eq!(switched_events, 1, "the flip happened once");
    assert!(
        harbor.robots().is_empty(),
        "the migration robot is deleted after the flip"
    );
    assert_eq!(
        harbor.count(&["CreateRobot"]),
        1,
        "one robot served every phase, across restarts"
    );
}
