//! Deletion lifecycle: finalizers + deletionTimestamp, ownerReference garbage collection
//! (background cascade through chains, finalizers on dependents, multiple owners, Orphan).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::common::{api_error, config_map, server};

#[tokio::test]
async fn finalizers_keep_a_deleted_object_until_cleared() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let mut cm = config_map("guarded", &[]);
    cm.metadata.finalizers = Some(vec!["registry.aisp.dev/cleanup".into()]);
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    api.delete("guarded", &DeleteParams::default())
        .await
        .expect("delete accepted");
    let terminating = api.get("guarded").await.expect("still there");
    assert!(
        terminating.metadata.deletion_timestamp.is_some(),
        "deletionTimestamp set"
    );
    let rv_before = terminating.metadata.resource_version.clone();
    api.delete("guarded", &DeleteParams::default())
        .await
        .expect("second delete");
    assert_eq!(
        api.get("guarded")
            .await
            .expect("get")
            .metadata
            .resource_version,
        rv_before,
        "idempotent"
    );
    let clear = json!({"metadata": {"finalizers": null}});
    api.patch("guarded", &PatchParams::default(), &Patch::Merge(&clear))
        .await
        .expect("clear finalizers");
    assert_eq!(
        api_error(api.get("guarded").await).0,
        404,
        "removed once finalizers are empty"
    );
}

fn owned(
    api_version: &str,
    kind: &str,
    name: &str,
    owners: &[&Value],
    finalizers: &[&str],
) -> Value {
    let refs: Vec<Value> = owners
        .iter()
        .map(|o| {
            json!({"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
                   "uid": o["metadata"]["uid"], "controller": false})
        })
        .collect();
    json!({"apiVersion": api_version, "kind": kind,
           "metadata": {"name": name, "namespace": "default", "ownerReferences": refs, "finalizers": finalizers}})
}

fn registry(name: &str) -> Value {
    json!({"apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
           "metadata": {"name": name, "namespace": "default"}, "spec": {}})
}

#[test]
fn owner_deletion_cascades_through_dependents_in_background() {
    let server = server();
    let owner = server.put_object(registry("reg"));
    let other_owner = server.put_object(registry("other"));
    let deployment =
        server.put_object(owned("apps/v1", "Deployment", "reg-deploy", &[&owner], &[]));
    server.put_object(owned("v1", "ConfigMap", "grandchild", &[&deployment], &[]));
    server.put_object(owned("v1", "Secret", "guarded", &[&owner], &["keep/me"]));
    server.put_object(owned(
        "v1",
        "Service",
        "two-owners",
        &[&owner, &other_owner],
        &[],
    ));
    server.put_object(owned(
        "v1",
        "ServiceAccount",
        "dangling",
        &[&json!({"apiVersion": "v1", "kind": "X",
        "metadata": {"name": "never", "uid": "never-existed"}})],
        &[],
    ));

    server
        .delete_object("registries", "default", "reg")
        .expect("owner existed");
    assert!(
        server
            .get_object("deployments", "default", "reg-deploy")
            .is_none(),
        "dependent collected"
    );
    assert!(
        server
            .get_object("configmaps", "default", "grandchild")
            .is_none(),
        "chain collected"
    );
    let guarded = server
        .get_object("secrets", "default", "guarded")
        .expect("finalizer keeps it");
    assert!(
        guarded["metadata"]["deletionTimestamp"].is_string(),
        "but it is terminating"
    );
    assert!(
        server
            .get_object("services", "default", "two-owners")
            .is_some(),
        "a live owner remains"
    );
    assert!(
        server
            .get_object("serviceaccounts", "default", "dangling")
            .is_some(),
        "never-seen owner uid is left alone"
    );

    server.merge_patch_object(
        "secrets",
        "default",
        "guarded",
        json!({"metadata": {"finalizers": null}}),
    );
    assert!(
        server.get_object("secrets", "default", "guarded").is_none(),
        "gone once finalizer cleared"
    );
}

/// A controller acting on a stale cache may write a child after its owner was deleted; the real
/// garbage collector removes such a child as soon as it sees it.
#[tokio::test]
async fn a_dependent_written_after_its_owner_was_deleted_is_collected() {
    let server = server();
    let owner = server.put_object(registry("gone"));
    let live_owner = server.put_object(registry("live"));
    server.delete_object("registries", "default", "gone");
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let late: ConfigMap =
        serde_json::from_value(owned("v1", "ConfigMap", "late", &[&owner], &[])).unwrap();
    api.patch(
        "late",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&late),
    )
    .await
    .expect("the write itself succeeds");
    assert!(
        server.get_object("configmaps", "default", "late").is_none(),
        "collected: its only owner is gone"
    );
    let shared: ConfigMap = serde_json::from_value(owned(
        "v1",
        "ConfigMap",
        "shared",
        &[&owner, &live_owner],
        &[],
    ))
    .unwrap();
    api.create(&PostParams::default(), &shared)
        .await
        .expect("create");
    assert!(
        server
            .get_object("configmaps", "default", "shared")
            .is_some(),
        "kept: one owner still exists"
    );
}

#[tokio::test]
async fn orphan_propagation_keeps_dependents_and_strips_owner_reference() {
    let server = server();
    let owner = server.put_object(registry("reg"));
    server.put_object(owned("v1", "ConfigMap", "child", &[&owner], &[]));
    let registries: Api<kube::api::DynamicObject> = Api::namespaced_with(
        server.client().await,
        "default",
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("registry.aisp.dev", "v1alpha1", "Registry"),
            "registries",
        ),
    );
    registries
        .delete("reg", &DeleteParams::orphan())
        .await
        .expect("delete orphan");
    let child = server
        .get_object("configmaps", "default", "child")
        .expect("orphan survives");
    assert_eq!(
        child["metadata"]["ownerReferences"],
        json!([]),
        "owner reference removed"
    );
}
