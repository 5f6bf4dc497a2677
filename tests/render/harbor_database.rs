//! Harbor's database at render level: a managed CNPG Cluster gates core and jobservice until it is
//! ready, an external database is not waited for, an existing CNPG cluster gets a role, a database and
//! a password copy; backups; day-2 settings that cannot work are refused naming the field; every CNPG
//! object passes its upstream CRD schema (strict). Offline: it must not start a control plane.

use super::harbor_fixtures::{
    EXTERNAL_S3, FIXTURES, MANAGED_PVC, env_value, pod_of_deployment, ready, registry,
    render_checked, render_fixture,
};
use crate::support::common;
use registry_operator::render::{self, HarborObserved, Observed};
use serde_json::Value;

#[test]
fn managed_database_gates_core_and_jobservice_until_ready_or_existing() {
    let registry = registry(MANAGED_PVC);
    let waiting = render_checked(&registry, &Observed::default());
    let keys: Vec<String> = waiting.objects.iter().map(|o| o.key()).collect();
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("harbor-core") || k.contains("harbor-jobservice")),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k == "Cluster/registry/platform-harbor-db"),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k == "Deployment/registry/platform-harbor-registry"),
        "{keys:?}"
    );
    assert!(
        waiting
            .held_back
            .as_deref()
            .is_some_and(|w| w.contains("waiting for the database"))
    );
    assert!(
        waiting.warnings.is_empty(),
        "waiting is progress, not a warning"
    );

    let existing = Observed {
        harbor: HarborObserved {
            database_ready: false,
            components_exist: true,
        },
        ..Default::default()
    };
    let kept = render_checked(&registry, &existing);
    common::find_rendered(&kept, "Deployment", "platform-harbor-core");
    common::find_rendered(&kept, "Deployment", "platform-harbor-jobservice");
}

#[test]
fn external_database_does_not_wait_and_renders_no_cluster_nor_internal_redis() {
    let rendered = render_checked(&registry(EXTERNAL_S3), &Observed::default());
    common::find_rendered(&rendered, "Deployment", "platform-harbor-core");
    assert!(
        !rendered
            .objects
            .iter()
            .any(|o| o.resource.kind == "Cluster")
    );
    assert!(
        !rendered
            .objects
            .iter()
            .any(|o| o.name() == "platform-harbor-redis")
    );
    let pod = pod_of_deployment(common::find_rendered(
        &rendered,
        "Deployment",
        "platform-harbor-core",
    ));
    assert_eq!(
        env_value(&pod, "core", "POSTGRESQL_SSLMODE").as_deref(),
        Some("verify-full")
    );
    assert_eq!(
        env_value(&pod, "core", "POSTGRESQL_DATABASE").as_deref(),
        Some("registry")
    );
}

#[test]
fn managed_database_connects_to_cnpg_rw_service_with_app_secret() {
    let rendered = render_fixture(MANAGED_PVC);
    let pod = pod_of_deployment(common::find_rendered(
        &rendered,
        "Deployment",
        "platform-harbor-core",
    ));
    assert_eq!(
        env_value(&pod, "core", "POSTGRESQL_HOST").as_deref(),
        Some("platform-harbor-db-rw")
    );
    assert_eq!(
        env_value(&pod, "core", "POSTGRESQL_USERNAME").as_deref(),
        Some("harbor")
    );
    assert_eq!(
        env_value(&pod, "core", "POSTGRESQL_SSLMODE").as_deref(),
        Some("require")
    );
    let password = pod.containers[0]
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "POSTGRESQL_PASSWORD")
        .expect("password env");
    let selector = password
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("secretKeyRef");
    assert_eq!(
        (selector.name.as_str(), selector.key.as_str()),
        ("platform-harbor-db-app", "password")
    );
}

// ---- CNPG schema (strict) ----

fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

#[test]
fn cnpg_clusters_validate_against_upstream_schema_strictly() {
    let Some(schemas) = common::shared_schemas() else {
        return;
    };
    let schema =
        common::strict_schema(&schemas.join("cnpg/postgresql.cnpg.io_clusters.yaml"), "v1");
    let validator = jsonschema::draft4::new(&schema).expect("schema compiles");
    let mut checked = 0;
    for (fixture, yaml) in FIXTURES {
        let rendered = render_fixture(yaml);
        for object in rendered
            .objects
            .iter()
            .filter(|o| o.resource.kind == "Cluster")
        {
            let mut value = serde_json::to_value(&object.object).expect("json");
            drop_nulls(&mut value);
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{fixture}: {}: {errors:#?}",
                object.key()
            );
            checked += 1;
        }
    }
    // Strictness must bite: an unknown field is rejected.
    let rendered = render_fixture(MANAGED_PVC);
    let mut typo = serde_json::to_value(
        &common::find_rendered(&rendered, "Cluster", "platform-harbor-db").object,
    )
    .expect("json");
    drop_nulls(&mut typo);
    typo["spec"]["bootstrap"]["initdb"]["ownr"] = Value::String("harbor".into());
    assert!(
        !validator.is_valid(&typo),
        "strict schema accepted an unknown field"
    );
    assert_eq!(
        checked, 3,
        "expected a Cluster in each managed-database fixture"
    );
}

