//! Refusals: the API server answering a child's apply (or prune) with 400, 403, 404 or 422, which no
//! retry alone fixes. Turns one into the `ApplyFailed` conditions the owner shows (child kind and name,
//! the server's message trimmed, secret values never included); writing them is the controllers' job.

use std::fmt;

use base64::Engine;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde_json::Value;

use super::status::DesiredCondition;
use crate::crd::{Reason, condition};

/// Longest part of the server's message kept in a condition (characters).
pub const MAX_SERVER_MESSAGE: usize = 480;
/// What replaces a secret value found in a server's message.
const REDACTED: &str = "<redacted>";
/// Shortest secret value that is searched for (shorter ones would garble every message).
const MIN_SECRET_LEN: usize = 4;

/// Condition types the operator writes besides Ready, Progressing and Degraded; a refusal keeps
/// them as they were.
const OTHER_CONDITIONS: [&str; 5] = [
    condition::DATABASE_READY,
    condition::CACHE_READY,
    condition::STORAGE_READY,
    condition::COMPONENTS_READY,
    condition::MIGRATING,
];

/// One child the API server refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What was attempted: `apply`, `delete` or `orphan`.
    pub action: &'static str,
    /// Kind of the child, e.g. `Service`.
    pub kind: String,
    /// Namespace of the child (`None` for cluster-scoped kinds).
    pub namespace: Option<String>,
    /// Name of the child.
    pub name: String,
    /// HTTP status code of the answer.
    pub code: u16,
    /// The answer's reason, e.g. `Invalid`, `Forbidden`, `NotFound`.
    pub reason: String,
    /// The server's message, trimmed to [`MAX_SERVER_MESSAGE`] and with secret values redacted.
    pub message: String,
}

/// Whether an answer is a refusal (the request itself is wrong or not allowed), not a transient failure.
pub fn is_refusal(code: u16) -> bool {
    matches!(code, 400 | 403 | 404 | 422)
}

impl Refusal {
    /// The refusal in `error`, if it is one. `object` is what was sent: its Secret values (if it is a
    /// Secret) are redacted from the server's message.
    pub fn from_error(
        action: &'static str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        object: Option<&Value>,
        error: &kube::Error,
    ) -> Option<Self> {
        let kube::Error::Api(status) = error else {
            return None;
        };
        if !is_refusal(status.code) {
            return None;
        }
        let secrets = object.map(secret_values).unwrap_or_default();
        let message = if status.message.is_empty() {
            status.reason.clone()
        } else {
            status.message.clone()
        };
        Some(Self {
            action,
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            code: status.code,
            reason: status.reason.clone(),
            message: trim(&redact(&message, &secrets), MAX_SERVER_MESSAGE),
        })
    }

    /// `Kind namespace/name` (or `Kind name` when cluster-scoped).
    pub fn child(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{} {namespace}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// The conditions of an owner whose child was refused: Ready=False and Degraded=True with reason
    /// [`Reason::ApplyFailed`] and this message, Progressing=False; the owner's other condition types are
    /// kept as they are in `current`.
    pub fn conditions(&self, current: &[Condition]) -> Vec<DesiredCondition> {
        let message = self.to_string();
        let mut conditions = vec![
            DesiredCondition::new(
                condition::READY,
                false,
                Reason::ApplyFailed,
                message.clone(),
            ),
            DesiredCondition::new(
                condition::PROGRESSING,
                false,
                Reason::ApplyFailed,
                "retrying with backoff",
            ),
            DesiredCondition::new(condition::DEGRADED, true, Reason::ApplyFailed, message),
        ];
        for kept in current {
            if let Some(type_) = OTHER_CONDITIONS.iter().find(|t| **t == kept.type_) {
                conditions.push(DesiredCondition::kept(
                    type_,
                    kept.status == "True",
                    &kept.reason,
                    kept.message.clone(),
                ));
            }
        }
        conditions
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = if self.reason.is_empty() {
            String::new()
        } else {
            format!(" {}", self.reason)
        };
        write!(
            f,
            "{}: the API server refused the {} ({}{reason}): {}",
            self.child(),
            self.action,
            self.code,
            self.message
        )
    }
}

/// At most `max` characters of `message`, with `…` marking a cut.
pub fn trim(message: &str, max: usize) -> String {
    let message = message.trim();
    match message.char_indices().nth(max) {
        None => message.to_string(),
        Some((cut, _)) => format!("{}…", message[..cut].trim_end()),
    }
}

/// The values of a Secret's `data` (as sent, base64, and decoded) and `stringData`; empty for any
/// other kind.
fn secret_values(object: &Value) -> Vec<String> {
    if object["kind"] != "Secret" {
        return Vec::new();
    }
    let mut values = Vec::new();
    if let Some(data) = object["data"].as_object() {
        for encoded in data.values().filter_map(Value::as_str) {
            values.push(encoded.to_string());
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded)
                && let Ok(text) = String::from_utf8(bytes)
            {
                values.push(text);
            }
        }
    }
    if let Some(data) = object["stringData"].as_object() {
        values.extend(data.values().filter_map(Value::as_str).map(str::to_string));
    }
    values
}

