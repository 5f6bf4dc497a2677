//! `ControlPlane`: a real kube-apiserver, etcd and kube-controller-manager (garbage collector,
//! namespace and volume-protection controllers; no kubelet, no scheduler) started per test on 127.0.0.1, with our CRDs and
//! RBAC installed from `config/default`, the operator's service-account token, a fault-injecting
//! proxy and the apiserver's audit log. Test support only; the harness plays kubelet, Kyverno and
//! CloudNativePG by writing status subresources, and never decides what a test expects.
//!
//! Isolation: one control plane per test (nextest runs each test in its own process). Measured on
//! the 2-core machine: see `tests/support/STATUS.md`.

pub mod faults;

mod kyverno;
mod objects;
mod processes;
pub mod proxy;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::common;

#[allow(unused_imports)]
pub use faults::{Faults, LoggedRequest, RequestLog};
#[allow(unused_imports)]
pub use objects::{Fingerprint, wait as wait_for};
use processes::{ADMIN_TOKEN, Pki, Process, free_port};

/// Namespace and service account the shipped `config/default` creates for the operator.
pub const OPERATOR_NAMESPACE: &str = "registry-operator-system";
pub const OPERATOR_SERVICE_ACCOUNT: &str = "registry-operator-manager";

/// Upstream CRDs a test can have served (from `../shared/schemas`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// Kyverno's ClusterPolicy, ValidatingPolicy and ImageValidatingPolicy.
    Kyverno,
    /// Only Kyverno's ClusterPolicy (a Kyverno without the CEL kinds).
    KyvernoClusterPolicyOnly,
    /// Only Kyverno's ValidatingPolicy and ImageValidatingPolicy (ClusterPolicy not served).
    KyvernoCelOnly,
    /// CloudNativePG's Cluster (and Database, DatabaseRole, ScheduledBackup).
    Cnpg,
}

impl Upstream {
    fn files(self) -> &'static [&'static str] {
        match self {
            Upstream::Kyverno => &[
                "kyverno/kyverno.io_clusterpolicies.yaml",
                "kyverno/policies.kyverno.io_validatingpolicies.yaml",
                "kyverno/policies.kyverno.io_imagevalidatingpolicies.yaml",
            ],
            Upstream::KyvernoClusterPolicyOnly => &["kyverno/kyverno.io_clusterpolicies.yaml"],
            Upstream::KyvernoCelOnly => &[
                "kyverno/policies.kyverno.io_validatingpolicies.yaml",
                "kyverno/policies.kyverno.io_imagevalidatingpolicies.yaml",
            ],
            Upstream::Cnpg => &[
                "cnpg/postgresql.cnpg.io_clusters.yaml",
                "cnpg/postgresql.cnpg.io_databases.yaml",
                "cnpg/postgresql.cnpg.io_databaseroles.yaml",
                "cnpg/postgresql.cnpg.io_scheduledbackups.yaml",
            ],
        }
    }
}

#[must_use]
pub struct ControlPlaneBuilder {
    upstream: Vec<Upstream>,
    kyverno_admission: bool,
}

impl ControlPlaneBuilder {
    pub fn with(mut self, upstream: Upstream) -> Self {
        self.upstream.push(upstream);
        self
    }

    /// Also runs Kyverno's admission controller (all of Kyverno's CRDs from its pinned module,
    /// webhooks on 127.0.0.1); the test is SKIPPED when the Kyverno tool set cannot be built.
    pub fn with_kyverno_admission(mut self) -> Self {
        self.kyverno_admission = true;
        self
    }

