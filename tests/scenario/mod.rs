//! Scenario-test helpers: the real `registry-operator run` binary as a child process against the
//! fake API server, log capture, and bounded polling. No assertions about behaviour here.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{ApiResourceSpec, FakeApiServer};

/// A fake API server serving the core kinds and our CRDs.
pub fn server() -> FakeApiServer {
    FakeApiServer::builder()
        .with_core()
        .with_crd(ApiResourceSpec::registry())
        .with_crd(ApiResourceSpec::image_policy())
        .bookmark_interval(Duration::from_secs(2))
        .start()
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
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
    /// Start `registry-operator run` against `server` with short timings; a timing flag in `extra`
    /// replaces its short default.
    pub fn start(server: &FakeApiServer, log_dir: &Path, extra: &[&str]) -> Self {
        let http_port = free_port();
        let log_path = log_dir.join(format!("operator-{http_port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_registry-operator"))
            .args(["--json-logs", "run", "--kubeconfig"])
            .arg(server.kubeconfig_path())
            .args(["--http-addr", &format!("127.0.0.1:{http_port}")])
            .args(
                [
                    ("--requeue", "300ms"),
                    ("--resync", "1s"),
                    ("--backoff-base", "100ms"),
                    ("--backoff-max", "1s"),
                ]
                .into_iter()
                .filter(|(flag, _)| !extra.contains(flag))
                .flat_map(|(flag, value)| [flag, value]),
            )
            .args(["--operator-namespace", "registry-operator-system"])
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
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

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

/// Mark a Deployment available and a PVC bound, as the cluster would.
pub fn mark_k3d_children_ready(server: &FakeApiServer, namespace: &str, name: &str) {
    let child = format!("{name}-distribution");
    server.patch_status(
        "deployments",
        namespace,
        &child,
        json!({"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "availableReplicas": 1}),
    );
    server.patch_status(
        "persistentvolumeclaims",
        namespace,
        &child,
        json!({"phase": "Bound"}),
    );
}

/// Objects of `resource` labelled as children of Registry `namespace/name`.
pub fn children_of(
    server: &FakeApiServer,
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
