//! Starting and stopping the upstream control-plane processes (etcd, kube-apiserver,
//! kube-controller-manager) built by `tests/tools/build.sh`, and the files they need (PKI, tokens,
//! audit policy, kubeconfigs). Knows nothing about the objects a test creates.

use std::fs::File;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::common;

/// The token of the harness's own user (`system:masters`); never given to the operator.
pub const ADMIN_TOKEN: &str = "registry-operator-test-admin";

/// Where the control-plane binaries are: `REGISTRY_OPERATOR_CONTROLPLANE_DIR`, else whatever
/// `tests/tools/build.sh controlplane` prints (it builds once and caches outside the repository).
/// `None` (after printing SKIPPED) when they cannot be had; a panic under
/// `REGISTRY_OPERATOR_REQUIRE_TOOLS=1`.
pub fn binaries() -> Option<PathBuf> {
    static DIR: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let found = DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("REGISTRY_OPERATOR_CONTROLPLANE_DIR") {
            return Ok(PathBuf::from(dir));
        }
        let script = common::repo_root().join("tests/tools/build.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg("controlplane")
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("bash {}: {e}", script.display()))?;
        if !output.status.success() {
            return Err(format!("{} controlplane failed", script.display()));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let dir = text.lines().last().unwrap_or_default().trim().to_string();
        Ok(PathBuf::from(dir))
    });
    match found {
        Ok(dir) if dir.join("kube-apiserver").is_file() => Some(dir.clone()),
        Ok(dir) => {
            common::missing(
                &format!("kube-apiserver in {}", dir.display()),
                "bash tests/tools/build.sh controlplane",
            );
            None
        }
        Err(why) => {
            common::missing(
                &format!("the control plane ({why})"),
                "Go ≥ 1.26, then bash tests/tools/build.sh controlplane",
            );
            None
        }
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port on 127.0.0.1")
}

/// A child process killed (SIGTERM, then SIGKILL after `grace`) when dropped, and by the kernel
/// when the thread that started it dies (PR_SET_PDEATHSIG), so a crashed or timed-out test leaks
/// no server.
pub struct Process {
    pub name: &'static str,
    child: Child,
    pub log: PathBuf,
    grace: Duration,
}

impl Process {
    pub fn spawn(name: &'static str, mut command: Command, dir: &Path, grace: Duration) -> Self {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).expect("process log file");
        let err = out.try_clone().expect("process log file");
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Self {
            name,
            child,
            log,
            grace,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running; panics with its log tail if it exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}); log tail:\n{}",
                self.name,
                self.log_tail(30)
            );
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM, then SIGKILL once `grace` has passed.
    pub fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        // SAFETY: sending a signal to our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// PEM files of a throw-away CA, the apiserver's serving certificate (127.0.0.1, localhost) and the
/// service-account signing key.
pub struct Pki {
    pub ca_pem: String,
    pub ca_file: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub service_account_key: PathBuf,
    pub service_account_public_key: PathBuf,
}

impl Pki {
    pub fn write(dir: &Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "registry-operator-test-ca");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let serving_key = KeyPair::generate().expect("serving key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_string()]).expect("serving params");
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kube-apiserver");
        let serving = params
            .signed_by(&serving_key, &issuer)
            .expect("serving certificate");
        let sa_key = KeyPair::generate().expect("service-account key");

        let pki = Self {
            ca_pem: ca.pem(),
            ca_file: dir.join("ca.crt"),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            service_account_key: dir.join("sa.key"),
            service_account_public_key: dir.join("sa.pub"),
        };
        std::fs::write(&pki.ca_file, &pki.ca_pem).expect("write ca.crt");
        std::fs::write(&pki.serving_cert, serving.pem()).expect("write apiserver.crt");
        std::fs::write(&pki.serving_key, serving_key.serialize_pem()).expect("write apiserver.key");
        std::fs::write(&pki.service_account_key, sa_key.serialize_pem()).expect("write sa.key");
        std::fs::write(&pki.service_account_public_key, sa_key.public_key_pem())
            .expect("write sa.pub");
        pki
    }
}

/// A kubeconfig for `server` with a bearer token, trusting `ca_pem` when the server is https.
pub fn write_kubeconfig(path: &Path, server: &str, token: &str, ca_pem: Option<&str>) {
    use base64::Engine;
    let cluster = match ca_pem {
        Some(ca) => serde_json::json!({
            "server": server,
            "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(ca),
        }),
        None => serde_json::json!({ "server": server }),
    };
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": "test", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test", "namespace": "default"}}],
        "current-context": "test",
    });
    std::fs::write(
        path,
        serde_json::to_string_pretty(&config).expect("kubeconfig json"),
    )
    .expect("write kubeconfig");
}

/// Audit policy: metadata of every request made by `user` (the operator's service account),
/// nothing else.
pub fn write_audit_policy(path: &Path, user: &str) {
    let policy = serde_json::json!({
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "Metadata", "users": [user]},
            {"level": "None"},
        ],
    });
    std::fs::write(path, policy.to_string()).expect("write audit policy");
}
