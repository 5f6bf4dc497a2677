//! The pure plan of a project's tag policies: the immutability rules and the tag retention policy
//! `spec.immutability` and `spec.tagRetention` ask for, compared with what Harbor holds; the writes
//! that bring Harbor there (none when equal). The spec is the whole truth: a rule added in Harbor's
//! UI is deleted, a disabled one enabled, a retention policy Harbor holds without `tagRetention` in
//! the spec is deleted.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::types::{
    ImmutableRule, RetentionPolicy, RetentionPolicyScope, RetentionRule, RetentionRuleTrigger,
    Selector,
};
use crate::crd::{RegistryProjectSpec, TagRetention};

/// Harbor's action and template of an immutability rule.
pub const IMMUTABLE_ACTION: &str = "immutable";
pub const IMMUTABLE_TEMPLATE: &str = "immutable_template";
/// Retention templates: keep the N most recently pushed, keep those pushed within D days.
pub const KEEP_LAST: &str = "latestPushedK";
pub const PUSHED_WITHIN_DAYS: &str = "nDaysSinceLastPush";
/// A retention tag selector's extras: untagged artifacts are not kept by the rule.
pub const TAGGED_ONLY: &str = r#"{"untagged":false}"#;
const REPOSITORY: &str = "repository";
const DOUBLESTAR: &str = "doublestar";

/// What Harbor holds of the project's policies.
#[derive(Clone, Debug, Default)]
pub struct PolicyObserved {
    /// `ListImmuRules`.
    pub immutable: Vec<ImmutableRule>,
    /// `getRetention` of the project's metadata `retention_id`, with that id.
    pub retention: Option<(i64, RetentionPolicy)>,
}

/// One write to Harbor's policies, in the order they must be sent.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyWrite {
    DeleteImmutable {
        id: i64,
    },
    /// A rule matching a wanted one but disabled (in Harbor's UI): enabled again.
    EnableImmutable {
        id: i64,
        rule: ImmutableRule,
    },
    CreateImmutable(ImmutableRule),
    CreateRetention(RetentionPolicy),
    UpdateRetention {
        id: i64,
        policy: RetentionPolicy,
    },
    DeleteRetention {
        id: i64,
    },
}

impl PolicyWrite {
    /// For the log and the status message.
    pub fn describe(&self) -> &'static str {
        match self {
            PolicyWrite::DeleteImmutable { .. } => "immutability rule deleted",
            PolicyWrite::EnableImmutable { .. } => "immutability rule enabled",
            PolicyWrite::CreateImmutable(_) => "immutability rule created",
            PolicyWrite::CreateRetention(_) => "tag retention created",
            PolicyWrite::UpdateRetention { .. } => "tag retention corrected",
            PolicyWrite::DeleteRetention { .. } => "tag retention deleted",
        }
    }
}

fn selector(decoration: &str, pattern: &str, extras: Option<&str>) -> Selector {
    Selector {
        kind: DOUBLESTAR.to_string(),
        decoration: decoration.to_string(),
        pattern: pattern.to_string(),
        extras: extras.map(str::to_string),
    }
}

fn repositories(pattern: &str) -> BTreeMap<String, Vec<Selector>> {
    [(
        REPOSITORY.to_string(),
        vec![selector("repoMatches", pattern, None)],
    )]
    .into_iter()
    .collect()
}

/// The immutability rule for tags matching `tags` in repositories matching `repositories`.
pub fn immutable_rule(repositories_pattern: &str, tags: &str) -> ImmutableRule {
    ImmutableRule {
        id: None,
        priority: None,
        disabled: false,
        action: IMMUTABLE_ACTION.to_string(),
        template: IMMUTABLE_TEMPLATE.to_string(),
        tag_selectors: vec![selector("matches", tags, None)],
        scope_selectors: repositories(repositories_pattern),
    }
}

/// `(repositories, tags)` of a rule of the shape the operator writes; `None` for any other shape.
fn immutable_key(rule: &ImmutableRule) -> Option<(String, String)> {
    if rule.action != IMMUTABLE_ACTION
        || rule.template != IMMUTABLE_TEMPLATE
        || rule.scope_selectors.len() != 1
    {
        return None;
    }
    match (
        rule.tag_selectors.as_slice(),
        rule.scope_selectors.get(REPOSITORY).map(Vec::as_slice),
    ) {
        ([tag], Some([repo]))
            if tag.kind == DOUBLESTAR
                && tag.decoration == "matches"
                && repo.kind == DOUBLESTAR
                && repo.decoration == "repoMatches" =>
        {
            Some((repo.pattern.clone(), tag.pattern.clone()))
        }
        _ => None,
    }
}

