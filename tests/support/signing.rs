//! Signed test images: Debian's CNCF distribution (`docker-registry`) on 127.0.0.1, small images
//! pushed with `crane`, one signed and attested with a cosign key and no transparency-log upload.
//! Used by the Kyverno CLI and admission tests (`run` and `push_image` also by the K3d GC test); knows
//! nothing of policies or verdicts.

use std::path::{Path, PathBuf};
use std::process::Command;

pub use super::distribution::Distribution;

/// Runs a tool; panics with its output when it fails; returns stdout.
pub fn run(command: &mut Command) -> String {
    let out = command.output().expect("run tool");
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Pushes a one-layer image built from `content` (no base, no network); returns `host/repo@digest`.
pub fn push_image(crane: &Path, dir: &Path, host: &str, repo: &str, content: &str) -> String {
    let layer_dir = dir.join(format!("{repo}-layer"));
    std::fs::create_dir_all(&layer_dir).unwrap();
    std::fs::write(layer_dir.join("hello.txt"), content).unwrap();
    let tar = dir.join(format!("{repo}.tar"));
    run(Command::new("tar")
        .arg("-C")
        .arg(&layer_dir)
        .arg("-cf")
        .arg(&tar)
        .arg("hello.txt"));
    let tag = format!("{host}/ai/{repo}:1.0");
    run(Command::new(crane)
        .args(["append", "--insecure", "-f"])
        .arg(&tar)
        .args(["-t", &tag]));
    let digest = run(Command::new(crane).args(["digest", "--insecure", &tag]));
    format!("{host}/ai/{repo}@{digest}")
}

/// A registry holding `signed` (signed and SLSA-attested with `public_key`'s key, offline) and
/// `unsigned`, both as `host/ai/<name>@digest` (tag `1.0`).
pub struct SignedImages {
    pub registry: Distribution,
    pub signed: String,
    pub unsigned: String,
    pub public_key: String,
}

impl SignedImages {
    /// `None` (SKIPPED, or a panic in CI) when cosign/crane or docker-registry cannot be had.
    pub fn prepare(dir: &Path) -> Option<SignedImages> {
        let signing =
            super::common::upstream_tools("signing", "cosign", "REGISTRY_OPERATOR_SIGNING_DIR")?;
        if super::common::find_tool("docker-registry", &[]).is_none() {
            super::common::missing("docker-registry", "apt-get install docker-registry");
            return None;
        }
        let (cosign, crane): (PathBuf, PathBuf) = (signing.join("cosign"), signing.join("crane"));
        let registry = Distribution::start(None);
        let host = registry.host();
        let signed = push_image(&crane, dir, &host, "signed", "signed\n");
        let unsigned = push_image(&crane, dir, &host, "unsigned", "unsigned\n");
        // A key pair, a signature and an SLSA provenance attestation, none uploaded to Rekor.
        let cosign_cmd = || {
            let mut c = Command::new(&cosign);
            c.current_dir(dir)
                .env("COSIGN_PASSWORD", "")
                .env("HOME", dir)
                .env("TUF_ROOT", dir.join("tuf"));
            c
        };
        run(cosign_cmd().arg("generate-key-pair"));
        let offline = [
            "--key",
            "cosign.key",
            "--tlog-upload=false",
            "--allow-insecure-registry",
            "-y",
        ];
        run(cosign_cmd().arg("sign").args(offline).arg(&signed));
        std::fs::write(
            dir.join("provenance.json"),
            r#"{"buildType":"https://example.com/build","builder":{"id":"https://example.com/builder"}}"#,
        )
        .expect("write predicate");
        run(cosign_cmd()
            .arg("attest")
            .args(offline)
            .args(["--type", "slsaprovenance", "--predicate", "provenance.json"])
            .arg(&signed));
        let public_key = std::fs::read_to_string(dir.join("cosign.pub")).expect("cosign.pub");
        Some(SignedImages {
            registry,
            signed,
            unsigned,
            public_key,
        })
    }

    /// `host/ai/<name>:1.0` of a pushed image reference `host/ai/<name>@digest`.
    pub fn by_tag(reference: &str) -> String {
        let (repo, _) = reference.split_once('@').expect("digest reference");
        format!("{repo}:1.0")
    }
}
