//! Unit tests of the tag policy plan: Harbor as the spec says sends nothing; a disabled rule is
//! enabled, a foreign one deleted, a missing one created; retention created, corrected, deleted.

use super::*;

fn spec(value: Value) -> RegistryProjectSpec {
    let mut base = json!({"registryRef": {"name": "platform"}});
    base.as_object_mut()
        .unwrap()
        .extend(value.as_object().unwrap().clone());
    serde_json::from_value(base).expect("a spec")
}

fn policies() -> RegistryProjectSpec {
    spec(json!({
        "immutability": [{"repositories": "**", "tags": "v*"},
                         {"repositories": "release/**", "tags": "**"}],
        "tagRetention": {"schedule": "0 0 2 * * *", "rules": [
            {"repositories": "**", "tags": "**", "keepLast": 10},
            {"repositories": "nightly/**", "tags": "**", "pushedWithinDays": 7}]},
    }))
}

/// Harbor as it answers once the operator wrote `policies()` (ids, priorities, references added).
fn harbor_state() -> PolicyObserved {
    let spec = policies();
    let immutable = spec
        .immutability
        .iter()
        .enumerate()
        .map(|(i, r)| ImmutableRule {
            id: Some(i as i64 + 1),
            priority: Some(0),
            ..immutable_rule(&r.repositories, &r.tags)
        })
        .collect();
    let mut retention = retention_policy(spec.tag_retention.as_ref().unwrap(), 7);
    retention.id = Some(3);
    for (i, rule) in retention.rules.iter_mut().enumerate() {
        rule.id = Some(i as i64);
        rule.priority = Some(0);
    }
    retention.trigger.as_mut().unwrap().references = Some(json!({"job_id": 12}));
    PolicyObserved {
        immutable,
        retention: Some((3, retention)),
    }
}

#[test]
fn harbor_as_the_spec_says_gets_no_write() {
    assert_eq!(plan_policies(&policies(), 7, &harbor_state()), vec![]);
    assert_eq!(
        plan_policies(&spec(json!({})), 7, &PolicyObserved::default()),
        vec![]
    );
}

#[test]
fn a_new_project_gets_every_rule_and_the_retention_policy() {
    let writes = plan_policies(&policies(), 7, &PolicyObserved::default());
    assert_eq!(writes.len(), 3, "{writes:?}");
    let PolicyWrite::CreateImmutable(rule) = &writes[0] else {
        panic!("{writes:?}")
    };
    assert_eq!(rule.tag_selectors[0].pattern, "v*");
    assert_eq!(
        rule.scope_selectors["repository"][0].decoration,
        "repoMatches"
    );
    let PolicyWrite::CreateRetention(policy) = &writes[2] else {
        panic!("{writes:?}")
    };
    assert_eq!(policy.scope.as_ref().unwrap().reference, 7);
    assert_eq!(policy.rules[0].template, "latestPushedK");
    assert_eq!(policy.rules[0].params["latestPushedK"], json!(10));
    assert_eq!(policy.rules[1].params["nDaysSinceLastPush"], json!(7));
    assert_eq!(
        policy.trigger.as_ref().unwrap().settings["cron"],
        "0 0 2 * * *"
    );
}

#[test]
fn drift_in_harbor_gets_one_write_each() {
    let mut state = harbor_state();
    state.immutable[0].disabled = true;
    state.immutable[1].tag_selectors[0].pattern = "latest".to_string();
    state.retention.as_mut().unwrap().1.rules[0]
        .params
        .insert("latestPushedK".to_string(), json!(3));
    let writes = plan_policies(&policies(), 7, &state);
    assert!(
        matches!(writes.as_slice(), [
            PolicyWrite::DeleteImmutable { id: 2 },
            PolicyWrite::EnableImmutable { id: 1, rule },
            PolicyWrite::CreateImmutable(created),
            PolicyWrite::UpdateRetention { id: 3, policy },
        ] if !rule.disabled && rule.id == Some(1)
            && created.scope_selectors["repository"][0].pattern == "release/**"
            && policy.id == Some(3) && policy.rules[0].params["latestPushedK"] == json!(10)),
        "{writes:?}"
    );
}

#[test]
fn policies_gone_from_the_spec_are_deleted_in_harbor() {
    let writes = plan_policies(&spec(json!({})), 7, &harbor_state());
    assert_eq!(
        writes,
        vec![
            PolicyWrite::DeleteImmutable { id: 1 },
            PolicyWrite::DeleteImmutable { id: 2 },
            PolicyWrite::DeleteRetention { id: 3 },
        ]
    );
}
