//! The fake Harbor's tag policies of a project: immutability rules
//! (`/projects/{project_name_or_id}/immutabletagrules`, at most 15 a project) and tag retention
//! policies (`/retentions`; `createRetention` binds the policy to its scope's project through the
//! project metadata `retention_id`, `deleteRetention` unbinds it), refused as Harbor refuses them
//! (unknown action, template, selector kind or decoration; a retention template without its number;
//! a second policy for a project). Test helpers make drift as Harbor's UI would.

use hyper::StatusCode;
use hyper::header::HeaderMap;
use serde_json::{Value, json};

use super::{Answer, BASE_PATH, HarborFake, Operation, State};

/// Harbor's limit of immutability rules (and retention rules) per project.
const MAX_RULES: usize = 15;
/// Retention templates and whether each takes a number (`params[template]`).
const RETENTION_TEMPLATES: &[(&str, bool)] = &[
    ("always", false),
    ("latestPushedK", true),
    ("latestPulledN", true),
    ("nDaysSinceLastPull", true),
    ("nDaysSinceLastPush", true),
];

/// Answers the policy operations; `None` for any other operation.
pub(super) fn dispatch(
    state: &mut State,
    operation: &Operation,
    headers: &HeaderMap,
    body: &Value,
) -> Option<Answer> {
    let answer = match operation.id.as_str() {
        "ListImmuRules" | "CreateImmuRule" | "UpdateImmuRule" | "DeleteImmuRule" => {
            let Some(project) = project_id(state, operation, headers) else {
                let key = &operation.path_params["project_name_or_id"];
                return Some(Answer::error(
                    StatusCode::NOT_FOUND,
                    format!("project {key} not found"),
                ));
            };
            immutable(state, operation, project, body)
        }
        "createRetention" => create_retention(state, body),
        "getRetention" | "updateRetention" | "deleteRetention" => {
            let id: i64 = operation.path_params["id"]
                .parse()
                .expect("checked integer");
            let Some(current) = state.retentions.get(&id).cloned() else {
                return Some(Answer::error(
                    StatusCode::NOT_FOUND,
                    format!("retention policy {id} not found"),
                ));
            };
            match operation.id.as_str() {
                "getRetention" => Answer::ok(current),
                "updateRetention" => {
                    if body["scope"] != current["scope"] {
                        return Some(Answer::error(
                            StatusCode::BAD_REQUEST,
                            "the scope of a retention policy cannot change",
                        ));
                    }
                    match check_retention(body) {
                        Err(message) => Answer::error(StatusCode::BAD_REQUEST, message),
                        Ok(()) => {
                            let stored =
                                stored_retention(id, body, &current["trigger"]["references"]);
                            state.retentions.insert(id, stored);
                            Answer::empty(StatusCode::OK)
                        }
                    }
                }
                _ => {
                    state.retentions.remove(&id);
                    let project = current["scope"]["ref"].as_i64().unwrap_or_default();
                    if let Some(p) = state.projects.get_mut(&project) {
                        p.metadata.remove("retention_id");
                    }
                    Answer::empty(StatusCode::OK)
                }
            }
        }
        _ => return None,
    };
    Some(answer)
}

/// The project of `project_name_or_id` (a name when `X-Is-Resource-Name: true`).
fn project_id(state: &State, operation: &Operation, headers: &HeaderMap) -> Option<i64> {
    let by_name = headers
        .get("X-Is-Resource-Name")
        .is_some_and(|v| v == "true");
    let key = &operation.path_params["project_name_or_id"];
    state
        .projects
        .values()
        .find(|p| match key.parse::<i64>() {
            Ok(id) if !by_name => p.id == id,
            _ => p.name == *key,
        })
        .map(|p| p.id)
}

