//! Operability of the fake server: request log, deterministic fault injection, latency,
//! kubeconfig for child processes, test helpers that go through the store, and shutdown.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use super::common::{config_map, server};
use crate::support::Faults;

#[tokio::test]
async fn request_log_records_verb_kind_target_status_and_manager() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    server.reset_log();
    api.create(&PostParams::default(), &config_map("a", &[]))
        .await
        .expect("create");
    let _ = api.get("missing").await;
    api.list(&ListParams::default()).await.expect("list");
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"key": "value"}});
    api.patch(
        "a",
        &PatchParams::apply("the-operator"),
        &Patch::Apply(body),
    )
    .await
    .expect("apply");
    let log = server.request_log();
    let get = log
        .entries
        .iter()
        .find(|e| e.verb == "get")
        .expect("get logged");
    assert_eq!(
        (
            get.kind.as_deref(),
            get.namespace.as_deref(),
            get.name.as_deref(),
            get.status
        ),
        (Some("ConfigMap"), Some("default"), Some("missing"), 404)
    );
    let patch = log
        .entries
        .iter()
        .find(|e| e.verb == "patch")
        .expect("patch logged");
    assert_eq!(patch.field_manager.as_deref(), Some("the-operator"));
    assert_eq!(patch.path, "/api/v1/namespaces/default/configmaps/a");
    assert_eq!(log.count("list", "ConfigMap"), 1);
    assert_eq!(server.writes(), 2, "create + patch");
    server.reset_log();
    assert!(server.request_log().entries.is_empty());
}

async fn outcomes(api: &Api<ConfigMap>, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(match api.get("a").await {
            Ok(_) => 200,
            Err(kube::Error::Api(status)) => status.code,
            Err(other) => panic!("unexpected error {other:?}"),
        });
    }
    out
}

#[tokio::test]
async fn fault_injection_is_seeded_and_filtered_by_verb_and_kind() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    api.create(&PostParams::default(), &config_map("a", &[]))
        .await
        .expect("create");
    // kube-client retries 429 by itself, so 429 is checked with a raw request below.
    let faults = Faults::failing(0.5, &[500, 409])
        .verbs(&["get"])
        .kinds(&["ConfigMap"])
        .seed(7);
    server.set_faults(faults.clone());
    let first = outcomes(&api, 30).await;
    assert!(
        api.list(&ListParams::default()).await.is_ok(),
        "other verbs unaffected"
    );
    server.set_faults(faults);
    assert_eq!(outcomes(&api, 30).await, first, "same seed, same sequence");
    for code in [200, 500, 409] {
        assert!(first.contains(&code), "{code} occurs in {first:?}");
    }
    let injected = server
        .request_log()
        .entries
        .iter()
        .filter(|e| e.injected)
        .count();
    assert_eq!(injected, 2 * first.iter().filter(|c| **c != 200).count());
    server.clear_faults();
    assert!(outcomes(&api, 5).await.iter().all(|c| *c == 200));
}

fn raw_get(url: &str, path: &str) -> String {
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

#[test]
fn injected_429_has_status_body_and_retry_after() {
    let server = server();
    server.set_faults(Faults::failing(1.0, &[429]));
    let response = raw_get(server.url(), "/api/v1/namespaces/default/configmaps/x");
    assert!(response.starts_with("HTTP/1.1 429"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 1"),
        "{response}"
    );
    let body = response.split("\r\n\r\n").nth(1).expect("body");
    let status: serde_json::Value = serde_json::from_str(body).expect("Status JSON");
    assert_eq!(
        (
            status["kind"].as_str(),
            status["reason"].as_str(),
            status["code"].as_u64()
        ),
        (Some("Status"), Some("TooManyRequests"), Some(429))
    );
    assert!(
        raw_get(server.url(), "/apis").starts_with("HTTP/1.1 200"),
        "discovery is never faulted"
    );
}

#[tokio::test]
async fn injected_latency_delays_matching_requests() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    server.set_faults(
        Faults::default()
            .latency(Duration::from_millis(300))
            .verbs(&["list"]),
    );
    let started = Instant::now();
    api.list(&ListParams::default()).await.expect("list");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "latency added"
    );
}

#[tokio::test]
async fn kubeconfig_file_works_with_kube_config_loading() {
    let server = server();
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig_path()).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    assert_eq!(config.default_namespace, "default");
    let client = kube::Client::try_from(config).expect("client");
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &config_map("via-kubeconfig", &[]))
        .await
        .expect("create");
    assert!(
        server
            .get_object("ConfigMap", "default", "via-kubeconfig")
            .is_some()
    );
}

#[tokio::test]
async fn test_helpers_write_through_the_store_so_watches_fire() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let start = server.resource_version().to_string();
    let mut stream = Box::pin(
        api.watch(&WatchParams::default().disable_bookmarks(), &start)
            .await
            .expect("watch"),
    );
    server.put_object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "h", "namespace": "default"}}));
    server.merge_patch_object("configmaps", "default", "h", json!({"data": {"k": "v"}}));
    server.delete_object("configmaps", "default", "h");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("event")
            .expect("some")
            .expect("ok");
        seen.push(match event {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            _ => "OTHER",
        });
    }
    assert_eq!(seen, ["ADDED", "MODIFIED", "DELETED"]);
}

#[test]
fn dropping_the_server_stops_it() {
    let server = server();
    let address = server.url().trim_start_matches("http://").to_string();
    assert!(std::net::TcpStream::connect(&address).is_ok());
    drop(server);
    assert!(
        std::net::TcpStream::connect(&address).is_err(),
        "listener closed on drop"
    );
}