const EXISTING_CNPG: &str = r#"
apiVersion: registry.aisp.dev/v1alpha1
kind: Registry
metadata: { name: platform, namespace: registry }
spec:
  mode: Harbor
  host: harbor.ai-platform.localhost
  harbor:
    database: { cnpg: { clusterRef: { name: postgresql, namespace: storage } } }
"#;

const BACKUP_SNAPSHOT: &str = r#"
apiVersion: registry.aisp.dev/v1alpha1
kind: Registry
metadata: { name: platform, namespace: registry }
spec:
  mode: Harbor
  host: harbor.ai-platform.localhost
  harbor:
    database:
      managed: {}
      backup: { schedule: "0 0 3 * * *", method: VolumeSnapshot, volumeSnapshot: { className: csi-snapclass } }
"#;

const BACKUP_OBJECT_STORE: &str = r#"
apiVersion: registry.aisp.dev/v1alpha1
kind: Registry
metadata: { name: platform, namespace: registry }
spec:
  mode: Harbor
  host: harbor.ai-platform.localhost
  harbor:
    database:
      managed: {}
      backup: { schedule: "0 0 3 * * *", method: ObjectStore, objectStore: { name: s3-store } }
"#;

/// Every CNPG object of the day-2 fixtures, checked against its upstream CRD schema (strict).
#[test]
fn day2_cnpg_objects_validate_against_upstream_schemas_strictly() {
    let Some(schemas) = common::shared_schemas() else {
        return;
    };
    let validators: Vec<(&str, jsonschema::Validator)> = [
        ("Cluster", "clusters"),
        ("Database", "databases"),
        ("DatabaseRole", "databaseroles"),
        ("ScheduledBackup", "scheduledbackups"),
    ]
    .into_iter()
    .map(|(kind, plural)| {
        let schema = common::strict_schema(
            &schemas.join(format!("cnpg/postgresql.cnpg.io_{plural}.yaml")),
            "v1",
        );
        (
            kind,
            jsonschema::draft4::new(&schema).expect("schema compiles"),
        )
    })
    .collect();
    let mut kinds = Vec::new();
    for yaml in [EXISTING_CNPG, BACKUP_SNAPSHOT, BACKUP_OBJECT_STORE] {
        for object in render_fixture(yaml).objects {
            let Some((_, validator)) = validators.iter().find(|(kind, _)| {
                object.resource.group == "postgresql.cnpg.io" && *kind == object.resource.kind
            }) else {
                continue;
            };
            let mut value = serde_json::to_value(&object.object).expect("json");
            drop_nulls(&mut value);
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", object.key());
            kinds.push(object.resource.kind.clone());
        }
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        ["Cluster", "Database", "DatabaseRole", "ScheduledBackup"]
    );
}

#[test]
fn existing_cnpg_cluster_declares_role_and_database_and_connects_to_its_rw_service() {
    let rendered = render_fixture(EXISTING_CNPG);
    assert!(
        !rendered
            .objects
            .iter()
            .any(|o| o.resource.kind == "Cluster"),
        "no managed Cluster next to an existing one"
    );
    let role = common::find_rendered(&rendered, "DatabaseRole", "registry-platform-harbor");
    let role = serde_json::to_value(&role.object).unwrap();
    assert_eq!(role["metadata"]["namespace"], "storage");
    assert!(
        role["metadata"]
            .get("ownerReferences")
            .is_none_or(Value::is_null)
    );
    assert_eq!(role["spec"]["cluster"]["name"], "postgresql");
    assert_eq!(role["spec"]["name"], "harbor");
    assert_eq!(role["spec"]["login"], true);
    assert_eq!(
        role["spec"]["passwordSecret"]["name"],
        "registry-platform-harbor"
    );
    let database = serde_json::to_value(
        &common::find_rendered(&rendered, "Database", "registry-platform-harbor").object,
    )
    .unwrap();
    assert_eq!(database["spec"]["owner"], "harbor");
    assert_eq!(database["spec"]["databaseReclaimPolicy"], "retain");
    // The password: generated once in the Registry's namespace, copied for CNPG as basic-auth.
    let source = rendered
        .generated_secrets
        .iter()
        .find(|s| s.name == "platform-harbor-database-secret")
        .expect("password Secret");
    assert_eq!(source.namespace, "registry");
    assert_eq!(source.secret_type, "kubernetes.io/basic-auth");
    let copy = rendered
        .generated_secrets
        .iter()
        .find(|s| s.name == "registry-platform-harbor")
        .expect("copy for CNPG");
    assert_eq!(copy.namespace, "storage");
    assert_eq!(copy.data_keys(), ["username", "password"]);
    let source_position = rendered
        .generated_secrets
        .iter()
        .position(|s| s.name == source.name);
    let copy_position = rendered
        .generated_secrets
        .iter()
        .position(|s| s.name == copy.name);
    assert!(
        source_position < copy_position,
        "the source is created first"
    );
    // Core connects to the cluster's -rw Service with that password, without waiting for a Cluster.
    let core = pod_of_deployment(common::find_rendered(
        &rendered,
        "Deployment",
        "platform-harbor-core",
    ));
    for (name, value) in [
        ("POSTGRESQL_HOST", "postgresql-rw.storage.svc"),
        ("POSTGRESQL_USERNAME", "harbor"),
        ("POSTGRESQL_DATABASE", "harbor"),
        ("POSTGRESQL_SSLMODE", "require"),
    ] {
        assert_eq!(
            env_value(&core, "core", name).as_deref(),
            Some(value),
            "{name}"
        );
    }
    let password = core.containers[0]
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "POSTGRESQL_PASSWORD")
        .and_then(|e| e.value_from.as_ref()?.secret_key_ref.clone())
        .expect("password from a Secret");
    assert_eq!(password.name, "platform-harbor-database-secret");
    assert_eq!(password.key, "password");
    let unready = render::registry(&registry(EXISTING_CNPG), &Observed::default()).unwrap();
    assert!(
        unready.held_back.is_none(),
        "an existing cluster is not waited for"
    );
}

