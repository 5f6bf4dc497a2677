//! Unit tests of the RegistryProject plan: equal state sends nothing, each difference one write.

use super::*;
use crate::harbor::Access;

fn project(spec: Value) -> RegistryProject {
    serde_json::from_value(json!({
        "apiVersion": "registry.aisp.dev/v1alpha1", "kind": "RegistryProject",
        "metadata": {"name": "team-a", "namespace": "apps", "uid": "u-1"},
        "spec": spec,
    }))
    .expect("a RegistryProject")
}

fn full_spec() -> Value {
    json!({
        "registryRef": {"name": "platform", "namespace": "registry"},
        "public": false, "storageQuota": "10Gi", "autoScan": true,
        "preventVulnerable": {"severity": "High"}, "requireCosign": true,
        "pullSecrets": [{"namespace": "ai-apps", "name": "harbor-pull"}],
        "robotSecretRotation": "720h",
    })
}

fn robot(id: i64, project: &str, actions: &[&str]) -> Robot {
    Robot {
        id,
        name: format!("robot${project}+pull"),
        level: Some("project".to_string()),
        disable: false,
        duration: Some(-1),
        expires_at: Some(-1),
        permissions: vec![RobotPermission {
            kind: "project".to_string(),
            namespace: project.to_string(),
            access: actions
                .iter()
                .map(|a| Access {
                    resource: "repository".to_string(),
                    action: a.to_string(),
                    effect: Some("allow".to_string()),
                })
                .collect(),
        }],
    }
}

const NOW: i64 = 1_800_000_000;

/// Harbor exactly as `full_spec` wants it, the secret refreshed a day ago.
fn equal_state() -> Observed {
    Observed {
        project: Some(Project {
            project_id: 7,
            name: "team-a".to_string(),
            metadata: Some(ProjectMetadata {
                public: Some("false".to_string()),
                enable_content_trust_cosign: Some("true".to_string()),
                prevent_vul: Some("true".to_string()),
                severity: Some("high".to_string()),
                auto_scan: Some("true".to_string()),
                ..ProjectMetadata::default()
            }),
            ..Project::default()
        }),
        quota: Some(Quota {
            id: 3,
            hard: [("storage".to_string(), 10 << 30)].into_iter().collect(),
        }),
        robots: [(RobotRole::Pull, robot(11, "team-a", &["pull"]))]
            .into_iter()
            .collect(),
        stored: [(
            RobotRole::Pull,
            Stored {
                robot_id: 11,
                refreshed_at: NOW - 86_400,
            },
        )]
        .into_iter()
        .collect(),
        now: NOW,
    }
}

fn writes(spec: Value, observed: &Observed) -> Vec<Write> {
    let desired = desired(&project(spec)).expect("valid");
    plan(&desired, observed, "apps/team-a")
}

#[test]
fn equal_state_sends_no_write() {
    assert_eq!(writes(full_spec(), &equal_state()), Vec::new());
}

#[test]
fn a_missing_project_is_created_with_quota_and_metadata_then_its_robot() {
    let observed = Observed {
        now: NOW,
        ..Observed::default()
    };
    let writes = writes(full_spec(), &observed);
    let [Write::CreateProject(req), Write::CreateRobot { role, body }] = writes.as_slice() else {
        panic!("{writes:?}");
    };
    assert_eq!(req.project_name.as_deref(), Some("team-a"));
    assert_eq!(req.storage_limit, Some(10 << 30));
    let metadata = req.metadata.as_ref().unwrap();
    assert_eq!(metadata.severity.as_deref(), Some("high"));
    assert_eq!(
        metadata.enable_content_trust_cosign.as_deref(),
        Some("true")
    );
    assert_eq!(*role, RobotRole::Pull);
    assert_eq!(body.name, "pull");
    assert_eq!(body.duration, -1);
    assert_eq!(body.permissions[0].namespace, "team-a");
    assert_eq!(body.permissions[0].access.len(), 1);
}

#[test]
fn drift_gives_one_write_per_difference_and_only_the_keys_that_differ() {
    let mut observed = equal_state();
    let metadata = observed
        .project
        .as_mut()
        .unwrap()
        .metadata
        .as_mut()
        .unwrap();
    metadata.public = Some("true".to_string());
    metadata.auto_scan = None; // Harbor omits it: reads false
    observed
        .quota
        .as_mut()
        .unwrap()
        .hard
        .insert("storage".to_string(), -1);
    let writes = writes(full_spec(), &observed);
    assert_eq!(
        writes,
        vec![
            Write::UpdateProject(ProjectReq {
                metadata: Some(ProjectMetadata {
                    public: Some("false".to_string()),
                    auto_scan: Some("true".to_string()),
                    ..ProjectMetadata::default()
                }),
                ..ProjectReq::default()
            }),
            Write::UpdateQuota {
                id: 3,
                storage: 10 << 30
            },
        ]
    );
}

#[test]
fn rotation_refreshes_when_due_and_an_unknown_secret_is_refreshed_at_once() {
    let mut observed = equal_state();
    observed
        .stored
        .get_mut(&RobotRole::Pull)
        .unwrap()
        .refreshed_at = NOW - 720 * 3600;
    assert_eq!(
        writes(full_spec(), &observed),
        vec![Write::RefreshRobot {
            role: RobotRole::Pull,
            id: 11
        }]
    );
    let mut spec = full_spec();
    spec["robotSecretRotation"] = Value::Null;
    assert_eq!(writes(spec, &observed), Vec::new(), "no rotation asked");
    // The stored secret belongs to another (older) robot: Harbor's is unknown, refresh it.
    let mut observed = equal_state();
    observed.stored.get_mut(&RobotRole::Pull).unwrap().robot_id = 5;
    assert_eq!(
        writes(full_spec(), &observed),
        vec![Write::RefreshRobot {
            role: RobotRole::Pull,
            id: 11
        }]
    );
}

