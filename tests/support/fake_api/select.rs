//! Label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!`exists) and field selectors
//! (`metadata.name`, `metadata.namespace` with `=`, `==`, `!=`). Pure; no store access.

use serde_json::Value;

use super::status::{ApiError, ApiResult};

#[derive(Clone, Debug)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed selector; the empty selector matches everything.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<(String, bool, String)>,
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_set(rest: &str) -> ApiResult<Vec<String>> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unable to parse requirement: set expected in {rest:?}"
            ))
        })?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_label_requirement(req: &str) -> ApiResult<Requirement> {
    if let Some(key) = req.strip_prefix('!') {
        return Ok(Requirement::NotExists(key.trim().to_string()));
    }
    if let Some((k, v)) = req.split_once("!=") {
        return Ok(Requirement::NotEquals(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
        return Ok(Requirement::Equals(k.trim().into(), v.trim().into()));
    }
    let words: Vec<&str> = req.splitn(2, char::is_whitespace).collect();
    match words.as_slice() {
        [key] => Ok(Requirement::Exists(key.to_string())),
        [key, rest] => {
            let rest = rest.trim_start();
            if let Some(set) = rest.strip_prefix("notin") {
                Ok(Requirement::NotIn(key.to_string(), parse_set(set)?))
            } else if let Some(set) = rest.strip_prefix("in") {
                Ok(Requirement::In(key.to_string(), parse_set(set)?))
            } else {
                Err(ApiError::BadRequest(format!(
                    "unable to parse requirement: {req:?}"
                )))
            }
        }
        _ => Err(ApiError::BadRequest(format!(
            "unable to parse requirement: {req:?}"
        ))),
    }
}

impl Selector {
    pub fn parse(label_selector: Option<&str>, field_selector: Option<&str>) -> ApiResult<Self> {
        let labels = split_top_level(label_selector.unwrap_or_default())
            .iter()
            .map(|r| parse_label_requirement(r))
            .collect::<ApiResult<Vec<_>>>()?;
        let mut fields = Vec::new();
        for req in split_top_level(field_selector.unwrap_or_default()) {
            let (key, negate, value) = if let Some((k, v)) = req.split_once("!=") {
                (k, true, v)
            } else if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
                (k, false, v)
            } else {
                return Err(ApiError::BadRequest(format!(
                    "invalid field selector: {req:?}"
                )));
            };
            let key = key.trim();
            if key != "metadata.name" && key != "metadata.namespace" {
                return Err(ApiError::BadRequest(format!(
                    "field label not supported: {key} (the fake API server supports metadata.name and metadata.namespace)"
                )));
            }
            fields.push((key.to_string(), negate, value.trim().to_string()));
        }
        Ok(Self { labels, fields })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let label = |k: &str| {
            obj.pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
        };
        let labels_ok = self.labels.iter().all(|r| match r {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, set) => label(k).is_some_and(|l| set.iter().any(|s| s == l)),
            Requirement::NotIn(k, set) => label(k).is_none_or(|l| !set.iter().any(|s| s == l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::NotExists(k) => label(k).is_none(),
        });
        let fields_ok = self.fields.iter().all(|(key, negate, value)| {
            let pointer = format!("/{}", key.replace('.', "/"));
            let actual = obj
                .pointer(&pointer)
                .and_then(Value::as_str)
                .unwrap_or_default();
            (actual == value) != *negate
        });
        labels_ok && fields_ok
    }
}
