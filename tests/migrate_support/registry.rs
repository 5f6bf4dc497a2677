//! A CNCF distribution (`docker-registry`) instance on 127.0.0.1 with temp storage, optionally
//! behind htpasswd basic auth; killed on Drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running registry.
pub struct Distribution {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Distribution {
    /// Starts one and waits until `/v2/` answers.
    pub async fn start(basic_auth: Option<(&str, &str)>) -> Distribution {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = super::free_port();
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
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let registry = Distribution {
            port,
            child,
            _dir: dir,
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client
                .get(format!("{}/v2/", registry.url()))
                .send()
                .await
                .is_ok()
            {
                return registry;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("docker-registry on port {port} did not answer");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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