    /// Starts everything; `None` (after printing SKIPPED) when the binaries or `../shared` are
    /// missing and `REGISTRY_OPERATOR_REQUIRE_TOOLS` is not `1`.
    pub fn start(self) -> Option<ControlPlane> {
        let bin = processes::binaries()?;
        let shared = if self.upstream.is_empty() {
            None
        } else {
            // shared_schemas() prints SKIPPED (or panics in CI) when they are missing.
            Some(common::shared_schemas()?)
        };
        let kyverno = if self.kyverno_admission {
            Some(common::upstream_tools(
                "kyverno",
                "kyverno",
                "REGISTRY_OPERATOR_KYVERNO_DIR",
            )?)
        } else {
            None
        };
        // Ports are picked free and bound by the processes a moment later: another test's process
        // may take one in between ("bind: address already in use", seen once in CI). Boot again
        // with new ports then; any other failure stands.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let booted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut plane = ControlPlane::boot(&bin, shared.as_deref(), &self.upstream);
                if let Some(tools) = &kyverno {
                    plane.start_kyverno(tools);
                }
                plane
            }));
            match booted {
                Ok(plane) => return Some(plane),
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or_default();
                    if attempt >= 3 || !message.contains("address already in use") {
                        std::panic::resume_unwind(panic);
                    }
                    eprintln!("a port was taken before its process bound it; booting again");
                }
            }
        }
    }
}

/// A running control plane; every process stops when it is dropped.
pub struct ControlPlane {
    // Dropped in declaration order: the runtime (proxy, clients) first, then the processes in
    // reverse start order, then the directory.
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    proxy: proxy::Proxy,
    kyverno: Option<Process>,
    controller_manager: Option<Process>,
    apiserver: Process,
    etcd: Process,
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// https://127.0.0.1:<port> of kube-apiserver.
    pub url: String,
    /// Admin (system:masters) kubeconfig, for kubectl and the harness.
    pub admin_kubeconfig: PathBuf,
    /// The operator's kubeconfig: the proxy's URL and the shipped service account's token.
    pub operator_kubeconfig: PathBuf,
    discovery: std::sync::Mutex<Vec<objects::Served>>,
    started: Duration,
    /// Whether Drop records the operator's permissions for tests/rbac_audit.rs.
    record_usage: std::sync::atomic::AtomicBool,
    /// The test CA (PEM) that signed the apiserver's and the proxy's certificates.
    pub ca_pem: String,
}

impl ControlPlane {
    pub fn builder() -> ControlPlaneBuilder {
        ControlPlaneBuilder {
            upstream: Vec::new(),
            kyverno_admission: false,
        }
    }

    fn boot(bin: &Path, shared: Option<&Path>, upstream: &[Upstream]) -> Self {
        let begin = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("control-plane-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        let pki = Pki::write(d);
        std::fs::write(
            d.join("tokens.csv"),
            format!("{ADMIN_TOKEN},admin,admin-uid,\"system:masters\"\n"),
        )
        .expect("token file");
        let operator_user =
            format!("system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}");
        processes::write_audit_policy(&d.join("audit-policy.json"), &operator_user);

        let (etcd_port, peer_port, api_port) = (free_port(), free_port(), free_port());
        let mut etcd_cmd = Command::new(bin.join("etcd"));
        etcd_cmd
            .arg("--data-dir")
            .arg(d.join("etcd"))
            .args([
                "--name",
                "default",
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ])
            .arg(format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"))
            .arg(format!(
                "--advertise-client-urls=http://127.0.0.1:{etcd_port}"
            ))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"
            ))
            .arg(format!(
                "--initial-cluster=default=http://127.0.0.1:{peer_port}"
            ));
        let etcd = Process::spawn("etcd", etcd_cmd, d, Duration::from_secs(2));

        let mut api_cmd = Command::new(bin.join("kube-apiserver"));
        api_cmd
            .arg(format!("--etcd-servers=http://127.0.0.1:{etcd_port}"))
            .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
            .arg(format!("--secure-port={api_port}"))
            .arg(format!("--cert-dir={}", d.join("certs").display()))
            .arg(format!("--tls-cert-file={}", pki.serving_cert.display()))
            .arg(format!(
                "--tls-private-key-file={}",
                pki.serving_key.display()
            ))
            .arg(format!("--client-ca-file={}", pki.ca_file.display()))
            .arg(format!(
                "--token-auth-file={}",
                d.join("tokens.csv").display()
            ))
            .args([
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
            ])
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!(
                "--service-account-key-file={}",
                pki.service_account_public_key.display()
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                pki.service_account_key.display()
            ))
            .args([
                "--disable-admission-plugins=ServiceAccount",
                "--endpoint-reconciler-type=none",
            ])
            .arg(format!(
                "--audit-policy-file={}",
                d.join("audit-policy.json").display()
            ))
            .arg(format!(
                "--audit-log-path={}",
                d.join("audit.log").display()
            ))
            .args(["--audit-log-format=json", "--audit-log-mode=blocking"])
            .args(["--enable-priority-and-fairness=false", "-v=0"]);
        // Graceful shutdown waits for in-flight requests; the data is thrown away anyway.
        let apiserver = Process::spawn("kube-apiserver", api_cmd, d, Duration::from_secs(3));
        let url = format!("https://127.0.0.1:{api_port}");
        let admin_kubeconfig = d.join("admin.kubeconfig");
        processes::write_kubeconfig(&admin_kubeconfig, &url, ADMIN_TOKEN, Some(&pki.ca_pem));

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let client = runtime.block_on(objects::client(&admin_kubeconfig));
        let mut plane_processes = (etcd, apiserver);
        objects::wait_ready(&runtime, &client, Duration::from_secs(90), &mut || {
            plane_processes.0.assert_running();
            plane_processes.1.assert_running();
        });
        let (etcd, apiserver) = plane_processes;

