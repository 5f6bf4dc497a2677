//! The pull path of every mode, at render level: every emitted k3s `registries.yaml` parses with a
//! strict typed model of the k3s format and never sends a node to a cluster-DNS name; hosted K3d
//! mirrors to the NodePort on loopback; Harbor serves TLS with a generated CA (exported, trusted by
//! nodes through `ca_file`) and is resolvable from pods through `kube-system/coredns-custom`.

use std::collections::BTreeMap;

use crate::support::common;
use registry_operator::cli::{RenderOptions, render_files_with};
use registry_operator::crd::Registry;
use registry_operator::render::{
    self, HarborObserved, NodePortsObserved, Observed, ObservedConfigMap, Rendered, SecretGenerator,
};
use serde::Deserialize;

/// k3s' `registries.yaml` (docs.k3s.io "Private Registry Configuration"), every field it knows and
/// nothing else: an unknown or misspelt field fails to parse.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct K3sRegistries {
    #[serde(default)]
    mirrors: BTreeMap<String, K3sMirror>,
    #[serde(default)]
    configs: BTreeMap<String, K3sConfig>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct K3sMirror {
    #[serde(default)]
    endpoint: Vec<String>,
    #[serde(default)]
    rewrite: BTreeMap<String, String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct K3sConfig {
    auth: Option<K3sAuth>,
    tls: Option<K3sTls>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct K3sAuth {
    username: Option<String>,
    password: Option<String>,
    auth: Option<String>,
    identity_token: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct K3sTls {
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    insecure_skip_verify: Option<bool>,
}

fn is_cluster_dns(host: &str) -> bool {
    let name = host.split(':').next().unwrap();
    name.ends_with(".svc") || name.ends_with(".cluster.local") || name.contains(".svc.")
}

/// Parse strictly and check what nodes can use: endpoints are `http(s)://host[:port]` the node's
/// resolver can reach (never cluster DNS), TLS settings belong to an endpoint, no credentials.
fn check_registries_yaml(origin: &str, yaml: &str) -> K3sRegistries {
    let parsed: K3sRegistries = yaml_serde::from_str(yaml)
        .unwrap_or_else(|e| panic!("{origin}: not a k3s registries.yaml: {e}\n{yaml}"));
    assert!(!parsed.mirrors.is_empty(), "{origin}: no mirror");
    let mut endpoint_hosts = Vec::new();
    for (name, mirror) in &parsed.mirrors {
        assert!(
            !mirror.endpoint.is_empty(),
            "{origin}: {name} has no endpoint"
        );
        assert!(mirror.rewrite.is_empty(), "{origin}: {name} rewrites");
        for endpoint in &mirror.endpoint {
            let host = endpoint
                .strip_prefix("https://")
                .or_else(|| endpoint.strip_prefix("http://"))
                .unwrap_or_else(|| panic!("{origin}: {endpoint} is not http(s)"));
            assert!(
                !host.is_empty() && !host.contains('/'),
                "{origin}: {endpoint} is not scheme://host[:port]"
            );
            assert!(
                !is_cluster_dns(host),
                "{origin}: endpoint {endpoint} is a cluster DNS name, which no node resolves"
            );
            endpoint_hosts.push(host.to_string());
        }
    }
    for (host, config) in &parsed.configs {
        assert!(
            endpoint_hosts.contains(host),
            "{origin}: configs.{host} is no endpoint's host"
        );
        assert!(config.auth.is_none(), "{origin}: credentials in a snippet");
        let tls = config.tls.as_ref().expect("tls");
        let ca = tls.ca_file.as_deref().expect("ca_file");
        assert!(ca.starts_with("/etc/rancher/k3s/"), "{origin}: {ca}");
        assert!(tls.cert_file.is_none() && tls.key_file.is_none());
        assert_ne!(
            tls.insecure_skip_verify,
            Some(true),
            "{origin}: TLS not verified"
        );
    }
    parsed
}

fn registry(yaml: &str) -> Registry {
    let mut registry: Registry = yaml_serde::from_str(&format!(
        "apiVersion: registry.aisp.dev/v1alpha1\nkind: Registry\nmetadata: {{name: platform, namespace: registry}}\nspec: {yaml}\n"
    ))
    .expect("fixture");
    registry.metadata.namespace = Some("registry".into());
    registry
}

fn ready() -> Observed {
    Observed {
        harbor: HarborObserved {
            database_ready: true,
            components_exist: false,
        },
        ..Default::default()
    }
}

fn rendered(spec: &str, observed: &Observed) -> Rendered {
    let rendered = render::registry(&registry(spec), observed).expect("renders");
    common::assert_all_valid_metadata(&rendered.objects);
    rendered
}

const HARBOR: &str = "{mode: Harbor, host: harbor.ai-platform.localhost, harbor: {database: {managed: {instances: 1}}}}";

/// Every `registries.yaml` render emits, for the samples (`render` notes, what stderr shows) and for
/// every mode and option that changes it.
#[test]
fn every_emitted_registries_yaml_is_strict_k3s_and_never_names_cluster_dns() {
    let root = common::repo_root();
    let mut snippets = Vec::new();
    for observed in [
        None,
        Some(root.join("tests/fixtures/observed/k3d-local-registry-hosting.yaml")),
    ] {
        let output = render_files_with(
            &[root.join("config/samples")],
            observed.as_ref(),
            &RenderOptions::new("registry"),
        )
        .expect("samples render");
        for note in &output.notes {
            if let Some((id, yaml)) = note.split_once(": k3s registries.yaml:\n") {
                snippets.push((format!("sample {id}"), yaml.to_string()));
            }
        }
    }
    assert_eq!(snippets.len(), 6, "3 sample Registries, hosted and adopted");
    let taken = Observed {
        node_ports: NodePortsObserved {
            current: Some(31999),
            taken: BTreeMap::new(),
        },
        ..Default::default()
    };
    for (origin, spec, observed) in [
        (
            "hosted",
            "{mode: K3d, k3d: {adopt: Never}}",
            Observed::default(),
        ),
        ("hosted, allocated port", "{mode: K3d}", taken),
        (
            "hosted, spec.host",
            "{mode: K3d, host: registry.local:5000, k3d: {nodePort: 32000}}",
            Observed::default(),
        ),
        (
            "cache",
            "{mode: K3d, k3d: {cache: {remoteURL: 'https://ghcr.io'}}}",
            Observed::default(),
        ),
        ("harbor, generated TLS", HARBOR, ready()),
        (
            "harbor, port in host",
            "{mode: Harbor, host: 'harbor.localhost:8443'}",
            ready(),
        ),
        (
            "harbor, own certificate",
            "{mode: Harbor, host: harbor.example.com, harbor: {expose: {tlsSecretName: harbor-tls}}}",
            ready(),
        ),
    ] {
        let yaml = rendered(spec, &observed)
            .k3s_registries_yaml
            .unwrap_or_else(|| panic!("{origin}: no registries.yaml"));
        snippets.push((origin.to_string(), yaml));
    }
    for (origin, yaml) in &snippets {
        check_registries_yaml(origin, yaml);
    }
    // The strict model refuses what k3s would not read.
    assert!(yaml_serde::from_str::<K3sRegistries>("mirrors: {r: {endpoints: [x]}}\n").is_err());
    assert!(yaml_serde::from_str::<K3sRegistries>("configs: {r: {tls: {ca: x}}}\n").is_err());
}

#[test]
fn hosted_k3d_mirrors_what_pods_use_to_the_node_port_on_loopback() {
    let yaml = rendered("{mode: K3d, k3d: {nodePort: 30555}}", &Observed::default())
        .k3s_registries_yaml
        .unwrap();
    let parsed = check_registries_yaml("hosted", &yaml);
    assert_eq!(
        parsed.mirrors["platform-distribution.registry.svc.cluster.local:5000"].endpoint,
        ["http://127.0.0.1:30555"]
    );
    assert!(
        parsed.configs.is_empty(),
        "plain HTTP on loopback needs no TLS settings"
    );
}

#[test]
fn harbor_registries_yaml_mirrors_the_host_over_https_trusting_the_exported_ca() {
    let parsed = check_registries_yaml(
        "harbor",
        &rendered(HARBOR, &ready()).k3s_registries_yaml.unwrap(),
    );
    let host = "harbor.ai-platform.localhost";
    assert_eq!(parsed.mirrors[host].endpoint, [format!("https://{host}")]);
    assert_eq!(
        parsed.configs[host]
            .tls
            .as_ref()
            .unwrap()
            .ca_file
            .as_deref(),
        Some("/etc/rancher/k3s/aisp/harbor.ai-platform.localhost-ca.crt")
    );
    // The user's own certificate: nothing to trust beyond what the nodes already do.
    let own = rendered(
        "{mode: Harbor, host: harbor.example.com, harbor: {expose: {tlsSecretName: harbor-tls}}}",
        &ready(),
    );
    assert!(
        check_registries_yaml("own", &own.k3s_registries_yaml.unwrap())
            .configs
            .is_empty()
    );
}

#[test]
fn harbor_generates_a_ca_and_a_serving_certificate_once_and_exports_the_ca() {
    let rendered = rendered(HARBOR, &ready());
    let names: Vec<(&str, &str)> = rendered
        .generated_secrets
        .iter()
        .map(|s| (s.name.as_str(), s.secret_type.as_str()))
        .collect();
    let ca = names
        .iter()
        .position(|n| *n == ("platform-harbor-ca-secret", "Opaque"))
        .expect("CA Secret");
    let tls = names
        .iter()
        .position(|(n, t)| n.starts_with("platform-harbor-tls-") && *t == "kubernetes.io/tls")
        .expect("serving Secret");
    assert!(
        ca < tls,
        "the CA is created before the certificate it signs"
    );
    let serving = &rendered.generated_secrets[tls];
    assert_eq!(serving.data_keys(), ["tls.key", "tls.crt"]);
    let SecretGenerator::ServingCertificate {
        issuer, dns_names, ..
    } = &serving.keys[0].1
    else {
        panic!("not a serving certificate");
    };
    assert_eq!(issuer.secret, "platform-harbor-ca-secret");
    assert_eq!(dns_names, &["harbor.ai-platform.localhost"]);

    let ingress = rendered
        .objects
        .iter()
        .find(|o| o.resource.kind == "Ingress")
        .unwrap();
    assert_eq!(
        ingress.object.data["spec"]["tls"][0]["secretName"],
        serving.name.as_str()
    );
    let exported = rendered
        .objects
        .iter()
        .find(|o| o.key() == "ConfigMap/registry/platform-harbor-ca")
        .expect("exported CA");
    let copy = &rendered.secret_copies[0];
    assert_eq!(
        (
            copy.config_map.as_str(),
            copy.key.as_str(),
            copy.secret.as_str(),
            copy.secret_key.as_str()
        ),
        (
            "platform-harbor-ca",
            "ca.crt",
            "platform-harbor-ca-secret",
            "ca.crt"
        ),
        "only the public certificate is copied"
    );
    assert_eq!(exported.object.data["data"]["ca.crt"], copy.placeholder());

    // Another host gets another serving certificate from the same CA; the CA never changes.
    let moved = render::registry(
        &registry("{mode: Harbor, host: registry.ai-platform.localhost, harbor: {database: {managed: {instances: 1}}}}"),
        &ready(),
    )
    .unwrap();
    let moved_names: Vec<&str> = moved
        .generated_secrets
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert!(moved_names.contains(&"platform-harbor-ca-secret"));
    assert!(!moved_names.contains(&serving.name.as_str()));
    // Rendering is pure: the same input gives the same names.
    assert_eq!(
        render::registry(&registry(HARBOR), &ready())
            .unwrap()
            .generated_secrets,
        rendered.generated_secrets
    );
}

#[test]
fn harbor_with_its_own_certificate_generates_no_ca() {
    let rendered = rendered(
        "{mode: Harbor, host: harbor.example.com, harbor: {expose: {tlsSecretName: harbor-tls}}}",
        &ready(),
    );
    assert!(rendered.secret_copies.is_empty());
    assert!(
        rendered
            .generated_secrets
            .iter()
            .all(|s| !s.name.contains("-ca-") && !s.name.contains("-tls-"))
    );
    assert!(
        !rendered
            .objects
            .iter()
            .any(|o| o.name() == "platform-harbor-ca")
    );
}

fn coredns(rendered: &Rendered) -> Option<&registry_operator::render::RenderedObject> {
    rendered
        .objects
        .iter()
        .find(|o| o.key() == "ConfigMap/kube-system/coredns-custom")
}

#[test]
fn pods_resolve_the_harbor_host_through_a_coredns_rewrite_to_traefik() {
    let rendered = rendered(HARBOR, &ready());
    let config_map = coredns(&rendered).expect("coredns-custom");
    assert_eq!(
        config_map.object.data["data"]["registry-platform-harbor.override"],
        "# Registry registry/platform (registry-operator): pods reach Harbor by the name the nodes use.\nrewrite name exact harbor.ai-platform.localhost traefik.kube-system.svc.cluster.local\n"
    );
    let metadata = &config_map.object.metadata;
    assert!(
        metadata.owner_references.is_none(),
        "no cross-namespace owner reference"
    );
    let labels = metadata.labels.as_ref().unwrap();
    assert_eq!(labels["registry.aisp.dev/owner-name"], "platform");
    assert_eq!(labels["registry.aisp.dev/owner-namespace"], "registry");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "registry-operator");

    // Another ingress controller: the rewrite follows `ingressService`; unknown → none.
    let nginx = render::registry(
        &registry("{mode: Harbor, host: h.localhost, harbor: {expose: {ingressClassName: nginx, ingressService: ingress-nginx-controller.ingress-nginx.svc.cluster.local}}}"),
        &ready(),
    )
    .unwrap();
    assert!(
        coredns(&nginx).unwrap().object.data["data"]["registry-platform-harbor.override"]
            .as_str()
            .unwrap()
            .contains("rewrite name exact h.localhost ingress-nginx-controller.ingress-nginx.svc.cluster.local\n")
    );
    let unknown = render::registry(
        &registry("{mode: Harbor, host: h.localhost, harbor: {expose: {ingressClassName: nginx}}}"),
        &ready(),
    )
    .unwrap();
    assert!(coredns(&unknown).is_none());
}

#[test]
fn someone_elses_coredns_custom_is_never_touched() {
    let observe = |written_by: Option<(&str, &str)>, data: &[(&str, &str)]| Observed {
        coredns_custom: Some(ObservedConfigMap {
            written_by: written_by.map(|(ns, n)| (ns.to_string(), n.to_string())),
            data: data
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }),
        ..ready()
    };
    // The user's own ConfigMap without the line: left alone, and the warning names the line to add.
    let users = rendered(HARBOR, &observe(None, &[("log.override", "log\n")]));
    assert!(coredns(&users).is_none());
    assert!(
        users.warnings[0].contains("add the line `rewrite name exact harbor.ai-platform.localhost traefik.kube-system.svc.cluster.local` to one of its *.override keys"),
        "{:?}",
        users.warnings
    );
    // The line already there: nothing to do, nothing to report.
    let done = rendered(
        HARBOR,
        &observe(
            None,
            &[(
                "harbor.override",
                "rewrite name exact harbor.ai-platform.localhost traefik.kube-system.svc.cluster.local\n",
            )],
        ),
    );
    assert!(coredns(&done).is_none() && done.warnings.is_empty());
    // Another Registry's: left alone too. This Registry's own: kept up to date.
    assert!(coredns(&rendered(HARBOR, &observe(Some(("other", "reg")), &[]))).is_none());
    assert!(
        coredns(&rendered(
            HARBOR,
            &observe(Some(("registry", "platform")), &[])
        ))
        .is_some()
    );
}

#[test]
fn validation_refuses_cluster_dns_harbor_hosts_and_node_ports_outside_the_range() {
    for (spec, message) in [
        (
            "{mode: Harbor, host: harbor.registry.svc.cluster.local}",
            "spec.host: must not be a cluster DNS name in Harbor mode",
        ),
        (
            "{mode: Harbor, host: 'harbor.registry.svc:80'}",
            "spec.host: must not be a cluster DNS name",
        ),
        (
            "{mode: K3d, k3d: {nodePort: 29999}}",
            "spec.k3d.nodePort: must be between 30000 and 32767",
        ),
        (
            "{mode: K3d, k3d: {nodePort: 32768}}",
            "spec.k3d.nodePort: must be between 30000 and 32767",
        ),
        (
            "{mode: Harbor, host: h.localhost, harbor: {expose: {ingressService: 'Traefik!'}}}",
            "spec.harbor.expose.ingressService: must be a DNS name",
        ),
    ] {
        let error = render::registry(&registry(spec), &ready())
            .expect_err(spec)
            .to_string();
        assert!(error.contains(message), "{spec}: {error}");
    }
    // A K3d host may be a cluster DNS name: nodes reach it through the mirror, pods directly.
    rendered(
        "{mode: K3d, host: 'r.registry.svc.cluster.local:5000'}",
        &Observed::default(),
    );
}