/// The retention policy of `spec` for project `project_id`: any rule retains (`or`), on its cron.
pub fn retention_policy(spec: &TagRetention, project_id: i64) -> RetentionPolicy {
    let rules = spec
        .rules
        .iter()
        .map(|rule| {
            let (template, count) = match (rule.keep_last, rule.pushed_within_days) {
                (Some(n), _) => (KEEP_LAST, n),
                (None, days) => (PUSHED_WITHIN_DAYS, days.unwrap_or(1)),
            };
            RetentionRule {
                id: None,
                priority: None,
                disabled: false,
                action: "retain".to_string(),
                template: template.to_string(),
                params: [(template.to_string(), json!(count))].into_iter().collect(),
                tag_selectors: vec![selector("matches", &rule.tags, Some(TAGGED_ONLY))],
                scope_selectors: repositories(&rule.repositories),
            }
        })
        .collect();
    let settings: Map<String, Value> = [("cron".to_string(), json!(spec.schedule))]
        .into_iter()
        .collect();
    RetentionPolicy {
        id: None,
        algorithm: "or".to_string(),
        rules,
        trigger: Some(RetentionRuleTrigger {
            kind: "Schedule".to_string(),
            settings,
            references: None,
        }),
        scope: Some(RetentionPolicyScope {
            level: "project".to_string(),
            reference: project_id,
        }),
    }
}

/// `policy` without what Harbor adds (ids, priorities, the trigger's references), to compare.
fn comparable(policy: &RetentionPolicy) -> RetentionPolicy {
    let mut policy = policy.clone();
    policy.id = None;
    for rule in &mut policy.rules {
        rule.id = None;
        rule.priority = None;
    }
    if let Some(trigger) = &mut policy.trigger {
        trigger.references = None;
    }
    policy
}

/// The writes that bring the project's policies in Harbor to `spec`; empty when they match.
pub fn plan_policies(
    spec: &RegistryProjectSpec,
    project_id: i64,
    observed: &PolicyObserved,
) -> Vec<PolicyWrite> {
    let mut writes = Vec::new();
    let wanted: Vec<(String, String)> = spec
        .immutability
        .iter()
        .map(|r| (r.repositories.clone(), r.tags.clone()))
        .collect();
    let mut claimed = BTreeSet::new();
    let mut enable = Vec::new();
    for rule in &observed.immutable {
        let Some(id) = rule.id else { continue };
        match immutable_key(rule).filter(|k| wanted.contains(k) && !claimed.contains(k)) {
            Some(key) => {
                if rule.disabled {
                    let mut fixed = immutable_rule(&key.0, &key.1);
                    fixed.id = Some(id);
                    fixed.priority = rule.priority;
                    enable.push(PolicyWrite::EnableImmutable { id, rule: fixed });
                }
                claimed.insert(key);
            }
            None => writes.push(PolicyWrite::DeleteImmutable { id }),
        }
    }
    writes.extend(enable);
    let mut created = BTreeSet::new();
    for key in &wanted {
        if !claimed.contains(key) && created.insert(key.clone()) {
            writes.push(PolicyWrite::CreateImmutable(immutable_rule(&key.0, &key.1)));
        }
    }
    match (&spec.tag_retention, &observed.retention) {
        (Some(retention), None) => {
            writes.push(PolicyWrite::CreateRetention(retention_policy(
                retention, project_id,
            )));
        }
        (Some(retention), Some((id, current))) => {
            let want = retention_policy(retention, project_id);
            if comparable(current) != want {
                let mut policy = want;
                policy.id = Some(*id);
                writes.push(PolicyWrite::UpdateRetention { id: *id, policy });
            }
        }
        (None, Some((id, _))) => writes.push(PolicyWrite::DeleteRetention { id: *id }),
        (None, None) => {}
    }
    writes
}

#[cfg(test)]
#[path = "policies_tests.rs"]
mod tests;
