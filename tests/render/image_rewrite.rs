//! The grace-window image-rewrite policy (`render::policy::rewrite`): strict upstream ClusterPolicy
//! schema, then the real engine, the Kyverno v1.19.1 CLI (`kyverno apply POLICY --resource R -o OUT`),
//! over a table of references in containers, initContainers and ephemeralContainers, Pods and pod
//! controllers, both switch directions. Must not bend the policy to the CLI: what the CLI cannot
//! simulate (the admission request's `subResource` and `oldObject`) is injected through its values file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::common;
use crate::support::policy::{drop_nulls, kyverno_schema_dir, schema_errors};
use registry_operator::render::RenderedObject;
use registry_operator::render::labels::Owner;
use registry_operator::render::policy::rewrite::{
    APP, ImageRewrite, RULE, policy_name, rewrite_policy,
};
use serde_json::{Value, json};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const K3D: &str = "k3d-registry:5000";
const HARBOR: &str = "harbor.example.com";
/// Namespaces the policy names; `apps-excluded` is also excluded (the exclusion wins).
const NAMESPACES: [&str; 2] = ["apps", "apps-excluded"];
const EXCLUDED: [&str; 1] = ["apps-excluded"];

fn to_harbor() -> ImageRewrite {
    ImageRewrite {
        from_host: K3D.into(),
        to_host: HARBOR.into(),
        prefix: "library".into(),
    }
}

fn to_k3d() -> ImageRewrite {
    ImageRewrite {
        from_host: HARBOR.into(),
        to_host: K3D.into(),
        prefix: String::new(),
    }
}

/// (label, image, after K3d → Harbor, after Harbor → K3d), `=` for left alone. Shorthands at the
/// start of an image: `K/` = `k3d-registry:5000/`, `H/` = `harbor.example.com/`, `HL/` = `H/library/`;
/// `@D` = `@sha256:<64 hex>`.
#[rustfmt::skip]
const TABLE: [(&str, &str, &str, &str); 29] = [
    ("K3d, tag", "K/app:1", "HL/app:1", "="),
    ("K3d, no tag", "K/app", "HL/app", "="),
    ("K3d, digest", "K/app@D", "HL/app@D", "="),
    ("K3d, tag and digest", "K/app:1.2@D", "HL/app:1.2@D", "="),
    ("K3d, nested path", "K/a/b/c:2", "HL/a/b/c:2", "="),
    ("K3d, nested path, digest", "K/team/ml/model@D", "HL/team/ml/model@D", "="),
    ("K3d, `library/` in the path", "K/library/nginx:1.27", "HL/library/nginx:1.27", "="),
    ("K3d, `latest`", "K/app:latest", "HL/app:latest", "="),
    ("K3d host, other port", "k3d-registry:5001/app:1", "=", "="),
    ("K3d host, port with one more digit", "k3d-registry:50000/app:1", "=", "="),
    ("K3d host without port (Docker Hub)", "k3d-registry/app:1", "=", "="),
    ("K3d host as repository:tag", "other/k3d-registry:5000", "=", "="),
    ("K3d host alone (Docker Hub, tag 5000)", "k3d-registry:5000", "=", "="),
    ("K3d host as a suffix", "my-k3d-registry:5000/app:1", "=", "="),
    ("K3d host as a subdomain", "k3d-registry.evil.io:5000/app:1", "=", "="),
    ("K3d host in capitals (exact only)", "K3D-REGISTRY:5000/app:1", "=", "="),
    ("Harbor, project `library`", "HL/app:1", "=", "K/library/app:1"),
    ("Harbor, digest", "HL/app@D", "=", "K/library/app@D"),
    ("Harbor, other project, nested", "H/ml/team/model:3", "=", "K/ml/team/model:3"),
    ("Harbor, tag and digest", "HL/app:1@D", "=", "K/library/app:1@D"),
    ("Harbor host with :443", "harbor.example.com:443/library/app:1", "=", "="),
    ("Harbor host as a prefix", "harbor.example.com.evil.io/library/app:1", "=", "="),
    ("Harbor subdomain", "eu.harbor.example.com/library/app:1", "=", "="),
    ("implicit Docker Hub", "nginx", "=", "="),
    ("implicit Docker Hub `library/`", "library/nginx:1.27", "=", "="),
    ("docker.io", "docker.io/library/nginx:1.27", "=", "="),
    ("ghcr.io", "ghcr.io/ai-platform/app:2.0", "=", "="),
    ("other registry with port", "localhost:5000/app:1", "=", "="),
    ("not a reference: a Kyverno variable", "K/{{request.operation}}", "=", "="),
];

