//! Scenario tests of a RegistryProject's tag policies through Harbor's API (the real binary, the real
//! control plane, the swagger-checked fake Harbor): immutability rules and the tag retention policy
//! created with the project; no Harbor write at rest; a rule disabled or added in Harbor's UI and a
//! retention policy edited there are corrected; policies gone from the spec are deleted in Harbor.

use std::time::Duration;

use serde_json::{Value, json};

use super::project::{NS, REG_NS, T, harbor_registry, project, registry_project, wait_reason};
use crate::support::harbor_fake::HarborFake;
use crate::support::scenario::*;

/// `(repositories, tags, disabled)` of each immutability rule Harbor holds.
fn rules(harbor: &HarborFake, name: &str) -> Vec<(String, String, bool)> {
    let mut rules: Vec<_> = harbor
        .immutable_rules(name)
        .iter()
        .map(|r| {
            (
                r["scope_selectors"]["repository"][0]["pattern"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                r["tag_selectors"][0]["pattern"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                r["disabled"] == true,
            )
        })
        .collect();
    rules.sort();
    rules
}

fn wanted_rules() -> Vec<(String, String, bool)> {
    vec![
        ("**".to_string(), "v*".to_string(), false),
        ("release/**".to_string(), "**".to_string(), false),
    ]
}

/// `(template, number, repositories, tags)` of each retention rule, and the cron.
type Retention = (Vec<(String, Value, String, String)>, String);

/// The project's retention policy as [`Retention`].
fn retention(harbor: &HarborFake, name: &str) -> Option<Retention> {
    let policy = harbor.retention(name)?;
    let rules = policy["rules"]
        .as_array()?
        .iter()
        .map(|r| {
            let template = r["template"].as_str().unwrap_or_default().to_string();
            (
                template.clone(),
                r["params"][&template].clone(),
                r["scope_selectors"]["repository"][0]["pattern"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                r["tag_selectors"][0]["pattern"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    Some((
        rules,
        policy["trigger"]["settings"]["cron"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ))
}

fn wanted_retention() -> Retention {
    (
        vec![
            ("latestPushedK".into(), json!(10), "**".into(), "**".into()),
            (
                "nDaysSinceLastPush".into(),
                json!(7),
                "nightly/**".into(),
                "**".into(),
            ),
        ],
        "0 0 2 * * *".to_string(),
    )
}

#[test]
fn immutability_and_retention_created_kept_corrected_and_removed() {
    let Some(server) = server() else {
        return;
    };
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let harbor_url = harbor.url();
    let _operator = Operator::start(
        &server,
        logs.path(),
        &[
            "--harbor-api-url",
            &harbor_url,
            "--requeue",
            "1s",
            "--resync",
            "2s",
        ],
    );
    harbor_registry(&server);
    server.put_object(registry_project(
        "team-p",
        json!({
            "registryRef": {"name": "platform", "namespace": REG_NS},
            "immutability": [{"repositories": "**", "tags": "v*"},
                             {"repositories": "release/**", "tags": "**"}],
            "tagRetention": {"schedule": "0 0 2 * * *", "rules": [
                {"repositories": "**", "tags": "**", "keepLast": 10},
                {"repositories": "nightly/**", "tags": "**", "pushedWithinDays": 7}]},
        }),
    ));
    wait_reason(&server, "team-p", "ProjectReady");

    // Created with the project: the rules, the policy bound to the project (scope and metadata).
    let created = harbor.project("team-p").expect("project created");
    wait_for("policies created", T, || {
        (rules(&harbor, "team-p") == wanted_rules()
            && retention(&harbor, "team-p") == Some(wanted_retention()))
        .then_some(())
    });
    let policy = harbor.retention("team-p").unwrap();
    assert_eq!(
        policy["scope"],
        json!({"level": "project", "ref": created["project_id"]})
    );
    assert_eq!(policy["algorithm"], "or");
    assert_eq!(
        harbor.project("team-p").unwrap()["metadata"]["retention_id"],
        json!(policy["id"].to_string())
    );
    assert_eq!(harbor.count(&["CreateImmuRule"]), 2);
    assert_eq!(harbor.count(&["createRetention"]), 1);

    // At rest: resyncs read the rules and the policy and write nothing.
    let writes = harbor.writes();
    let reads = harbor.count(&["ListImmuRules", "getRetention"]);
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(harbor.writes(), writes, "no write to Harbor at rest");
    assert!(harbor.count(&["ListImmuRules", "getRetention"]) > reads);

    // Drift in Harbor's UI: a rule disabled, a rule added, the retention count and cron edited.
    harbor.tamper_immutable_rules("team-p", |rules| {
        rules[0]["disabled"] = json!(true);
        let mut extra = rules[1].clone();
        extra.as_object_mut().unwrap().remove("id");
        extra["tag_selectors"][0]["pattern"] = json!("latest");
        rules.push(extra);
    });
    harbor.tamper_retention("team-p", |policy| {
        policy["rules"][0]["params"]["latestPushedK"] = json!(3);
        policy["trigger"]["settings"]["cron"] = json!("0 0 * * * *");
    });
    wait_for("drift corrected", T, || {
        (rules(&harbor, "team-p") == wanted_rules()
            && retention(&harbor, "team-p") == Some(wanted_retention()))
        .then_some(())
    });
    assert_eq!(
        harbor.count(&["UpdateImmuRule"]),
        1,
        "the disabled rule enabled in place"
    );
    assert_eq!(
        harbor.count(&["DeleteImmuRule"]),
        1,
        "the added rule deleted"
    );
    assert_eq!(
        harbor.count(&["CreateImmuRule"]),
        2,
        "no rule created again"
    );
    assert_eq!(harbor.count(&["updateRetention"]), 1);
    assert_eq!(harbor.count(&["createRetention"]), 1);

    // Gone from the spec: one rule left, the retention policy deleted and unbound.
    server.merge_patch_object(
        "registryprojects",
        NS,
        "team-p",
        json!({"spec": {"tagRetention": null,
                        "immutability": [{"repositories": "**", "tags": "v*"}]}}),
    );
    wait_for("policies removed", T, || {
        (rules(&harbor, "team-p") == wanted_rules()[..1]
            && harbor.retention("team-p").is_none()
            && harbor.project("team-p")?["metadata"]
                .get("retention_id")
                .is_none())
        .then_some(())
    });
    assert_eq!(harbor.count(&["deleteRetention"]), 1);
    wait_reason(&server, "team-p", "ProjectReady");
    let ready = condition(&project(&server, "team-p").unwrap(), "Ready").unwrap();
    assert_eq!(ready["status"], "True");
    let writes = harbor.writes();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(harbor.writes(), writes, "no write to Harbor at rest");
}
