//! A CNCF distribution (`docker-registry`, Debian's package) on 127.0.0.1 with temp storage, optionally
//! behind htpasswd basic auth; killed on Drop. Shared by the migration, K3d GC and Kyverno signature tests.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry.
pub struct Distribution {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Distribution {
    /// Starts one and waits until it listens.
    pub fn start(basic_auth: Option<(&str, &str)>) -> Distribution {
        Self::start_with_env(basic_auth, &[])
    }

    /// Starts one with extra environment variables (distribution reads configuration overrides
    /// such as `REGISTRY_STORAGE_MAINTENANCE_READONLY` from its environment).
    pub fn start_with_env(
        basic_auth: Option<(&str, &str)>,
        env: &[(String, String)],
    ) -> Distribution {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, pass)) = basic_auth {
            let hash = bcrypt::hash(pass, 4).expect("bcrypt");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let registry = Distribution {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry on port {port} did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The storage root directory (`storage.filesystem.rootdirectory`).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("data")
    }

    /// Stops the registry and waits for it to exit; the data stays until Drop.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