fn immutable(state: &mut State, operation: &Operation, project: i64, body: &Value) -> Answer {
    let rule_id = || -> i64 {
        operation.path_params["immutable_rule_id"]
            .parse()
            .expect("checked integer")
    };
    match operation.id.as_str() {
        "ListImmuRules" => Answer::list(
            state
                .immutable
                .iter()
                .filter(|(_, (p, _))| *p == project)
                .map(|(_, (_, rule))| rule.clone())
                .collect(),
        ),
        "CreateImmuRule" => {
            if let Err(message) = check_immutable(body) {
                return Answer::error(StatusCode::BAD_REQUEST, message);
            }
            if state
                .immutable
                .values()
                .filter(|(p, _)| *p == project)
                .count()
                >= MAX_RULES
            {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    format!("a project has at most {MAX_RULES} immutable tag rules"),
                );
            }
            let id = state.next_id;
            state.next_id += 1;
            state
                .immutable
                .insert(id, (project, stored_immutable(id, body)));
            Answer::created(
                format!("{BASE_PATH}/projects/{project}/immutabletagrules/{id}"),
                None,
            )
        }
        "UpdateImmuRule" | "DeleteImmuRule" => {
            let id = rule_id();
            if state.immutable.get(&id).is_none_or(|(p, _)| *p != project) {
                return Answer::error(
                    StatusCode::NOT_FOUND,
                    format!("immutable tag rule {id} not found"),
                );
            }
            if operation.id == "DeleteImmuRule" {
                state.immutable.remove(&id);
                return Answer::empty(StatusCode::OK);
            }
            if let Err(message) = check_immutable(body) {
                return Answer::error(StatusCode::BAD_REQUEST, message);
            }
            state
                .immutable
                .insert(id, (project, stored_immutable(id, body)));
            Answer::empty(StatusCode::OK)
        }
        _ => unreachable!("dispatched above"),
    }
}

/// One doublestar selector list of length 1 whose decoration is one of `decorations`.
fn check_selectors(selectors: &Value, what: &str, decorations: &[&str]) -> Result<(), String> {
    match selectors.as_array().map(Vec::as_slice) {
        Some([one])
            if one["kind"] == "doublestar"
                && decorations.contains(&one["decoration"].as_str().unwrap_or_default())
                && one["pattern"].as_str().is_some_and(|p| !p.is_empty()) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{what}: one doublestar selector with a pattern and decoration {decorations:?}"
        )),
    }
}

fn check_scope_and_tags(rule: &Value, tag_decorations: &[&str]) -> Result<(), String> {
    check_selectors(&rule["tag_selectors"], "tag_selectors", tag_decorations)?;
    let scopes = rule["scope_selectors"].as_object();
    if scopes.is_none_or(|s| s.len() != 1) {
        return Err("scope_selectors: only repository".to_string());
    }
    check_selectors(
        &rule["scope_selectors"]["repository"],
        "scope_selectors.repository",
        &["repoMatches", "repoExcludes"],
    )
}

fn check_immutable(rule: &Value) -> Result<(), String> {
    if rule["action"] != "immutable" || rule["template"] != "immutable_template" {
        return Err(
            "an immutable tag rule has action immutable, template immutable_template".into(),
        );
    }
    check_scope_and_tags(rule, &["matches", "excludes"])
}

fn stored_immutable(id: i64, body: &Value) -> Value {
    let mut rule = body.clone();
    rule["id"] = json!(id);
    if rule.get("priority").is_none() {
        rule["priority"] = json!(0);
    }
    if rule.get("disabled").is_none() {
        rule["disabled"] = json!(false);
    }
    rule
}

fn check_retention(policy: &Value) -> Result<(), String> {
    if policy["algorithm"] != "or" {
        return Err("algorithm: only or".to_string());
    }
    let trigger = &policy["trigger"];
    let cron = trigger["settings"]["cron"].as_str().unwrap_or_default();
    if trigger["kind"] != "Schedule" || !(cron.is_empty() || cron.split_whitespace().count() == 6) {
        return Err("trigger: kind Schedule, settings.cron a six-field cron or empty".to_string());
    }
    if policy["scope"]["level"] != "project" {
        return Err("scope.level: only project".to_string());
    }
    let rules = policy["rules"].as_array().cloned().unwrap_or_default();
    if rules.len() > MAX_RULES {
        return Err(format!("at most {MAX_RULES} rules"));
    }
    for (i, rule) in rules.iter().enumerate() {
        let template = rule["template"].as_str().unwrap_or_default();
        let Some((_, numbered)) = RETENTION_TEMPLATES.iter().find(|(t, _)| *t == template) else {
            return Err(format!("rules[{i}]: unknown template {template:?}"));
        };
        if rule["action"] != "retain" {
            return Err(format!("rules[{i}]: action: only retain"));
        }
        if *numbered && !rule["params"][template].is_u64() {
            return Err(format!(
                "rules[{i}]: params.{template}: a number is required"
            ));
        }
        check_scope_and_tags(rule, &["matches", "excludes"])
            .map_err(|e| format!("rules[{i}]: {e}"))?;
    }
    Ok(())
}

