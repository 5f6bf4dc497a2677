//! Proptest strategies for tests/render/fuzz.rs: typed Registry and ImagePolicy specs (valid shapes,
//! absurd values; in [`registries`] and [`image_policies`]), arbitrary JSON documents and their
//! mutation. Generates data only; asserts nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use proptest::prelude::*;
use registry_operator::crd::*;
use serde_json::Value;

pub mod image_policies;
pub mod registries;

// ---------- strategies: leaves ----------

/// Text users might type, including the dangerous and the absurd.
pub fn weird_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("{{ request.object.metadata.name }}".to_string()),
        Just("}}".to_string()),
        Just("'".to_string()),
        Just("a\\".to_string()),
        Just("*".to_string()),
        Just(" ".to_string()),
        Just("-".to_string()),
        Just("UPPER".to_string()),
        Just("http://".to_string()),
        Just("host:99999".to_string()),
        Just("x".repeat(600)),
        "[a-z0-9.:/_-]{0,24}",
        "\\PC{0,16}",
        any::<String>(),
    ]
}

pub fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z][a-z0-9]{0,8}(\\.[a-z]{1,6}){0,2}(:[0-9]{1,5})?",
        1 => weird_text(),
    ]
}

pub fn image() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "([a-z]{1,8}\\.[a-z]{2,4}/)?[a-z]{1,8}(/[a-z]{1,8})?(:[a-z0-9.]{1,8})?",
        1 => weird_text(),
    ]
}

pub fn name() -> impl Strategy<Value = String> {
    prop_oneof![5 => "[a-z][a-z0-9-]{0,12}[a-z0-9]", 1 => weird_text()]
}

pub fn quantity() -> impl Strategy<Value = Quantity> {
    prop_oneof![
        4 => "[0-9]{1,4}(Gi|Mi|Ki|G|M|m|k|)",
        1 => "-?[0-9]{0,3}\\.?[0-9]{0,2}(GB|gi|e3|E|Ei|)",
        1 => weird_text(),
    ]
    .prop_map(Quantity)
}

pub fn version() -> impl Strategy<Value = String> {
    prop_oneof![
        "v?2\\.(9|1[0-9])\\.[0-9]",
        "v?[0-9]{1,2}\\.[0-9]{1,2}(\\.[0-9]{1,2})?",
        weird_text(),
    ]
}

pub fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "https?://[a-z]{1,10}(\\.[a-z]{2,5}){0,2}(:[0-9]{2,4})?",
        1 => weird_text(),
    ]
}

pub fn volume() -> impl Strategy<Value = VolumeSpec> {
    (
        proptest::option::of(prop_oneof![Just("local-path".to_string()), weird_text()]),
        quantity(),
    )
        .prop_map(|(storage_class_name, size)| VolumeSpec {
            storage_class_name,
            size,
        })
}

pub fn resources() -> impl Strategy<Value = ResourceRequirements> {
    (
        proptest::option::of(quantity()),
        proptest::option::of(quantity()),
    )
        .prop_map(|(memory, cpu)| ResourceRequirements {
            limits: memory.map(|m| BTreeMap::from([("memory".to_string(), m)])),
            requests: cpu.map(|c| BTreeMap::from([("cpu".to_string(), c)])),
            ..ResourceRequirements::default()
        })
}

pub fn secret_key_ref() -> impl Strategy<Value = SecretKeyRef> {
    (name(), "[a-z.-]{1,10}").prop_map(|(name, key)| SecretKeyRef { name, key })
}

pub fn credentials() -> impl Strategy<Value = CredentialsSecretRef> {
    name().prop_map(|name| CredentialsSecretRef {
        name,
        username_key: "username".to_string(),
        password_key: "password".to_string(),
    })
}

// ---------- strategies: documents ----------

/// Any JSON value, with keys biased towards the real field names so mutations reach deep code.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        weird_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(field_name(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

pub fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(vec![
            "mode", "host", "k3d", "harbor", "database", "managed", "external", "redis",
            "internal", "storage", "pvc", "s3", "size", "bucket", "version", "images", "rules",
            "requireSignatures", "keyless", "keys", "issuer", "attestations", "name", "namespace",
            "migration", "expose", "trivy", "enabled", "instances", "port",
        ])
        .prop_map(str::to_string),
        1 => "[a-zA-Z]{1,8}",
    ]
}

/// Replace the node at `choice` (in document order) of `document` with `replacement`.
pub fn mutate(document: &mut Value, choice: usize, replacement: Value) {
    fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    pointers(child, format!("{at}/{escaped}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    pointers(child, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
        out.push(at);
    }
    let mut all = Vec::new();
    pointers(document, String::new(), &mut all);
    let target = &all[choice % all.len()];
    if let Some(node) = document.pointer_mut(target) {
        *node = replacement;
    }
}
