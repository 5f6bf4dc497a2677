//! Watch semantics: resume from a resourceVersion, initial events + end bookmark, 410 Expired,
//! server timeout, selectors, periodic bookmarks, drop_watches, and kube-runtime watchers.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;

use super::common::{config_map, rv, server};
use crate::support::FakeApiServer;

const BOUND: Duration = Duration::from_secs(20);

type Events = Vec<WatchEvent<ConfigMap>>;

async fn take_events(api: &Api<ConfigMap>, params: &WatchParams, from: &str, n: usize) -> Events {
    let stream = api.watch(params, from).await.expect("watch starts");
    let events = stream.take(n).try_collect::<Vec<_>>();
    tokio::time::timeout(BOUND, events)
        .await
        .expect("events arrive")
        .expect("event decodes")
}

fn describe(event: &WatchEvent<ConfigMap>) -> String {
    match event {
        WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.clone().unwrap_or_default()),
        WatchEvent::Modified(o) => {
            format!("MODIFIED {}", o.metadata.name.clone().unwrap_or_default())
        }
        WatchEvent::Deleted(o) => {
            format!("DELETED {}", o.metadata.name.clone().unwrap_or_default())
        }
        WatchEvent::Bookmark(b) => format!("BOOKMARK {}", b.metadata.resource_version),
        WatchEvent::Error(e) => format!("ERROR {} {}", e.code, e.reason),
    }
}

#[tokio::test]
async fn watch_from_resource_version_replays_later_events_in_order() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let a = api
        .create(&PostParams::default(), &config_map("a", &[]))
        .await
        .expect("a");
    api.create(&PostParams::default(), &config_map("b", &[]))
        .await
        .expect("b");
    let patch = json!({"data": {"key": "v2"}});
    api.patch("a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch a");
    api.delete("b", &DeleteParams::default())
        .await
        .expect("delete b");
    let events = take_events(
        &api,
        &WatchParams::default().disable_bookmarks(),
        &rv(&a).to_string(),
        3,
    )
    .await;
    let described: Vec<String> = events.iter().map(describe).collect();
    assert_eq!(described, ["ADDED b", "MODIFIED a", "DELETED b"]);
    // live events after the replay
    let mut stream = Box::pin(
        api.watch(
            &WatchParams::default().disable_bookmarks(),
            &server.resource_version().to_string(),
        )
        .await
        .expect("watch"),
    );
    api.create(&PostParams::default(), &config_map("c", &[]))
        .await
        .expect("c");
    let next = tokio::time::timeout(BOUND, stream.next())
        .await
        .expect("live event")
        .expect("some")
        .expect("ok");
    assert_eq!(describe(&next), "ADDED c");
}

#[tokio::test]
async fn send_initial_events_ends_with_annotated_bookmark() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    api.create(&PostParams::default(), &config_map("a", &[]))
        .await
        .expect("a");
    api.create(&PostParams::default(), &config_map("b", &[]))
        .await
        .expect("b");
    let events = take_events(&api, &WatchParams::default().initial_events(), "0", 3).await;
    assert_eq!(describe(&events[0]), "ADDED a");
    assert_eq!(describe(&events[1]), "ADDED b");
    let WatchEvent::Bookmark(bookmark) = &events[2] else {
        panic!("bookmark expected, got {}", describe(&events[2]))
    };
    assert_eq!(
        bookmark
            .metadata
            .annotations
            .get("k8s.io/initial-events-end")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(
        bookmark.metadata.resource_version,
        server.resource_version().to_string()
    );
}

#[tokio::test]
async fn watch_older_than_retained_history_gets_410_expired() {
    let server = FakeApiServer::builder()
        .with_core()
        .history_limit(2)
        .start();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let first = api
        .create(&PostParams::default(), &config_map("a", &[]))
        .await
        .expect("a");
    for name in ["b", "c", "d"] {
        api.create(&PostParams::default(), &config_map(name, &[]))
            .await
            .expect("create");
    }
    let events = take_events(&api, &WatchParams::default(), &rv(&first).to_string(), 1).await;
    assert_eq!(describe(&events[0]), "ERROR 410 Expired");
    let recent = take_events(
        &api,
        &WatchParams::default().disable_bookmarks(),
        &(server.resource_version() - 1).to_string(),
        1,
    )
    .await;
    assert_eq!(
        describe(&recent[0]),
        "ADDED d",
        "within the window, resuming works"
    );
}

