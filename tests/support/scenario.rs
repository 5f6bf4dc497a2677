//! Scenario-test helpers: the real `registry-operator run` binary as a child process against the
//! real control plane, log capture, and bounded polling. No assertions about behaviour here.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub use crate::support::cluster::{ControlPlane, Upstream};

/// A real control plane with our CRDs and RBAC; `None` (SKIPPED) without the tools.
pub fn server() -> Option<ControlPlane> {
    ControlPlane::builder().start()
}

/// A real control plane that also serves Kyverno's ClusterPolicy (Kyverno itself does not run).
pub fn server_with_kyverno() -> Option<ControlPlane> {
    ControlPlane::builder()
        .with(Upstream::KyvernoClusterPolicyOnly)
        .start()
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The binary under test: `REGISTRY_OPERATOR_BIN` when set (e.g. a release build, for the scale
/// figures), else the one cargo built for this test run.
pub fn operator_binary() -> PathBuf {
    std::env::var_os("REGISTRY_OPERATOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_registry-operator")))
}

/// The operator process; killed on drop.
pub struct Operator {
    child: Child,
    /// File receiving the operator's stderr (logs).
    pub log_path: PathBuf,
    /// Port of /metrics, /healthz, /readyz.
    pub http_port: u16,
}

impl Operator {
    /// Start `registry-operator run` against `server` with short timings.
    pub fn start(server: &ControlPlane, log_dir: &Path, extra: &[&str]) -> Self {
        let http_port = free_port();
        let log_path = log_dir.join(format!("operator-{http_port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        // Short timings for tests; `extra` may override any of them.
        let defaults = [
            ("--requeue", "300ms"),
            ("--resync", "1s"),
            ("--backoff-base", "100ms"),
            ("--backoff-max", "1s"),
            ("--pod-count-interval", "300ms"),
            ("--debounce", "100ms"),
            ("--operator-namespace", "registry-operator-system"),
        ];
        let child = Command::new(operator_binary())
            .args(["--json-logs", "run", "--kubeconfig"])
            .arg(&server.operator_kubeconfig)
            .args(["--http-addr", &format!("127.0.0.1:{http_port}")])
            .args(
                defaults
                    .iter()
                    .filter(|(flag, _)| !extra.contains(flag))
                    .flat_map(|(flag, value)| [*flag, *value]),
            )
            .args(extra)
            .env("RUST_LOG", "info,registry_operator=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn operator");
        Self {
            child,
            log_path,
            http_port,
        }
    }

    /// The operator's log so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log_path) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Process id, for /proc readings.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory (VmRSS) in KiB, from /proc; 0 when it cannot be read.
    pub fn rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS:")
    }

    /// Anonymous resident memory (RssAnon: heap and stacks, without the mapped binary) in KiB.
    pub fn rss_anon_kib(&self) -> u64 {
        self.proc_status_kib("RssAnon:")
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    /// CPU time (user + system) the process has used so far, from /proc/<pid>/stat.
    pub fn cpu_seconds(&self) -> f64 {
        let ticks_per_second = 100.0; // USER_HZ, fixed at 100 on Linux
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .ok()
            .and_then(|stat| {
                // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
                let rest = stat.rsplit_once(')')?.1;
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let utime: f64 = fields.get(11)?.parse().ok()?;
                let stime: f64 = fields.get(12)?.parse().ok()?;
                Some((utime + stime) / ticks_per_second)
            })
            .unwrap_or(0.0)
    }

    /// A counter summed over its label sets from /metrics (e.g. `registry_operator_reconciles_total`);
    /// 0 while the endpoint does not answer.
    pub fn metric_total(&self, name: &str) -> f64 {
        let Some((_, metrics)) = self.http_get("/metrics") else {
            return 0.0;
        };
        metrics
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .sum()
    }

    /// Whether the process is still alive (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kill the process abruptly (SIGKILL), as a node failure would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// GET a path of the operator's HTTP endpoint; `None` while it does not answer.
    pub fn http_get(&self, path: &str) -> Option<(u16, String)> {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.http_port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let code = response.split_whitespace().nth(1)?.parse().ok()?;
        Some((
            code,
            response
                .split("\r\n\r\n")
                .nth(1)
                .unwrap_or_default()
                .to_string(),
        ))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .filter(|l| !l.contains("\"level\":\"DEBUG\"") || l.contains("synced"))
                .take(40)
                .collect();
            eprintln!(
                "--- last operator log lines ({}) ---",
                self.log_path.display()
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Poll `probe` every 50 ms until it returns `Some`, or panic with `what` after `timeout`.
pub use crate::support::cluster::wait_for;

/// A K3d Registry manifest.
pub fn k3d_registry(namespace: &str, name: &str, k3d: Value) -> Value {
    json!({
        "apiVersion": "registry.aisp.dev/v1alpha1",
        "kind": "Registry",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"mode": "K3d", "k3d": k3d},
    })
}

/// The condition of `type_` in an object's status.
pub fn condition(object: &Value, type_: &str) -> Option<Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

/// Mark a Deployment available (at its current generation) and a PVC bound, as the cluster would.
/// Objects already marked are left alone, so repeated calls write nothing.
pub fn mark_k3d_children_ready(server: &ControlPlane, namespace: &str, name: &str) {
    let child = format!("{name}-distribution");
    mark_workload_ready(server, "deployments", namespace, &child);
    mark_volume_bound(server, namespace, &child);
}

/// Mark every workload child of Registry `namespace/name` rolled out and every claim bound, as
/// kubelet and the volume provisioner would. Writes only what changes.
pub fn mark_children_ready(server: &ControlPlane, namespace: &str, name: &str) {
    for resource in ["deployments", "statefulsets"] {
        for object in children_of(server, resource, namespace, name) {
            if let Some(child) = object["metadata"]["name"].as_str() {
                mark_workload_ready(server, resource, namespace, child);
            }
        }
    }
    for claim in children_of(server, "persistentvolumeclaims", namespace, name) {
        if let Some(child) = claim["metadata"]["name"].as_str() {
            mark_volume_bound(server, namespace, child);
        }
    }
}

/// Mark a Deployment or StatefulSet rolled out at its current generation, unless it already is.
pub fn mark_workload_ready(server: &ControlPlane, resource: &str, namespace: &str, name: &str) {
    let Some(object) = server.get_object(resource, namespace, name) else {
        return;
    };
    let generation = object["metadata"]["generation"].clone();
    if object["status"]["observedGeneration"] == generation
        && object["status"]["readyReplicas"] == 1
    {
        return;
    }
    patch_status_unless_gone(
        server,
        resource,
        namespace,
        name,
        json!({"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}),
    );
}

/// Patch a status as its controller would, unless the object was deleted since it was read (the
/// operator prunes, the garbage collector deletes): only a failed write fails the test.
fn patch_status_unless_gone(
    server: &ControlPlane,
    resource: &str,
    namespace: &str,
    name: &str,
    patch: Value,
) {
    if let Err(error) = server.try_patch_status(resource, namespace, name, patch) {
        panic!("patch status of {resource} {namespace}/{name}: {error}");
    }
}

/// Mark a PersistentVolumeClaim bound, unless it already is.
pub fn mark_volume_bound(server: &ControlPlane, namespace: &str, name: &str) {
    let Some(claim) = server.get_object("persistentvolumeclaims", namespace, name) else {
        return;
    };
    if claim["status"]["phase"] != "Bound" {
        patch_status_unless_gone(
            server,
            "persistentvolumeclaims",
            namespace,
            name,
            json!({"phase": "Bound"}),
        );
    }
}

/// Play kubelet, the volume provisioner and Kyverno: every Deployment in `namespace` rolls out, every
/// claim there binds, every ClusterPolicy without a status becomes ready. Writes only what changes,
/// judged from the lists (no read per object), four writes at a time: one after the other, at full
/// scale (2,000 policies) this stand-in took tens of seconds to judge a policy the real Kyverno
/// judges in under a second (`kyverno_admission::` measures it), and the operator's figures measured
/// the stand-in.
pub fn play_the_cluster(server: &ControlPlane, namespace: &str) {
    let name_of = |object: &Value| object["metadata"]["name"].as_str().map(str::to_string);
    let mut writes: Vec<(&str, &str, String, Value)> = Vec::new();
    for deployment in server.list_objects("deployments", Some(namespace)) {
        let generation = deployment["metadata"]["generation"].clone();
        let ready = deployment["status"]["observedGeneration"] == generation
            && deployment["status"]["readyReplicas"] == 1;
        if let Some(name) = name_of(&deployment).filter(|_| !ready) {
            writes.push((
                "deployments",
                namespace,
                name,
                json!({"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}),
            ));
        }
    }
    for claim in server.list_objects("persistentvolumeclaims", Some(namespace)) {
        if let Some(name) = name_of(&claim).filter(|_| claim["status"]["phase"] != "Bound") {
            writes.push((
                "persistentvolumeclaims",
                namespace,
                name,
                json!({"phase": "Bound"}),
            ));
        }
    }
    let cluster_policies = if server.served("clusterpolicies") {
        server.list_objects("clusterpolicies", None)
    } else {
        Vec::new()
    };
    for cluster_policy in cluster_policies {
        if let Some(name) =
            name_of(&cluster_policy).filter(|_| cluster_policy["status"]["conditions"].is_null())
        {
            writes.push((
                "clusterpolicies",
                "",
                name,
                json!({"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "Ready", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
            ));
        }
    }
    let per_thread = writes.len().div_ceil(4).max(1);
    std::thread::scope(|scope| {
        for chunk in writes.chunks(per_thread) {
            scope.spawn(move || {
                for (resource, namespace, name, status) in chunk {
                    patch_status_unless_gone(server, resource, namespace, name, status.clone());
                }
            });
        }
    });
}

/// Names of the stored objects of `resource` (in `namespace`, or everywhere).
pub fn names_of(server: &ControlPlane, resource: &str, namespace: Option<&str>) -> Vec<String> {
    server
        .list_objects(resource, namespace)
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// Ready=True for the object's current generation.
pub fn settled(object: &Value) -> bool {
    condition(object, "Ready").is_some_and(|c| c["status"] == "True")
        && object["status"]["observedGeneration"] == object["metadata"]["generation"]
}

/// Objects of `resource` labelled as children of Registry `namespace/name`.
pub fn children_of(
    server: &ControlPlane,
    resource: &str,
    namespace: &str,
    name: &str,
) -> Vec<Value> {
    server
        .list_objects(resource, None)
        .into_iter()
        .filter(|o| {
            let labels = &o["metadata"]["labels"];
            labels["registry.aisp.dev/owner-name"] == name
                && labels["registry.aisp.dev/owner-namespace"] == namespace
        })
        .collect()
}

/// Wait until the operator has sent no write for 700 ms (e.g. the Event that follows a status
/// change), so a steady-state measurement starts after the last write a change caused.
pub fn settle_writes(server: &ControlPlane) {
    wait_for(
        "the operator's writes to settle",
        Duration::from_secs(30),
        || {
            server.reset_log();
            std::thread::sleep(Duration::from_millis(700));
            (server.writes() == 0).then_some(())
        },
    );
}

/// Play the Job controller and kubelet for a migration Job that succeeded: its pod's termination
/// message carries `migrate`'s counts (`report`), and the Job gets what the real Job controller writes
/// (the real server refuses a Complete Job without SuccessCriteriaMet, startTime and completionTime).
pub fn complete_migration_job(server: &ControlPlane, namespace: &str, job: &str, report: &str) {
    server.put_object(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{job}-abcde"), "namespace": namespace, "labels": {"batch.kubernetes.io/job-name": job}},
        "spec": {"containers": [{"name": "migrate", "image": "x"}]},
        "status": {"containerStatuses": [{"name": "migrate", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "message": report}}}]},
    }));
    server.patch_status(
        "jobs",
        namespace,
        job,
        json!({"succeeded": 1, "startTime": "2026-11-28T00:00:00Z", "completionTime": "2026-11-28T00:01:00Z",
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": "2026-11-28T00:01:00Z"},
                {"type": "Complete", "status": "True", "lastTransitionTime": "2026-11-28T00:01:00Z"}]}),
    );
}

/// Play the cluster's part of a switch of Registry `namespace/name`: children ready, and each phase's
/// migration Job that exists and has not finished succeeds (with a small report).
pub fn complete_switch_jobs(server: &ControlPlane, namespace: &str, name: &str) {
    mark_children_ready(server, namespace, name);
    for phase in ["migrate", "catchup", "verify"] {
        let job = format!("{name}-{phase}-1");
        if let Some(live) = server.get_object("jobs", namespace, &job)
            && live["status"]["succeeded"] != 1
        {
            complete_migration_job(
                server,
                namespace,
                &job,
                r#"{"repositories":1,"tags":1,"blobsCopied":0,"blobsSkipped":0,"bytesCopied":0,"problems":0}"#,
            );
        }
    }
}

/// Switch Registry `namespace/name` to Harbor at `host`, with an external database (no CNPG needed).
pub fn switch_to_harbor(server: &ControlPlane, namespace: &str, name: &str, host: &str) {
    server.merge_patch_object(
        "registries",
        namespace,
        name,
        json!({"spec": {"mode": "Harbor", "host": host, "harbor": {
            "adminPasswordSecretRef": {"name": SWITCH_ADMIN_SECRET, "key": "password"},
            "database": {"external": {
            "host": "postgresql-rw.storage.svc.cluster.local", "username": "harbor", "passwordSecretRef": {"name": "harbor-db"}}}}}}),
    );
}

/// The admin Secret a switch into Harbor names (`spec.harbor.adminPasswordSecretRef`), holding the
/// fake Harbor's admin password.
pub const SWITCH_ADMIN_SECRET: &str = "harbor-admin";

/// The Harbor a switch goes into, as far as its API goes: the swagger-checked fake (the operator
/// creates the destination project and the migration robot through it) and, in `namespace`, the
/// admin Secret [`switch_to_harbor`] names. Start the operator with
/// `["--harbor-api-url", &harbor.url()]`. `None`: SKIPPED (no swagger).
pub fn harbor_for_switch(
    server: &ControlPlane,
    namespace: &str,
) -> Option<crate::support::harbor_fake::HarborFake> {
    let harbor = crate::support::harbor_fake::HarborFake::start()?;
    server.put_object(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": SWITCH_ADMIN_SECRET, "namespace": namespace},
        "stringData": {"password": crate::support::harbor_fake::ADMIN_PASSWORD},
    }));
    Some(harbor)
}

/// Play Kyverno: every generated policy of every served kind (ClusterPolicy, ValidatingPolicy,
/// ImageValidatingPolicy) that has no status yet reports ready, as Kyverno writes it.
pub fn mark_policies_ready(server: &ControlPlane) {
    let ready_condition = json!([{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "Ready", "lastTransitionTime": "2026-01-01T00:00:00Z"}]);
    for (resource, status) in [
        ("clusterpolicies", json!({"conditions": ready_condition})),
        (
            "validatingpolicies",
            json!({"conditionStatus": {"ready": true}, "conditions": ready_condition}),
        ),
        (
            "imagevalidatingpolicies",
            json!({"conditionStatus": {"ready": true}, "conditions": ready_condition}),
        ),
    ] {
        if !server.served(resource) {
            continue;
        }
        for policy in server.list_objects(resource, None) {
            if policy["status"].is_null()
                && let Some(name) = policy["metadata"]["name"].as_str()
            {
                // The operator may prune the old flavour between this list and the patch.
                server
                    .try_patch_status(resource, "", name, status.clone())
                    .unwrap_or_else(|e| panic!("patch status of {resource} {name}: {e}"));
            }
        }
    }
}