/// One row of [`TABLE`], shorthands expanded.
struct Row {
    image: String,
    to_harbor: String,
    to_k3d: String,
}

fn expand(text: &str) -> String {
    let text = text.replace("@D", &format!("@{DIGEST}"));
    for (short, long) in [
        ("K/", K3D),
        ("HL/", "harbor.example.com/library"),
        ("H/", HARBOR),
    ] {
        if let Some(rest) = text.strip_prefix(short) {
            return format!("{long}/{rest}");
        }
    }
    text
}

fn table() -> Vec<Row> {
    let after = |image: &str, text: &str| {
        if text == "=" {
            image.to_string()
        } else {
            expand(text)
        }
    };
    TABLE
        .iter()
        .map(|(_, image, to_harbor, to_k3d)| {
            let image = expand(image);
            Row {
                to_harbor: after(&image, to_harbor),
                to_k3d: after(&image, to_k3d),
                image,
            }
        })
        .collect()
}

fn expected(row: &Row, direction: &str) -> String {
    if direction == "to-harbor" {
        row.to_harbor.clone()
    } else {
        row.to_k3d.clone()
    }
}

fn render(rewrite: &ImageRewrite, namespaces: &[&str], excluded: &[&str]) -> RenderedObject {
    let list = |l: &[&str]| l.iter().map(ToString::to_string).collect::<Vec<_>>();
    let object = rewrite_policy(
        &policy_name("platform", "registry"),
        Owner::registry("platform", "registry").labels(APP, RULE),
        None,
        &list(namespaces),
        &list(excluded),
        rewrite,
    )
    .expect("render");
    common::assert_all_valid_metadata(std::slice::from_ref(&object));
    object
}

fn as_json(object: &RenderedObject) -> Value {
    let mut value = serde_json::to_value(&object.object).expect("json");
    drop_nulls(&mut value);
    value
}

