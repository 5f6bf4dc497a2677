//! The CRD's rules agree with the operator: for each field whose CEL rules the `cel` crate can
//! evaluate, the schema (its CEL rules, `minLength` and `maxLength`, taken from the generated CRD)
//! admits a value exactly when `render` (validation included) accepts it, over edge cases and
//! random strings. The quantity rules use Kubernetes' own `isQuantity`; `tests/render/crd_admission.rs`
//! covers them on the real server.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use super::*;
use crate::cli::{Manifest, render_manifests};
use crate::render::Observed;

/// One field: where it sits in an object that renders, and the field name errors use.
struct Field {
    base: fn() -> Value,
    pointer: &'static str,
    field: &'static str,
}

/// Image references, checked on these only: the `cel` crate compiles a regex on every call, and the
/// reference grammar takes a third of a second to compile in a debug build.
const IMAGES: &[&str] = &[
    "",
    "registry:2",
    "docker.io/library/registry:2.8.3",
    "Registry:2 latest",
    "a b",
    "goharbor/harbor-core:v2.15.0 ",
    "localhost:5000/a/b_c__d-e.f:TAG_1.0-x",
    "A.example/x",
    "a@sha256:0123456789abcdef0123456789abcdef",
    "a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "a:t@sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "a@md5:0123456789abcdef0123456789abcdef",
    "a:-tag",
    "a/:b",
    "-a/b",
    "a//b",
];

fn k3d() -> Value {
    json!({"apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "r", "namespace": "registry"},
        "spec": {"mode": "K3d", "k3d": {"adopt": "Never", "cache": {"remoteURL": "https://mirror"}},
                 "migration": {"destinationProject": "library"}}})
}

fn harbor() -> Value {
    json!({"apiVersion": "registry.aisp.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "h", "namespace": "registry"},
        "spec": {"mode": "Harbor", "host": "harbor.localhost", "harbor": {
            "expose": {"ingressClassName": "traefik", "tlsSecretName": "tls"},
            "storage": {"s3": {"bucket": "images", "endpoint": "https://s3", "credentialsSecretRef": {"name": "s3"}}},
            "redis": {"internal": {"storage": {"size": "1Gi", "storageClassName": "local-path"}}}}}})
}

fn policy() -> Value {
    json!({"apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy", "metadata": {"name": "p"},
        "spec": {"allowedRegistries": ["ghcr.io"], "namespaces": ["apps"], "excludeNamespaces": ["tools"],
            "registryRef": {"name": "r", "namespace": "registry"},
            "rules": {"requireSignatures": {"keyless": {"issuer": "https://issuer", "subject": "me"}},
                "attestations": [{"predicateType": "https://slsa.dev/provenance/v1", "builderIdPattern": "x"}]}}})
}

fn keys_policy() -> Value {
    json!({"apiVersion": "registry.aisp.dev/v1alpha1", "kind": "ImagePolicy", "metadata": {"name": "p"},
        "spec": {"rules": {"requireSignatures": {"keys": {"secretRef": {"name": "cosign", "namespace": "security"}}}}}})
}

const FIELDS: [Field; 14] = [
    Field {
        base: k3d,
        pointer: "/spec/host",
        field: "spec.host",
    },
    Field {
        base: k3d,
        pointer: "/spec/k3d/image",
        field: "spec.k3d.image",
    },
    Field {
        base: k3d,
        pointer: "/spec/k3d/cache/remoteURL",
        field: "spec.k3d.cache.remoteURL",
    },
    Field {
        base: k3d,
        pointer: "/spec/migration/destinationProject",
        field: "spec.migration.destinationProject",
    },
    Field {
        base: harbor,
        pointer: "/spec/harbor/expose/ingressClassName",
        field: "spec.harbor.expose.ingressClassName",
    },
    Field {
        base: harbor,
        pointer: "/spec/harbor/expose/tlsSecretName",
        field: "spec.harbor.expose.tlsSecretName",
    },
    Field {
        base: harbor,
        pointer: "/spec/harbor/storage/s3/bucket",
        field: "spec.harbor.storage.s3.bucket",
    },
    Field {
        base: harbor,
        pointer: "/spec/harbor/storage/s3/endpoint",
        field: "spec.harbor.storage.s3.endpoint",
    },
    Field {
        base: harbor,
        pointer: "/spec/harbor/redis/internal/storage/storageClassName",
        field: "spec.harbor.redis.internal.storage.storageClassName",
    },
    Field {
        base: policy,
        pointer: "/spec/allowedRegistries/0",
        field: "spec.allowedRegistries[0]",
    },
    Field {
        base: policy,
        pointer: "/spec/excludeNamespaces/0",
        field: "spec.excludeNamespaces[0]",
    },
    Field {
        base: policy,
        pointer: "/spec/rules/requireSignatures/keyless/issuer",
        field: "spec.rules.requireSignatures.keyless.issuer",
    },
    Field {
        base: policy,
        pointer: "/spec/rules/attestations/0/builderIdPattern",
        field: "spec.rules.attestations[0].builderIdPattern",
    },
    Field {
        base: keys_policy,
        pointer: "/spec/rules/requireSignatures/keys/secretRef/namespace",
        field: "spec.rules.requireSignatures.keys.secretRef.namespace",
    },
];

/// The schema node of `pointer` in the generated CRD of `kind`.
fn schema_node(kind: &str, pointer: &str) -> Value {
    let crd = crate::crd::generate::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .expect("crd");
    let mut node =
        serde_json::to_value(&crd.spec.versions[0].schema).expect("json")["openAPIV3Schema"]
            .clone();
    for step in pointer.split('/').skip(1) {
        node = if step.bytes().all(|b| b.is_ascii_digit()) {
            node["items"].clone()
        } else {
            node["properties"][step].clone()
        };
        assert!(!node.is_null(), "{kind}{pointer}: no schema at {step}");
    }
    node
}

