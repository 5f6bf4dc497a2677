//! Server-side apply: create-on-apply, no-op applies, field removal, ownership, conflicts, force.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::common::{api_error, rv, server};

fn cm_config(data: Value, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "labels": labels}, "data": data})
}

async fn apply(
    api: &Api<ConfigMap>,
    manager: &str,
    force: bool,
    config: Value,
) -> Result<ConfigMap, kube::Error> {
    let mut params = PatchParams::apply(manager);
    if force {
        params = params.force();
    }
    api.patch("cfg", &params, &Patch::Apply(config)).await
}

fn data(cm: &ConfigMap) -> Vec<(String, String)> {
    cm.data.clone().unwrap_or_default().into_iter().collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn forced_apply_twice_leaves_resource_version_unchanged() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let config = cm_config(json!({"a": "1"}), json!({"app": "x"}));
    let first = apply(&api, "mgr", true, config.clone())
        .await
        .expect("apply creates");
    let counter = server.resource_version();
    let second = apply(&api, "mgr", true, config).await.expect("apply again");
    assert_eq!(rv(&first), rv(&second), "no-op apply keeps resourceVersion");
    assert_eq!(
        server.resource_version(),
        counter,
        "no write happened in the store"
    );
    assert_eq!(
        first.metadata.managed_fields, second.metadata.managed_fields,
        "managedFields time untouched"
    );
    assert_eq!(
        server.request_log().count("patch", "ConfigMap"),
        2,
        "both requests were logged"
    );
}

#[tokio::test]
async fn apply_records_managed_fields_per_manager() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    apply(
        &api,
        "mgr",
        false,
        cm_config(json!({"a": "1"}), json!({"app": "x"})),
    )
    .await
    .expect("apply");
    let stored = server
        .get_object("configmaps", "default", "cfg")
        .expect("stored");
    let entries = stored["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["manager"], "mgr");
    assert_eq!(entries[0]["operation"], "Apply");
    assert_eq!(entries[0]["fieldsType"], "FieldsV1");
    assert_eq!(
        entries[0]["fieldsV1"],
        json!({"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:app": {}}}})
    );
}

#[tokio::test]
async fn fields_dropped_from_an_apply_are_removed() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    apply(
        &api,
        "mgr",
        false,
        cm_config(json!({"a": "1", "b": "2"}), json!({"x": "1", "y": "2"})),
    )
    .await
    .expect("apply");
    let second = apply(
        &api,
        "mgr",
        false,
        cm_config(json!({"a": "1"}), json!({"x": "1"})),
    )
    .await
    .expect("shrink");
    assert_eq!(data(&second), pairs(&[("a", "1")]));
    let labels: Vec<String> = second
        .metadata
        .labels
        .unwrap_or_default()
        .into_keys()
        .collect();
    assert_eq!(labels, ["x"]);
}

#[tokio::test]
async fn dropped_field_still_owned_by_another_manager_is_kept() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    apply(
        &api,
        "one",
        false,
        cm_config(json!({"shared": "s", "mine": "1"}), json!({})),
    )
    .await
    .expect("one");
    apply(
        &api,
        "two",
        false,
        cm_config(json!({"shared": "s"}), json!({})),
    )
    .await
    .expect("two shares");
    let after = apply(
        &api,
        "one",
        false,
        cm_config(json!({"mine": "1"}), json!({})),
    )
    .await
    .expect("one drops");
    assert_eq!(
        data(&after),
        pairs(&[("mine", "1"), ("shared", "s")]),
        "co-owned field survives"
    );
}

