//! The Harbor REST API client (`src/harbor`) against the fake Harbor of `tests/support/harbor_fake.rs`,
//! which checks every request and response against Harbor's swagger (v2.15.2, `../shared`). A fake
//! dropped with unexpected swagger violations fails its test; the last tests prove the check bites.

use registry_operator::harbor::{
    ClientOptions, HarborClient, HarborError, ProjectMetadata, ProjectReq, RobotCreate,
    RobotPermission, Schedule, ScheduleObj, metadata_bool,
};
use serde_json::json;

use crate::support::harbor_fake::{ADMIN_PASSWORD, BASE_PATH, HarborFake, Swagger};

pub(crate) fn client(harbor: &HarborFake) -> HarborClient {
    HarborClient::new(&harbor.url(), "admin", ADMIN_PASSWORD).expect("client")
}

pub(crate) fn project(name: &str) -> ProjectReq {
    ProjectReq {
        project_name: Some(name.to_string()),
        public: Some(false),
        metadata: Some(ProjectMetadata {
            auto_scan: Some(metadata_bool(true)),
            prevent_vul: Some(metadata_bool(true)),
            severity: Some("high".to_string()),
            enable_content_trust_cosign: Some(metadata_bool(false)),
            ..ProjectMetadata::default()
        }),
        storage_limit: Some(10 * 1024 * 1024 * 1024),
        registry_id: None,
    }
}

/// Every operation the client uses, with its method and path template, as the README lists them: each
/// must exist in the swagger under that operationId.
#[test]
fn every_client_operation_is_in_the_swagger() {
    let Some(swagger) = Swagger::shared() else {
        return;
    };
    let operations = [
        ("GET", "/ping", "getPing"),
        ("GET", "/health", "getHealth"),
        ("GET", "/configurations", "getConfigurations"),
        ("PUT", "/configurations", "updateConfigurations"),
        ("GET", "/system/gc/schedule", "getGCSchedule"),
        ("POST", "/system/gc/schedule", "createGCSchedule"),
        ("PUT", "/system/gc/schedule", "updateGCSchedule"),
        ("GET", "/projects", "listProjects"),
        ("POST", "/projects", "createProject"),
        ("PUT", "/projects/team-a", "updateProject"),
        ("DELETE", "/projects/team-a", "deleteProject"),
        ("GET", "/projects/team-a/summary", "getProjectSummary"),
        ("POST", "/robots", "CreateRobot"),
        ("DELETE", "/robots/7", "DeleteRobot"),
        ("GET", "/robots", "ListRobot"),
        ("PATCH", "/robots/7", "RefreshSec"),
        ("GET", "/quotas", "listQuotas"),
        ("PUT", "/quotas/3", "updateQuota"),
        ("POST", "/registries", "createRegistry"),
        ("GET", "/registries", "listRegistries"),
        ("PUT", "/registries/2", "updateRegistry"),
        ("DELETE", "/registries/2", "deleteRegistry"),
        ("GET", "/projects/team-a/immutabletagrules", "ListImmuRules"),
        (
            "POST",
            "/projects/team-a/immutabletagrules",
            "CreateImmuRule",
        ),
        (
            "PUT",
            "/projects/team-a/immutabletagrules/4",
            "UpdateImmuRule",
        ),
        (
            "DELETE",
            "/projects/team-a/immutabletagrules/4",
            "DeleteImmuRule",
        ),
        ("POST", "/retentions", "createRetention"),
        ("GET", "/retentions/5", "getRetention"),
        ("PUT", "/retentions/5", "updateRetention"),
        ("DELETE", "/retentions/5", "deleteRetention"),
    ];
    for (method, path, id) in operations {
        let operation = swagger
            .find(method, &format!("{BASE_PATH}{path}"))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!(operation.id, id, "{method} {path}");
    }
}

