//! Tests of the generated CRDs: only formats Kubernetes knows, and every value a CEL rule reads is
//! bounded (`maxLength`, `maxItems`, `maxProperties`), as is every list or map a rule sits under, so
//! the API server's cost estimate of each rule stays small (`tests/render/crd_admission.rs` measures it).

use serde_json::Value;

use super::*;

fn schemas() -> Vec<(String, Value)> {
    crds()
        .into_iter()
        .flat_map(|crd| {
            let kind = crd.spec.names.kind.clone();
            crd.spec.versions.into_iter().map(move |v| {
                let schema = v.schema.and_then(|s| s.open_api_v3_schema);
                (
                    kind.clone(),
                    serde_json::to_value(schema).expect("schema json"),
                )
            })
        })
        .collect()
}

fn formats(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(f)) = map.get("format") {
                out.push(f.clone());
            }
            map.iter()
                // `description` and `default` are text and examples, not schemas.
                .filter(|(k, _)| !matches!(k.as_str(), "description" | "default" | "example"))
                .for_each(|(_, v)| formats(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| formats(v, out)),
        _ => {}
    }
}

#[test]
fn crds_carry_only_formats_kubernetes_knows() {
    let mut found = Vec::new();
    for (_, schema) in schemas() {
        formats(&schema, &mut found);
    }
    found.sort();
    found.dedup();
    assert_eq!(found, ["date-time", "int32", "int64"]);
    let registry = serde_json::to_value(&crds()[0]).expect("json");
    let spec = &registry["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];
    let concurrency = &spec["spec"]["properties"]["migration"]["properties"]["concurrency"];
    assert_eq!(
        (
            &concurrency["format"],
            concurrency["minimum"].as_f64(),
            concurrency["maximum"].as_f64()
        ),
        (&serde_json::json!("int64"), Some(1.0), Some(64.0)),
        "a u32 keeps its stated bounds"
    );
    let bytes = &spec["status"]["properties"]["migration"]["properties"]["bytesCopied"];
    assert_eq!(
        (
            &bytes["format"],
            bytes["minimum"].as_f64(),
            bytes.get("maximum")
        ),
        (&serde_json::json!("int64"), Some(0.0), None),
        "a u64 becomes a non-negative int64"
    );
}

/// Removes string literals from a CEL expression (they may contain anything, e.g. `self.x` in a regex).
fn without_strings(rule: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = rule.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(_) if c == '\\' => {
                chars.next();
            }
            Some(q) if c == q => {
                quote = None;
                out.push('0');
            }
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None => out.push(c),
        }
    }
    out
}

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    Punct(char),
}

fn tokens(expression: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let chars: Vec<char> = expression.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
            continue;
        }
        if !c.is_whitespace() {
            out.push(Token::Punct(c));
        }
        i += 1;
    }
    out
}

const COMPREHENSIONS: [&str; 5] = ["all", "exists", "exists_one", "map", "filter"];

/// Every schema node a rule reads: `self` and `self.a.b` chains, and the variables of `all`,
/// `exists`, `map`, `filter` bound to list items. `Err` names a path the schema does not have.
fn read_nodes<'a>(rule: &str, node: &'a Value, root: bool) -> Result<Vec<&'a Value>, String> {
    let tokens = tokens(&without_strings(rule));
    let mut bound: Vec<(String, &'a Value)> = vec![("self".to_string(), node)];
    let mut reads = Vec::new();
    let mut i = 0;
    'chains: while i < tokens.len() {
        let Token::Ident(name) = &tokens[i] else {
            i += 1;
            continue;
        };
        let after_dot = i > 0 && tokens[i - 1] == Token::Punct('.');
        let Some(start) = bound
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .filter(|_| !after_dot)
        else {
            i += 1;
            continue;
        };
        let mut current = start;
        let mut j = i + 1;
        let mut in_metadata = false;
        while j + 1 < tokens.len() && tokens[j] == Token::Punct('.') {
            let Token::Ident(step) = &tokens[j + 1] else {
                break;
            };
            if tokens.get(j + 2) == Some(&Token::Punct('(')) {
                // A method call on `current`; a comprehension binds its first argument.
                if COMPREHENSIONS.contains(&step.as_str())
                    && let (Some(Token::Ident(var)), Some(Token::Punct(','))) =
                        (tokens.get(j + 3), tokens.get(j + 4))
                    && let Some(items) = current.get("items")
                {
                    bound.push((var.clone(), items));
                    // Continue after `all(var,`: the variable's declaration reads nothing.
                    reads.push(current);
                    i = j + 5;
                    continue 'chains;
                }
                break;
            }
            if root && std::ptr::eq(current, node) && step == "metadata" {
                // The server bounds `metadata.name` itself.
                in_metadata = true;
                break;
            }
            current = current
                .get("properties")
                .and_then(|p| p.get(step.as_str()))
                .ok_or_else(|| format!("rule {rule:?} reads {step:?}, which the schema lacks"))?;
            j += 2;
        }
        if !in_metadata {
            reads.push(current);
        }
        i = j;
    }
    Ok(reads)
}

