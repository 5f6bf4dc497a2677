//! The hosted K3d registry's garbage-collection CronJob, run for real: Debian's `docker-registry`
//! (CNCF distribution) executes the exact command and configuration the CronJob renders against a
//! test registry's data, after one of two pushed images was deleted through the registry API. The
//! unreferenced blobs go; the referenced ones stay. And the maintenance switch (`spec.k3d.readOnly`):
//! distribution started with the environment the Deployment renders refuses a push.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::common;
use crate::support::signing::{Distribution, push_image, run};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::ConfigMap;
use registry_operator::crd::Registry;
use registry_operator::render::{self, Observed, RenderedObject};

const REGISTRY: &str = r#"
apiVersion: registry.aisp.dev/v1alpha1
kind: Registry
metadata: { name: dev, namespace: registry }
spec:
  mode: K3d
  k3d: { adopt: Never, gc: { schedule: "0 3 * * 0" } }
"#;

fn find<T: serde::de::DeserializeOwned>(objects: &[RenderedObject], kind: &str) -> T {
    let object = objects
        .iter()
        .find(|o| {
            o.resource.kind == kind
                && o.object.metadata.name.as_deref() == Some("dev-distribution-gc")
        })
        .unwrap_or_else(|| panic!("{kind} dev-distribution-gc rendered"));
    serde_json::from_value(serde_json::to_value(&object.object).unwrap()).unwrap()
}

/// `(sha256 hex of every blob the manifest references)`: its config and layers.
fn blobs_of(crane: &Path, reference: &str) -> Vec<String> {
    let manifest: serde_json::Value = serde_json::from_str(&run(Command::new(crane).args([
        "manifest",
        "--insecure",
        reference,
    ])))
    .expect("manifest JSON");
    let mut digests = vec![manifest["config"]["digest"].as_str().unwrap().to_string()];
    for layer in manifest["layers"].as_array().unwrap() {
        digests.push(layer["digest"].as_str().unwrap().to_string());
    }
    digests
        .into_iter()
        .map(|d| d.strip_prefix("sha256:").unwrap().to_string())
        .collect()
}