#[test]
fn backups_render_the_method_and_its_cluster_settings() {
    let snapshot = render_fixture(BACKUP_SNAPSHOT);
    let cluster = serde_json::to_value(
        &common::find_rendered(&snapshot, "Cluster", "platform-harbor-db").object,
    )
    .unwrap();
    assert_eq!(
        cluster["spec"]["backup"]["volumeSnapshot"]["className"],
        "csi-snapclass"
    );
    let backup = serde_json::to_value(
        &common::find_rendered(&snapshot, "ScheduledBackup", "platform-harbor-db-backup").object,
    )
    .unwrap();
    assert_eq!(backup["spec"]["method"], "volumeSnapshot");
    assert_eq!(backup["spec"]["schedule"], "0 0 3 * * *");
    assert_eq!(backup["spec"]["cluster"]["name"], "platform-harbor-db");

    let store = render_fixture(BACKUP_OBJECT_STORE);
    let cluster = serde_json::to_value(
        &common::find_rendered(&store, "Cluster", "platform-harbor-db").object,
    )
    .unwrap();
    assert_eq!(
        cluster["spec"]["plugins"][0]["name"],
        "barman-cloud.cloudnative-pg.io"
    );
    assert_eq!(cluster["spec"]["plugins"][0]["isWALArchiver"], true);
    assert_eq!(
        cluster["spec"]["plugins"][0]["parameters"]["barmanObjectName"],
        "s3-store"
    );
    let backup = serde_json::to_value(
        &common::find_rendered(&store, "ScheduledBackup", "platform-harbor-db-backup").object,
    )
    .unwrap();
    assert_eq!(backup["spec"]["method"], "plugin");
    assert_eq!(
        backup["spec"]["pluginConfiguration"]["name"],
        "barman-cloud.cloudnative-pg.io"
    );
}

#[test]
fn day2_database_settings_that_cannot_work_are_refused_naming_the_field() {
    let cases = [
        (
            BACKUP_SNAPSHOT.replace(", volumeSnapshot: { className: csi-snapclass }", ""),
            "spec.harbor.database.backup.volumeSnapshot",
        ),
        (
            BACKUP_OBJECT_STORE.replace(", objectStore: { name: s3-store }", ""),
            "spec.harbor.database.backup.objectStore",
        ),
        (
            BACKUP_SNAPSHOT.replace("0 0 3 * * *", "0 3 * * *"),
            "spec.harbor.database.backup.schedule",
        ),
        (
            EXISTING_CNPG.replace(
                "namespace: storage } } }",
                "namespace: storage } }, backup: { schedule: '@daily', method: ObjectStore, objectStore: { name: s3 } } }",
            ),
            "spec.harbor.database.backup",
        ),
        (
            EXISTING_CNPG.replace("{ cnpg:", "{ managed: {}, cnpg:"),
            "spec.harbor.database",
        ),
        (
            EXISTING_CNPG.replace("namespace: storage }", "namespace: storage }, name: pg_harbor"),
            "spec.harbor.database.cnpg.name",
        ),
    ];
    for (yaml, field) in cases {
        let error = render::registry(&registry(&yaml), &ready()).expect_err(field);
        let message = error.to_string();
        assert!(message.contains(&format!("{field}:")), "{field}: {message}");
    }
}
