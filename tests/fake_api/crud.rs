//! Create/get/replace/patch/list semantics: AlreadyExists/NotFound/Conflict, resourceVersion,
//! generation, uid, status subresource, patch flavours, selectors and paging.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::common::{api_error, config_map, rv, server};

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "main", "image": "registry:2"}]}}
        },
        "status": {"availableReplicas": 99}
    }))
    .expect("deployment json")
}

#[tokio::test]
async fn create_sets_server_fields_and_duplicate_is_already_exists() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let created = api
        .create(&PostParams::default(), &config_map("a", &[]))
        .await
        .expect("create");
    let meta = &created.metadata;
    assert!(
        meta.uid.as_deref().is_some_and(|u| !u.is_empty()),
        "uid set"
    );
    assert!(meta.creation_timestamp.is_some(), "creationTimestamp set");
    assert_eq!(meta.generation, Some(1));
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    let again = api
        .create(&PostParams::default(), &config_map("a", &[]))
        .await;
    assert_eq!(api_error(again), (409, "AlreadyExists".to_string()));
    assert_eq!(
        api_error(api.get("missing").await),
        (404, "NotFound".to_string())
    );
    assert_eq!(
        api.get("a").await.expect("get").metadata.uid,
        created.metadata.uid
    );
}

#[tokio::test]
async fn resource_version_is_one_global_counter_bumped_by_every_write() {
    let server = server();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let namespaces: Api<Namespace> = Api::all(client);
    let first = cms
        .create(&PostParams::default(), &config_map("a", &[]))
        .await
        .expect("create a");
    let ns = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("ns"),
        )
        .await
        .expect("create namespace");
    let second = cms
        .create(&PostParams::default(), &config_map("b", &[]))
        .await
        .expect("create b");
    assert!(
        rv(&first) < rv(&ns) && rv(&ns) < rv(&second),
        "strictly increasing across kinds"
    );
    assert_eq!(server.resource_version(), rv(&second));
}

#[tokio::test]
async fn replace_with_stale_resource_version_is_conflict() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let created = api
        .create(&PostParams::default(), &config_map("a", &[]))
        .await
        .expect("create");
    let mut fresh = created.clone();
    fresh.data = Some([("key".to_string(), "v2".to_string())].into());
    let replaced = api
        .replace("a", &PostParams::default(), &fresh)
        .await
        .expect("replace");
    assert!(rv(&replaced) > rv(&created));
    let mut stale = created.clone();
    stale.data = Some([("key".to_string(), "v3".to_string())].into());
    assert_eq!(
        api_error(api.replace("a", &PostParams::default(), &stale).await),
        (409, "Conflict".to_string())
    );
    let unchanged = api
        .replace("a", &PostParams::default(), &replaced)
        .await
        .expect("no-op replace");
    assert_eq!(
        rv(&unchanged),
        rv(&replaced),
        "a replace that changes nothing keeps the resourceVersion"
    );
}

#[tokio::test]
async fn generation_bumps_only_on_spec_changes() {
    let server = server();
    let api: Api<Deployment> = Api::namespaced(server.client().await, "default");
    let created = api
        .create(&PostParams::default(), &deployment("web", 1))
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    let label = json!({"metadata": {"labels": {"tier": "front"}}});
    let relabeled = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .expect("label");
    assert_eq!(
        relabeled.metadata.generation,
        Some(1),
        "metadata change keeps generation"
    );
    assert!(rv(&relabeled) > rv(&created));
    let scale = json!({"spec": {"replicas": 3}});
    let scaled = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .expect("scale");
    assert_eq!(
        scaled.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );
    let status = json!({"status": {"availableReplicas": 3}});
    let with_status = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status");
    assert_eq!(
        with_status.metadata.generation,
        Some(2),
        "status change keeps generation"
    );
}

#[tokio::test]
async fn status_subresource_separates_spec_and_status_writes() {
    let server = server();
    let api: Api<Deployment> = Api::namespaced(server.client().await, "default");
    let created = api
        .create(&PostParams::default(), &deployment("web", 1))
        .await
        .expect("create");
    assert!(
        created.status.is_none(),
        "status in a create body is dropped"
    );
    let both = json!({"spec": {"replicas": 2}, "status": {"availableReplicas": 7}});
    let main = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&both))
        .await
        .expect("main patch");
    assert_eq!(main.spec.as_ref().and_then(|s| s.replicas), Some(2));
    assert!(main.status.is_none(), "main resource write ignores status");
    let both = json!({"spec": {"replicas": 5}, "status": {"availableReplicas": 2}});
    let status = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&both))
        .await
        .expect("status patch");
    assert_eq!(
        status.spec.as_ref().and_then(|s| s.replicas),
        Some(2),
        "/status ignores spec"
    );
    assert_eq!(
        status.status.as_ref().and_then(|s| s.available_replicas),
        Some(2)
    );
    let helper = server.patch_status("deployments", "default", "web", json!({"readyReplicas": 2}));
    assert_eq!(
        helper["status"]["availableReplicas"], 2,
        "helper merges into status"
    );
    assert_eq!(helper["status"]["readyReplicas"], 2);
}