fn blob_path(data: &Path, hex: &str) -> PathBuf {
    data.join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

#[test]
fn rendered_gc_command_deletes_unreferenced_blobs_and_keeps_referenced_ones() {
    let registry: Registry = yaml_serde::from_str(REGISTRY).expect("fixture parses");
    let rendered = render::registry(&registry, &Observed::default()).expect("renders");
    let cron_job: CronJob = find(&rendered.objects, "CronJob");
    let config_map: ConfigMap = find(&rendered.objects, "ConfigMap");
    let spec = cron_job.spec.expect("spec");
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    let pod = spec.job_template.spec.unwrap().template.spec.unwrap();
    let command = pod.containers[0].command.clone().expect("command");
    assert_eq!(command[..2], ["registry", "garbage-collect"]);
    assert!(
        !command.contains(&"--delete-untagged".to_string()),
        "not asked for"
    );
    let config_path = command.last().unwrap().clone();
    let (dir_name, file_name) = config_path.rsplit_once('/').unwrap();
    let mounted = pod.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == dir_name)
        .expect("the config file's directory is mounted");
    assert_eq!(mounted.read_only, Some(true));
    let config = config_map.data.unwrap_or_default()[file_name].clone();

    let Some(signing) = common::upstream_tools("signing", "crane", "REGISTRY_OPERATOR_SIGNING_DIR")
    else {
        return;
    };
    let Some(docker_registry) = common::find_tool("docker-registry", &[]) else {
        common::missing("docker-registry", "apt-get install docker-registry");
        return;
    };
    let crane = signing.join("crane");
    let work = tempfile::tempdir().expect("temp dir");
    let mut distribution = Distribution::start(None);
    let host = distribution.host();
    let kept = push_image(&crane, work.path(), &host, "kept", "kept\n");
    let dropped = push_image(&crane, work.path(), &host, "dropped", "dropped\n");
    let kept_blobs = blobs_of(&crane, &kept);
    let dropped_blobs: Vec<String> = blobs_of(&crane, &dropped)
        .into_iter()
        .filter(|b| !kept_blobs.contains(b))
        .collect();
    assert!(
        !dropped_blobs.is_empty(),
        "the dropped image has blobs of its own"
    );
    run(Command::new(&crane).args(["delete", "--insecure", &dropped]));
    // The read-only window: nothing pushes while the collector runs.
    distribution.stop();
    let data = distribution.data_dir();
    for blob in kept_blobs.iter().chain(&dropped_blobs) {
        assert!(blob_path(&data, blob).is_file(), "{blob} stored before GC");
    }

    // The CronJob's command and configuration file; only the storage root differs (the
    // environment override distribution applies to its configuration).
    let config_file = work.path().join(file_name);
    std::fs::write(&config_file, &config).unwrap();
    let mut args: Vec<String> = command[1..].to_vec();
    *args.last_mut().unwrap() = config_file.display().to_string();
    let output = Command::new(&docker_registry)
        .args(&args)
        .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", &data)
        .output()
        .expect("run docker-registry garbage-collect");
    assert!(
        output.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for blob in &kept_blobs {
        assert!(
            blob_path(&data, blob).is_file(),
            "referenced blob {blob} kept"
        );
    }
    for blob in &dropped_blobs {
        assert!(
            !blob_path(&data, blob).exists(),
            "unreferenced blob {blob} deleted"
        );
    }
}

/// `spec.k3d.readOnly`: the rendered Deployment's environment makes a real distribution refuse pushes
/// (its own read-only error) while it still serves reads; without it, the same push is accepted.
#[test]
fn read_only_switch_makes_distribution_refuse_pushes() {
    if common::find_tool("docker-registry", &[]).is_none() {
        common::missing("docker-registry", "apt-get install docker-registry");
        return;
    }
    let env_of = |read_only: bool| -> Vec<(String, String)> {
        let yaml = format!(
            "apiVersion: registry.aisp.dev/v1alpha1\nkind: Registry\nmetadata: {{ name: dev, namespace: registry }}\nspec:\n  mode: K3d\n  k3d: {{ adopt: Never, readOnly: {read_only} }}\n"
        );
        let registry: Registry = yaml_serde::from_str(&yaml).expect("fixture parses");
        let rendered = render::registry(&registry, &Observed::default()).expect("renders");
        let deployment = rendered
            .objects
            .iter()
            .find(|o| o.resource.kind == "Deployment")
            .expect("Deployment rendered");
        let value = serde_json::to_value(&deployment.object).unwrap();
        value["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"] == "REGISTRY_STORAGE_MAINTENANCE_READONLY")
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_string(),
                    e["value"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert!(env_of(false).is_empty(), "writable unless asked");
    let read_only = env_of(true);
    assert_eq!(read_only.len(), 1);

    let start_upload =
        |registry: &Distribution| http(registry.port, "POST", "/v2/dev/app/blobs/uploads/");
    let frozen = Distribution::start_with_env(None, &read_only);
    let answer = start_upload(&frozen);
    assert_eq!(answer.0, 405, "push refused: {answer:?}");
    // Distribution in read-only mode does not register the upload (and delete) routes: 405.
    assert!(answer.1.contains("Method not allowed"), "{answer:?}");
    let (catalog, _) = http(frozen.port, "GET", "/v2/_catalog");
    assert_eq!(catalog, 200, "reads still served");
    let writable = Distribution::start(None);
    let answer = start_upload(&writable);
    assert_eq!(answer.0, 202, "accepted when writable: {answer:?}");
}

/// One HTTP/1.1 request to 127.0.0.1:`port` (no body): status code and response text.
fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, answer)
}