#[tokio::test]
async fn project_create_find_update_delete() {
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let client = client(&harbor);
    assert_eq!(client.find_project("team-a").await.unwrap(), None);
    let id = client.create_project(&project("team-a")).await.unwrap();
    // `team` loosely matches `team-a` in Harbor's listProjects: the client filters to the exact name.
    client.create_project(&project("team")).await.unwrap();

    let found = client.find_project("team-a").await.unwrap().expect("found");
    assert_eq!(found.project_id, id);
    assert_eq!(found.name, "team-a");
    let metadata = found.metadata.expect("metadata");
    assert_eq!(metadata.public.as_deref(), Some("false"));
    assert_eq!(metadata.severity.as_deref(), Some("high"));
    assert_eq!(metadata.auto_scan.as_deref(), Some("true"));

    let update = ProjectReq {
        metadata: Some(ProjectMetadata {
            public: Some(metadata_bool(true)),
            severity: Some("critical".to_string()),
            ..ProjectMetadata::default()
        }),
        ..ProjectReq::default()
    };
    client.update_project("team-a", &update).await.unwrap();
    let stored = harbor.project("team-a").expect("stored");
    assert_eq!(stored["metadata"]["public"], "true");
    assert_eq!(stored["metadata"]["severity"], "critical");

    assert!(client.project_is_empty("team-a").await.unwrap());
    client.delete_project("team-a").await.unwrap();
    assert_eq!(client.find_project("team-a").await.unwrap(), None);
    assert!(client.find_project("team").await.unwrap().is_some());

    let missing = client.delete_project("team-a").await.unwrap_err();
    assert!(
        matches!(
            missing,
            HarborError::NotFound {
                operation: "deleteProject",
                ..
            }
        ),
        "{missing}"
    );
    let missing = client.update_project("nope", &update).await.unwrap_err();
    assert!(matches!(missing, HarborError::NotFound { .. }), "{missing}");
}

