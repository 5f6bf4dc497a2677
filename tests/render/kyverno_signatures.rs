//! Real cosign signatures judged by the real Kyverno engine, offline: two small images pushed with
//! `crane` to a `docker-registry` on 127.0.0.1, one signed and attested with a cosign key and no
//! transparency-log upload, then `kyverno-cli apply --registry` of the policies `render` writes for
//! both flavours. With `transparencyLog.ignoreTlog`/`ignoreSCT` the signed image passes and the
//! unsigned one fails; with the defaults (Rekor required) the offline signature fails too. Keyless
//! cannot be verified offline: its rendered fields are checked against Kyverno's shape instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::support::signing::SignedImages;

use crate::support::common;
use serde_json::{Value, json};

fn image_policy(engine: &str, host: &str, signatures: Value) -> Value {
    json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": "s"},
        "spec": {
            "engine": engine, "failureAction": "Enforce", "namespaces": ["apps"],
            "allowedRegistries": [host],
            "rules": {
                "requireSignatures": signatures,
                "attestations": [{"predicateType": "https://slsa.dev/provenance/v0.2"}],
            },
        },
    })
}

/// `registry-operator render -f` of one ImagePolicy; the rendered YAML text.
fn render(dir: &Path, name: &str, policy: &Value) -> PathBuf {
    let spec = dir.join(format!("{name}.json"));
    std::fs::write(&spec, policy.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_registry-operator"))
        .args(["render", "-f"])
        .arg(&spec)
        .output()
        .expect("render");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = dir.join(format!("{name}.yaml"));
    std::fs::write(&rendered, &out.stdout).unwrap();
    rendered
}

fn rendered_docs(path: &Path) -> Vec<Value> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(path).unwrap();
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("rendered yaml"))
        .filter(|v| !v.is_null())
        .collect()
}

/// (pod, policy) → worst result of `kyverno apply --registry` (fail beats pass).
fn apply(
    cli: &Path,
    policies: &Path,
    resources: &Path,
    values: &Path,
) -> BTreeMap<(String, String), String> {
    let report = common::kyverno_policy_report(cli, policies, resources, values, &["--registry"]);
    let mut verdicts: BTreeMap<(String, String), String> = BTreeMap::new();
    for result in report["results"].as_array().into_iter().flatten() {
        let policy = result["policy"].as_str().unwrap_or_default().to_string();
        let verdict = result["result"].as_str().unwrap_or_default().to_string();
        for resource in result["resources"].as_array().into_iter().flatten() {
            let pod = resource["name"].as_str().unwrap_or_default().to_string();
            let entry = verdicts
                .entry((pod, policy.clone()))
                .or_insert(verdict.clone());
            if verdict != "pass" {
                *entry = verdict.clone();
            }
        }
    }
    verdicts
}

fn verdict<'a>(
    verdicts: &'a BTreeMap<(String, String), String>,
    pod: &str,
    policy: &str,
) -> &'a str {
    verdicts
        .get(&(pod.to_string(), policy.to_string()))
        .map_or("none", String::as_str)
}