#[test]
fn the_rewrite_policy_is_valid_against_the_strict_upstream_schema() {
    let Some(dir) = kyverno_schema_dir() else {
        return;
    };
    let schema = common::strict_schema(&dir.join("kyverno.io_clusterpolicies.yaml"), "v1");
    // The strict schema must catch a misspelt mutate field, or this test proves nothing.
    let mut typo = as_json(&render(&to_harbor(), &[], &[]));
    typo["spec"]["rules"][0]["mutate"]["foreach"][0]["patchStrategicMerg"] = json!({});
    assert!(!schema_errors(&schema, &typo).is_empty());
    let mut checked = 0;
    for rewrite in [to_harbor(), to_k3d()] {
        for (namespaces, excluded) in [(&NAMESPACES[..], &EXCLUDED[..]), (&[][..], &[][..])] {
            let object = as_json(&render(&rewrite, namespaces, excluded));
            let errors = schema_errors(&schema, &object);
            assert!(errors.is_empty(), "{rewrite:?}: {errors:#?}");
            assert_eq!(object["apiVersion"], "kyverno.io/v1");
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
}

#[test]
fn the_pure_mirror_follows_the_table() {
    for (row, (label, ..)) in table().iter().zip(TABLE) {
        for (direction, rewrite) in [("to-harbor", to_harbor()), ("to-k3d", to_k3d())] {
            let got = rewrite
                .rewritten(&row.image)
                .unwrap_or_else(|| row.image.clone());
            assert_eq!(got, expected(row, direction), "{direction}: {label}");
        }
    }
}

fn kyverno_cli() -> Option<PathBuf> {
    let dir = common::upstream_tools("kyverno", "kyverno-cli", "REGISTRY_OPERATOR_KYVERNO_DIR")?;
    Some(dir.join("kyverno-cli"))
}

fn write_yaml(path: &Path, docs: &[Value]) {
    let text: Vec<String> = docs
        .iter()
        .map(|d| yaml_serde::to_string(d).expect("yaml"))
        .collect();
    std::fs::write(path, text.join("---\n")).expect("write yaml");
}

/// The image each container must have after a run, by `Kind/namespace/name/list/container`.
type Expectations = BTreeMap<String, String>;

/// The resources of every run and the image each container must have after it.
#[derive(Default)]
struct Fixture {
    resources: Vec<Value>,
    /// After CREATE.
    created: Expectations,
    /// After `pods/ephemeralcontainers` (ephemeral containers only).
    debugged: Expectations,
    /// Every container's original image (after a Pod or controller UPDATE: nothing changes).
    original: Expectations,
}

impl Fixture {
    fn expect(&mut self, key: String, before: &str, created: &str, debugged: Option<&str>) {
        self.original.insert(key.clone(), before.to_string());
        self.created.insert(key.clone(), created.to_string());
        if let Some(image) = debugged {
            self.debugged.insert(key, image.to_string());
        }
    }
}

fn container(name: &str, image: &str) -> Value {
    json!({"name": name, "image": image})
}

fn fixture(direction: &str, rewrite: &ImageRewrite) -> Fixture {
    let mut f = Fixture::default();
    let rows = table();
    // One Pod per row in a matched namespace: the image in every list, beside a Docker Hub image.
    // `debug` is the container `kubectl debug` adds; `debug-old` was there before (see the last run).
    let old_debug = format!("{}/tools/debug:1", rewrite.from_host);
    let old_debug_rewritten = rewrite.rewritten(&old_debug).expect("old host");
    for (i, row) in rows.iter().enumerate() {
        let (image, want) = (row.image.as_str(), expected(row, direction));
        f.resources.push(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("row-{i}"), "namespace": "apps"},
        "spec": {
            "containers": [container("app", image), container("sidecar", "busybox:1.36")],
            "initContainers": [container("init", image)],
            "ephemeralContainers": [container("debug", image), container("debug-old", &old_debug)],
        }}));
        let key = |list: &str, c: &str| format!("Pod/apps/row-{i}/{list}/{c}");
        f.expect(key("containers", "app"), image, &want, None);
        f.expect(
            key("containers", "sidecar"),
            "busybox:1.36",
            "busybox:1.36",
            None,
        );
        f.expect(key("initContainers", "init"), image, &want, None);
        f.expect(
            key("ephemeralContainers", "debug"),
            image,
            &want,
            Some(&want),
        );
        let (old, new) = (old_debug.as_str(), old_debug_rewritten.as_str());
        f.expect(key("ephemeralContainers", "debug-old"), old, new, Some(old));
    }
    // Pods the policy must not touch: a namespace it does not name, and one it excludes.
    let old = format!("{}/app:1", rewrite.from_host);
    for ns in ["other", "apps-excluded"] {
        f.resources.push(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "pod", "namespace": ns},
            "spec": {"containers": [container("app", &old)], "initContainers": [container("init", &old)],
                     "ephemeralContainers": [container("debug", &old)]}}));
        f.expect(format!("Pod/{ns}/pod/containers/app"), &old, &old, None);
        f.expect(
            format!("Pod/{ns}/pod/initContainers/init"),
            &old,
            &old,
            None,
        );
        f.expect(
            format!("Pod/{ns}/pod/ephemeralContainers/debug"),
            &old,
            &old,
            Some(&old),
        );
    }
    // Pod controllers with every row in their template: Kyverno's autogen rewrites them, except the
    // ReplicaSet (left out of the autogen list on purpose).
    let list = |p: &str| -> Vec<Value> {
        rows.iter()
            .enumerate()
            .map(|(i, r)| container(&format!("{p}{i}"), &r.image))
            .collect()
    };
    let template = json!({"metadata": {"labels": {"app": "x"}},
        "spec": {"containers": list("c"), "initContainers": list("i"), "restartPolicy": "Never"}});
    let selector = json!({"matchLabels": {"app": "x"}});
    for (kind, api_version, spec) in [
        (
            "Deployment",
            "apps/v1",
            json!({"selector": selector, "template": template}),
        ),
        (
            "StatefulSet",
            "apps/v1",
            json!({"selector": selector, "serviceName": "x", "template": template}),
        ),
        (
            "DaemonSet",
            "apps/v1",
            json!({"selector": selector, "template": template}),
        ),
        ("Job", "batch/v1", json!({"template": template})),
        (
            "CronJob",
            "batch/v1",
            json!({"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}),
        ),
        (
            "ReplicaSet",
            "apps/v1",
            json!({"selector": selector, "template": template}),
        ),
    ] {
        let name = kind.to_lowercase();
        f.resources
            .push(json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": "apps"}, "spec": spec}));
        for (i, row) in rows.iter().enumerate() {
            let want = if kind == "ReplicaSet" {
                row.image.clone()
            } else {
                expected(row, direction)
            };
            for (list, c) in [
                ("containers", format!("c{i}")),
                ("initContainers", format!("i{i}")),
            ] {
                f.expect(
                    format!("{kind}/apps/{name}/{list}/{c}"),
                    &row.image,
                    &want,
                    None,
                );
            }
        }
    }
    f
}

/// The pod spec of a Pod or a pod controller.
fn pod_spec(object: &Value) -> &Value {
    let spec = &object["spec"];
    match object["kind"].as_str() {
        Some("Pod") => spec,
        Some("CronJob") => &spec["jobTemplate"]["spec"]["template"]["spec"],
        _ => &spec["template"]["spec"],
    }
}

/// Every container image of the CLI's output, keyed like [`Expectations`].
fn images_of(output: &str) -> Expectations {
    use serde::Deserialize;
    let mut images = BTreeMap::new();
    for doc in yaml_serde::Deserializer::from_str(output) {
        let object = Value::deserialize(doc).expect("output yaml");
        if object.is_null() {
            continue;
        }
        let meta = &object["metadata"];
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            for c in pod_spec(&object)[list].as_array().into_iter().flatten() {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                let (kind, ns, name) = (
                    text(&object["kind"]),
                    text(&meta["namespace"]),
                    text(&meta["name"]),
                );
                let key = format!("{kind}/{ns}/{name}/{list}/{}", text(&c["name"]));
                let previous = images.insert(key.clone(), text(&c["image"]));
                assert!(previous.is_none(), "{key} twice in the output");
            }
        }
    }
    images
}

/// `kyverno apply POLICY --resource RESOURCES [-f VALUES] -o OUT`: the mutated resources' images.
fn apply(
    cli: &Path,
    dir: &Path,
    run: &str,
    policy: &Path,
    resources: &[Value],
    values: Option<Value>,
) -> Expectations {
    let resource_file = dir.join(format!("{run}-resources.yaml"));
    write_yaml(&resource_file, resources);
    let out = dir.join(format!("{run}-mutated.yaml"));
    let mut command = Command::new(cli);
    command
        .arg("apply")
        .arg(policy)
        .arg("--resource")
        .arg(&resource_file)
        .arg("-o")
        .arg(&out)
        .arg("--remove-color");
    if let Some(values) = values {
        let values_file = dir.join(format!("{run}-values.yaml"));
        write_yaml(&values_file, &[values]);
        command.arg("--values-file").arg(values_file);
    }
    let output = command.output().expect("kyverno apply");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{run}: kyverno apply failed:\n{stdout}\n{stderr}"
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("pass:"))
        .unwrap_or_else(|| panic!("{run}: no summary:\n{stdout}"));
    assert!(
        summary.contains("fail: 0") && summary.contains("error: 0"),
        "{run}: {summary}\n{stdout}\n{stderr}"
    );
    images_of(&std::fs::read_to_string(&out).expect("CLI output"))
}

