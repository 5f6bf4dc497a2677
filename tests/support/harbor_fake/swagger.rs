//! Harbor's own API description as a checker for the fake Harbor: [`Swagger`] loads
//! `../shared/schemas/harbor/swagger-v2.15.2.yaml`, finds the operation a request names, and lists the
//! violations of a request ([`Swagger::check_request`]) or a response ([`Swagger::check_response`])
//! against it, [`KNOWN_GAPS`] allowed. It judges only: it must not hold the fake's state nor answer.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use hyper::header::HeaderMap;
use serde_json::{Map, Value, json};

use super::{BASE_PATH, KNOWN_GAPS};
use crate::support::common;

/// Harbor's swagger document and JSON Schema validators built from its definitions.
pub struct Swagger {
    doc: Value,
    /// `definitions` converted to JSON Schema draft 4, for requests (readOnly fields removed) and
    /// responses.
    request_definitions: Value,
    response_definitions: Value,
    validators: Mutex<HashMap<(String, bool), Arc<jsonschema::Validator>>>,
}

/// One operation of the swagger matched by a request.
#[derive(Clone, Debug)]
pub struct Operation {
    pub id: String,
    pub method: String,
    pub template: String,
    pub path_params: BTreeMap<String, String>,
    /// Parameters, `$ref`s resolved (path-level ones included).
    params: Vec<Value>,
    responses: Value,
}

impl Operation {
    /// `METHOD /path/template (operationId)`, for violation messages.
    pub fn label(&self) -> String {
        format!("{} {} ({})", self.method, self.template, self.id)
    }
}

impl Swagger {
    /// The swagger from `../shared` (or `REGISTRY_OPERATOR_SHARED_DIR`), parsed once per test binary;
    /// `None` (SKIPPED, or a panic under `REGISTRY_OPERATOR_REQUIRE_TOOLS=1`) when absent.
    pub fn shared() -> Option<Arc<Swagger>> {
        static SWAGGER: OnceLock<Option<Arc<Swagger>>> = OnceLock::new();
        SWAGGER
            .get_or_init(|| {
                let file = common::shared_schemas()?.join("harbor/swagger-v2.15.2.yaml");
                if !file.is_file() {
                    common::missing(
                        "../shared/schemas/harbor/swagger-v2.15.2.yaml",
                        "place Harbor's api/v2.0/swagger.yaml (v2.15.2) there",
                    );
                    return None;
                }
                Some(Arc::new(Swagger::load(&file)))
            })
            .clone()
    }