#[tokio::test]
async fn conflicting_apply_is_409_unless_forced() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    apply(&api, "one", false, cm_config(json!({"k": "1"}), json!({})))
        .await
        .expect("one");
    let conflict = apply(&api, "two", false, cm_config(json!({"k": "2"}), json!({}))).await;
    assert_eq!(api_error(conflict), (409, "Conflict".to_string()));
    let same_value = apply(&api, "two", false, cm_config(json!({"k": "1"}), json!({}))).await;
    assert!(
        same_value.is_ok(),
        "applying the same value shares ownership"
    );
    let forced = apply(&api, "two", true, cm_config(json!({"k": "2"}), json!({})))
        .await
        .expect("forced");
    assert_eq!(data(&forced), pairs(&[("k", "2")]));
    let back = apply(&api, "one", false, cm_config(json!({"k": "1"}), json!({}))).await;
    assert_eq!(
        api_error(back).0,
        409,
        "ownership moved to the forcing manager"
    );
}

#[tokio::test]
async fn fields_changed_by_an_update_conflict_with_apply() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    apply(&api, "op", false, cm_config(json!({"k": "1"}), json!({})))
        .await
        .expect("apply");
    let edit = json!({"data": {"k": "hand-edited"}});
    api.patch("cfg", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .expect("kubectl-style edit");
    let reapply = apply(&api, "op", false, cm_config(json!({"k": "1"}), json!({}))).await;
    assert_eq!(api_error(reapply).0, 409, "the editor now owns data.k");
    let forced = apply(&api, "op", true, cm_config(json!({"k": "1"}), json!({})))
        .await
        .expect("force");
    assert_eq!(data(&forced), pairs(&[("k", "1")]));
}

#[tokio::test]
async fn apply_without_field_manager_is_rejected_and_create_conflicts_detected() {
    let server = server();
    let client = server.client().await;
    let request = http::Request::patch("/api/v1/namespaces/default/configmaps/cfg")
        .header("content-type", "application/apply-patch+yaml")
        .body(serde_json::to_vec(&cm_config(json!({}), json!({}))).expect("body"))
        .expect("request");
    assert_eq!(api_error(client.request::<Value>(request).await).0, 400);
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let created = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(cm_config(json!({"k": "1"}), json!({}))).expect("cm"),
        )
        .await
        .expect("create");
    assert!(
        created.metadata.managed_fields.is_some(),
        "create records an Update manager"
    );
    let conflict = apply(&api, "op", false, cm_config(json!({"k": "2"}), json!({}))).await;
    assert_eq!(api_error(conflict).0, 409);
}

#[tokio::test]
async fn steady_state_apply_of_a_deployment_with_lists_is_a_no_op() {
    use k8s_openapi::api::apps::v1::Deployment;
    let server = server();
    let api: Api<Deployment> = Api::namespaced(server.client().await, "default");
    let desired: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "registry", "namespace": "default", "labels": {"app": "registry"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "registry"}},
            "template": {"metadata": {"labels": {"app": "registry"}}, "spec": {
                "securityContext": {"runAsNonRoot": true},
                "containers": [
                    {"name": "registry", "image": "registry:2", "ports": [{"containerPort": 5000}],
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                    {"name": "sidecar", "image": "busybox", "args": ["sleep", "inf"]}
                ]}}}
    }))
    .expect("deployment");
    let params = PatchParams::apply("registry-operator").force();
    let first = api
        .patch("registry", &params, &Patch::Apply(&desired))
        .await
        .expect("first apply");
    server.patch_status(
        "deployments",
        "default",
        "registry",
        json!({"availableReplicas": 1}),
    );
    let counter = server.resource_version();
    let again = api
        .patch("registry", &params, &Patch::Apply(&desired))
        .await
        .expect("second apply");
    assert_eq!(
        server.resource_version(),
        counter,
        "no change in steady state"
    );
    assert_eq!(again.metadata.generation, first.metadata.generation);
    let mut fewer = desired.clone();
    if let Some(pod) = fewer.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        pod.containers.truncate(1);
    }
    let shrunk = api
        .patch("registry", &params, &Patch::Apply(&fewer))
        .await
        .expect("shrink");
    let containers = shrunk
        .spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers.len());
    assert_eq!(
        containers,
        Some(1),
        "container dropped from the apply is removed"
    );
    assert_eq!(
        shrunk.status.and_then(|s| s.available_replicas),
        Some(1),
        "status untouched by apply"
    );
}