        let proxy = proxy::Proxy::start(
            &runtime,
            &url,
            &pki.ca_pem,
            &std::fs::read_to_string(&pki.serving_cert).expect("serving cert"),
            &std::fs::read_to_string(&pki.serving_key).expect("serving key"),
        );
        let mut plane = ControlPlane {
            runtime,
            client,
            proxy,
            kyverno: None,
            controller_manager: None,
            apiserver,
            etcd,
            bin: bin.to_path_buf(),
            url,
            admin_kubeconfig,
            operator_kubeconfig: d.join("operator.kubeconfig"),
            dir,
            discovery: Default::default(),
            started: Duration::ZERO,
            ca_pem: pki.ca_pem.clone(),
            record_usage: std::sync::atomic::AtomicBool::new(true),
        };
        plane.install_default();
        if let Some(dir) = shared {
            for set in upstream {
                plane.install_upstream(dir, *set);
            }
        }
        // Started once the CRDs exist: its garbage collector re-discovers kinds only every 30 s.
        let mut kcm_cmd = Command::new(bin.join("kube-controller-manager"));
        kcm_cmd
            .arg(format!("--kubeconfig={}", plane.admin_kubeconfig.display()))
            .args([
                "--controllers=garbagecollector,namespace,pvc-protection,pv-protection",
                "--leader-elect=false",
            ])
            .args(["--secure-port=0", "--concurrent-gc-syncs=5", "-v=0"]);
        plane.controller_manager = Some(Process::spawn(
            "kube-controller-manager",
            kcm_cmd,
            plane.dir.path(),
            Duration::from_secs(2),
        ));