/// Why `node` (read by a rule) is unbounded, if it is.
fn unbounded(node: &Value) -> Option<&'static str> {
    if node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        return node.get("maxLength").is_none().then_some("maxLength");
    }
    match node.get("type").and_then(Value::as_str) {
        Some("string") if node.get("maxLength").is_none() && node.get("enum").is_none() => {
            Some("maxLength")
        }
        Some("array") if node.get("maxItems").is_none() => Some("maxItems"),
        Some("object")
            if node.get("additionalProperties").is_some()
                && node.get("maxProperties").is_none() =>
        {
            Some("maxProperties")
        }
        _ => None,
    }
}

/// Walks `node` at `path`; `bounded` is false below a list or map without a size limit.
fn check(path: &str, node: &Value, root: bool, bounded: bool, problems: &mut Vec<String>) {
    if let Some(Value::Array(rules)) = node.get("x-kubernetes-validations") {
        if !bounded {
            problems.push(format!(
                "{path}: has CEL rules but sits in a list or map without maxItems/maxProperties"
            ));
        }
        for rule in rules.iter().filter_map(|r| r["rule"].as_str()) {
            match read_nodes(rule, node, root) {
                Err(e) => problems.push(format!("{path}: {e}")),
                Ok(reads) => {
                    for read in reads {
                        if let Some(missing) = unbounded(read) {
                            problems.push(format!(
                                "{path}: rule {rule:?} reads a value without {missing}"
                            ));
                        }
                    }
                }
            }
        }
    }
    if let Some(Value::Object(properties)) = node.get("properties") {
        for (name, child) in properties {
            check(&format!("{path}.{name}"), child, false, bounded, problems);
        }
    }
    if let Some(items) = node.get("items") {
        let bounded = bounded && node.get("maxItems").is_some();
        check(&format!("{path}[*]"), items, false, bounded, problems);
    }
    if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
        let bounded = bounded && node.get("maxProperties").is_some();
        check(&format!("{path}[*]"), values, false, bounded, problems);
    }
}

#[test]
fn every_value_a_cel_rule_reads_is_bounded() {
    let mut problems = Vec::new();
    let mut rules = 0;
    for (kind, schema) in schemas() {
        check(&kind, &schema, true, true, &mut problems);
        rules += serde_json::to_string(&schema)
            .expect("json")
            .matches("\"rule\":")
            .count();
    }
    assert!(rules > 40, "only {rules} rules found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_rule_reader_finds_what_rules_read() {
    let schema = serde_json::json!({"type": "object", "properties": {
        "a": {"type": "string"},
        "list": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 3}}}},
        "n": {"type": "object", "properties": {"b": {"type": "string", "maxLength": 9}}},
    }});
    let reads = read_nodes(
        "self.a.matches('self.n.b') && self.list.all(s, size(s.name) > 0) && has(self.n.b)",
        &schema,
        true,
    )
    .expect("resolves");
    let reads: Vec<Value> = reads.into_iter().cloned().collect();
    assert_eq!(
        reads,
        [
            schema["properties"]["a"].clone(),
            schema["properties"]["list"].clone(),
            schema["properties"]["list"]["items"]["properties"]["name"].clone(),
            schema["properties"]["n"]["properties"]["b"].clone(),
        ]
    );
    assert_eq!(unbounded(&reads[0]), Some("maxLength"));
    assert_eq!(unbounded(&reads[1]), Some("maxItems"));
    assert_eq!(unbounded(&reads[2]), None);
    assert!(read_nodes("self.missing == 1", &schema, true).is_err());
    assert!(
        read_nodes("size(self.metadata.name) < 9", &schema, true)
            .expect("metadata")
            .is_empty()
    );
}
