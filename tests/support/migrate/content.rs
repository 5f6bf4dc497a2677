//! Test content built with umoci (OCI layouts from random files) and pushed with skopeo, plus a
//! hand-assembled multi-arch index and a cosign-style signature tag pushed over plain HTTP.

use std::path::Path;
use std::process::Command;

use super::sha256;

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Random bytes from a small seeded generator (no wall-clock randomness in tests).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The tags `build` creates (repo:tag), signature tag excluded.
pub struct Content {
    pub tags: Vec<String>,
    /// Digest of the index pushed as `multi/app:latest`.
    pub index_digest: String,
    /// Digests of the index's platform manifests.
    pub platform_digests: Vec<String>,
    /// The cosign-style tag (`team-a/app:sha256-<hex>.sig`).
    pub signature_tag: String,
}

/// Pushes the test content to the registry at `host` (127.0.0.1:PORT). `big_layer_mib` adds a
/// random layer of that size to `big/blob:v1` (0 for none).
pub async fn build(host: &str, work: &Path, big_layer_mib: usize) -> Content {
    let layout = work.join("oci");
    let layout_str = layout.to_str().expect("utf-8 path").to_string();
    let image = |tag: &str| format!("{layout_str}:{tag}");
    run("umoci", &["init", "--layout", &layout_str]);
    let file = |name: &str, len: usize, seed: u64| {
        let path = work.join(name);
        std::fs::write(&path, random_bytes(len, seed)).expect("write file");
        path.to_str().expect("utf-8").to_string()
    };
    run("umoci", &["new", "--image", &image("base")]);
    run(
        "umoci",
        &[
            "insert",
            "--image",
            &image("base"),
            &file("base.bin", 300_000, 1),
            "/base.bin",
        ],
    );
    for (tag, seed) in [("app-a", 2u64), ("app-b", 3), ("app-a2", 4)] {
        run(
            "umoci",
            &[
                "config",
                "--image",
                &image("base"),
                "--tag",
                tag,
                "--config.label",
                &format!("variant={tag}"),
            ],
        );
        run(
            "umoci",
            &[
                "insert",
                "--image",
                &image(tag),
                &file(&format!("{tag}.bin"), 100_000, seed),
                "/app.bin",
            ],
        );
    }
    run(
        "umoci",
        &[
            "config",
            "--image",
            &image("app-a"),
            "--tag",
            "arm",
            "--architecture",
            "arm64",
            "--config.label",
            "arch=arm64",
        ],
    );
    let mut pushes = vec![
        ("base", "shared/base:v1"),
        ("base", "shared/base:latest"),
        ("app-a", "team-a/app:v1"),
        ("app-a2", "team-a/app:v2"),
        ("app-b", "team-b/app:v1"),
        ("app-a", "multi/app:amd64"),
        ("arm", "multi/app:arm64"),
    ];
    if big_layer_mib > 0 {
        run("umoci", &["new", "--image", &image("big")]);
        run(
            "umoci",
            &[
                "insert",
                "--image",
                &image("big"),
                &file("big.bin", big_layer_mib << 20, 9),
                "/big.bin",
            ],
        );
        pushes.push(("big", "big/blob:v1"));
    }
    for (local, remote) in &pushes {
        run(
            "skopeo",
            &[
                "copy",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
                &format!("oci:{}", image(local)),
                &format!("docker://{host}/{remote}"),
            ],
        );
    }
    let http = reqwest::Client::new();
    let base = format!("http://{host}");
    let fetch = |repo_tag: &str| {
        let (repo, tag) = repo_tag.split_once(':').expect("repo:tag");
        let url = format!("{base}/v2/{repo}/manifests/{tag}");
        let http = http.clone();
        async move {
            let response = http
                .get(url)
                .header("accept", "application/vnd.oci.image.manifest.v1+json")
                .send()
                .await
                .expect("get");
            response.bytes().await.expect("bytes").to_vec()
        }
    };
    let amd64 = fetch("multi/app:amd64").await;
    let arm64 = fetch("multi/app:arm64").await;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(&amd64), "size": amd64.len(), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(&arm64), "size": arm64.len(), "platform": {"architecture": "arm64", "os": "linux"}}
        ]
    });
    let index_bytes = serde_json::to_vec_pretty(&index).expect("json");
    put_manifest(
        &http,
        &base,
        "multi/app",
        "latest",
        "application/vnd.oci.image.index.v1+json",
        &index_bytes,
    )
    .await;

    let subject = fetch("team-a/app:v1").await;
    let payload = serde_json::to_vec(&serde_json::json!({
        "critical": {"identity": {"docker-reference": format!("{host}/team-a/app")}, "image": {"docker-manifest-digest": sha256(&subject)}, "type": "cosign container image signature"},
        "optional": null
    }))
    .expect("json");
    let config = b"{}".to_vec();
    push_blob(&http, &base, "team-a/app", &payload).await;
    push_blob(&http, &base, "team-a/app", &config).await;
    let signature = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": sha256(&payload), "size": payload.len(),
                    "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQDfakesignature"}}]
    });
    let signature_tag = format!("{}.sig", sha256(&subject).replace(':', "-"));
    let signature_bytes = serde_json::to_vec(&signature).expect("json");
    put_manifest(
        &http,
        &base,
        "team-a/app",
        &signature_tag,
        "application/vnd.oci.image.manifest.v1+json",
        &signature_bytes,
    )
    .await;

    let mut tags: Vec<String> = pushes
        .iter()
        .map(|(_, remote)| remote.to_string())
        .collect();
    tags.push("multi/app:latest".into());
    Content {
        tags,
        index_digest: sha256(&index_bytes),
        platform_digests: vec![sha256(&amd64), sha256(&arm64)],
        signature_tag,
    }
}

pub async fn push_blob(http: &reqwest::Client, base: &str, repo: &str, bytes: &[u8]) {
    let response = http
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .expect("start upload");
    assert_eq!(response.status().as_u16(), 202);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let mut url = reqwest::Url::parse(base)
        .expect("base")
        .join(&location)
        .expect("join");
    url.query_pairs_mut().append_pair("digest", &sha256(bytes));
    let response = http
        .put(url)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("put blob");
    assert_eq!(response.status().as_u16(), 201);
}

pub async fn put_manifest(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) {
    let response = http
        .put(format!("{base}/v2/{repo}/manifests/{reference}"))
        .header("content-type", media_type)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("put manifest");
    assert_eq!(
        response.status().as_u16(),
        201,
        "{:?}",
        response.text().await
    );
}
