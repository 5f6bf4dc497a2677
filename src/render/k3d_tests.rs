//! Unit tests of K3d-mode rendering: adopt, host, cache, overrides, labels and owner references.
use super::*;
use crate::crd::{CredentialsSecretRef, K3dCacheSpec, RegistryMode, RegistrySpec, Retention};
use crate::render::observed::ObservedHosting;

fn registry(k3d: K3dSpec, host: Option<&str>) -> Registry {
    let mut registry = Registry::new(
        "platform",
        RegistrySpec {
            mode: RegistryMode::K3d,
            host: host.map(str::to_string),
            k3d: Some(k3d),
            harbor: None,
            retention: Retention::Retain,
            migration: None,
        },
    );
    registry.metadata.namespace = Some("registry".to_string());
    registry
}

fn kinds(rendered: &Rendered) -> Vec<String> {
    rendered
        .objects
        .iter()
        .map(|o| format!("{}/{}", o.resource.kind, o.name()))
        .collect()
}

fn announced(writer: Option<(&str, &str)>) -> Observed {
    Observed {
        local_registry_hosting: Some(ObservedHosting {
            hosting: LocalRegistryHosting {
                host: Some("localhost:5000".into()),
                host_from_container_runtime: Some("k3d-myregistry:5000".into()),
                host_from_cluster_network: Some("k3d-myregistry.cluster:5000".into()),
                help: None,
            },
            written_by: writer.map(|(ns, n)| (ns.to_string(), n.to_string())),
        }),
        ..Default::default()
    }
}

fn container(rendered: &Rendered) -> serde_json::Value {
    let deployment = rendered
        .objects
        .iter()
        .find(|o| o.resource.kind == "Deployment")
        .expect("deployment");
    deployment.object.data["spec"]["template"]["spec"]["containers"][0].clone()
}

fn env_names(container: &serde_json::Value) -> Vec<String> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn hosts_distribution_registry_when_nothing_is_announced() {
    let rendered =
        crate::render::registry(&registry(K3dSpec::default(), None), &Observed::default()).unwrap();
    assert_eq!(
        kinds(&rendered),
        [
            "PersistentVolumeClaim/platform-distribution",
            "Service/platform-distribution",
            "Deployment/platform-distribution",
            "ConfigMap/local-registry-hosting"
        ]
    );
    assert!(!rendered.adopted);
    assert_eq!(
        rendered.endpoint.as_deref(),
        Some("platform-distribution.registry.svc.cluster.local:5000")
    );
    let container = container(&rendered);
    assert_eq!(container["image"], DEFAULT_DISTRIBUTION_IMAGE);
    assert_eq!(container["resources"]["limits"]["memory"], "64Mi");
    assert_eq!(container["resources"]["requests"]["memory"], "50Mi");
    assert!(env_names(&container).contains(&"REGISTRY_STORAGE_DELETE_ENABLED".to_string()));
    assert!(
        !env_names(&container)
            .iter()
            .any(|n| n.starts_with("REGISTRY_PROXY"))
    );
    let snippet = rendered.k3s_registries_yaml.unwrap();
    assert!(
        snippet.contains("http://platform-distribution.registry.svc.cluster.local:5000"),
        "{snippet}"
    );
}

#[test]
fn adopts_registry_announced_by_k3d() {
    let rendered =
        crate::render::registry(&registry(K3dSpec::default(), None), &announced(None)).unwrap();
    assert!(rendered.objects.is_empty());
    assert!(rendered.adopted);
    assert_eq!(
        rendered.endpoint.as_deref(),
        Some("k3d-myregistry.cluster:5000")
    );
}

#[test]
fn adopted_endpoint_falls_back_through_kep_fields_and_host_overrides() {
    let mut observed = announced(None);
    let hosting = &mut observed.local_registry_hosting.as_mut().unwrap().hosting;
    hosting.host_from_cluster_network = None;
    let rendered = crate::render::registry(&registry(K3dSpec::default(), None), &observed).unwrap();
    assert_eq!(rendered.endpoint.as_deref(), Some("k3d-myregistry:5000"));
    let rendered = crate::render::registry(
        &registry(K3dSpec::default(), Some("reg.example:5000")),
        &observed,
    )
    .unwrap();
    assert_eq!(rendered.endpoint.as_deref(), Some("reg.example:5000"));
}

#[test]
fn adopt_never_hosts_but_leaves_k3d_announcement_alone() {
    let spec = K3dSpec {
        adopt: AdoptPolicy::Never,
        ..Default::default()
    };
    let rendered = crate::render::registry(&registry(spec, None), &announced(None)).unwrap();
    assert!(!rendered.adopted);
    assert!(!kinds(&rendered).contains(&"ConfigMap/local-registry-hosting".to_string()));
    assert_eq!(rendered.warnings.len(), 1, "{:?}", rendered.warnings);
}

