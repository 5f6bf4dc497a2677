//! Unit tests of the apimachinery metadata rules: every rule at its edges (empty, 63/64 and 253/254
//! characters, leading and trailing '-' or '.', upper case, prefixes).

use super::*;

fn ok(result: Result<(), String>) -> bool {
    result.is_ok()
}

#[test]
fn dns1123_label_edges() {
    for good in ["a", "0", "my-name", "123-abc", &"a".repeat(63)] {
        assert!(ok(dns1123_label(good)), "{good:?} must pass");
    }
    for bad in [
        "",
        &"a".repeat(64),
        "-a",
        "a-",
        "A",
        "my_name",
        "my.name",
        "a b",
        "ä",
    ] {
        assert!(!ok(dns1123_label(bad)), "{bad:?} must fail");
    }
    assert_eq!(
        dns1123_label(&"a".repeat(64)).unwrap_err(),
        "must be no more than 63 characters"
    );
}

#[test]
fn dns1123_subdomain_edges() {
    let long_part = "a".repeat(100);
    let max = format!("{}.{}", "a".repeat(126), "b".repeat(126));
    assert_eq!(max.len(), 253);
    for good in [
        "a",
        "example.com",
        "a-b.c-d",
        "1.2.3",
        long_part.as_str(),
        &max,
    ] {
        assert!(ok(dns1123_subdomain(good)), "{good:?} must pass");
    }
    let too_long = format!("{max}c");
    for bad in [
        "",
        too_long.as_str(),
        ".a",
        "a.",
        "a..b",
        "-a.b",
        "a-.b",
        "a.-b",
        "A.b",
        "a_b",
        "a/b",
    ] {
        assert!(!ok(dns1123_subdomain(bad)), "{bad:?} must fail");
    }
}

#[test]
fn dns1035_label_edges() {
    for good in ["a", "my-name", "abc-123", &format!("a{}", "0".repeat(62))] {
        assert!(ok(dns1035_label(good)), "{good:?} must pass");
    }
    for bad in [
        "",
        "1abc",
        "-a",
        "a-",
        "A",
        "a.b",
        &format!("a{}", "0".repeat(63)),
    ] {
        assert!(!ok(dns1035_label(bad)), "{bad:?} must fail");
    }
    // The K3d Service of a 55-character Registry name: 68 characters.
    let service = format!("{}-distribution", "r".repeat(55));
    assert_eq!(service.len(), 68);
    assert!(dns1035_label(&service).is_err());
}

#[test]
fn qualified_name_and_label_key_edges() {
    for good in [
        "a",
        "MyName",
        "my.name",
        "my_name",
        "123-abc",
        "app.kubernetes.io/name",
        "registry.aisp.dev/owner-namespace",
        &"a".repeat(63),
        &format!("{}/{}", "p".repeat(253), "n".repeat(63)),
    ] {
        assert!(ok(label_key(good)), "{good:?} must pass");
    }
    for bad in [
        "",
        "/a",
        "a/",
        "a/b/c",
        "-a",
        "a-",
        ".a",
        "a.",
        "_a",
        "a b",
        &"a".repeat(64),
        "Example.com/a",
        "example_com/a",
        &format!("{}/a", "p".repeat(254)),
        "example.com/-a",
    ] {
        assert!(!ok(label_key(bad)), "{bad:?} must fail");
    }
}

#[test]
fn label_value_edges() {
    for good in [
        "",
        "a",
        "A",
        "registry",
        "my_value",
        "v1.2.3",
        "Registry",
        &"a".repeat(63),
    ] {
        assert!(ok(label_value(good)), "{good:?} must pass");
    }
    for bad in [
        "_cluster",
        "-a",
        "a-",
        ".a",
        "a.",
        "a/b",
        "a b",
        "a:b",
        &"a".repeat(64),
    ] {
        assert!(!ok(label_value(bad)), "{bad:?} must fail");
    }
}