/// A policy as Harbor keeps and answers it: its id, each rule's index as id, a schedule reference.
fn stored_retention(id: i64, body: &Value, references: &Value) -> Value {
    let mut policy = body.clone();
    policy["id"] = json!(id);
    if let Some(rules) = policy["rules"].as_array_mut() {
        for (i, rule) in rules.iter_mut().enumerate() {
            rule["id"] = json!(i);
            rule["priority"] = json!(0);
        }
    }
    policy["trigger"]["references"] = if references.is_null() {
        json!({"job_id": id + 1000})
    } else {
        references.clone()
    };
    policy
}

fn create_retention(state: &mut State, body: &Value) -> Answer {
    if let Err(message) = check_retention(body) {
        return Answer::error(StatusCode::BAD_REQUEST, message);
    }
    let project = body["scope"]["ref"].as_i64().unwrap_or_default();
    let Some(found) = state.projects.get(&project) else {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            format!("project {project} not found"),
        );
    };
    if let Some(existing) = found.metadata.get("retention_id") {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            format!("project {project} already has retention policy {existing}"),
        );
    }
    let id = state.next_id;
    state.next_id += 1;
    state
        .retentions
        .insert(id, stored_retention(id, body, &Value::Null));
    state
        .projects
        .get_mut(&project)
        .expect("found")
        .metadata
        .insert("retention_id".to_string(), json!(id.to_string()));
    Answer::created(format!("{BASE_PATH}/retentions/{id}"), None)
}

/// A project deleted: Harbor deletes its rules and its retention policy with it.
pub(super) fn project_deleted(state: &mut State, project: i64) {
    state.immutable.retain(|_, (p, _)| *p != project);
    state
        .retentions
        .retain(|_, policy| policy["scope"]["ref"].as_i64() != Some(project));
}

impl HarborFake {
    fn project_key(&self, name: &str) -> i64 {
        let state = self.state.lock().unwrap();
        state
            .projects
            .values()
            .find(|p| p.name == name)
            .map(|p| p.id)
            .expect("project")
    }

    /// The project's immutability rules as `ListImmuRules` shows them.
    pub fn immutable_rules(&self, project: &str) -> Vec<Value> {
        let id = self.project_key(project);
        let state = self.state.lock().unwrap();
        state
            .immutable
            .values()
            .filter(|(p, _)| *p == id)
            .map(|(_, rule)| rule.clone())
            .collect()
    }

    /// The project's retention policy (through its metadata `retention_id`) as `getRetention` shows it.
    pub fn retention(&self, project: &str) -> Option<Value> {
        let id = self.project_key(project);
        let state = self.state.lock().unwrap();
        let retention: i64 = state.projects[&id]
            .metadata
            .get("retention_id")?
            .as_str()?
            .parse()
            .ok()?;
        state.retentions.get(&retention).cloned()
    }

    /// Changes the project's immutability rules as someone in Harbor's UI would (drift): `change`
    /// gets the rules in id order; a rule without `id` is added.
    pub fn tamper_immutable_rules(&self, project: &str, change: impl FnOnce(&mut Vec<Value>)) {
        let id = self.project_key(project);
        let mut state = self.state.lock().unwrap();
        let mut rules: Vec<Value> = state
            .immutable
            .values()
            .filter(|(p, _)| *p == id)
            .map(|(_, rule)| rule.clone())
            .collect();
        change(&mut rules);
        state.immutable.retain(|_, (p, _)| *p != id);
        for mut rule in rules {
            let rule_id = rule["id"].as_i64().unwrap_or_else(|| {
                state.next_id += 1;
                state.next_id - 1
            });
            rule["id"] = json!(rule_id);
            state.immutable.insert(rule_id, (id, rule));
        }
    }

    /// Changes the project's retention policy as someone in Harbor's UI would (drift).
    pub fn tamper_retention(&self, project: &str, change: impl FnOnce(&mut Value)) {
        let id = self.project_key(project);
        let mut state = self.state.lock().unwrap();
        let retention: i64 = state.projects[&id].metadata["retention_id"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .expect("a retention policy");
        change(state.retentions.get_mut(&retention).expect("policy"));
    }
}
