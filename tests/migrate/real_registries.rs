//! `registry-operator migrate` against real CNCF distribution registries (Debian `docker-registry`)
//! with content built by umoci/skopeo: lossless copy verified with skopeo, resume after kill, a
//! flaky destination, basic and bearer auth, passwords never logged, the source never written.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::distribution::Distribution;
use crate::support::migrate;
use crate::support::migrate::proxy::{Proxy, ProxyConfig};
use crate::support::migrate::{content, listing, run_migrate, skopeo_digest, tools_available};

fn summary(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("summary JSON ({e}): {stdout}"))
}

/// Every source tag resolves, per skopeo, to the same digest at `dest` under `prefix`.
fn assert_all_tags_match(
    source: &std::collections::BTreeMap<String, String>,
    dest_host: &str,
    prefix: &str,
    creds: Option<&str>,
) {
    assert!(!source.is_empty());
    for (image, digest) in source {
        let at_dest = skopeo_digest(dest_host, &format!("{prefix}{image}"), creds);
        assert_eq!(
            at_dest.as_deref(),
            Some(digest.as_str()),
            "{image} at destination"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copies_every_tag_losslessly_and_never_writes_the_source() {
    if !tools_available() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let source = Distribution::start(None);
    let dest = Distribution::start(None);
    let built = content::build(&source.host(), work.path(), 64).await;
    let before = listing(&source.url(), None).await;
    assert!(
        before.contains_key(&format!("team-a/app:{}", built.signature_tag)),
        "{before:?} lacks {}",
        built.signature_tag
    );
    let watched_source = Proxy::start(&source.url(), ProxyConfig::default()).await;

    let args = [
        "--from",
        &watched_source.url(),
        "--to",
        &dest.url(),
        "--insecure",
        "--dest-project",
        "",
        "--output",
        "json",
    ];
    let (ok, stdout, stderr) = run_migrate(&args, &[]).await;
    assert!(ok, "migrate failed: {stderr}");
    let first = summary(&stdout);

    assert_all_tags_match(&before, &dest.host(), "", None);
    for child in &built.platform_digests {
        assert_eq!(
            skopeo_digest(&dest.host(), &format!("multi/app@{child}"), None).as_deref(),
            Some(child.as_str())
        );
    }
    let subject = built
        .signature_tag
        .trim_end_matches(".sig")
        .replace('-', ":");
    assert_eq!(
        skopeo_digest(&dest.host(), &format!("team-a/app@{subject}"), None).as_deref(),
        Some(subject.as_str())
    );
    assert_eq!(first["tags"].as_u64(), Some(before.len() as u64));
    assert_eq!(first["verified_tags"].as_u64(), Some(before.len() as u64));
    assert!(
        first["blobs"]["mounted"].as_u64() >= Some(1),
        "shared layers are mounted across repositories: {first}"
    );
    assert!(first["bytes_copied"].as_u64() >= Some(64 << 20), "{first}");

    let methods: BTreeSet<String> = watched_source
        .seen()
        .into_iter()
        .map(|s| s.method)
        .collect();
    assert!(
        methods.iter().all(|m| m == "GET" || m == "HEAD"),
        "source saw {methods:?}"
    );
    assert_eq!(
        listing(&source.url(), None).await,
        before,
        "source content changed"
    );

    let (ok, stdout, stderr) = run_migrate(&args, &[]).await;
    assert!(ok, "re-run failed: {stderr}");
    let again = summary(&stdout);
    assert_eq!(
        (
            again["manifests"]["copied"].as_u64(),
            again["blobs"]["copied"].as_u64()
        ),
        (Some(0), Some(0)),
        "{again}"
    );
    assert_eq!(again["blobs"]["mounted"].as_u64(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resumes_after_kill_without_uploading_blobs_again() {
    if !tools_available() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let source = Distribution::start(None);
    let dest = Distribution::start(None);
    content::build(&source.host(), work.path(), 0).await;
    let expected = listing(&source.url(), None).await;
    let gate = ProxyConfig {
        gate_after_uploads: Some(3),
        ..ProxyConfig::default()
    };
    let proxy = Proxy::start(&dest.url(), gate).await;
    let args = [
        "--from",
        &source.url(),
        "--to",
        &proxy.url(),
        "--insecure",
        "--dest-project",
        "",
        "--concurrency",
        "1",
        "--output",
        "json",
    ];

    let mut first = tokio::process::Command::new(env!("CARGO_BIN_EXE_registry-operator"))
        .arg("migrate")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn migrate");
    let mut reached = false;
    for _ in 0..1200 {
        if proxy.gate_reached() {
            reached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reached, "first run never uploaded 3 blobs");
    first.start_kill().expect("kill");
    let status = first.wait().await.expect("wait");
    assert!(!status.success(), "the first run was interrupted");
    let uploaded_before: BTreeSet<(String, String)> = proxy.finalized().into_iter().collect();
    assert!(uploaded_before.len() >= 3);
    assert_ne!(
        listing(&dest.url(), None).await.len(),
        expected.len(),
        "first run must not have finished"
    );

    proxy.release_and_reset();
    let (ok, stdout, stderr) = run_migrate(&args, &[]).await;
    assert!(ok, "resumed run failed: {stderr}");
    let uploaded_again: BTreeSet<(String, String)> = proxy.finalized().into_iter().collect();
    let repeated: Vec<_> = uploaded_before.intersection(&uploaded_again).collect();
    assert!(repeated.is_empty(), "uploaded twice: {repeated:?}");
    assert!(summary(&stdout)["blobs"]["skipped"].as_u64() >= Some(uploaded_before.len() as u64));
    assert_all_tags_match(&expected, &dest.host(), "", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flaky_destination_still_ends_complete_and_verified() {
    if !tools_available() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let source = Distribution::start(None);
    let dest = Distribution::start(None);
    content::build(&source.host(), work.path(), 0).await;
    let expected = listing(&source.url(), None).await;
    let flaky = Proxy::start(
        &dest.url(),
        ProxyConfig {
            fail_rate: 0.2,
            seed: 20_240_601,
            ..ProxyConfig::default()
        },
    )
    .await;

    let (ok, stdout, stderr) = run_migrate(
        &[
            "--from",
            &source.url(),
            "--to",
            &flaky.url(),
            "--insecure",
            "--attempts",
            "12",
            "--output",
            "json",
        ],
        &[],
    )
    .await;
    assert!(ok, "migrate failed through a flaky proxy: {stderr}");
    let injected = flaky
        .seen()
        .iter()
        .filter(|s| s.status == 502 || s.status == 503)
        .count();
    assert!(injected > 0, "the proxy injected no failures");
    assert_eq!(
        summary(&stdout)["verified_tags"].as_u64(),
        Some(expected.len() as u64)
    );
    assert_all_tags_match(&expected, &dest.host(), "library/", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn basic_auth_destination_works_and_passwords_never_reach_logs() {
    if !tools_available() {
        return;
    }
    const PASSWORD: &str = "Pa55-very-secret-93f1";
    const WRONG: &str = "Wrong-secret-7c2e";
    let work = tempfile::tempdir().expect("tempdir");
    let source = Distribution::start(None);
    let dest = Distribution::start(Some(("migrator", PASSWORD)));
    content::build(&source.host(), work.path(), 0).await;
    let expected = listing(&source.url(), None).await;
    let creds_file = work.path().join("to-creds");
    std::fs::write(&creds_file, format!("migrator:{PASSWORD}\n")).expect("write creds");
    let base = [
        "--from",
        &source.url(),
        "--to",
        &dest.url(),
        "--insecure",
        "--dest-project",
        "mirror",
    ];

    let trace = [("RUST_LOG", "trace")];
    let mut good: Vec<&str> = base.to_vec();
    good.extend(["--to-creds-file", creds_file.to_str().expect("utf-8")]);
    let (ok, stdout, stderr) = run_migrate(&good, &trace).await;
    assert!(ok, "basic-auth migrate failed: {stderr}");
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "password leaked into output"
    );
    assert_all_tags_match(
        &expected,
        &dest.host(),
        "mirror/",
        Some(&format!("migrator:{PASSWORD}")),
    );

    let env = [
        ("RUST_LOG", "trace"),
        ("MIGRATE_TO_USERNAME", "migrator"),
        ("MIGRATE_TO_PASSWORD", WRONG),
    ];
    let (ok, stdout, stderr) = run_migrate(&base, &env).await;
    assert!(!ok, "wrong password must fail");
    assert!(
        stderr.contains("credentials rejected"),
        "unclear error: {stderr}"
    );
    assert!(
        !stdout.contains(WRONG) && !stderr.contains(WRONG),
        "password leaked into output"
    );

    let (ok, _, stderr) = run_migrate(&base, &[]).await;
    assert!(
        !ok && stderr.contains("authentication required"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bearer_token_challenge_flow() {
    if !tools_available() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let source = Distribution::start(None);
    let dest = Distribution::start(None);
    content::build(&source.host(), work.path(), 0).await;
    let expected = listing(&source.url(), None).await;
    let bearer = ProxyConfig {
        bearer_credentials: Some(("robot".into(), "token-pass-55".into())),
        ..ProxyConfig::default()
    };
    let guarded = Proxy::start(&dest.url(), bearer).await;
    let docker_config = work.path().join("config.json");
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode("robot:token-pass-55")
    };
    std::fs::write(
        &docker_config,
        format!(
            r#"{{"auths":{{"127.0.0.1:{}":{{"auth":"{auth}"}}}}}}"#,
            guarded.port
        ),
    )
    .expect("write");

    let args = [
        "--from",
        &source.url(),
        "--to",
        &guarded.url(),
        "--insecure",
        "--dest-project",
        "",
        "--to-creds-file",
        docker_config.to_str().expect("utf-8"),
    ];
    let (ok, _, stderr) = run_migrate(&args, &[]).await;
    assert!(ok, "bearer migrate failed: {stderr}");
    let token_requests = guarded.state.token_requests.lock().expect("lock").clone();
    assert!(
        !token_requests.is_empty() && token_requests.iter().all(|ok| *ok),
        "{token_requests:?}"
    );
    assert_all_tags_match(&expected, &dest.host(), "", None);

    let env = [
        ("MIGRATE_TO_USERNAME", "robot"),
        ("MIGRATE_TO_PASSWORD", "nope"),
    ];
    let (ok, _, stderr) = run_migrate(
        &[
            "--from",
            &source.url(),
            "--to",
            &guarded.url(),
            "--insecure",
        ],
        &env,
    )
    .await;
    assert!(!ok && stderr.contains("credentials rejected"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copies_untagged_oci_referrers_when_the_source_serves_the_api() {
    if !tools_available() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let source = Distribution::start(None);
    let dest = Distribution::start(None);
    content::build(&source.host(), work.path(), 0).await;
    let http = reqwest::Client::new();
    let subject = http
        .get(format!("{}/v2/team-b/app/manifests/v1", source.url()))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    let (empty, sbom) = (b"{}".to_vec(), b"{\"spdxVersion\":\"SPDX-2.3\"}".to_vec());
    content::push_blob(&http, &source.url(), "team-b/app", &empty).await;
    content::push_blob(&http, &source.url(), "team-b/app", &sbom).await;
    let referrer = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": migrate::sha256(&empty), "size": empty.len()},
        "layers": [{"mediaType": "application/spdx+json", "digest": migrate::sha256(&sbom), "size": sbom.len()}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": migrate::sha256(&subject), "size": subject.len()}
    }))
    .expect("json");
    let referrer_digest = migrate::sha256(&referrer);
    content::put_manifest(
        &http,
        &source.url(),
        "team-b/app",
        &referrer_digest,
        "application/vnd.oci.image.manifest.v1+json",
        &referrer,
    )
    .await;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": referrer_digest, "size": referrer.len(), "artifactType": "application/spdx+json"}]
    }))
    .expect("json");
    let serving = Proxy::start(
        &source.url(),
        ProxyConfig {
            referrers: Some((migrate::sha256(&subject), index)),
            ..ProxyConfig::default()
        },
    )
    .await;

    let args = [
        "--from",
        &serving.url(),
        "--to",
        &dest.url(),
        "--insecure",
        "--dest-project",
        "",
        "--repos",
        "team-b/*",
    ];
    let (ok, _, stderr) = run_migrate(&args, &[]).await;
    assert!(ok, "migrate failed: {stderr}");
    assert_eq!(
        skopeo_digest(&dest.host(), &format!("team-b/app@{referrer_digest}"), None),
        Some(referrer_digest.clone())
    );
    assert!(
        skopeo_digest(&dest.host(), "team-a/app:v1", None).is_none(),
        "--repos must exclude team-a"
    );
}

/// Tagging a child manifest that an index push already copied is a PUT of the child again; CNCF
/// distribution rewrites the child's revision link in place on every PUT, so an index PUT checking
/// its children at that moment is refused (MANIFEST_BLOB_UNKNOWN). The proxy forces the order in
/// which this happens: the child tags' existence checks wait until the index PUT has started, and
/// the index PUT is held open; the copier must not re-push a child until the index PUT returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn never_re_pushes_a_child_manifest_while_its_index_is_pushed() {
    if !tools_available() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let source = Distribution::start(None);
    let dest = Distribution::start(None);
    let built = content::build(&source.host(), work.path(), 0).await;
    let ordering = ProxyConfig {
        hold_heads_until_index_put: vec![
            "/v2/multi/app/manifests/amd64".into(),
            "/v2/multi/app/manifests/arm64".into(),
        ],
        index_put_hold: Some(Duration::from_millis(1500)),
        ..ProxyConfig::default()
    };
    let watched = Proxy::start(&dest.url(), ordering).await;
    let args = [
        "--from",
        &source.url(),
        "--to",
        &watched.url(),
        "--insecure",
        "--dest-project",
        "",
        "--repos",
        "multi/*",
        "--concurrency",
        "8",
        "--output",
        "json",
    ];
    let (ok, stdout, stderr) = run_migrate(&args, &[]).await;
    let overlapping = watched.state.overlapping_puts.lock().expect("lock").clone();
    assert!(
        overlapping.is_empty(),
        "a child manifest was pushed while its index was: {overlapping:?}"
    );
    assert_eq!(
        watched
            .state
            .heads_released_by_index_put
            .load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the child tags were not held back until the index push started"
    );
    assert!(ok, "migrate failed: {stderr}");
    assert_eq!(summary(&stdout)["verified_tags"].as_u64(), Some(3));
    assert_eq!(
        skopeo_digest(&dest.host(), "multi/app:latest", None).as_deref(),
        Some(built.index_digest.as_str())
    );
}
