//! Kyverno's admission controller (`cmd/kyverno` of the pinned module, built by
//! `tests/tools/build.sh kyverno`) run out of cluster against the test control plane: all of its CRDs
//! from the same module, its namespace and ConfigMaps, its webhooks registered on 127.0.0.1. Test
//! support only: what Kyverno admits or denies is for the tests to assert, never decided here.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::processes::{Process, free_port};
use super::{ControlPlane, objects};

/// The namespace Kyverno runs "in" (its leases, Secrets and ConfigMaps live there).
pub const KYVERNO_NAMESPACE: &str = "kyverno";

impl ControlPlane {
    /// Installs Kyverno's CRDs from `tools/crds`, then starts its admission controller and waits
    /// until its policy-validation webhook answers (a dry-run ClusterPolicy create passes).
    pub(super) fn start_kyverno(&mut self, tools: &Path) {
        let begin = Instant::now();
        let mut docs = Vec::new();
        collect_yaml(&tools.join("crds"), &mut docs);
        assert!(!docs.is_empty(), "no CRDs under {}/crds", tools.display());
        self.apply_all(docs);
        for name in ["kyverno", "kyverno-metrics"] {
            self.put_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": KYVERNO_NAMESPACE}}));
        }
        let port = free_port();
        let mut command = Command::new(tools.join("kyverno"));
        command
            .env("KYVERNO_NAMESPACE", KYVERNO_NAMESPACE)
            .env("KYVERNO_POD_NAME", "kyverno-admission-test")
            .env(
                "KYVERNO_SERVICEACCOUNT_NAME",
                "kyverno-admission-controller",
            )
            .env("KYVERNO_DEPLOYMENT", "kyverno-admission-controller")
            .env("KYVERNO_SVC", "kyverno-svc")
            .env("INIT_CONFIG", "kyverno")
            .env("METRICS_CONFIG", "kyverno-metrics")
            .arg(format!("--kubeconfig={}", self.admin_kubeconfig.display()))
            .arg(format!("--serverIP=127.0.0.1:{port}"))
            .arg("--webhookServerHost=127.0.0.1")
            .arg(format!("--webhookServerPort={port}"))
            // Kyverno's metrics server listens on 0.0.0.0:8000 even with --disableMetrics: two
            // admission tests at once made one Kyverno exit on the port clash, and tests bind to
            // 127.0.0.1 only.
            .arg("--metricsHost=127.0.0.1")
            .arg(format!("--metricsPort={}", free_port()))
            .args([
                "--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca",
                "--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair",
                "--admissionReports=false",
                "--controllerRuntimeMetricsAddress=0",
                "--disableMetrics=true",
                "--autoMemLimitEnabled=false",
                // The tests' registry is Debian's docker-registry over plain HTTP on 127.0.0.1.
                "--allowInsecureRegistry=true",
                "--loggingFormat=text",
                "--disableLogColor=true",
            ]);
        self.kyverno = Some(Process::spawn(
            "kyverno",
            command,
            self.dir.path(),
            Duration::from_secs(3),
        ));
        let probe = json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": "harness-webhook-probe"},
            "spec": {"rules": [{"name": "probe", "match": {"any": [{"resources": {"kinds": ["ConfigMap"]}}]},
                "validate": {"message": "probe", "pattern": {"metadata": {"name": "?*"}}}}]}});
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            self.kyverno
                .as_mut()
                .expect("kyverno started")
                .assert_running();
            if self.webhook_answers(&probe) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Kyverno's webhooks did not answer within 120 s; log tail:\n{}",
                self.kyverno.as_ref().expect("kyverno").log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        eprintln!(
            "kyverno admission controller answering after {:.1} s",
            begin.elapsed().as_secs_f64()
        );
    }

    /// Whether a dry-run create of `probe` went through Kyverno's policy webhook: the API server
    /// only calls it once Kyverno has registered its ValidatingWebhookConfiguration.
    fn webhook_answers(&self, probe: &Value) -> bool {
        let registered = self
            .list_objects("validatingwebhookconfigurations", None)
            .iter()
            .any(|w| {
                w["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("kyverno-policy-validating"))
            });
        if !registered {
            return false;
        }
        let answer = self.raw_request(
            http::Method::POST,
            "/apis/kyverno.io/v1/clusterpolicies?dryRun=All",
            Some(probe.clone()),
        );
        answer.is_ok()
    }

    /// Kyverno's log (for a test that failed on an admission decision).
    pub fn kyverno_log_tail(&self, lines: usize) -> String {
        self.kyverno
            .as_ref()
            .map(|k| k.log_tail(lines))
            .unwrap_or_default()
    }

    /// Resident memory (KiB) of Kyverno's admission controller, when it runs.
    pub fn kyverno_rss_kib(&self) -> Option<u64> {
        let pid = self.kyverno.as_ref()?.pid();
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()?
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

fn collect_yaml(dir: &Path, docs: &mut Vec<Value>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_yaml(&path, docs);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).expect("CRD file");
            docs.extend(objects::yaml_documents(&text));
        }
    }
}
