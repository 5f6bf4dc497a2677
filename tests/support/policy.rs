//! Test support: evaluates generated Kyverno policies against Pods — Kyverno's wildcard and overlay-pattern
//! semantics for ClusterPolicy, a CEL interpreter for ValidatingPolicy — and loads upstream CRD schemas.
//! Test-only; mirrors upstream behaviour for the subset the operator emits, nothing more.

use std::path::PathBuf;

use serde_json::{Value, json};

/// Kyverno's `wildcard.Match`: `*` any run (including `/`), `?` one character, no escapes.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut px, mut nx, mut star_px, mut star_nx) = (0usize, 0usize, None::<usize>, 0usize);
    while nx < n.len() {
        if px < p.len() {
            if p[px] == '*' {
                px += 1;
                if px == p.len() {
                    return true;
                }
                star_px = Some(px);
                star_nx = nx;
                continue;
            }
            if p[px] == '?' || p[px] == n[nx] {
                px += 1;
                nx += 1;
                continue;
            }
        }
        let Some(sp) = star_px else { return false };
        star_nx += 1;
        px = sp;
        nx = star_nx;
    }
    p[px..].iter().all(|c| *c == '*')
}

/// Kyverno's string pattern: exact, else `|` alternatives of `&` conjunctions of `!`-negatable wildcards.
pub fn string_pattern(value: &str, pattern: &str) -> bool {
    if value == pattern {
        return true;
    }
    pattern.split('|').any(|alternative| {
        alternative.trim().split('&').all(|atom| {
            let atom = atom.trim();
            assert!(
                !atom.starts_with('>') && !atom.starts_with('<'),
                "comparison operators are not modelled: {atom}"
            );
            match atom.strip_prefix('!') {
                Some(rest) => !wildcard_match(rest.trim(), value),
                None => wildcard_match(atom, value),
            }
        })
    })
}

/// Kyverno overlay-pattern validation for maps, `=(key)` equality anchors, arrays and strings.
pub fn validate_pattern(resource: Option<&Value>, pattern: &Value) -> bool {
    match pattern {
        Value::Object(fields) => {
            let Some(Value::Object(object)) = resource else {
                return false;
            };
            fields.iter().all(|(key, sub)| {
                match key.strip_prefix("=(").and_then(|k| k.strip_suffix(')')) {
                    Some(optional) => object
                        .get(optional)
                        .is_none_or(|v| validate_pattern(Some(v), sub)),
                    None => validate_pattern(object.get(key), sub),
                }
            })
        }
        Value::Array(items) => {
            let (Some(Value::Array(values)), Some(element)) = (resource, items.first()) else {
                return false;
            };
            values.iter().all(|v| validate_pattern(Some(v), element))
        }
        Value::String(p) => matches!(resource, Some(Value::String(v)) if string_pattern(v, p)),
        other => panic!("pattern kind not modelled: {other}"),
    }
}

/// Whether a generated ClusterPolicy (JSON) admits `pod` in `namespace`; `None` when no rule applies.
pub fn cluster_policy_admits(policy: &Value, pod: &Value, namespace: &str) -> Option<bool> {
    let mut applied = false;
    for rule in policy["spec"]["rules"].as_array().expect("rules") {
        let listed = |filter: &Value| {
            filter["any"].as_array().expect("any").iter().any(|f| {
                let namespaces = f["resources"]["namespaces"].as_array();
                namespaces.is_none_or(|list| list.iter().any(|n| n == namespace))
            })
        };
        if !listed(&rule["match"]) || rule.get("exclude").is_some_and(listed) {
            continue;
        }
        applied = true;
        if !validate_pattern(Some(pod), &rule["validate"]["pattern"]) {
            return Some(false);
        }
    }
    applied.then_some(true)
}

fn selector_matches(selector: &Value, namespace: &str) -> bool {
    selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            assert_eq!(e["key"], "kubernetes.io/metadata.name");
            let listed = e["values"]
                .as_array()
                .expect("values")
                .iter()
                .any(|v| v == namespace);
            match e["operator"].as_str() {
                Some("In") => listed,
                Some("NotIn") => !listed,
                other => panic!("operator not modelled: {other:?}"),
            }
        })
}

/// Whether a generated ValidatingPolicy (JSON) admits `pod` in `namespace`, evaluating its CEL with the
/// `cel` crate (`object` and `variables` bound as Kyverno binds them); `None` when it does not apply.
pub fn validating_policy_admits(policy: &Value, pod: &Value, namespace: &str) -> Option<bool> {
    let spec = &policy["spec"];
    if !selector_matches(&spec["matchConstraints"]["namespaceSelector"], namespace) {
        return None;
    }
    let mut variables = serde_json::Map::new();
    let evaluate = |expression: &str, variables: &serde_json::Map<String, Value>| -> Value {
        let program =
            cel::Program::compile(expression).unwrap_or_else(|e| panic!("{expression}: {e:?}"));
        let mut context = cel::Context::default();
        context.add_variable("object", pod.clone()).expect("object");
        context
            .add_variable("variables", Value::Object(variables.clone()))
            .expect("variables");
        let result = program
            .execute(&context)
            .unwrap_or_else(|e| panic!("{expression}: {e:?}"));
        result.json().expect("json")
    };
    for variable in spec["variables"].as_array().into_iter().flatten() {
        let value = evaluate(
            variable["expression"].as_str().expect("expression"),
            &variables,
        );
        variables.insert(variable["name"].as_str().expect("name").to_string(), value);
    }
    let admitted = spec["validations"]
        .as_array()
        .expect("validations")
        .iter()
        .all(
            |v| match evaluate(v["expression"].as_str().expect("expression"), &variables) {
                Value::Bool(b) => b,
                other => panic!("validation returned {other}"),
            },
        );
    Some(admitted)
}

/// A Pod with the given images.
pub fn pod(namespace: &str, containers: &[&str], init: &[&str], ephemeral: &[&str]) -> Value {
    let list = |images: &[&str], prefix: &str| -> Value {
        images
            .iter()
            .enumerate()
            .map(|(i, image)| json!({"name": format!("{prefix}{i}"), "image": image}))
            .collect()
    };
    let mut spec = json!({ "containers": list(containers, "c") });
    if !init.is_empty() {
        spec["initContainers"] = list(init, "i");
    }
    if !ephemeral.is_empty() {
        spec["ephemeralContainers"] = list(ephemeral, "e");
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": namespace}, "spec": spec})
}

/// Directory of the upstream Kyverno schemas, or `None` (after printing SKIPPED) when `../shared` is
/// missing and not required.
pub fn kyverno_schema_dir() -> Option<PathBuf> {
    super::common::shared_schemas().map(|schemas| schemas.join("kyverno"))
}

/// Remove `null` values, as the API server drops them.
pub fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Every schema violation of `instance`, as `path: message` lines.
pub fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::draft4::new(schema).expect("compile schema");
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}
