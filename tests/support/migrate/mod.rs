//! Helpers for the migrate tests against real registries (`support::distribution`): tool detection
//! (SKIPPED rule), content built with umoci/skopeo, and a counting/fault-injecting proxy.
//! Test-only; binds 127.0.0.1 only and cleans up on Drop.

pub mod content;
pub mod proxy;

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

/// Whether docker-registry, skopeo and umoci are installed; prints SKIPPED (or panics when
/// `REGISTRY_OPERATOR_REQUIRE_TOOLS=1`) when one is missing.
pub fn tools_available() -> bool {
    // The test's own HTTP clients need a TLS provider even for plain-HTTP use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    for tool in ["docker-registry", "skopeo", "umoci"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
        if !found {
            if std::env::var("REGISTRY_OPERATOR_REQUIRE_TOOLS").as_deref() == Ok("1") {
                panic!(
                    "{tool} not found (install: apt-get install -y docker-registry skopeo umoci)"
                );
            }
            println!(
                "SKIPPED: {tool} not found (install: apt-get install -y docker-registry skopeo umoci)"
            );
            return false;
        }
    }
    true
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// `sha256:<hex>`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Every `repo:tag` of the registry at `base` with its manifest digest (read via the HTTP API).
pub async fn listing(base: &str, creds: Option<(&str, &str)>) -> BTreeMap<String, String> {
    let client = reqwest::Client::new();
    let get = |url: String| {
        let request = client.get(url).header(
            "accept",
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json",
        );
        match creds {
            Some((user, pass)) => request.basic_auth(user, Some(pass)),
            None => request,
        }
    };
    let catalog: serde_json::Value = serde_json::from_slice(
        &get(format!("{base}/v2/_catalog?n=1000"))
            .send()
            .await
            .expect("catalog")
            .bytes()
            .await
            .expect("body"),
    )
    .expect("json");
    let mut out = BTreeMap::new();
    for repo in catalog["repositories"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let repo = repo.as_str().expect("repo name").to_string();
        let tags: serde_json::Value = serde_json::from_slice(
            &get(format!("{base}/v2/{repo}/tags/list"))
                .send()
                .await
                .expect("tags")
                .bytes()
                .await
                .expect("body"),
        )
        .expect("json");
        for tag in tags["tags"].as_array().cloned().unwrap_or_default() {
            let tag = tag.as_str().expect("tag").to_string();
            let bytes = get(format!("{base}/v2/{repo}/manifests/{tag}"))
                .send()
                .await
                .expect("manifest")
                .bytes()
                .await
                .expect("bytes");
            out.insert(format!("{repo}:{tag}"), sha256(&bytes));
        }
    }
    out
}

/// The digest `skopeo inspect --raw` sees for `docker://host/image`.
pub fn skopeo_digest(host: &str, image: &str, creds: Option<&str>) -> Option<String> {
    let mut command = std::process::Command::new("skopeo");
    command.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(creds) = creds {
        command.args(["--creds", creds]);
    }
    let output = command
        .arg(format!("docker://{host}/{image}"))
        .output()
        .expect("run skopeo");
    output.status.success().then(|| sha256(&output.stdout))
}

/// Runs the real binary's `migrate`; returns (success, stdout, stderr).
pub async fn run_migrate(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_registry-operator"));
    command.arg("migrate").args(args).kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(600), command.output())
        .await
        .expect("migrate finished within 10 minutes")
        .expect("spawn migrate");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
