//! Discovery: classic `/api`, `/apis` documents as kube's `Discovery` and pinned lookups use them.

use kube::api::GroupVersionKind;
use kube::discovery::{self, Discovery, Scope};

use super::common::server;

#[tokio::test]
async fn discovery_lists_core_builtin_and_crd_groups_with_scope_and_status() {
    let server = server();
    let client = server.client().await;
    let info = client.apiserver_version().await.expect("/version");
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "33"));

    let discovered = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery runs");
    for group in [
        "",
        "apps",
        "batch",
        "networking.k8s.io",
        "coordination.k8s.io",
        "registry.aisp.dev",
    ] {
        assert!(discovered.has_group(group), "group {group:?} discovered");
    }
    let (deployment, caps) = discovered
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .expect("Deployment discovered");
    assert_eq!(deployment.plural, "deployments");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(sub, _)| sub.plural == "status"),
        "deployments/status listed"
    );

    let (policy, caps) = discovery::pinned_kind(
        &client,
        &GroupVersionKind::gvk("registry.aisp.dev", "v1alpha1", "ImagePolicy"),
    )
    .await
    .expect("pinned ImagePolicy lookup");
    assert_eq!(policy.plural, "imagepolicies");
    assert_eq!(caps.scope, Scope::Cluster);
}

#[tokio::test]
async fn absent_crd_group_is_404_like_an_uninstalled_operator() {
    let server = server();
    let client = server.client().await;
    let cnpg = GroupVersionKind::gvk("postgresql.cnpg.io", "v1", "Cluster");
    assert!(
        discovery::pinned_kind(&client, &cnpg).await.is_err(),
        "CNPG not installed"
    );
    let request = http::Request::get("/apis/postgresql.cnpg.io/v1/namespaces/default/clusters")
        .body(Vec::new())
        .expect("request");
    let result = client.request::<serde_json::Value>(request).await;
    assert_eq!(super::common::api_error(result).0, 404);

    server.serve_resource(support_cnpg());
    assert!(
        discovery::pinned_kind(&client, &cnpg).await.is_ok(),
        "served after install"
    );
    server.remove_group("postgresql.cnpg.io");
    assert!(
        discovery::pinned_kind(&client, &cnpg).await.is_err(),
        "404 again after removal"
    );
}

fn support_cnpg() -> crate::support::ApiResourceSpec {
    crate::support::ApiResourceSpec::cnpg_cluster()
}