#[tokio::test]
async fn merge_json_and_strategic_patches() {
    let server = server();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &config_map("a", &[("keep", "1"), ("drop", "1")]),
    )
    .await
    .expect("create");
    let merge = json!({"metadata": {"labels": {"drop": null, "new": "2"}}});
    let merged = cms
        .patch("a", &PatchParams::default(), &Patch::Merge(&merge))
        .await
        .expect("merge");
    let labels = merged.metadata.labels.expect("labels");
    assert_eq!(
        labels.keys().map(String::as_str).collect::<Vec<_>>(),
        ["keep", "new"],
        "RFC 7386 null deletes"
    );

    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/key", "value": "value"},
        {"op": "replace", "path": "/data/key", "value": "patched"}
    ]))
    .expect("json patch");
    let patched = cms
        .patch("a", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .expect("json patch");
    assert_eq!(patched.data.expect("data")["key"], "patched");
    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/key", "value": "nope"}]))
            .expect("json patch");
    assert_eq!(
        api_error(
            cms.patch("a", &PatchParams::default(), &Patch::<()>::Json(failing))
                .await
        )
        .0,
        422
    );

    let deployments: Api<Deployment> = Api::namespaced(client, "default");
    deployments
        .create(&PostParams::default(), &deployment("web", 1))
        .await
        .expect("create");
    let sidecar = json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}}});
    let strategic = deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(&sidecar))
        .await
        .expect("strategic");
    let names: Vec<String> = strategic
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod")
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["main", "sidecar"], "containers merge by name");
}

#[tokio::test]
async fn list_label_selector_operators() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    for (name, labels) in [
        ("a", vec![("env", "prod"), ("tier", "web")]),
        ("b", vec![("env", "dev")]),
        ("c", vec![]),
    ] {
        api.create(&PostParams::default(), &config_map(name, &labels))
            .await
            .expect("create");
    }
    let names = |selector: &'static str| {
        let api = api.clone();
        async move {
            let list = api
                .list(&ListParams::default().labels(selector))
                .await
                .expect("list");
            list.items
                .into_iter()
                .filter_map(|cm| cm.metadata.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("env=prod").await, ["a"]);
    assert_eq!(names("env==dev").await, ["b"]);
    assert_eq!(
        names("env!=prod").await,
        ["b", "c"],
        "!= matches objects without the label"
    );
    assert_eq!(names("env in (prod,dev)").await, ["a", "b"]);
    assert_eq!(names("env notin (prod)").await, ["b", "c"]);
    assert_eq!(names("tier").await, ["a"]);
    assert_eq!(names("!env").await, ["c"]);
    assert_eq!(names("env,tier=web").await, ["a"]);
}

#[tokio::test]
async fn list_field_selectors_all_namespaces_and_list_metadata() {
    let server = server();
    let client = server.client().await;
    for ns in ["one", "two"] {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        api.create(&PostParams::default(), &config_map("same", &[]))
            .await
            .expect("create");
        api.create(
            &PostParams::default(),
            &config_map(&format!("only-{ns}"), &[]),
        )
        .await
        .expect("create");
    }
    let all: Api<ConfigMap> = Api::all(client.clone());
    let everything = all.list(&ListParams::default()).await.expect("list all");
    assert_eq!(everything.items.len(), 4);
    assert_eq!(
        everything.metadata.resource_version,
        Some(server.resource_version().to_string())
    );
    let same = all
        .list(&ListParams::default().fields("metadata.name=same"))
        .await
        .expect("by name");
    assert_eq!(same.items.len(), 2);
    let in_two = all
        .list(&ListParams::default().fields("metadata.namespace=two,metadata.name!=same"))
        .await
        .expect("by ns");
    assert_eq!(in_two.items[0].metadata.name.as_deref(), Some("only-two"));
    assert_eq!(in_two.items.len(), 1);
    let raw: serde_json::Value = client
        .request(
            http::Request::get("/api/v1/namespaces/one/configmaps")
                .body(Vec::new())
                .expect("req"),
        )
        .await
        .expect("raw list");
    assert_eq!(
        (raw["kind"].as_str(), raw["apiVersion"].as_str()),
        (Some("ConfigMapList"), Some("v1"))
    );
    let unsupported = all
        .list(&ListParams::default().fields("spec.nodeName=x"))
        .await;
    assert_eq!(api_error(unsupported).0, 400);
}

#[tokio::test]
async fn list_paging_with_limit_and_continue() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    for i in 0..5 {
        api.create(&PostParams::default(), &config_map(&format!("cm-{i}"), &[]))
            .await
            .expect("create");
    }
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(2);
    let mut pages = 0;
    loop {
        let page = api.list(&params).await.expect("page");
        pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().filter_map(|cm| cm.metadata.name));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = ListParams::default().limit(2).continue_token(&token),
            None => break,
        }
        assert!(pages < 10, "paging terminates");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"]);
}

#[tokio::test]
async fn continue_token_older_than_retained_history_is_410_expired() {
    let server = crate::support::FakeApiServer::builder()
        .with_core()
        .history_limit(3)
        .start();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    for i in 0..3 {
        api.create(&PostParams::default(), &config_map(&format!("cm-{i}"), &[]))
            .await
            .expect("create");
    }
    let page = api
        .list(&ListParams::default().limit(1))
        .await
        .expect("first page");
    let token = page.metadata.continue_.expect("more pages");
    for i in 3..8 {
        api.create(&PostParams::default(), &config_map(&format!("cm-{i}"), &[]))
            .await
            .expect("create");
    }
    let expired = api
        .list(&ListParams::default().limit(1).continue_token(&token))
        .await;
    assert_eq!(api_error(expired), (410, "Expired".to_string()));
}

#[tokio::test]
async fn delete_collection_honours_the_label_selector() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    api.create(&PostParams::default(), &config_map("a", &[("app", "x")]))
        .await
        .expect("a");
    api.create(&PostParams::default(), &config_map("b", &[("app", "y")]))
        .await
        .expect("b");
    api.delete_collection(
        &kube::api::DeleteParams::default(),
        &ListParams::default().labels("app=x"),
    )
    .await
    .expect("delete collection");
    let left: Vec<String> = server
        .list_objects("configmaps", None)
        .iter()
        .map(|o| o["metadata"]["name"].to_string())
        .collect();
    assert_eq!(left, ["\"b\""]);
}