/// Whether the schema admits `value`: length bounds and every CEL rule, evaluated by the `cel` crate.
fn schema_admits(node: &Value, value: &str) -> bool {
    let length = value.chars().count() as u64;
    if node["minLength"].as_u64().is_some_and(|min| length < min)
        || node["maxLength"].as_u64().is_some_and(|max| length > max)
    {
        return false;
    }
    node["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|rule| {
            let expression = rule["rule"].as_str().expect("rule");
            let program =
                cel::Program::compile(expression).unwrap_or_else(|e| panic!("{expression}: {e:?}"));
            let mut context = cel::Context::default();
            context.add_variable("self", value).expect("self");
            match program.execute(&context) {
                Ok(cel::Value::Bool(b)) => b,
                other => panic!("{expression} on {value:?}: {other:?}"),
            }
        })
}

/// Whether `render` accepts the object with `value` at the field (other fields' errors do not count).
fn operator_accepts(field: &Field, value: &str) -> bool {
    let mut object = (field.base)();
    let (parent, last) = field.pointer.rsplit_once('/').expect("pointer");
    let parent = object.pointer_mut(parent).expect("parent");
    match parent {
        Value::Array(items) => items[last.parse::<usize>().expect("index")] = json!(value),
        other => other[last] = json!(value),
    }
    let manifest = match object["kind"].as_str() {
        Some("Registry") => {
            Manifest::Registry(Box::new(serde_json::from_value(object).expect("registry")))
        }
        _ => Manifest::ImagePolicy(Box::new(serde_json::from_value(object).expect("policy"))),
    };
    match render_manifests(vec![manifest], &Observed::default(), "default") {
        Ok(_) => true,
        Err(e) => !e.to_string().contains(&format!("{}:", field.field)),
    }
}

const EDGE_CASES: &[&str] = &[
    "",
    " ",
    "a",
    "-",
    "a-",
    "-a",
    "a.b",
    "a..b",
    "a.b.",
    ".a",
    "A",
    "a_b",
    "reg.local:5000",
    "reg.local:65535",
    "reg.local:65536",
    "reg.local:0",
    "reg.local:00080",
    "reg.local:000080",
    "reg.local:",
    ":5000",
    "reg.local:5000:1",
    "1.2.3.4:8080",
    "Harbor_Host:5000",
    "ghcr.io/org",
    "ghcr.io/org/",
    "ghcr.io//org",
    "ghcr.io/Org",
    "ghcr.io/org_a/b-c.d",
    "*",
    "ghcr.io/*",
    "https://ghcr.io/org",
    "http://x",
    "https://",
    "http:///x",
    "https://a b",
    "https://a\tb",
    "ftp://x",
    "registry:2",
    "docker.io/library/registry:2.8.3",
    "Registry:2 latest",
    "goharbor/harbor-core:v2.15.0 ",
    "a@sha256:0123456789abcdef0123456789abcdef",
    "x{{y",
    "x}}",
    "o'brien",
    "a\\",
    "a\\b",
    "^https://github\\.com/.+$",
];

fn strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9.:/_-]{0,14}",
        "[a-zA-Z0-9.:/_ *@{}'\\\\-]{0,10}",
        "(https?://)?[a-z0-9.:/-]{0,10}",
        "[a-z0-9]{1,3}(\\.[a-z0-9-]{1,4}){0,3}(:[0-9]{0,6})?(/[a-z0-9._-]{0,3}){0,2}",
    ]
}

#[test]
fn schema_rules_and_the_operator_agree() {
    let long_label = "a".repeat(64);
    let long_subdomain = format!("{}.{}", "a".repeat(63), "b".repeat(63));
    for field in &FIELDS {
        let kind = (field.base)()["kind"].as_str().expect("kind").to_string();
        let node = schema_node(&kind, field.pointer);
        let disagree = |value: &str| {
            let schema = schema_admits(&node, value);
            (schema != operator_accepts(field, value)).then(|| {
                format!(
                    "{}: {value:?}: schema {}, operator {}",
                    field.field,
                    if schema { "admits" } else { "refuses" },
                    if schema { "refuses" } else { "accepts" },
                )
            })
        };
        if field.field == "spec.k3d.image" {
            for value in IMAGES {
                if let Some(problem) = disagree(value) {
                    panic!("{problem}");
                }
            }
            continue;
        }
        for value in EDGE_CASES.iter().copied().chain([
            long_label.as_str(),
            &long_label[1..],
            long_subdomain.as_str(),
        ]) {
            if let Some(problem) = disagree(value) {
                panic!("{problem}");
            }
        }
        let mut runner = TestRunner::new(Config {
            cases: 200,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&strategy(), |value| {
                prop_assert!(
                    disagree(&value).is_none(),
                    "{}",
                    disagree(&value).unwrap_or_default()
                );
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn cel_string_literals_escape_backslashes_and_quotes() {
    assert_eq!(cel_string(r"^a\.b'$"), r"'^a\\.b\'$'");
    let program = cel::Program::compile(&format!("self.matches({})", cel_string(DNS_SUBDOMAIN)))
        .expect("compiles");
    let mut context = cel::Context::default();
    context.add_variable("self", "a.b").expect("self");
    assert_eq!(
        program.execute(&context).expect("runs"),
        cel::Value::Bool(true)
    );
}
