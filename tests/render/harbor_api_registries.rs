//! The Harbor client's registry endpoints (the upstreams of proxy-cache projects) against the
//! swagger-checked fake Harbor: create, find, update (`updateRegistry`), and delete
//! (`deleteRegistry`), which Harbor refuses with 412 while a project still uses the endpoint.

use registry_operator::harbor::{
    HarborError, ProjectReq, Registry, RegistryCredential, RegistryUpdate, Secret,
};

use super::harbor_api::{client, project};
use crate::support::harbor_fake::HarborFake;

#[tokio::test]
async fn registry_endpoint_and_proxy_cache_project() {
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let client = client(&harbor);
    let registry = Registry {
        name: "docker-hub".to_string(),
        url: "https://hub.docker.com".to_string(),
        kind: "docker-hub".to_string(),
        credential: Some(RegistryCredential {
            kind: "basic".to_string(),
            access_key: "me".to_string(),
            access_secret: Secret::new("hub-token-s3cr3t"),
        }),
        description: Some("pull-through cache".to_string()),
        ..Registry::default()
    };
    let id = client.create_registry(&registry).await.unwrap();
    let found = client
        .find_registry("docker-hub")
        .await
        .unwrap()
        .expect("found");
    assert_eq!(found.id, Some(id));
    assert_eq!(found.kind, "docker-hub");
    assert_ne!(
        found.credential.expect("credential").access_secret.expose(),
        "hub-token-s3cr3t"
    );
    assert_eq!(
        harbor.registry_secret("docker-hub").unwrap(),
        "hub-token-s3cr3t"
    );
    assert_eq!(client.find_registry("quay").await.unwrap(), None);
    assert!(matches!(
        client.create_registry(&registry).await.unwrap_err(),
        HarborError::Conflict {
            operation: "createRegistry",
            ..
        }
    ));

    let cache = ProjectReq {
        registry_id: Some(id),
        storage_limit: Some(-1),
        ..project("dockerhub-cache")
    };
    client.create_project(&cache).await.unwrap();
    let found = client
        .find_project("dockerhub-cache")
        .await
        .unwrap()
        .expect("proxy cache");
    assert_eq!(found.registry_id, Some(id));

    // A new secret and description; the access key is kept when not sent.
    let update = RegistryUpdate {
        description: Some("rotated".to_string()),
        access_secret: Some(Secret::new("hub-token-n3w")),
        ..RegistryUpdate::default()
    };
    client.update_registry(id, &update).await.unwrap();
    let found = client.find_registry("docker-hub").await.unwrap().unwrap();
    assert_eq!(found.description.as_deref(), Some("rotated"));
    assert_eq!(found.credential.unwrap().access_key, "me");
    assert_eq!(
        harbor.registry_secret("docker-hub").unwrap(),
        "hub-token-n3w"
    );

    // Harbor refuses to delete an endpoint a project uses (412); once the project is gone, it goes.
    match client.delete_registry(id).await.unwrap_err() {
        HarborError::Refused {
            operation: "deleteRegistry",
            status: 412,
            message,
        } => assert!(message.contains("dockerhub-cache"), "{message}"),
        other => panic!("expected 412, got {other:?}"),
    }
    assert!(client.find_registry("docker-hub").await.unwrap().is_some());
    client.delete_project("dockerhub-cache").await.unwrap();
    client.delete_registry(id).await.unwrap();
    assert_eq!(client.find_registry("docker-hub").await.unwrap(), None);
    assert!(matches!(
        client.delete_registry(id).await.unwrap_err(),
        HarborError::NotFound {
            operation: "deleteRegistry",
            ..
        }
    ));
}
