//! The stages a switch runs as `migrate` Jobs, against real CNCF distribution registries (Debian
//! `docker-registry`) on 127.0.0.1: a push to the source during the bulk copy arrives with the
//! catch-up pass; a frozen (read-only) source refuses pushes with distribution's own answer and
//! still serves pulls; a catch-up over an unchanged source copies nothing and walks no blob;
//! `--verify-only` passes after the catch-up, names a missing or moved tag, and writes nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::distribution::Distribution;
use crate::support::migrate::proxy::{Proxy, ProxyConfig};
use crate::support::migrate::{content, listing, run_migrate, sha256, tools_available};

/// distribution's `storage.maintenance.readonly` through its environment, in the form the K3d
/// render of `spec.k3d.readOnly` uses (`src/render/k3d.rs`: `READ_ONLY_ENV`, `READ_ONLY_VALUE`; that
/// render is proven against the same binary in `tests/render/k3d_gc.rs`).
const FREEZE_ENV: &str = "REGISTRY_STORAGE_MAINTENANCE_READONLY";
const FREEZE_VALUE: &str = "{\"enabled\": true}";

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Runs `migrate` with `args`; (success, JSON summary, stderr).
async fn migrate_json(args: &[&str]) -> (bool, serde_json::Value, String) {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let (ok, stdout, stderr) = run_migrate(&all, &[]).await;
    let summary = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("summary JSON ({e}): {stdout}\n{stderr}"));
    (ok, summary, stderr)
}

/// Pushes a small one-layer image (content from `seed`) as `repo:tag` to the registry at `base`;
/// returns its manifest digest.
async fn push_image(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
    seed: u64,
) -> String {
    let layer = content::random_bytes(200_000, seed);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"seed": seed.to_string()}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}
    }))
    .expect("json");
    content::push_blob(http, base, repo, &layer).await;
    content::push_blob(http, base, repo, &config).await;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(&layer), "size": layer.len()}]
    }))
    .expect("json");
    content::put_manifest(http, base, repo, tag, OCI_MANIFEST, &manifest).await;
    sha256(&manifest)
}

/// The cosign-style signature tag of `digest` (`sha256-<hex>.sig`).
fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

/// Requests other than GET/HEAD a proxy forwarded (writes).
fn writes(proxy: &Proxy) -> Vec<String> {
    proxy
        .seen()
        .into_iter()
        .filter(|s| s.method != "GET" && s.method != "HEAD")
        .map(|s| format!("{} {}", s.method, s.path))
        .collect()
}