#[test]
fn annotation_keys_are_lowercased_and_total_size_is_limited() {
    assert!(ok(annotation_key("Example.COM/Thing")));
    assert!(!ok(label_key("Example.COM/Thing")));
    assert!(!ok(annotation_key("a/b/c")));
    assert!(!ok(annotation_key("")));
    let big = "x".repeat(TOTAL_ANNOTATION_SIZE_MAX - 1);
    assert!(ok(annotations([("a", big.as_str())])));
    let too_big = "x".repeat(TOTAL_ANNOTATION_SIZE_MAX);
    let error = annotations([("a", too_big.as_str())]).unwrap_err();
    assert!(error.contains("262144 bytes"), "{error}");
    let half = "x".repeat(TOTAL_ANNOTATION_SIZE_MAX / 2);
    assert!(
        !ok(annotations([("a", half.as_str()), ("b", half.as_str())])),
        "the limit is over all annotations"
    );
    assert!(!ok(annotations([("ok", "v"), ("-bad", "v")])));
}

#[test]
fn finalizer_edges() {
    for good in [
        "registry.aisp.dev/cleanup",
        "kubernetes",
        "orphan",
        "foregroundDeletion",
    ] {
        assert!(ok(finalizer(good)), "{good:?} must pass");
    }
    for bad in [
        "",
        "cleanup",
        "registry.aisp.dev/",
        "registry.aisp.dev/-x",
        "Registry.aisp.dev/cleanup",
        &format!("registry.aisp.dev/{}", "a".repeat(64)),
    ] {
        assert!(!ok(finalizer(bad)), "{bad:?} must fail");
    }
    assert!(ok(finalizers(["registry.aisp.dev/cleanup", "orphan"])));
    assert!(!ok(finalizers(["orphan", "foregroundDeletion"])));
}

#[test]
fn port_name_edges() {
    for good in ["http", "registry", "a", "http-2", "h2c", &"a".repeat(15)] {
        assert!(ok(port_name(good)), "{good:?} must pass");
    }
    for bad in [
        "",
        "8080",
        &"a".repeat(16),
        "-http",
        "http-",
        "ht--tp",
        "HTTP",
        "http_2",
        "http.2",
    ] {
        assert!(!ok(port_name(bad)), "{bad:?} must fail");
    }
}

fn reference(kind: &str, controller: bool) -> OwnerReference {
    OwnerReference {
        api_version: "registry.aisp.dev/v1alpha1".into(),
        kind: kind.into(),
        name: "platform".into(),
        uid: "0000-1111".into(),
        controller: Some(controller),
        block_owner_deletion: Some(true),
    }
}

#[test]
fn owner_reference_fields_and_scope() {
    let registry = reference("Registry", true);
    assert!(ok(owner_reference(
        &registry,
        Some("registry"),
        Some("registry")
    )));
    assert!(ok(owner_reference(&registry, Some("registry"), None)));
    assert!(ok(owner_reference(&registry, None, None)));
    let error = owner_reference(&registry, None, Some("registry")).unwrap_err();
    assert!(
        error.contains("cluster-scoped object cannot be owned"),
        "{error}"
    );
    assert!(!ok(owner_reference(
        &registry,
        Some("other"),
        Some("registry")
    )));
    for broken in [
        OwnerReference {
            uid: String::new(),
            ..registry.clone()
        },
        OwnerReference {
            name: String::new(),
            ..registry.clone()
        },
        OwnerReference {
            kind: String::new(),
            ..registry.clone()
        },
        OwnerReference {
            api_version: String::new(),
            ..registry.clone()
        },
        OwnerReference {
            api_version: "a/b/c".into(),
            ..registry.clone()
        },
        OwnerReference {
            api_version: "v1".into(),
            kind: "Event".into(),
            ..registry.clone()
        },
    ] {
        assert!(
            !ok(owner_reference(&broken, Some("registry"), Some("registry"))),
            "{broken:?} must fail"
        );
    }
    assert!(ok(owner_references(&[
        reference("Registry", true),
        reference("Other", false)
    ])));
    assert!(!ok(owner_references(&[
        reference("Registry", true),
        reference("Other", true)
    ])));
}