    pub fn load(file: &Path) -> Swagger {
        let text = std::fs::read_to_string(file).expect("read the swagger");
        let doc: Value = yaml_serde::from_str(&text).expect("parse the swagger");
        assert_eq!(doc["swagger"], "2.0", "a Swagger 2.0 document");
        assert_eq!(doc["basePath"], BASE_PATH);
        let convert_all = |request: bool| {
            let definitions = doc["definitions"].as_object().expect("definitions");
            Value::Object(
                definitions
                    .iter()
                    .map(|(name, schema)| (name.clone(), to_json_schema(schema, request)))
                    .collect(),
            )
        };
        Swagger {
            request_definitions: convert_all(true),
            response_definitions: convert_all(false),
            doc,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// The operation for `method` and a request path (`/api/v2.0/...`); literal segments win over
    /// `{parameters}`.
    pub fn find(&self, method: &str, path: &str) -> Result<Operation, String> {
        let Some(rest) = path.strip_prefix(BASE_PATH) else {
            return Err(format!("{path} is outside the base path {BASE_PATH}"));
        };
        let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        let mut best: Option<(usize, &String, BTreeMap<String, String>)> = None;
        for (template, _) in self.doc["paths"].as_object().expect("paths") {
            let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let mut params = BTreeMap::new();
            let mut literal = 0;
            let matched = parts.iter().zip(&segments).all(|(part, segment)| {
                if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    params.insert(name.to_string(), percent_decode(segment));
                    !segment.is_empty()
                } else {
                    literal += 1;
                    part == segment
                }
            });
            if matched && best.as_ref().is_none_or(|(l, _, _)| literal > *l) {
                best = Some((literal, template, params));
            }
        }
        let Some((_, template, path_params)) = best else {
            return Err(format!("no path template of the swagger matches {path}"));
        };
        let item = &self.doc["paths"][template];
        let lower = method.to_ascii_lowercase();
        let Some(op) = item.get(&lower) else {
            return Err(format!(
                "{method} is not an operation of {template} in the swagger"
            ));
        };
        let params = item["parameters"]
            .as_array()
            .into_iter()
            .chain(op["parameters"].as_array())
            .flatten()
            .map(|p| self.resolve(p, "parameters"))
            .collect();
        Ok(Operation {
            id: op["operationId"].as_str().expect("operationId").to_string(),
            method: method.to_string(),
            template: template.clone(),
            path_params,
            params,
            responses: op["responses"].clone(),
        })
    }

    fn resolve(&self, value: &Value, section: &str) -> Value {
        match value["$ref"].as_str() {
            Some(reference) => {
                let prefix = format!("#/{section}/");
                let name = reference
                    .strip_prefix(&prefix)
                    .unwrap_or_else(|| panic!("unexpected $ref {reference}"));
                self.doc[section][name].clone()
            }
            None => value.clone(),
        }
    }

    /// Violations of `operation`'s parameters and body by a request.
    pub fn check_request(
        &self,
        operation: &Operation,
        query: &[(String, String)],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Vec<String> {
        let op = operation.label();
        let mut errors = Vec::new();
        let declared = |location: &str, name: &str| {
            operation.params.iter().find(|p| {
                p["in"] == location
                    && p["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        };
        for (name, value) in query {
            match declared("query", name) {
                None => errors.push(format!("{op}: query parameter {name:?} is not declared")),
                Some(param) => errors
                    .extend(check_simple(param, value).map(|e| format!("{op}: query {name}: {e}"))),
            }
        }
        for (name, value) in &operation.path_params {
            match declared("path", name) {
                None => errors.push(format!("{op}: path parameter {name} is not declared")),
                Some(param) => errors
                    .extend(check_simple(param, value).map(|e| format!("{op}: path {name}: {e}"))),
            }
        }
        for param in &operation.params {
            let name = param["name"].as_str().unwrap_or_default();
            let required = param["required"] == true;
            match param["in"].as_str() {
                Some("query") if required && !query.iter().any(|(n, _)| n == name) => {
                    errors.push(format!("{op}: required query parameter {name} missing"));
                }
                Some("header") => {
                    if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
                        errors.extend(
                            check_simple(param, value).map(|e| format!("{op}: header {name}: {e}")),
                        );
                    }
                }
                _ => {}
            }
        }
        let body_param = operation.params.iter().find(|p| p["in"] == "body");
        let empty = body.iter().all(u8::is_ascii_whitespace);
        match (body_param, empty) {
            (None, true) => {}
            (None, false) => {
                errors.push(format!("{op}: the operation takes no body, one was sent"))
            }
            (Some(param), true) => {
                if param["required"] == true {
                    errors.push(format!("{op}: the body ({}) is required", param["name"]));
                }
            }
            (Some(param), false) => {
                let content_type = headers
                    .get(hyper::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !content_type.starts_with("application/json") {
                    errors.push(format!(
                        "{op}: body sent as {content_type:?}, the API consumes application/json"
                    ));
                }
                match serde_json::from_slice::<Value>(body) {
                    Err(e) => errors.push(format!("{op}: the body is not JSON: {e}")),
                    Ok(instance) => errors.extend(
                        self.validate(&param["schema"], true, &instance)
                            .into_iter()
                            .map(|e| format!("{op}: request body: {e}")),
                    ),
                }
            }
        }
        errors
    }

    /// Violations of `operation`'s declared responses by one the fake sends.
    pub fn check_response(
        &self,
        operation: &Operation,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Vec<String> {
        let op = operation.label();
        let mut errors = Vec::new();
        let empty = body.iter().all(u8::is_ascii_whitespace);
        let instance = if empty {
            None
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(value) => Some(value),
                Err(e) => return vec![format!("{op}: response {status} is not JSON: {e}")],
            }
        };
        let errors_schema = json!({"$ref": "#/definitions/Errors"});
        let mut validate = |schema: &Value, instance: &Value| {
            errors.extend(
                self.validate(schema, false, instance)
                    .into_iter()
                    .map(|e| format!("{op}: response {status}: {e}")),
            );
        };
        let declared = operation
            .responses
            .get(status.to_string())
            .or_else(|| operation.responses.get("default"))
            .map(|r| self.resolve(r, "responses"));
        let Some(response) = declared else {
            let gap = KNOWN_GAPS
                .iter()
                .any(|(id, code, _)| (*id == "*" || *id == operation.id) && *code == status);
            if !gap {
                return vec![format!(
                    "{op}: status {status} is not declared in the swagger"
                )];
            }
            if let Some(instance) = &instance {
                validate(&errors_schema, instance);
            }
            return errors;
        };
        match (&response.get("schema"), &instance) {
            (Some(schema), Some(instance)) => validate(schema, instance),
            (Some(_), None) if status < 300 => {
                // go-swagger writes nothing for a nil payload (getGCSchedule without a schedule).
                if operation.id != "getGCSchedule" {
                    errors.push(format!("{op}: response {status} must carry a body"));
                }
            }
            (Some(_), None) => {}
            // Harbor's error middleware writes `Errors` for every error, declared schema or not.
            (None, Some(instance)) if status >= 400 => validate(&errors_schema, instance),
            (None, Some(_)) => errors.push(format!(
                "{op}: response {status} declares no body, one was sent"
            )),
            (None, None) => {}
        }
        if response["headers"].get("Location").is_some()
            && !headers.contains_key(hyper::header::LOCATION)
        {
            errors.push(format!("{op}: response {status} lacks its Location header"));
        }
        errors
    }

    /// Validation errors of `instance` against a swagger schema (may be a `$ref` into `definitions`).
    pub fn validate(&self, schema: &Value, request: bool, instance: &Value) -> Vec<String> {
        let key = (schema.to_string(), request);
        let validator = {
            let mut cache = self.validators.lock().unwrap();
            Arc::clone(cache.entry(key).or_insert_with(|| {
                let definitions = if request {
                    &self.request_definitions
                } else {
                    &self.response_definitions
                };
                let root = json!({
                    "definitions": definitions,
                    "allOf": [to_json_schema(schema, request)],
                });
                Arc::new(
                    jsonschema::draft4::options()
                        .should_validate_formats(true)
                        .build(&root)
                        .unwrap_or_else(|e| {
                            panic!("swagger schema {schema} does not compile: {e}")
                        }),
                )
            }))
        };
        validator
            .iter_errors(instance)
            .map(|e| format!("{e} at {:?}", e.instance_path().to_string()))
            .collect()
    }
}

/// A Swagger 2.0 schema as JSON Schema draft 4:
/// - `x-nullable` / `x-isnullable` → `null` allowed;
/// - objects with `properties` get `additionalProperties: false` (unknown fields are errors);
/// - `type: object` with neither `properties` nor `additionalProperties` is go-swagger's `interface{}`
///   (any JSON value: Harbor's GC `parameters` values are booleans and numbers), so it accepts anything;
/// - for requests, `readOnly` properties are removed (sending one is then an unknown field).
fn to_json_schema(schema: &Value, request: bool) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    if let Some(reference) = map.get("$ref") {
        return json!({ "$ref": reference });
    }
    let mut out = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "properties" => {
                let properties = value
                    .as_object()
                    .expect("properties")
                    .iter()
                    .filter(|(_, p)| !(request && p["readOnly"] == true))
                    .map(|(name, p)| (name.clone(), to_json_schema(p, request)))
                    .collect();
                out.insert(key.clone(), Value::Object(properties));
            }
            "items" => {
                out.insert(key.clone(), to_json_schema(value, request));
            }
            "additionalProperties" if value.is_object() => {
                out.insert(key.clone(), to_json_schema(value, request));
            }
            "allOf" | "anyOf" | "oneOf" => {
                let list = value
                    .as_array()
                    .expect("list")
                    .iter()
                    .map(|s| to_json_schema(s, request))
                    .collect();
                out.insert(key.clone(), Value::Array(list));
            }
            k if k.starts_with("x-")
                || k == "example"
                || k == "readOnly"
                || k == "discriminator" => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    let nullable = map.get("x-nullable") == Some(&Value::Bool(true))
        || map.get("x-isnullable") == Some(&Value::Bool(true));
    if nullable && let Some(Value::String(kind)) = out.get("type").cloned() {
        out.insert("type".to_string(), json!([kind, "null"]));
    }
    let is_object = out.get("type") == Some(&json!("object"));
    if is_object && !out.contains_key("properties") && !out.contains_key("additionalProperties") {
        return json!({});
    }
    if out.contains_key("properties") && !out.contains_key("additionalProperties") {
        out.insert("additionalProperties".to_string(), Value::Bool(false));
    }
    Value::Object(out)
}

/// Type check of a query, path or header parameter value.
fn check_simple(param: &Value, value: &str) -> Option<String> {
    match param["type"].as_str() {
        Some("integer") if value.parse::<i64>().is_err() => {
            Some(format!("{value:?} is not an integer"))
        }
        Some("boolean") if value != "true" && value != "false" => {
            Some(format!("{value:?} is not a boolean"))
        }
        _ if param["minLength"]
            .as_u64()
            .is_some_and(|min| (value.len() as u64) < min) =>
        {
            Some(format!("{value:?} is shorter than {}", param["minLength"]))
        }
        _ => None,
    }
}

fn percent_decode(segment: &str) -> String {
    form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}