        let token = plane.service_account_token(OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT);
        processes::write_kubeconfig(
            &plane.operator_kubeconfig,
            &plane.proxy.url,
            &token,
            Some(&plane.ca_pem),
        );
        plane.started = begin.elapsed();
        plane
    }

    fn kcm(&self) -> &Process {
        self.controller_manager
            .as_ref()
            .expect("kube-controller-manager started in boot")
    }

    /// How long start-up took (processes, readiness, CRDs, RBAC).
    pub fn startup_time(&self) -> Duration {
        self.started
    }

    /// The directory holding logs, the audit log and kubeconfigs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Resident memory (KiB) of etcd, kube-apiserver and kube-controller-manager.
    pub fn rss_kib(&self) -> [(&'static str, u64); 3] {
        [&self.etcd, &self.apiserver, self.kcm()].map(|p| {
            let kib = std::fs::read_to_string(format!("/proc/{}/status", p.pid()))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                })
                .unwrap_or(0);
            (p.name, kib)
        })
    }

    /// `kubectl` of the pinned release, with the admin kubeconfig.
    pub fn kubectl(&self) -> Command {
        self.kubectl_with(&self.admin_kubeconfig)
    }

    /// `kubectl` with another kubeconfig (e.g. `operator_kubeconfig`: the operator's identity).
    pub fn kubectl_with(&self, kubeconfig: &Path) -> Command {
        let mut command = Command::new(self.bin.join("kubectl"));
        command.arg(format!("--kubeconfig={}", kubeconfig.display()));
        command
    }

    /// CRDs, Namespace, ServiceAccount, ClusterRole and ClusterRoleBinding of `config/default`
    /// (everything but the manager's own workload), exactly as shipped.
    fn install_default(&self) {
        let output = self
            .kubectl()
            .arg("kustomize")
            .arg(common::repo_root().join("config/default"))
            .output()
            .expect("kubectl kustomize");
        assert!(
            output.status.success(),
            "kubectl kustomize config/default: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let docs = objects::yaml_documents(&String::from_utf8_lossy(&output.stdout));
        let skip = ["Deployment", "Service", "NetworkPolicy"];
        let wanted: Vec<Value> = docs
            .into_iter()
            .filter(|d| !skip.contains(&d["kind"].as_str().unwrap_or_default()))
            .collect();
        self.apply_all(wanted);
    }

    fn install_upstream(&self, shared: &Path, set: Upstream) {
        let mut paths: Vec<std::path::PathBuf> =
            set.files().iter().map(|file| shared.join(file)).collect();
        // CloudNativePG's Backup CRD of the same release, fetched by tests/tools/build.sh (not in ../shared).
        if set == Upstream::Cnpg
            && let Some(tools) = processes::binaries()
        {
            paths.push(tools.join("cnpg/postgresql.cnpg.io_backups.yaml"));
        }
        let docs: Vec<Value> = paths
            .iter()
            .flat_map(|path| {
                let text = std::fs::read_to_string(path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                objects::yaml_documents(&text)
            })
            .collect();
        self.apply_all(docs);
    }

    /// Installs more upstream CRDs while the test runs (e.g. "CloudNativePG gets installed").
    pub fn install(&self, set: Upstream) {
        let dir = common::shared_schemas().expect("../shared/schemas");
        self.install_upstream(&dir, set);
    }

    /// Server-side applies `objects` as the harness, CRDs first, then waits until every CRD is
    /// established and its kind discoverable.
    fn apply_all(&self, objects: Vec<Value>) {
        let (crds, rest): (Vec<Value>, Vec<Value>) = objects
            .into_iter()
            .partition(|o| o["kind"] == "CustomResourceDefinition");
        for crd in &crds {
            self.put_object(crd.clone());
        }
        for crd in &crds {
            let name = crd["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            objects::wait(
                &format!("CRD {name} established"),
                Duration::from_secs(30),
                || {
                    let crd = self.get_object("customresourcedefinitions", "", &name)?;
                    crd["status"]["conditions"]
                        .as_array()?
                        .iter()
                        .any(|c| c["type"] == "Established" && c["status"] == "True")
                        .then_some(())
                },
            );
        }
        if !crds.is_empty() {
            self.refresh_discovery();
        }
        for object in rest {
            self.put_object(object);
        }
    }

    /// A token for a service account (TokenRequest API, two hours).
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        let path = format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token");
        let answer = self.request(
            http::Method::POST,
            &path,
            Some(
                json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": 7200}}),
            ),
        );
        answer["status"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("TokenRequest answered {answer}"))
            .to_string()
    }

    // ----- the request log and faults (the proxy between operator and server) -----

    /// Every request the operator sent since start or the last `reset_log()`.
    pub fn request_log(&self) -> RequestLog {
        RequestLog {
            entries: self.proxy.state.log.lock().expect("log").clone(),
        }
    }

    pub fn reset_log(&self) {
        self.proxy.state.log.lock().expect("log").clear();
    }

    /// Write requests the operator sent (any outcome; a no-op apply counts).
    pub fn writes(&self) -> usize {
        self.request_log().writes().len()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.proxy
            .state
            .faults
            .lock()
            .expect("faults")
            .set(Some(faults));
    }

    pub fn clear_faults(&self) {
        self.proxy.state.faults.lock().expect("faults").set(None);
    }

    /// Ends every watch stream open through the proxy (the operator re-watches).
    pub fn drop_watches(&self) {
        self.proxy
            .state
            .drop_watches
            .send_modify(|epoch| *epoch += 1);
    }

    // ----- the audit log -----

    /// (verb, resource with group and subresource) of every request the operator's service
    /// account made, from the apiserver's audit log; e.g. `("patch", "apps/deployments")`.
    pub fn operator_permissions_used(&self) -> BTreeSet<(String, String)> {
        let text = std::fs::read_to_string(self.dir().join("audit.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["stage"] == "ResponseComplete" && e["responseStatus"]["code"] != 403)
            .filter_map(|e| {
                let o = &e["objectRef"];
                let resource = o["resource"].as_str()?;
                let group = o["apiGroup"].as_str().unwrap_or_default();
                let sub = o["subresource"]
                    .as_str()
                    .map(|s| format!("/{s}"))
                    .unwrap_or_default();
                let full = if group.is_empty() {
                    format!("{resource}{sub}")
                } else {
                    format!("{group}/{resource}{sub}")
                };
                let verb = e["verb"].as_str()?.to_string();
                // A server-side apply that created the object (201) was also authorized as create.
                let created = (verb == "patch" && e["responseStatus"]["code"] == 201)
                    .then(|| ("create".to_string(), full.clone()));
                Some([Some((verb, full)), created])
            })
            .flatten()
            .flatten()
            .collect()
    }

    /// Keeps this control plane's audit records out of the RBAC coverage check (for tests that make
    /// forbidden requests with the operator's identity on purpose).
    pub fn not_a_scenario(&self) {
        self.record_usage
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Requests of the operator that RBAC refused (403), from the audit log.
    pub fn operator_forbidden(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir().join("audit.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            // Refused by RBAC, not by an admission policy (which also answers 403).
            .filter(|e| {
                e["stage"] == "ResponseComplete"
                    && e["annotations"]["authorization.k8s.io/decision"] == "forbid"
            })
            .map(|e| format!("{} {}", e["verb"], e["requestURI"]))
            .collect()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Record what the operator used, for the RBAC coverage check (tests/rbac_audit.rs).
        let used = self.operator_permissions_used();
        if self.record_usage.load(std::sync::atomic::Ordering::Relaxed) && !used.is_empty() {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rbac-usage");
            let _ = std::fs::create_dir_all(&dir);
            let mut lines: Vec<String> = used.iter().map(|(v, r)| format!("{v} {r}")).collect();
            lines.extend(
                self.operator_forbidden()
                    .into_iter()
                    .map(|f| format!("forbidden {f}")),
            );
            let name = std::thread::current()
                .name()
                .unwrap_or("test")
                .replace([':', '/'], "_");
            let _ = std::fs::write(
                dir.join(format!("{name}-{}.txt", std::process::id())),
                lines.join("\n"),
            );
        }
        if std::thread::panicking() {
            let processes = [
                Some(&self.apiserver),
                self.controller_manager.as_ref(),
                self.kyverno.as_ref(),
            ];
            for p in processes.into_iter().flatten() {
                eprintln!("--- {} log tail ---\n{}", p.name, p.log_tail(15));
            }
        }
        // Reverse start order: a kube-apiserver without etcd hangs in its graceful shutdown.
        if let Some(kyverno) = self.kyverno.as_mut() {
            kyverno.stop();
        }
        if let Some(kcm) = self.controller_manager.as_mut() {
            kcm.stop();
        }
        self.apiserver.stop();
        self.etcd.stop();
    }
}
