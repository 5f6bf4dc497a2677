//! Unit tests of K3d-mode rendering: adopt, host, cache, overrides, labels and owner references.
use super::*;
use crate::crd::{CredentialsSecretRef, K3dCacheSpec, RegistryMode, RegistrySpec, Retention};
use crate::render::observed::{NodePortsObserved, ObservedHosting};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

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
    // Nodes cannot resolve cluster DNS: the name pods use is mirrored to the NodePort on loopback.
    let snippet = rendered.k3s_registries_yaml.clone().unwrap();
    assert_eq!(
        snippet,
        "mirrors:\n  platform-distribution.registry.svc.cluster.local:5000:\n    endpoint:\n    - http://127.0.0.1:30500\n"
    );
    let service = object(&rendered, "Service");
    assert_eq!(service["spec"]["type"], "NodePort");
    assert_eq!(service["spec"]["ports"][0]["nodePort"], DEFAULT_NODE_PORT);
    assert_eq!(service["spec"]["ports"][0]["port"], 5000);
}

fn object(rendered: &Rendered, kind: &str) -> serde_json::Value {
    rendered
        .objects
        .iter()
        .find(|o| o.resource.kind == kind)
        .map(|o| o.object.data.clone())
        .unwrap_or_else(|| panic!("no {kind}"))
}

fn hosting(rendered: &Rendered) -> LocalRegistryHosting {
    let data = object(rendered, "ConfigMap");
    yaml_serde::from_str(data["data"][KEP_1755_KEY].as_str().unwrap()).unwrap()
}

fn ports(current: Option<i32>, taken: &[(i32, &str)]) -> Observed {
    Observed {
        node_ports: NodePortsObserved {
            current,
            taken: taken.iter().map(|(p, s)| (*p, s.to_string())).collect(),
        },
        ..Default::default()
    }
}

/// KEP-1755: each field carries what its audience can use: the user's machine (k3d port mapping),
/// containerd on the nodes (NodePort on loopback), pods (cluster DNS).
#[test]
fn announcement_gives_each_audience_a_host_it_can_reach() {
    let spec = K3dSpec {
        node_port: Some(31000),
        ..Default::default()
    };
    let rendered = crate::render::registry(&registry(spec, None), &Observed::default()).unwrap();
    assert_eq!(
        hosting(&rendered),
        LocalRegistryHosting {
            host: Some("localhost:31000".into()),
            host_from_container_runtime: Some("127.0.0.1:31000".into()),
            host_from_cluster_network: Some(
                "platform-distribution.registry.svc.cluster.local:5000".into()
            ),
            help: Some(HELP.into()),
        }
    );
    assert_eq!(
        object(&rendered, "Service")["spec"]["ports"][0]["nodePort"],
        31000
    );
}

#[test]
fn node_port_defaults_to_30500_keeps_its_port_and_lets_the_api_server_pick_when_taken() {
    let render = |spec: K3dSpec, observed: Observed| {
        crate::render::registry(&registry(spec, None), &observed).unwrap()
    };
    // The port the API server picked is kept, whatever else holds 30500 now, and is never written
    // into the Service: the render that learns it is the render before it, so the Service is
    // applied once (and an apply without it keeps the allocated port).
    let kept = render(K3dSpec::default(), ports(Some(31234), &[(30500, "a/b")]));
    let port = &object(&kept, "Service")["spec"]["ports"][0];
    assert!(port.get("nodePort").is_none(), "{port}");
    assert!(
        kept.k3s_registries_yaml
            .as_deref()
            .unwrap()
            .contains("127.0.0.1:31234")
    );
    assert_eq!(hosting(&kept).host.as_deref(), Some("localhost:31234"));
    let before = render(K3dSpec::default(), ports(None, &[(30500, "a/b")]));
    assert_eq!(
        object(&kept, "Service"),
        object(&before, "Service"),
        "learning the port does not change the Service"
    );
    // The default port, ours from the first apply, stays written.
    let default = render(K3dSpec::default(), ports(Some(30500), &[]));
    assert_eq!(
        object(&default, "Service")["spec"]["ports"][0]["nodePort"],
        30500
    );
    // 30500 taken and no Service yet: the API server picks; nothing to tell nodes until it has.
    let allocated = render(
        K3dSpec::default(),
        ports(None, &[(30500, "other/registry")]),
    );
    let port = &object(&allocated, "Service")["spec"]["ports"][0];
    assert!(port.get("nodePort").is_none(), "{port}");
    assert!(allocated.k3s_registries_yaml.is_none());
    assert_eq!(hosting(&allocated).host, None);
    assert_eq!(hosting(&allocated).host_from_container_runtime, None);
    assert!(allocated.node_port_conflict.is_none());
}