#[tokio::test]
async fn duplicate_project_is_a_conflict_with_harbors_message() {
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let client = client(&harbor);
    client.create_project(&project("team-a")).await.unwrap();
    let error = client.create_project(&project("team-a")).await.unwrap_err();
    match &error {
        HarborError::Conflict {
            operation, message, ..
        } => {
            assert_eq!(*operation, "createProject");
            assert!(message.contains("already exists"), "{message}");
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    let bad = client
        .create_project(&project("Team_A!"))
        .await
        .unwrap_err();
    assert!(
        matches!(&bad, HarborError::Refused { status: 400, message, .. } if message.contains("invalid")),
        "{bad}"
    );
}

#[tokio::test]
async fn a_project_holding_repositories_is_not_deleted() {
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let client = client(&harbor);
    client.create_project(&project("team-a")).await.unwrap();
    harbor.set_repo_count("team-a", 3);
    assert!(!client.project_is_empty("team-a").await.unwrap());
    assert_eq!(
        client.project_summary("team-a").await.unwrap().repo_count,
        3
    );
    let error = client.delete_project("team-a").await.unwrap_err();
    assert!(
        matches!(&error, HarborError::Refused { status: 412, operation: "deleteProject", message } if message.contains("repositories")),
        "{error}"
    );
    assert!(harbor.project("team-a").is_some());
}

#[tokio::test]
async fn robot_create_find_delete() {
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let client = client(&harbor);
    client.create_project(&project("team-a")).await.unwrap();
    let robot = RobotCreate {
        name: "pull".to_string(),
        description: Some("pull secret of team-a".to_string()),
        level: "project".to_string(),
        disable: Some(false),
        duration: 30,
        permissions: vec![RobotPermission::repository("team-a", &["pull"])],
    };
    let created = client.create_robot(&robot).await.unwrap();
    assert_eq!(created.name, "robot$team-a+pull");
    assert!(!created.secret.expose().is_empty());
    assert!(created.expires_at.is_some_and(|t| t > 0));
    assert!(!format!("{created:?}").contains(created.secret.expose()));

    let found = client.find_robots("pull").await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, created.id);
    assert_eq!(found[0].permissions[0].access[0].action, "pull");
    assert_eq!(client.find_robots(&created.name).await.unwrap().len(), 1);

    // The same name again: Harbor answers 409 (an answer its swagger does not declare: KNOWN_GAPS).
    let duplicate = client.create_robot(&robot).await.unwrap_err();
    assert!(
        matches!(duplicate, HarborError::Conflict { .. }),
        "{duplicate}"
    );

    client.delete_robot(created.id).await.unwrap();
    assert!(client.find_robots("pull").await.unwrap().is_empty());
    let gone = client.delete_robot(created.id).await.unwrap_err();
    assert!(
        matches!(
            gone,
            HarborError::NotFound {
                operation: "DeleteRobot",
                ..
            }
        ),
        "{gone}"
    );

    let orphan = RobotCreate {
        permissions: vec![RobotPermission::repository("no-such-project", &["pull"])],
        ..robot
    };
    assert!(matches!(
        client.create_robot(&orphan).await.unwrap_err(),
        HarborError::NotFound { .. }
    ));
}

/// A project's storage quota read and changed; a robot's secret refreshed (the old one is gone).
#[tokio::test]
async fn quota_update_and_robot_secret_refresh() {
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let client = client(&harbor);
    let id = client.create_project(&project("team-q")).await.unwrap();
    let quota = client.project_quota(id).await.unwrap().expect("quota");
    assert_eq!(quota.storage(), 10 * 1024 * 1024 * 1024);
    client.update_storage_quota(quota.id, -1).await.unwrap();
    assert_eq!(
        client.project_quota(id).await.unwrap().unwrap().storage(),
        -1
    );
    let robot = RobotCreate {
        name: "pull".to_string(),
        level: "project".to_string(),
        duration: -1,
        permissions: vec![RobotPermission::repository("team-q", &["pull"])],
        ..RobotCreate::default()
    };
    let created = client.create_robot(&robot).await.unwrap();
    let found = client.find_robots("team-q+pull").await.unwrap();
    assert_eq!(
        found.len(),
        1,
        "Harbor's stored name (without robot$) matches"
    );
    let refreshed = client.refresh_robot_secret(created.id).await.unwrap();
    assert_ne!(refreshed, created.secret);
    assert_eq!(
        harbor.robot_secret("robot$team-q+pull").as_deref(),
        Some(refreshed.expose())
    );
    assert!(matches!(
        client.refresh_robot_secret(9999).await,
        Err(HarborError::NotFound { .. })
    ));
}

#[tokio::test]
async fn read_only_on_and_off() {
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let client = client(&harbor);
    assert!(!client.read_only().await.unwrap());
    client.set_read_only(true).await.unwrap();
    assert!(harbor.read_only());
    assert!(client.read_only().await.unwrap());
    client.set_read_only(false).await.unwrap();
    assert!(!client.read_only().await.unwrap());
    assert_eq!(harbor.writes(), 2);
}

#[tokio::test]
async fn gc_schedule_set_and_read() {
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let client = client(&harbor);
    assert_eq!(client.gc_schedule().await.unwrap(), None);
    let mut parameters = serde_json::Map::new();
    parameters.insert("delete_untagged".to_string(), json!(true));
    parameters.insert("workers".to_string(), json!(1));
    let schedule = Schedule {
        schedule: Some(ScheduleObj {
            kind: "Custom".to_string(),
            cron: Some("0 0 3 * * *".to_string()),
            next_scheduled_time: None,
        }),
        parameters: Some(parameters),
    };
    client.create_gc_schedule(&schedule).await.unwrap();
    let read = client.gc_schedule().await.unwrap().expect("schedule");
    let obj = read.schedule.expect("schedule object");
    assert_eq!(obj.kind, "Custom");
    assert_eq!(obj.cron.as_deref(), Some("0 0 3 * * *"));
    assert!(
        read.job_parameters
            .expect("parameters")
            .contains("delete_untagged")
    );
    assert!(matches!(
        client.create_gc_schedule(&schedule).await.unwrap_err(),
        HarborError::Conflict {
            operation: "createGCSchedule",
            ..
        }
    ));

    let weekly = Schedule {
        schedule: Some(ScheduleObj {
            kind: "Weekly".to_string(),
            ..ScheduleObj::default()
        }),
        ..schedule
    };
    client.update_gc_schedule(&weekly).await.unwrap();
    assert_eq!(
        client
            .gc_schedule()
            .await
            .unwrap()
            .unwrap()
            .schedule
            .unwrap()
            .kind,
        "Weekly"
    );

    let bad = Schedule {
        schedule: Some(ScheduleObj {
            kind: "Custom".to_string(),
            cron: Some("0 3 * * *".to_string()),
            next_scheduled_time: None,
        }),
        parameters: None,
    };
    let error = client.update_gc_schedule(&bad).await.unwrap_err();
    assert!(
        matches!(&error, HarborError::Refused { status: 400, message, .. } if message.contains("six-field")),
        "{error}"
    );
}

#[tokio::test]
async fn wrong_password_is_unauthorized_and_never_echoed() {
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let wrong = "wrong-Pa55word-xyz";
    let client = HarborClient::new(&harbor.url(), "admin", wrong).unwrap();
    client.ping().await.expect("ping needs no credentials");
    for error in [
        client.read_only().await.unwrap_err(),
        client.find_project("library").await.unwrap_err(),
        client.delete_project("library").await.unwrap_err(),
    ] {
        assert!(matches!(error, HarborError::Unauthorized { .. }), "{error}");
        assert!(!error.to_string().contains(wrong), "{error}");
        assert!(!format!("{error:?}").contains(wrong), "{error:?}");
    }
    assert!(!format!("{client:?}").contains(wrong));
    assert!(!client.to_string().contains(wrong));
    assert!(harbor.project("library").is_some());
}

#[tokio::test]
async fn harbor_down_is_unreachable() {
    let Some(mut harbor) = HarborFake::start() else {
        return;
    };
    let options = ClientOptions {
        connect_timeout: std::time::Duration::from_secs(2),
        timeout: std::time::Duration::from_secs(5),
        ca_pem: None,
    };
    let client =
        HarborClient::with_options(&harbor.url(), "admin", ADMIN_PASSWORD, &options).unwrap();
    client.ping().await.unwrap();
    assert_eq!(client.health().await.unwrap().status, "healthy");
    harbor.stop();
    let error = client.find_project("library").await.unwrap_err();
    assert!(
        matches!(
            &error,
            HarborError::Unreachable {
                operation: "listProjects",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.is_transient());
    assert!(!error.to_string().contains(ADMIN_PASSWORD), "{error}");
    assert!(matches!(
        client.ping().await.unwrap_err(),
        HarborError::Unreachable { .. }
    ));
}

/// Raw requests the client would never send, to prove the fake refuses what the swagger forbids.
#[tokio::test]
async fn swagger_check_refuses_bad_requests() {
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let mut request = http
            .request(method, format!("{}{BASE_PATH}{path}", harbor.url()))
            .basic_auth("admin", Some(ADMIN_PASSWORD));
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        request.send()
    };
    let cases = [
        (
            reqwest::Method::POST,
            "/projects",
            Some(json!({"project_name": "team-a", "publik": true})),
            "publik",
        ),
        (
            reqwest::Method::POST,
            "/projects",
            Some(json!({"project_name": "team-a", "metadata": {"auto_scan": true}})),
            "auto_scan",
        ),
        // `id` of a Schedule is readOnly: a client may not send it.
        (
            reqwest::Method::PUT,
            "/system/gc/schedule",
            Some(json!({"id": 3, "schedule": {"type": "Daily"}})),
            "'id'",
        ),
        (
            reqwest::Method::PUT,
            "/system/gc/schedule",
            Some(json!({"schedule": {"type": "Fortnightly"}})),
            "Fortnightly",
        ),
        (reqwest::Method::POST, "/robots", None, "required"),
        (reqwest::Method::GET, "/projects?nmae=team-a", None, "nmae"),
        (
            reqwest::Method::DELETE,
            "/robots/abc",
            None,
            "not an integer",
        ),
        (reqwest::Method::PATCH, "/projects/team-a", None, "PATCH"),
        (reqwest::Method::GET, "/projectz", None, "/projectz"),
    ];
    for (method, path, body, needle) in cases {
        let what = format!("{method} {path}");
        let response = send(method, path, body).await.expect("answer");
        assert!(
            response.status() == 400 || response.status() == 404,
            "{what}: {}",
            response.status()
        );
        let violations = harbor.take_violations();
        assert!(
            violations.iter().any(|v| v.contains(needle)),
            "{what}: expected a violation naming {needle:?}, got {violations:?}"
        );
    }
    assert_eq!(
        harbor.project("team-a"),
        None,
        "refused requests change nothing"
    );
}

/// The fake's own answers are checked too: a tampered response is caught. (Harbor's swagger marks no
/// field of these definitions `required`, so a missing field is not a violation; a wrong type or an
/// unknown field is.)
#[tokio::test]
async fn swagger_check_catches_bad_responses() {
    let Some(harbor) = HarborFake::start() else {
        return;
    };
    let client = client(&harbor);

    harbor.tamper_next_response("listProjects", |body| {
        body[0]["project_id"] = json!("one");
    });
    let _ = client.find_project("library").await;
    let violations = harbor.take_violations();
    assert!(
        violations
            .iter()
            .any(|v| v.contains("listProjects") && v.contains("project_id")),
        "{violations:?}"
    );

    harbor.tamper_next_response("getConfigurations", |body| {
        body["read_only"]["valu"] = json!(true);
    });
    client.read_only().await.unwrap();
    let violations = harbor.take_violations();
    assert!(
        violations.iter().any(|v| v.contains("valu")),
        "{violations:?}"
    );

    harbor.tamper_next_response("getPing", |body| *body = json!({"pong": true}));
    let _ = client.ping().await;
    let violations = harbor.take_violations();
    assert!(
        violations.iter().any(|v| v.contains("getPing")),
        "{violations:?}"
    );

    // An error body that is not Harbor's `Errors`.
    harbor.tamper_next_response("createProject", |body| *body = json!({"error": "bad"}));
    let _ = client.create_project(&project("BAD NAME")).await;
    let violations = harbor.take_violations();
    assert!(
        violations
            .iter()
            .any(|v| v.contains("createProject") && v.contains("error")),
        "{violations:?}"
    );
}

/// A violation no test took fails the test when the fake is dropped.
#[tokio::test]
#[should_panic(expected = "swagger violation")]
async fn unchecked_violations_fail_the_test() {
    let Some(harbor) = HarborFake::start() else {
        // SKIPPED: should_panic still needs its panic.
        panic!("no swagger violation to provoke: the swagger is absent");
    };
    harbor.tamper_next_response("getConfigurations", |body| body["read_only"] = json!("yes"));
    let _ = client(&harbor).read_only().await;
}