/// Lines naming every container whose image differs from `want` (missing ones included).
fn compare(run: &str, want: &Expectations, got: &Expectations) -> Vec<String> {
    want.iter()
        .filter_map(|(key, image)| {
            let actual = got.get(key).map_or("<missing>", String::as_str);
            (actual != image).then(|| format!("{run}: {key}: got {actual}, want {image}"))
        })
        .collect()
}

#[test]
fn kyverno_rewrites_every_table_reference_in_every_list_and_controller() {
    let Some(cli) = kyverno_cli() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut disagreements = Vec::new();
    let mut judged = 0;
    for (direction, rewrite) in [("to-harbor", to_harbor()), ("to-k3d", to_k3d())] {
        let policy = dir.path().join(format!("{direction}-policy.yaml"));
        write_yaml(
            &policy,
            &[as_json(&render(&rewrite, &NAMESPACES, &EXCLUDED))],
        );
        let f = fixture(direction, &rewrite);
        let run = |run: &str, resources: &[Value], values: Option<Value>| {
            apply(
                &cli,
                dir.path(),
                &format!("{direction}-{run}"),
                &policy,
                resources,
                values,
            )
        };

        // Admission of new objects (the CLI's default operation is CREATE).
        let got = run("create", &f.resources, None);
        disagreements.extend(compare(&format!("{direction} CREATE"), &f.created, &got));

        // An UPDATE of an existing Pod or controller rewrites nothing (no container restart, no change
        // to a Job's immutable template).
        let values = json!({"apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Values",
            "globalValues": {"request.operation": "UPDATE"}});
        let got = run("update", &f.resources, Some(values));
        disagreements.extend(compare(&format!("{direction} UPDATE"), &f.original, &got));

        // `kubectl debug`: an UPDATE of `pods/ephemeralcontainers`. The CLI finds the subresource in
        // `subresources` but leaves `request.subResource` unset and makes `request.oldObject` the object
        // itself, so both are set as the API server sends them: `debug-old` existed before. Only the
        // ephemeral containers are judged: the API server drops any other change made through this
        // subresource.
        let pods: Vec<Value> = f
            .resources
            .iter()
            .filter(|r| r["kind"] == "Pod")
            .cloned()
            .collect();
        let api = |name: &str| {
            json!({"name": name, "kind": "Pod", "group": "", "version": "v1",
            "namespaced": true, "singularName": "", "verbs": []})
        };
        let values = json!({"apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Values",
            "globalValues": {
                "request.operation": "UPDATE",
                "request.subResource": "ephemeralcontainers",
                "request.oldObject": {"spec": {"ephemeralContainers": [container("debug-old", "x")]}},
            },
            "subresources": [{"subresource": api("pods/ephemeralcontainers"), "parentResource": api("pods")}]});
        let got = run("ephemeral", &pods, Some(values));
        let label = format!("{direction} pods/ephemeralcontainers");
        disagreements.extend(compare(&label, &f.debugged, &got));
        judged += f.created.len() + f.original.len() + f.debugged.len();
    }
    eprintln!(
        "FIGURES image rewrite: {} table rows, {judged} container images judged by the Kyverno CLI",
        table().len()
    );
    assert!(table().len() >= 20);
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