/// `listing` with a destination prefix taken off, to compare with the source's.
fn without_prefix(listing: BTreeMap<String, String>, prefix: &str) -> BTreeMap<String, String> {
    listing
        .into_iter()
        .map(|(k, v)| (k.strip_prefix(prefix).map(str::to_string).unwrap_or(k), v))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_during_the_bulk_copy_arrives_with_the_catch_up_pass() {
    if !tools_available() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let source = Distribution::start(None);
    let dest = Distribution::start(None);
    content::build(&source.host(), work.path(), 16).await;
    let before = listing(&source.url(), None).await;
    // Every destination request waits once 2 blobs were uploaded, until the pushes below are done.
    let gate = ProxyConfig {
        gate_after_uploads: Some(2),
        ..ProxyConfig::default()
    };
    let gated = Proxy::start(&dest.url(), gate).await;
    let bulk_args = [
        "--from",
        &source.url(),
        "--to",
        &gated.url(),
        "--insecure",
        "--dest-project",
        "",
    ];
    let started = Instant::now();
    let bulk = tokio::spawn({
        let args: Vec<String> = bulk_args.iter().map(|a| a.to_string()).collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            migrate_json(&args).await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while !gated.gate_reached() {
        assert!(
            Instant::now() < deadline,
            "the bulk copy never uploaded 2 blobs"
        );
        assert!(!bulk.is_finished(), "the bulk copy ended before the gate");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Pushes while the bulk copy runs: a new repository, a new tag, a new signature.
    let http = reqwest::Client::new();
    let late_repo = push_image(&http, &source.url(), "late/app", "v1", 101).await;
    let late_tag = push_image(&http, &source.url(), "team-a/app", "v3", 102).await;
    let subject = before["team-b/app:v1"].clone();
    let sig = signature_tag(&subject);
    let late_sig = push_image(&http, &source.url(), "team-b/app", &sig, 103).await;
    assert!(
        !bulk.is_finished(),
        "the pushes happened while the copy was frozen"
    );
    gated.release_and_reset();
    let (ok, first, stderr) = bulk.await.expect("bulk task");
    let bulk_seconds = started.elapsed().as_secs_f64();
    assert!(ok, "bulk copy failed: {stderr}");
    assert_eq!(first["tags"].as_u64(), Some(before.len() as u64), "{first}");
    let after_bulk = listing(&dest.url(), None).await;
    assert_eq!(
        after_bulk, before,
        "the bulk pass copied what was listed when it started"
    );

    let catch_up_args = [
        "--from",
        &source.url(),
        "--to",
        &dest.url(),
        "--insecure",
        "--dest-project",
        "",
    ];
    let started = Instant::now();
    let (ok, second, stderr) = migrate_json(&catch_up_args).await;
    let catch_up_seconds = started.elapsed().as_secs_f64();
    assert!(ok, "catch-up failed: {stderr}");
    let expected = listing(&source.url(), None).await;
    assert_eq!(expected.len(), before.len() + 3);
    assert_eq!(
        listing(&dest.url(), None).await,
        expected,
        "catch-up copied the late pushes"
    );
    for (image, digest) in [
        ("late/app:v1".to_string(), &late_repo),
        ("team-a/app:v3".to_string(), &late_tag),
        (format!("team-b/app:{sig}"), &late_sig),
    ] {
        assert_eq!(
            crate::support::migrate::skopeo_digest(&dest.host(), &image, None).as_ref(),
            Some(digest),
            "{image} at the destination"
        );
    }
    assert_eq!(
        (
            second["manifests"]["copied"].as_u64(),
            second["manifests"]["skipped"].as_u64(),
            second["blobs"]["copied"].as_u64(),
            second["verified_tags"].as_u64(),
        ),
        (
            Some(3),
            Some(before.len() as u64),
            Some(6),
            Some(expected.len() as u64)
        ),
        "only the late pushes were copied: {second}"
    );
    eprintln!(
        "push during bulk copy: bulk pass {bulk_seconds:.2} s (frozen while pushing; {} blobs, {} bytes), \
         catch-up {catch_up_seconds:.2} s ({} manifests, {} blobs copied, {} tags up to date)",
        first["blobs"]["copied"],
        first["bytes_copied"],
        second["manifests"]["copied"],
        second["blobs"]["copied"],
        second["manifests"]["skipped"]
    );
}

/// One HTTP request to a registry: (status, `Allow` header, body).
async fn request(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, String) {
    let mut builder = http.request(method, url).body(body);
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    let response = builder.send().await.expect("request");
    let status = response.status().as_u16();
    let allow = response
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, allow, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn frozen_source_refuses_pushes_and_an_unchanged_catch_up_copies_nothing() {
    if !tools_available() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let mut source = Distribution::start(None);
    let dest = Distribution::start(None);
    content::build(&source.host(), work.path(), 64).await;
    let before = listing(&source.url(), None).await;
    let started = Instant::now();
    let (ok, bulk, stderr) = migrate_json(&[
        "--from",
        &source.url(),
        "--to",
        &dest.url(),
        "--insecure",
        "--dest-project",
        "",
    ])
    .await;
    let bulk_seconds = started.elapsed().as_secs_f64();
    assert!(ok, "bulk copy failed: {stderr}");

    // Freeze: the same storage served again by a read-only distribution.
    source.stop();
    let frozen = Distribution::start_with_env(
        None,
        &[
            (FREEZE_ENV.to_string(), FREEZE_VALUE.to_string()),
            (
                "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY".to_string(),
                source.data_dir().display().to_string(),
            ),
        ],
    );
    let http = reqwest::Client::new();
    let upload = request(
        &http,
        reqwest::Method::POST,
        format!("{}/v2/team-a/app/blobs/uploads/", frozen.url()),
        None,
        Vec::new(),
    )
    .await;
    let manifest = http
        .get(format!("{}/v2/team-a/app/manifests/v1", frozen.url()))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("pull");
    assert_eq!(manifest.status().as_u16(), 200, "pulls still served");
    let manifest = manifest.bytes().await.expect("manifest").to_vec();
    assert_eq!(sha256(&manifest), before["team-a/app:v1"]);
    let retag = request(
        &http,
        reqwest::Method::PUT,
        format!(
            "{}/v2/team-a/app/manifests/pushed-after-freeze",
            frozen.url()
        ),
        Some(OCI_MANIFEST),
        manifest.clone(),
    )
    .await;
    let delete = request(
        &http,
        reqwest::Method::DELETE,
        format!(
            "{}/v2/team-a/app/manifests/{}",
            frozen.url(),
            sha256(&manifest)
        ),
        None,
        Vec::new(),
    )
    .await;
    // Read-only distribution registers no write routes: its router answers 405 "Method not allowed"
    // and allows only reads.
    for (what, (status, allow, body)) in [
        ("blob upload", &upload),
        ("manifest push", &retag),
        ("delete", &delete),
    ] {
        assert_eq!(*status, 405, "{what} refused by the frozen source: {body}");
        assert!(body.contains("Method not allowed"), "{what}: {body}");
        assert!(
            allow.contains("GET") && !allow.contains("PUT") && !allow.contains("POST"),
            "{what}: Allow {allow}"
        );
    }
    let layer = serde_json::from_slice::<serde_json::Value>(&manifest).expect("json")["layers"][0]
        ["digest"]
        .as_str()
        .expect("layer")
        .to_string();
    let blob = http
        .get(format!("{}/v2/team-a/app/blobs/{layer}", frozen.url()))
        .send()
        .await
        .expect("blob");
    assert_eq!(blob.status().as_u16(), 200, "blob pulls still served");
    assert_eq!(
        listing(&frozen.url(), None).await,
        before,
        "nothing pushed after the freeze"
    );
    eprintln!(
        "frozen source: blob upload {} {:?}, manifest push {} {:?}, delete {} (Allow: {})",
        upload.0,
        upload.2.trim(),
        retag.0,
        retag.2.trim(),
        delete.0,
        upload.1
    );

    // Catch-up over the unchanged, frozen source: every tag up to date, no blob even looked at.
    let watched_source = Proxy::start(&frozen.url(), ProxyConfig::default()).await;
    let watched_dest = Proxy::start(&dest.url(), ProxyConfig::default()).await;
    let args = [
        "--from",
        &watched_source.url(),
        "--to",
        &watched_dest.url(),
        "--insecure",
        "--dest-project",
        "",
    ];
    let started = Instant::now();
    let (ok, catch_up, stderr) = migrate_json(&args).await;
    let catch_up_seconds = started.elapsed().as_secs_f64();
    assert!(ok, "catch-up failed: {stderr}");
    let tags = before.len() as u64;
    assert_eq!(
        catch_up["manifests"],
        serde_json::json!({"copied": 0, "skipped": tags}),
        "{catch_up}"
    );
    assert_eq!(
        catch_up["blobs"],
        serde_json::json!({"copied": 0, "skipped": 0, "mounted": 0}),
        "{catch_up}"
    );
    assert_eq!(catch_up["bytes_copied"].as_u64(), Some(0));
    assert_eq!(catch_up["verified_tags"].as_u64(), Some(tags));
    let blob_requests: Vec<_> = watched_dest
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("/blobs/"))
        .collect();
    assert!(blob_requests.is_empty(), "blobs walked: {blob_requests:?}");
    assert!(
        writes(&watched_dest).is_empty(),
        "{:?}",
        writes(&watched_dest)
    );
    assert!(writes(&watched_source).is_empty());
    eprintln!(
        "unchanged catch-up: bulk pass {bulk_seconds:.2} s ({} blobs copied, {} mounted, {} bytes; engine {:.2} s), \
         catch-up {catch_up_seconds:.2} s (engine {:.2} s; manifests {}, blobs {}; {} destination requests)",
        bulk["blobs"]["copied"],
        bulk["blobs"]["mounted"],
        bulk["bytes_copied"],
        bulk["seconds"].as_f64().unwrap_or_default(),
        catch_up["seconds"].as_f64().unwrap_or_default(),
        catch_up["manifests"],
        catch_up["blobs"],
        watched_dest.seen().len()
    );

    // Verifying: passes, and reads only.
    watched_dest.release_and_reset();
    watched_source.release_and_reset();
    let report_path = work.path().join("termination-log");
    let mut verify_args = args.to_vec();
    verify_args.extend([
        "--verify-only",
        "--termination-log",
        report_path.to_str().expect("utf-8"),
    ]);
    let (ok, verified, stderr) = migrate_json(&verify_args).await;
    assert!(ok, "verify-only failed: {stderr}");
    assert_eq!(verified["verified_tags"].as_u64(), Some(tags), "{verified}");
    assert_eq!(verified["mismatches"], serde_json::json!([]));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).expect("report")).expect("json");
    assert_eq!(
        report,
        serde_json::json!({"repositories": 5, "tags": tags, "blobsCopied": 0, "blobsSkipped": 0, "bytesCopied": 0, "problems": 0})
    );
    assert!(writes(&watched_dest).is_empty() && writes(&watched_source).is_empty());
    assert!(
        !watched_dest.seen().is_empty(),
        "the check went through the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_only_names_missing_and_moved_tags_and_writes_nothing() {
    if !tools_available() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let source = Distribution::start(None);
    let dest = Distribution::start(None);
    content::build(&source.host(), work.path(), 0).await;
    let copy_args = [
        "--from",
        &source.url(),
        "--to",
        &dest.url(),
        "--insecure",
        "--dest-project",
        "mirror",
    ];
    let (ok, _, stderr) = migrate_json(&copy_args).await;
    assert!(ok, "copy failed: {stderr}");
    let tags = listing(&source.url(), None).await.len() as u64;

    // The destination loses a tag; a tag moves at the source after the copy.
    let http = reqwest::Client::new();
    let copied = listing(&dest.url(), None).await;
    let gone = &copied["mirror/team-b/app:v1"];
    let (status, _, body) = request(
        &http,
        reqwest::Method::DELETE,
        format!("{}/v2/mirror/team-b/app/manifests/{gone}", dest.url()),
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let moved = push_image(&http, &source.url(), "team-a/app", "v2", 201).await;
    let (source_before, dest_before) = (
        listing(&source.url(), None).await,
        listing(&dest.url(), None).await,
    );

    let watched_source = Proxy::start(&source.url(), ProxyConfig::default()).await;
    let watched_dest = Proxy::start(&dest.url(), ProxyConfig::default()).await;
    let report_path = work.path().join("termination-log");
    let verify_args = [
        "--from",
        &watched_source.url(),
        "--to",
        &watched_dest.url(),
        "--insecure",
        "--dest-project",
        "mirror",
        "--verify-only",
        "--termination-log",
        report_path.to_str().expect("utf-8"),
    ];
    let (ok, summary, stderr) = migrate_json(&verify_args).await;
    assert!(!ok, "verify-only must fail: {summary}");
    let mismatches: Vec<String> =
        serde_json::from_value(summary["mismatches"].clone()).expect("list");
    assert_eq!(mismatches.len(), 2, "{mismatches:?}");
    assert!(
        mismatches[0].starts_with("mirror/team-a/app:v2: destination has sha256:")
            && mismatches[0].ends_with(&format!("source has {moved}")),
        "{mismatches:?}"
    );
    assert!(
        mismatches[1].starts_with("mirror/team-b/app:v1: missing at destination"),
        "{mismatches:?}"
    );
    assert!(
        stderr.contains("error: mirror/team-b/app:v1: missing at destination"),
        "{stderr}"
    );
    assert_eq!(summary["verified_tags"].as_u64(), Some(tags - 2));
    let report: registry_operator::migrate::Report =
        serde_json::from_slice(&std::fs::read(&report_path).expect("report")).expect("report");
    assert_eq!(
        (report.tags, report.problems, report.blobs_copied),
        (tags - 2, 2, 0)
    );
    assert!(
        writes(&watched_source).is_empty(),
        "{:?}",
        writes(&watched_source)
    );
    assert!(
        writes(&watched_dest).is_empty(),
        "{:?}",
        writes(&watched_dest)
    );
    assert_eq!(listing(&source.url(), None).await, source_before);
    assert_eq!(
        listing(&dest.url(), None).await,
        dest_before,
        "verify-only wrote to the destination"
    );

    // The same selection as a copy: other repositories are not looked at.
    let mut shared_only = verify_args.to_vec();
    shared_only.extend(["--repos", "shared/*"]);
    let (ok, summary, stderr) = migrate_json(&shared_only).await;
    assert!(ok, "shared/* is intact: {stderr}");
    assert_eq!(
        (summary["repos"].as_u64(), summary["verified_tags"].as_u64()),
        (Some(1), Some(2))
    );

    // A catch-up repairs both; then the check passes.
    let (ok, catch_up, stderr) = migrate_json(&copy_args).await;
    assert!(ok, "catch-up failed: {stderr}");
    assert_eq!(
        catch_up["manifests"]["copied"].as_u64(),
        Some(2),
        "{catch_up}"
    );
    let (ok, summary, stderr) = migrate_json(&verify_args).await;
    assert!(ok, "verify-only after the catch-up: {stderr}");
    assert_eq!(summary["verified_tags"].as_u64(), Some(tags));
    assert_eq!(
        without_prefix(listing(&dest.url(), None).await, "mirror/"),
        listing(&source.url(), None).await
    );
}
