//! The k3s `registries.yaml` (`/etc/rancher/k3s/registries.yaml` on every node) that points the
//! nodes' container runtime at a registry: mirrors (a name images use → endpoints containerd really
//! connects to) and per-endpoint TLS. Pure; never carries credentials (nodes add their own `auth`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::RenderError;

/// Directory on every node where the user puts exported CA certificates (`<host>-ca.crt`); the
/// README's k3d command mounts a directory of the machine there.
pub const NODE_CA_DIR: &str = "/etc/rancher/k3s/aisp";

/// Path on the nodes of the CA certificate of `host` (its port, if any, dropped).
pub fn node_ca_file(host: &str) -> String {
    format!("{NODE_CA_DIR}/{}-ca.crt", host_name(host))
}

/// `host` without its `:port`.
pub fn host_name(host: &str) -> &str {
    host.split(':').next().unwrap_or_default()
}

/// The subset of k3s' `registries.yaml` the operator writes.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Registries {
    /// Registry name as written in image references → where to pull it from.
    pub mirrors: BTreeMap<String, Mirror>,
    /// Endpoint `host[:port]` → TLS settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, Config>,
}

/// `mirrors.<name>`.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// URLs tried in order (`http://` or `https://`).
    pub endpoint: Vec<String>,
    /// Repository rewrites (a regular expression over the repository path → its replacement).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rewrite: BTreeMap<String, String>,
}

/// `configs.<host>`.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Config {
    /// TLS settings of the endpoint.
    pub tls: Tls,
}

/// `configs.<host>.tls`.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Tls {
    /// CA bundle (PEM) on the node that signs the endpoint's certificate.
    pub ca_file: String,
}

impl Registries {
    /// Route image references naming `name` to `endpoint` (a URL); appended after earlier endpoints.
    pub fn mirror(&mut self, name: &str, endpoint: &str) -> &mut Self {
        let mirror = self.mirrors.entry(name.to_string()).or_default();
        if !mirror.endpoint.iter().any(|e| e == endpoint) {
            mirror.endpoint.push(endpoint.to_string());
        }
        self
    }

    /// Trust the CA in `ca_file` (a path on the nodes) for the endpoint `host[:port]`.
    pub fn trust(&mut self, host: &str, ca_file: &str) -> &mut Self {
        self.configs.insert(
            host.to_string(),
            Config {
                tls: Tls {
                    ca_file: ca_file.to_string(),
                },
            },
        );
        self
    }

    /// Serve references naming `old` (a registry switched away from) from `new`'s endpoints, with
    /// `prefix` (the Harbor project) put before each repository, so nodes still pull old references.
    pub fn alias(&mut self, old: &str, new: &str, prefix: &str) -> &mut Self {
        let Some(endpoints) = self.mirrors.get(new).map(|m| m.endpoint.clone()) else {
            return self;
        };
        let mut rewrite = BTreeMap::new();
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            rewrite.insert("^(.*)$".to_string(), format!("{prefix}/$1"));
        }
        self.mirrors.insert(
            old.to_string(),
            Mirror {
                endpoint: endpoints,
                rewrite,
            },
        );
        self
    }

    /// Read a document this module wrote.
    pub fn from_yaml(text: &str) -> Result<Self, RenderError> {
        Ok(yaml_serde::from_str(text)?)
    }

    /// The YAML document.
    pub fn to_yaml(&self) -> Result<String, RenderError> {
        Ok(yaml_serde::to_string(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_and_tls_serialize_as_k3s_reads_them() {
        let mut registries = Registries::default();
        registries
            .mirror(
                "harbor.example.localhost",
                "https://harbor.example.localhost",
            )
            .mirror(
                "harbor.example.localhost",
                "https://harbor.example.localhost",
            )
            .trust(
                "harbor.example.localhost",
                &node_ca_file("harbor.example.localhost"),
            );
        assert_eq!(
            registries.to_yaml().unwrap(),
            "mirrors:\n  harbor.example.localhost:\n    endpoint:\n    - https://harbor.example.localhost\nconfigs:\n  harbor.example.localhost:\n    tls:\n      ca_file: /etc/rancher/k3s/aisp/harbor.example.localhost-ca.crt\n"
        );
    }

    #[test]
    fn an_old_host_is_served_by_the_new_endpoints_with_the_project_prefix() {
        let mut registries = Registries::default();
        registries
            .mirror("harbor.example.com", "https://harbor.example.com")
            .alias("k3d-registry:5000", "harbor.example.com", "library");
        let text = registries.to_yaml().unwrap();
        assert_eq!(Registries::from_yaml(&text).unwrap(), registries);
        assert!(
            text.contains("  k3d-registry:5000:\n    endpoint:\n    - https://harbor.example.com\n    rewrite:\n      ^(.*)$: library/$1\n"),
            "{text}"
        );
        let mut back = Registries::default();
        back.mirror("k3d-registry:5000", "http://127.0.0.1:30500")
            .alias("harbor.example.com", "k3d-registry:5000", "");
        assert!(back.mirrors["harbor.example.com"].rewrite.is_empty());
    }

    #[test]
    fn no_configs_key_without_tls() {
        let mut registries = Registries::default();
        registries.mirror("r:5000", "http://127.0.0.1:30500");
        assert!(!registries.to_yaml().unwrap().contains("configs"));
        assert_eq!(
            node_ca_file("h.local:8443"),
            "/etc/rancher/k3s/aisp/h.local-ca.crt"
        );
    }
}