#[test]
fn a_chosen_node_port_held_by_another_service_is_a_conflict() {
    let spec = K3dSpec {
        node_port: Some(30600),
        ..Default::default()
    };
    let rendered = crate::render::registry(
        &registry(spec.clone(), None),
        &ports(Some(30500), &[(30600, "tools/gitea")]),
    )
    .unwrap();
    assert_eq!(
        rendered.node_port_conflict.as_deref(),
        Some(
            "spec.k3d.nodePort: 30600 is already used by Service tools/gitea; choose a free port between 30000 and 32767"
        )
    );
    // Its own port is never a conflict.
    let own = crate::render::registry(&registry(spec, None), &ports(Some(30600), &[])).unwrap();
    assert!(own.node_port_conflict.is_none());
}

#[test]
fn node_ports_are_listed_only_while_the_port_is_not_settled() {
    let chosen = K3dSpec {
        node_port: Some(30600),
        ..Default::default()
    };
    assert!(needs_node_port_census(None, None));
    assert!(!needs_node_port_census(None, Some(31234)));
    assert!(needs_node_port_census(Some(&chosen), Some(30500)));
    assert!(!needs_node_port_census(Some(&chosen), Some(30600)));
}

#[test]
fn spec_host_and_cache_upstream_are_mirrored_to_the_node_port_too() {
    let spec = K3dSpec {
        cache: Some(K3dCacheSpec {
            remote_url: "https://registry-1.docker.io".into(),
            credentials_secret_ref: None,
        }),
        ..Default::default()
    };
    let rendered = crate::render::registry(
        &registry(spec, Some("registry.local:5000")),
        &Observed::default(),
    )
    .unwrap();
    let snippet = rendered.k3s_registries_yaml.unwrap();
    for name in [
        "docker.io:",
        "registry.local:5000:",
        "platform-distribution.registry.svc.cluster.local:5000:",
    ] {
        assert!(snippet.contains(name), "{name} in {snippet}");
    }
    assert_eq!(snippet.matches("- http://127.0.0.1:30500").count(), 3);
    assert_eq!(
        upstream_registry("http://mirror.example:5000/v2/"),
        "mirror.example:5000"
    );
}

#[test]
fn adopted_registry_is_mirrored_to_what_the_container_runtime_reaches() {
    let rendered =
        crate::render::registry(&registry(K3dSpec::default(), None), &announced(None)).unwrap();
    assert_eq!(
        rendered.k3s_registries_yaml.as_deref(),
        Some(
            "mirrors:\n  k3d-myregistry.cluster:5000:\n    endpoint:\n    - http://k3d-myregistry:5000\n"
        )
    );
    // An announcement whose runtime host is a cluster DNS name gives nodes nothing usable.
    let mut observed = announced(None);
    let hosting = &mut observed.local_registry_hosting.as_mut().unwrap().hosting;
    hosting.host_from_container_runtime = Some("r.registry.svc.cluster.local:5000".into());
    let rendered = crate::render::registry(&registry(K3dSpec::default(), None), &observed).unwrap();
    assert!(rendered.k3s_registries_yaml.is_none());
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
    let owner = Owner::registry("platform", "registry");
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