/// `message` with every occurrence of each secret value replaced; longest values first, so a value
/// containing another is replaced whole.
fn redact(message: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<&String> = secrets
        .iter()
        .filter(|s| s.chars().count() >= MIN_SECRET_LEN)
        .collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut message = message.to_string();
    for secret in secrets {
        message = message.replace(secret.as_str(), REDACTED);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use serde_json::json;

    fn api_error(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, reason).with_code(code).boxed())
    }

    #[test]
    fn only_client_errors_are_refusals() {
        for code in [400, 403, 404, 422] {
            let error = api_error(code, "Invalid", "no");
            assert!(
                Refusal::from_error("apply", "Service", Some("ns"), "s", None, &error).is_some(),
                "{code}"
            );
        }
        for code in [409, 429, 500, 503] {
            let error = api_error(code, "InternalError", "try again");
            assert!(
                Refusal::from_error("apply", "Service", Some("ns"), "s", None, &error).is_none(),
                "{code}"
            );
        }
    }

    #[test]
    fn message_names_the_child_and_the_servers_answer() {
        let error = api_error(
            422,
            "Invalid",
            "services \"platform-distribution\" is forbidden: ValidatingAdmissionPolicy 'deny' with binding 'deny' denied request: no distribution services here",
        );
        let refusal = Refusal::from_error(
            "apply",
            "Service",
            Some("registry"),
            "platform-distribution",
            None,
            &error,
        )
        .unwrap();
        assert_eq!(
            refusal.to_string(),
            "Service registry/platform-distribution: the API server refused the apply (422 Invalid): services \"platform-distribution\" is forbidden: ValidatingAdmissionPolicy 'deny' with binding 'deny' denied request: no distribution services here"
        );
        let cluster_scoped = Refusal::from_error(
            "apply",
            "ClusterPolicy",
            None,
            "p-restrict-registries",
            None,
            &api_error(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        )
        .unwrap();
        assert!(
            cluster_scoped
                .to_string()
                .starts_with("ClusterPolicy p-restrict-registries: the API server refused the apply (404 NotFound): the server could not find"),
            "{cluster_scoped}"
        );
    }

    #[test]
    fn long_messages_are_trimmed_on_a_character_boundary() {
        let long = "é".repeat(2 * MAX_SERVER_MESSAGE);
        let error = api_error(422, "Invalid", &long);
        let refusal =
            Refusal::from_error("apply", "ConfigMap", Some("ns"), "c", None, &error).unwrap();
        assert_eq!(refusal.message.chars().count(), MAX_SERVER_MESSAGE + 1);
        assert!(refusal.message.ends_with('…'));
        assert_eq!(trim("  short  ", 10), "short");
    }

    #[test]
    fn secret_values_never_reach_the_message() {
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "ns"},
            "data": {"password": "czNjcjN0LXZhbHVl"},
            "stringData": {"token": "plain-token-value", "short": "abc"},
        });
        let error = api_error(
            422,
            "Invalid",
            "denied: password is s3cr3t-value (czNjcjN0LXZhbHVl), token plain-token-value, abc stays",
        );
        let refusal =
            Refusal::from_error("apply", "Secret", Some("ns"), "s", Some(&secret), &error).unwrap();
        for leaked in ["s3cr3t-value", "czNjcjN0LXZhbHVl", "plain-token-value"] {
            assert!(!refusal.message.contains(leaked), "{}", refusal.message);
        }
        assert!(refusal.message.contains("<redacted>"));
        assert!(
            refusal.message.contains("abc stays"),
            "short values are left"
        );
        // Other kinds carry no secret values: nothing is redacted.
        let config_map = json!({"kind": "ConfigMap", "data": {"k": "plain-token-value"}});
        let refusal = Refusal::from_error(
            "apply",
            "ConfigMap",
            Some("ns"),
            "c",
            Some(&config_map),
            &error,
        )
        .unwrap();
        assert!(refusal.message.contains("plain-token-value"));
    }

    #[test]
    fn conditions_keep_the_owners_other_condition_types() {
        let refusal = Refusal::from_error(
            "apply",
            "Deployment",
            Some("ns"),
            "d",
            None,
            &api_error(403, "Forbidden", "deployments.apps is forbidden"),
        )
        .unwrap();
        let kept = Condition {
            type_: condition::DATABASE_READY.into(),
            status: "True".into(),
            reason: "ClusterReady".into(),
            message: "ok".into(),
            observed_generation: Some(1),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
        };
        let mut dropped = kept.clone();
        dropped.type_ = condition::READY.into();
        let conditions = refusal.conditions(&[kept, dropped]);
        let types: Vec<&str> = conditions.iter().map(|c| c.type_).collect();
        assert_eq!(types, ["Ready", "Progressing", "Degraded", "DatabaseReady"]);
        assert_eq!(conditions[0].reason, Reason::ApplyFailed.as_str());
        assert!(!conditions[0].status);
        assert!(conditions[2].status, "Degraded");
        assert!(conditions[3].status && conditions[3].reason == "ClusterReady");
        assert!(conditions[0].message.contains("Deployment ns/d"));
        assert!(conditions[0].message.contains("403 Forbidden"));
    }
}