#[tokio::test]
async fn server_side_timeout_ends_the_stream() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let stream = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .expect("watch");
    let drained = tokio::time::timeout(BOUND, stream.collect::<Vec<_>>()).await;
    assert!(
        drained.is_ok(),
        "stream ended by the server's timeoutSeconds"
    );
}

#[tokio::test]
async fn watch_label_selector_filters_events() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let start = server.resource_version().to_string();
    api.create(
        &PostParams::default(),
        &config_map("other", &[("app", "x")]),
    )
    .await
    .expect("other");
    api.create(
        &PostParams::default(),
        &config_map("mine", &[("app", "mine")]),
    )
    .await
    .expect("mine");
    let events = take_events(
        &api,
        &WatchParams::default()
            .labels("app=mine")
            .disable_bookmarks(),
        &start,
        1,
    )
    .await;
    assert_eq!(describe(&events[0]), "ADDED mine");
}

#[tokio::test]
async fn periodic_bookmarks_carry_the_latest_resource_version() {
    let server = FakeApiServer::builder()
        .with_core()
        .bookmark_interval(Duration::from_millis(50))
        .start();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let start = server.resource_version().to_string();
    let stream = api
        .watch(&WatchParams::default(), &start)
        .await
        .expect("watch");
    api.create(&PostParams::default(), &config_map("a", &[]))
        .await
        .expect("a");
    let mut stream = Box::pin(stream);
    let bookmark = tokio::time::timeout(BOUND, async {
        while let Some(event) = stream.next().await {
            if let Ok(WatchEvent::Bookmark(b)) = event {
                return b;
            }
        }
        panic!("stream ended without a bookmark");
    })
    .await
    .expect("bookmark within bound");
    assert_eq!(
        bookmark.metadata.resource_version,
        server.resource_version().to_string()
    );
}

#[tokio::test]
async fn drop_watches_closes_open_streams() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let stream = api
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch");
    server.drop_watches();
    let drained = tokio::time::timeout(BOUND, stream.collect::<Vec<_>>()).await;
    assert!(drained.is_ok(), "stream closed by drop_watches");
}

async fn reflect_until(server: &FakeApiServer, config: watcher::Config) {
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    api.create(&PostParams::default(), &config_map("before", &[]))
        .await
        .expect("before");
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api.clone(), config)).applied_objects();
    let task = tokio::spawn(async move {
        let mut stream = Box::pin(stream);
        while stream.next().await.is_some() {}
    });
    tokio::time::timeout(BOUND, reader.wait_until_ready())
        .await
        .expect("ready")
        .expect("store ready");
    api.create(&PostParams::default(), &config_map("after", &[]))
        .await
        .expect("after");
    server.drop_watches();
    api.delete("before", &DeleteParams::default())
        .await
        .expect("delete");
    let settled = tokio::time::timeout(BOUND, async {
        loop {
            let mut names: Vec<String> = reader
                .state()
                .iter()
                .filter_map(|cm| cm.metadata.name.clone())
                .collect();
            names.sort();
            if names == ["after"] {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // The old stream may deliver the delete before it closes; the re-watch follows shortly after.
    let _ = tokio::time::timeout(BOUND, async {
        while server.request_log().count("watch", "ConfigMap") < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    task.abort();
    assert!(
        settled.is_ok(),
        "reflector converged to [after] across a dropped watch"
    );
}

#[tokio::test]
async fn kube_runtime_watcher_list_then_watch() {
    reflect_until(&server(), watcher::Config::default()).await;
}

#[tokio::test]
async fn kube_runtime_watcher_streaming_lists() {
    let server = server();
    reflect_until(&server, watcher::Config::default().streaming_lists()).await;
    let log = server.request_log();
    assert_eq!(
        log.count("list", "ConfigMap"),
        0,
        "streaming lists never LIST"
    );
    assert!(
        log.count("watch", "ConfigMap") >= 2,
        "re-watched after drop_watches"
    );
}
