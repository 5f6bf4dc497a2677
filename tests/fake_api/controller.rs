//! End to end: a real kube-runtime `Controller` reconciling ConfigMaps against the fake
//! server (list+watch, reflector cache, server-side apply, owner references, GC).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::common::{config_map, server};

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ReconcileError(#[from] kube::Error);

/// Mirrors every ConfigMap labelled `mirror=yes` into `<name>-copy`, owned by the source.
async fn reconcile(
    source: Arc<ConfigMap>,
    api: Arc<Api<ConfigMap>>,
) -> Result<Action, ReconcileError> {
    let owner = source.controller_owner_ref(&()).expect("source has uid");
    let copy = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("{}-copy", source.name_any()), "ownerReferences": [owner]},
        "data": source.data.clone().unwrap_or_default(),
    });
    let params = PatchParams::apply("mirror-controller").force();
    api.patch(
        &format!("{}-copy", source.name_any()),
        &params,
        &Patch::Apply(copy),
    )
    .await?;
    Ok(Action::await_change())
}

fn on_error(_: Arc<ConfigMap>, _: &ReconcileError, _: Arc<Api<ConfigMap>>) -> Action {
    Action::requeue(Duration::from_millis(50))
}

async fn wait_for(server: &crate::support::FakeApiServer, name: &str, want: Option<&str>) {
    let reached = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let value = server.get_object("configmaps", "default", name);
            let got = value
                .as_ref()
                .and_then(|v| v["data"]["key"].as_str().map(str::to_string));
            if got.as_deref() == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "{name} reached data.key={want:?}");
}

#[tokio::test]
async fn controller_reconciles_configmaps_end_to_end() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    api.create(
        &PostParams::default(),
        &config_map("src", &[("mirror", "yes")]),
    )
    .await
    .expect("src");
    let controller = Controller::new(api.clone(), watcher::Config::default().labels("mirror=yes"))
        .run(reconcile, on_error, Arc::new(api.clone()))
        .for_each(|_| async {});
    let task = tokio::spawn(controller);

    wait_for(&server, "src-copy", Some("value")).await;
    let edit = json!({"data": {"key": "edited"}});
    api.patch("src", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .expect("edit source");
    wait_for(&server, "src-copy", Some("edited")).await;

    server.reset_log();
    let steady_rv = server.resource_version();
    server.drop_watches();
    let relisted = tokio::time::timeout(Duration::from_secs(20), async {
        while server.request_log().count("watch", "ConfigMap") == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(relisted.is_ok(), "controller re-watches after drop_watches");
    assert_eq!(
        server.resource_version(),
        steady_rv,
        "steady state: re-watch caused no change"
    );

    api.delete("src", &DeleteParams::default())
        .await
        .expect("delete source");
    assert!(
        server
            .get_object("configmaps", "default", "src-copy")
            .is_none(),
        "copy garbage-collected"
    );
    task.abort();
}