#[test]
fn a_robot_with_other_permissions_is_replaced_and_an_unwanted_one_deleted() {
    let mut observed = equal_state();
    observed
        .robots
        .insert(RobotRole::Pull, robot(11, "team-a", &["pull", "push"]));
    let writes_now = writes(full_spec(), &observed);
    assert!(matches!(
        writes_now.as_slice(),
        [
            Write::DeleteRobot { id: 11, .. },
            Write::CreateRobot {
                role: RobotRole::Pull,
                ..
            }
        ]
    ));
    let mut spec = full_spec();
    spec["pullSecrets"] = json!([]);
    assert_eq!(
        writes(spec, &equal_state()),
        vec![Write::DeleteRobot {
            role: RobotRole::Pull,
            id: 11
        }]
    );
}

#[test]
fn a_push_secret_asks_for_a_push_robot() {
    let mut spec = full_spec();
    spec["pushSecret"] = json!({"namespace": "ci", "name": "harbor-push"});
    let writes = writes(spec, &equal_state());
    let [Write::CreateRobot { role, body }] = writes.as_slice() else {
        panic!("{writes:?}");
    };
    assert_eq!(*role, RobotRole::Push);
    assert_eq!(body.name, "push");
    assert_eq!(body.permissions[0].access.len(), 2);
}

#[test]
fn spec_values_are_checked_naming_the_field() {
    assert_eq!(storage_bytes("10Gi"), Some(10 << 30));
    assert_eq!(storage_bytes("500M"), Some(500_000_000));
    assert_eq!(storage_bytes("1024"), Some(1024));
    for bad in ["0", "10GB", "10gi", "-1Gi", "1.5Gi", "", "Gi", "010Gi"] {
        assert_eq!(storage_bytes(bad), None, "{bad}");
    }
    let mut spec = full_spec();
    spec["storageQuota"] = json!("10GB");
    assert_eq!(
        desired(&project(spec)).unwrap_err().field,
        "spec.storageQuota"
    );
    assert_eq!(rotation_seconds("24h30m"), Some(88_200));
    for bad in ["30d", "0h", "h", "24", "1h 30m", ""] {
        assert_eq!(rotation_seconds(bad), None, "{bad}");
    }
    let mut spec = full_spec();
    spec["robotSecretRotation"] = json!("30d");
    assert_eq!(
        desired(&project(spec)).unwrap_err().field,
        "spec.robotSecretRotation"
    );
    let mut spec = full_spec();
    spec["pullSecrets"] = json!([{"namespace": "AI_Apps", "name": "pull"}]);
    assert_eq!(
        desired(&project(spec)).unwrap_err().to_string(),
        "spec.pullSecrets[0].namespace: must be a namespace name (lowercase letters, digits and '-'), not \"AI_Apps\""
    );
    let mut spec = full_spec();
    spec["projectName"] = json!("Team_A");
    assert_eq!(
        desired(&project(spec)).unwrap_err().field,
        "spec.projectName"
    );
    assert!(is_project_name("team-a.b_c"));
    for bad in ["a--b", "-a", "a.", "A", ""] {
        assert!(!is_project_name(bad), "{bad}");
    }
}

#[test]
fn secrets_carry_owner_labels_and_credentials_round_trip() {
    let rp = project(full_spec());
    let target = NamespacedSecretRef {
        namespace: "ai-apps".to_string(),
        name: "harbor-pull".to_string(),
    };
    let pull = docker_secret(
        &rp,
        &target,
        "harbor.example",
        "robot$team-a+pull",
        "s3cr3t",
    );
    assert_eq!(
        pull.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    assert!(
        pull.metadata.owner_references.is_none(),
        "no owner reference across namespaces"
    );
    let labels = pull.metadata.labels.clone().unwrap();
    assert_eq!(labels["registry.aisp.dev/owner-kind"], "RegistryProject");
    assert_eq!(labels["registry.aisp.dev/owner-namespace"], "apps");
    let config: Value =
        serde_json::from_slice(&pull.data.as_ref().unwrap()[".dockerconfigjson"].0).unwrap();
    assert_eq!(
        config["auths"]["harbor.example"]["username"],
        "robot$team-a+pull"
    );
    assert_eq!(
        config["auths"]["harbor.example"]["auth"],
        base64::engine::general_purpose::STANDARD.encode("robot$team-a+pull:s3cr3t")
    );
    let live = serde_json::to_value(&pull).unwrap();
    assert!(secret_matches(&live, &pull));
    let rotated = docker_secret(&rp, &target, "harbor.example", "robot$team-a+pull", "new");
    assert!(!secret_matches(&live, &rotated));

    let credentials = credentials_secret(
        &rp,
        RobotRole::Pull,
        "robot$team-a+pull",
        "s3cr3t",
        11,
        "2027-01-15T08:00:00Z",
    );
    assert_eq!(
        credentials.metadata.name.as_deref(),
        Some("team-a-harbor-pull")
    );
    assert!(credentials.metadata.owner_references.is_some());
    let (stored, username, secret) =
        stored_credentials(&serde_json::to_value(&credentials).unwrap()).unwrap();
    assert_eq!(stored.robot_id, 11);
    assert_eq!(stored.refreshed_at, NOW, "2027-01-15T08:00:00Z");
    assert_eq!(
        (username.as_str(), secret.as_str()),
        ("robot$team-a+pull", "s3cr3t")
    );
}
