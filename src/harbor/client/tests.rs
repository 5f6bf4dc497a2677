//! Unit tests of the client's plumbing: URL handling, error messages (joined, truncated, redacted)
//! and that no password or robot secret shows in `Debug`, `Display` or an error. No network.

use super::*;
use crate::harbor::types::RobotCreated;

const PASSWORD: &str = "Harbor12345-s3cr3t";

#[test]
fn debug_and_display_never_show_the_password() {
    let client = HarborClient::new("https://harbor.example", "admin", PASSWORD).unwrap();
    let debug = format!("{client:?}");
    let pretty = format!("{client:#?}");
    let display = client.to_string();
    for text in [&debug, &pretty, &display] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
    assert!(debug.contains("<redacted>"), "{debug}");
    assert!(display.contains("admin"), "{display}");
    assert_eq!(format!("{:?}", Secret::new(PASSWORD)), "<redacted>");
}

#[test]
fn base_url_gets_the_api_path_once() {
    for url in [
        "https://harbor.example",
        "https://harbor.example/",
        "https://harbor.example/api/v2.0",
        "https://harbor.example/api/v2.0/",
    ] {
        let client = HarborClient::new(url, "admin", PASSWORD).unwrap();
        assert_eq!(
            client.base_url().as_str(),
            "https://harbor.example/api/v2.0/"
        );
    }
    let client = HarborClient::new("http://core.ns.svc:8080/", "admin", PASSWORD).unwrap();
    let call = client.call(
        "getProjectSummary",
        Method::GET,
        &["projects", "a b", "summary"],
    );
    assert_eq!(
        call.url.as_str(),
        "http://core.ns.svc:8080/api/v2.0/projects/a%20b/summary"
    );
}

#[test]
fn credentials_in_the_url_are_refused_without_echoing_them() {
    let error = HarborClient::new(
        &format!("https://admin:{PASSWORD}@harbor.example"),
        "admin",
        PASSWORD,
    )
    .unwrap_err();
    assert!(!error.to_string().contains(PASSWORD), "{error}");
    assert!(HarborClient::new("ftp://harbor.example", "admin", PASSWORD).is_err());
}

#[test]
fn harbor_messages_are_joined_truncated_and_redacted() {
    let body = br#"{"errors":[{"code":"CONFLICT","message":"a"},{"code":"X","message":"b"}]}"#;
    assert_eq!(harbor_message(body, StatusCode::CONFLICT), "a; b");
    assert_eq!(
        harbor_message(b"<html>", StatusCode::BAD_GATEWAY),
        "Bad Gateway"
    );
    let long = format!(r#"{{"errors":[{{"message":"{}"}}]}}"#, "é".repeat(600));
    assert!(harbor_message(long.as_bytes(), StatusCode::BAD_REQUEST).len() <= MAX_MESSAGE + 3);
    let secret = Secret::new(PASSWORD);
    assert_eq!(
        redact(&format!("bad password {PASSWORD}"), &secret),
        "bad password <redacted>"
    );
}

#[test]
fn error_display_never_contains_the_password() {
    let errors = [
        HarborError::Unauthorized {
            operation: "getConfigurations",
            username: "admin".to_string(),
        },
        HarborError::Refused {
            operation: "createProject",
            status: 400,
            message: redact(&format!("echo {PASSWORD}"), &Secret::new(PASSWORD)),
        },
    ];
    for error in errors {
        assert!(!error.to_string().contains(PASSWORD));
        assert!(!format!("{error:?}").contains(PASSWORD));
    }
}

#[test]
fn robot_secret_is_redacted_in_debug() {
    let created: RobotCreated = serde_json::from_str(
        r#"{"id":3,"name":"robot$p+pull","secret":"s3cr3t-robot","expires_at":-1}"#,
    )
    .unwrap();
    assert_eq!(created.secret.expose(), "s3cr3t-robot");
    assert!(!format!("{created:?}").contains("s3cr3t-robot"));
}