#[test]
fn own_announcement_is_not_adopted_but_kept() {
    let rendered = crate::render::registry(
        &registry(K3dSpec::default(), None),
        &announced(Some(("registry", "platform"))),
    )
    .unwrap();
    assert!(!rendered.adopted);
    assert!(kinds(&rendered).contains(&"ConfigMap/local-registry-hosting".to_string()));
    assert!(rendered.warnings.is_empty());
}

#[test]
fn announcement_of_another_registry_is_not_overwritten() {
    let rendered = crate::render::registry(
        &registry(K3dSpec::default(), None),
        &announced(Some(("other", "reg"))),
    )
    .unwrap();
    assert!(!rendered.adopted);
    assert!(!kinds(&rendered).contains(&"ConfigMap/local-registry-hosting".to_string()));
    assert!(rendered.warnings[0].contains("other/reg"));
}

#[test]
fn cache_mode_uses_secret_references_only() {
    let spec = K3dSpec {
        cache: Some(K3dCacheSpec {
            remote_url: "https://registry-1.docker.io".into(),
            credentials_secret_ref: Some(CredentialsSecretRef {
                name: "hub".into(),
                username_key: "user".into(),
                password_key: "token".into(),
            }),
        }),
        ..Default::default()
    };
    let rendered = crate::render::registry(&registry(spec, None), &Observed::default()).unwrap();
    let container = container(&rendered);
    let env = container["env"].as_array().unwrap();
    let remote = env
        .iter()
        .find(|e| e["name"] == "REGISTRY_PROXY_REMOTEURL")
        .unwrap();
    assert_eq!(remote["value"], "https://registry-1.docker.io");
    let password = env
        .iter()
        .find(|e| e["name"] == "REGISTRY_PROXY_PASSWORD")
        .unwrap();
    assert!(password.get("value").is_none());
    assert_eq!(password["valueFrom"]["secretKeyRef"]["name"], "hub");
    assert_eq!(password["valueFrom"]["secretKeyRef"]["key"], "token");
}

#[test]
fn overrides_image_storage_and_resources() {
    let spec = K3dSpec {
        image: Some("mirror.local/registry:2.8.3".into()),
        storage: Some(VolumeSpec {
            storage_class_name: Some("fast".into()),
            size: Quantity("3Gi".into()),
        }),
        resources: Some(ResourceRequirements {
            limits: Some(BTreeMap::from([(
                "memory".to_string(),
                Quantity("48Mi".into()),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let rendered = crate::render::registry(&registry(spec, None), &Observed::default()).unwrap();
    assert_eq!(container(&rendered)["image"], "mirror.local/registry:2.8.3");
    assert_eq!(
        container(&rendered)["resources"]["limits"]["memory"],
        "48Mi"
    );
    let pvc = rendered
        .objects
        .iter()
        .find(|o| o.resource.kind == "PersistentVolumeClaim")
        .unwrap();
    assert_eq!(pvc.object.data["spec"]["storageClassName"], "fast");
    assert_eq!(
        pvc.object.data["spec"]["resources"]["requests"]["storage"],
        "3Gi"
    );
}

#[test]
fn owner_references_only_with_uid_and_never_across_namespaces() {
    let mut with_uid = registry(K3dSpec::default(), None);
    with_uid.metadata.uid = Some("1234".into());
    let rendered = crate::render::registry(&with_uid, &Observed::default()).unwrap();
    for object in &rendered.objects {
        let owners = &object.object.metadata.owner_references;
        if object.namespace() == Some("registry") {
            assert_eq!(owners.as_ref().unwrap()[0].uid, "1234", "{}", object.key());
        } else {
            assert!(owners.is_none(), "{}", object.key());
        }
    }
    let rendered =
        crate::render::registry(&registry(K3dSpec::default(), None), &Observed::default()).unwrap();
    assert!(
        rendered
            .objects
            .iter()
            .all(|o| o.object.metadata.owner_references.is_none())
    );
}

#[test]
fn every_object_carries_the_owner_selector_labels() {
    let registry = registry(K3dSpec::default(), None);
    let rendered = crate::render::registry(&registry, &Observed::default()).unwrap();
    let owner = Owner {
        kind: "Registry",
        name: "platform",
        namespace: Some("registry"),
    };
    for object in &rendered.objects {
        let labels = object.object.metadata.labels.clone().unwrap_or_default();
        for (k, v) in owner.selector_labels() {
            assert_eq!(labels.get(&k), Some(&v), "{} lacks {k}", object.key());
        }
    }
}

#[test]
fn kep_announcement_round_trips() {
    let rendered =
        crate::render::registry(&registry(K3dSpec::default(), None), &Observed::default()).unwrap();
    let cm = rendered
        .objects
        .iter()
        .find(|o| o.name() == KEP_1755_NAME)
        .unwrap();
    let typed: ConfigMap =
        serde_json::from_value(serde_json::to_value(&cm.object).unwrap()).unwrap();
    let parsed = ObservedHosting::from_config_map(&typed).unwrap();
    assert_eq!(
        parsed.written_by,
        Some(("registry".into(), "platform".into()))
    );
    assert_eq!(
        parsed.hosting.endpoint(),
        Some("platform-distribution.registry.svc.cluster.local:5000")
    );
}