#[test]
fn offline_signatures_pass_with_tlog_off_in_both_flavours() {
    let Some(kyverno) =
        common::upstream_tools("kyverno", "kyverno-cli", "REGISTRY_OPERATOR_KYVERNO_DIR")
    else {
        return;
    };
    let cli = kyverno.join("kyverno-cli");
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let started = Instant::now();
    let Some(images) = SignedImages::prepare(dir) else {
        return;
    };
    let (host, signed, unsigned, public_key) = (
        images.registry.host(),
        &images.signed,
        &images.unsigned,
        &images.public_key,
    );
    let prepared = started.elapsed();

    let pods: Vec<String> = [("signed", &signed), ("unsigned", &unsigned)]
        .iter()
        .map(|(name, image)| {
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "apps"},
                "spec": {"containers": [{"name": "main", "image": image}]}})
            .to_string()
        })
        .collect();
    let resources = dir.join("pods.yaml");
    std::fs::write(&resources, pods.join("\n---\n")).unwrap();
    let values = dir.join("values.yaml");
    std::fs::write(
        &values,
        json!({"apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Values",
            "namespaceSelector": [{"name": "apps", "labels": {"kubernetes.io/metadata.name": "apps"}}]})
        .to_string(),
    )
    .unwrap();

    let mut timings = Vec::new();
    for engine in ["ClusterPolicy", "CEL"] {
        for offline_options in [true, false] {
            let mut signatures = json!({"keys": {"publicKey": public_key}});
            if offline_options {
                signatures["transparencyLog"] = json!({"ignoreTlog": true, "ignoreSCT": true});
            }
            let name = format!(
                "{engine}-{}",
                if offline_options {
                    "offline"
                } else {
                    "default"
                }
            );
            let policies = render(dir, &name, &image_policy(engine, &host, signatures));
            let at = Instant::now();
            let verdicts = apply(&cli, &policies, &resources, &values);
            timings.push(format!("{name} {:.1?}", at.elapsed()));
            let context = format!("{name}: {verdicts:?}");
            // Signatures: the offline signature passes only with the log checks off.
            let expected = if offline_options { "pass" } else { "fail" };
            assert_eq!(
                verdict(&verdicts, "signed", "s-require-signatures"),
                expected,
                "{context}"
            );
            assert_eq!(
                verdict(&verdicts, "unsigned", "s-require-signatures"),
                "fail",
                "{context}"
            );
            // Attestations: a ClusterPolicy carries them in its require-signatures rule; the CEL
            // flavour has its own ImageValidatingPolicy `s-attestation-0`.
            let attestation = if engine == "CEL" {
                "s-attestation-0"
            } else {
                "s-require-signatures"
            };
            assert_eq!(
                verdict(&verdicts, "unsigned", attestation),
                "fail",
                "{context}"
            );
            // Kyverno v1.19.1 disagrees between flavours here: the ImageValidatingPolicy verifier
            // (pkg/image/verifiers/ivpol/cosign/verifier.go) refuses an attestation whose Rekor
            // bundle is not verified ("cosign bundle verification failed") even with
            // ctlog.insecureIgnoreTlog, so an offline attestation passes only in the ClusterPolicy.
            let attested = if offline_options && engine == "ClusterPolicy" {
                "pass"
            } else {
                "fail"
            };
            assert_eq!(
                verdict(&verdicts, "signed", attestation),
                attested,
                "{context}"
            );
        }
    }
    eprintln!(
        "prepared registry, images, key, signature, attestation in {prepared:.1?}; kyverno apply: {}",
        timings.join(", ")
    );
}

/// Keyless needs Fulcio and Rekor, which an offline test cannot reach: the rendered fields are
/// checked against Kyverno's documented shape instead (the strict schema test covers the rest).
#[test]
fn keyless_transparency_options_render_in_kyverno_shape() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keyless = json!({
        "keyless": {"issuer": "https://token.actions.githubusercontent.com", "subject": "ci@example.com"},
        "transparencyLog": {"ignoreSCT": true, "rekorURL": "https://rekor.internal.example"},
    });
    let cluster = rendered_docs(&render(
        dir.path(),
        "keyless-cp",
        &image_policy("ClusterPolicy", "registry.example.com", keyless.clone()),
    ));
    let attestor =
        &cluster[0]["spec"]["rules"][0]["verifyImages"][0]["attestors"][0]["entries"][0]["keyless"];
    assert_eq!(
        attestor["rekor"],
        json!({"url": "https://rekor.internal.example"}),
        "{attestor}"
    );
    assert_eq!(attestor["ctlog"], json!({"ignoreSCT": true}), "{attestor}");
    let cel = rendered_docs(&render(
        dir.path(),
        "keyless-cel",
        &image_policy("CEL", "registry.example.com", keyless),
    ));
    for policy in &cel {
        let cosign = &policy["spec"]["attestors"][0]["cosign"];
        assert_eq!(
            cosign["ctlog"],
            json!({"url": "https://rekor.internal.example", "insecureIgnoreSCT": true}),
            "{cosign}"
        );
        assert_eq!(
            cosign["keyless"]["identities"][0]["subject"],
            "ci@example.com"
        );
    }
}
