//! The migration Job of a mode switch: `registry-operator migrate` in the operator's own image, with
//! credentials only from Secret references and the Pod Security "restricted" profile. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, KeyToPath, PodSecurityContext, PodSpec,
    PodTemplateSpec, ResourceRequirements, SeccompProfile, SecretKeySelector, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::labels::Owner;
use super::{RenderError, RenderedObject, owner_reference};
use crate::crd::{Registry, RegistryMode};

/// One side of a copy: what runs there, where and, for Harbor, which Secret holds the credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationEndpoint {
    /// The registry kind on this side: Harbor keeps repositories in projects, the k3d registry does not.
    pub mode: RegistryMode,
    /// `http://host[:port]` or `https://host`.
    pub url: String,
    /// Where the Job reads its user name and password, when the registry needs credentials.
    pub credentials: Option<SecretCredentials>,
    /// `(config map, key)` of the CA certificate that signs the registry's TLS certificate, when the
    /// operator generated it (trusted in addition to the system roots).
    pub ca: Option<(String, String)>,
}

/// Credentials the Job reads from a Secret (never a value in the Job itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretCredentials {
    /// The Secret, in the Registry's namespace.
    pub secret: String,
    /// The key of the Secret holding the user name.
    pub username_key: String,
    /// The key of the Secret holding the password.
    pub password_key: String,
}

impl SecretCredentials {
    /// The migration robot of `registry` (see [`robot_secret_name`]): keys `username` and `password`.
    pub fn robot(registry: &Registry) -> Self {
        Self {
            secret: robot_secret_name(registry),
            username_key: ROBOT_USERNAME_KEY.to_string(),
            password_key: ROBOT_PASSWORD_KEY.to_string(),
        }
    }
}

/// Key of the robot's full name in the migration robot Secret.
pub const ROBOT_USERNAME_KEY: &str = "username";
/// Key of the robot's secret in the migration robot Secret.
pub const ROBOT_PASSWORD_KEY: &str = "password";

/// The Secret holding the short-lived Harbor robot the Jobs of a switch into or out of Harbor use
/// (`<name>-migration-robot`), created by the operator before the first Job and deleted after the flip.
pub fn robot_secret_name(registry: &Registry) -> String {
    format!("{}-migration-robot", registry.name_any())
}

/// The robot's short name in Harbor (`migrate-<namespace>-<name>`; Harbor shows it as
/// `robot$<project>+migrate-<namespace>-<name>` into Harbor, `robot$migrate-<namespace>-<name>` out of
/// it): unique per Registry across namespaces.
pub fn robot_name(registry: &Registry) -> String {
    format!(
        "migrate-{}-{}",
        registry.namespace().unwrap_or_default(),
        registry.name_any()
    )
}

/// Where the Job mounts the CA certificates of its endpoints (`<dir>-0`, `<dir>-1`).
const CA_DIR: &str = "/etc/registry-operator/ca";

/// Which pass of a switch a Job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// The bulk copy, while the source still takes pushes (`migrate --no-verify`).
    Copy,
    /// The second pass after the freeze: only what changed (`migrate --no-verify`; what the
    /// destination already has is skipped by digest).
    CatchUp,
    /// Every tag's digest compared on both sides, nothing written (`migrate --verify-only`).
    Verify,
    /// For a source that could not be frozen: copy what is new, then verify every tag (`migrate`).
    CopyAndVerify,
}

impl JobKind {
    /// The word in the Job's name.
    pub fn slug(self) -> &'static str {
        match self {
            JobKind::Copy => "migrate",
            JobKind::CatchUp => "catchup",
            JobKind::Verify | JobKind::CopyAndVerify => "verify",
        }
    }
}

/// What the Job copies, and with which image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationPlan {
    /// Which pass.
    pub kind: JobKind,
    /// Registry copied from (never written to).
    pub from: MigrationEndpoint,
    /// Registry copied to.
    pub to: MigrationEndpoint,
    /// Attempt number, part of the Job name so a failed Job is replaced, never mutated.
    pub attempt: u32,
    /// The operator's own image.
    pub image: String,
}

/// The `--dest-project` of a copy: `spec.migration.destinationProject` into Harbor, which keeps
/// repositories in projects; nothing into the k3d registry, because repositories copied from Harbor
/// already carry their project (`library/app` stays `library/app`, never `library/library/app`).
pub fn destination_project(registry: &Registry, to: RegistryMode) -> String {
    match to {
        RegistryMode::Harbor => {
            registry
                .spec
                .migration
                .clone()
                .unwrap_or_default()
                .destination_project
        }
        RegistryMode::K3d => String::new(),
    }
}

/// Name of the Job of a pass's `attempt` (`<name>-migrate-1`, `<name>-catchup-1`, `<name>-verify-2`).
pub fn job_name(registry: &Registry, kind: JobKind, attempt: u32) -> String {
    format!("{}-{}-{attempt}", registry.name_any(), kind.slug())
}

fn credential_env(prefix: &str, endpoint: &MigrationEndpoint) -> Vec<EnvVar> {
    let Some(credentials) = &endpoint.credentials else {
        return Vec::new();
    };
    let from_secret = |name: String, key: &str| EnvVar {
        name,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: credentials.secret.clone(),
                key: key.to_string(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    vec![
        from_secret(
            format!("MIGRATE_{prefix}_USERNAME"),
            &credentials.username_key,
        ),
        from_secret(
            format!("MIGRATE_{prefix}_PASSWORD"),
            &credentials.password_key,
        ),
    ]
}

/// The Job that runs `migrate` for `plan`.
pub fn job(registry: &Registry, plan: &MigrationPlan) -> Result<RenderedObject, RenderError> {
    let name = registry.name_any();
    let namespace = registry.namespace().unwrap_or_default();
    let owner = Owner::registry(&name, &namespace);
    let migration = registry.spec.migration.clone().unwrap_or_default();
    let mut args = vec![
        "--json-logs".to_string(),
        "migrate".to_string(),
        "--from".to_string(),
        plan.from.url.clone(),
        "--to".to_string(),
        plan.to.url.clone(),
        // `--dest-project=` keeps an empty value one argument, whatever parses it.
        format!(
            "--dest-project={}",
            destination_project(registry, plan.to.mode)
        ),
        "--concurrency".to_string(),
        migration.concurrency.to_string(),
        "--output".to_string(),
        "json".to_string(),
        "--termination-log".to_string(),
        "/dev/termination-log".to_string(),
    ];
    match plan.kind {
        JobKind::Copy | JobKind::CatchUp => args.push("--no-verify".to_string()),
        JobKind::Verify => args.push("--verify-only".to_string()),
        JobKind::CopyAndVerify => {}
    }
    if !migration.repositories.is_empty() {
        args.push("--repos".to_string());
        args.push(migration.repositories.join(","));
    }
    if plan.from.url.starts_with("http://") || plan.to.url.starts_with("http://") {
        args.push("--insecure".to_string());
    }
    let mut env = credential_env("FROM", &plan.from);
    env.extend(credential_env("TO", &plan.to));
    // `migrate` (rustls with the platform verifier) reads trust anchors from SSL_CERT_DIR when set:
    // the image's system roots plus each generated CA.
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    let mut cert_dirs = vec!["/etc/ssl/certs".to_string()];
    for (i, (config_map, key)) in [&plan.from, &plan.to]
        .into_iter()
        .filter_map(|endpoint| endpoint.ca.as_ref())
        .enumerate()
    {
        let volume = format!("ca-{i}");
        let dir = format!("{CA_DIR}-{i}");
        volumes.push(Volume {
            name: volume.clone(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map.clone(),
                items: Some(vec![KeyToPath {
                    key: key.clone(),
                    path: "ca.crt".to_string(),
                    mode: None,
                }]),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: volume,
            mount_path: dir.clone(),
            read_only: Some(true),
            ..Default::default()
        });
        cert_dirs.push(dir);
    }
    if !mounts.is_empty() {
        env.push(EnvVar {
            name: "SSL_CERT_DIR".to_string(),
            value: Some(cert_dirs.join(":")),
            ..Default::default()
        });
    }
    let labels = owner.labels("registry-operator", "migration");
    let container = Container {
        name: "migrate".to_string(),
        image: Some(plan.image.clone()),
        args: Some(args),
        env: Some(env),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("100m".to_string())),
                ("memory".to_string(), Quantity("64Mi".to_string())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_string(),
                Quantity("256Mi".to_string()),
            )])),
            ..Default::default()
        }),
        security_context: Some(super::k3d::restricted_container_security()),
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ..Default::default()
    };
    let job = Job {
        metadata: ObjectMeta {
            name: Some(job_name(registry, plan.kind, plan.attempt)),
            namespace: Some(namespace.clone()),
            labels: Some(labels.clone()),
            owner_references: owner_reference(registry).map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            // migrate retries transient errors itself; a failed Job is a failed attempt.
            backoff_limit: Some(0),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".to_string()),
                    automount_service_account_token: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65532),
                        run_as_group: Some(65532),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_string(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    containers: vec![container],
                    volumes: (!volumes.is_empty()).then_some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    RenderedObject::from_typed(job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{MigrationSpec, RegistrySpec, Retention};

    fn plan() -> MigrationPlan {
        MigrationPlan {
            kind: JobKind::Copy,
            from: MigrationEndpoint {
                mode: RegistryMode::K3d,
                url: "http://platform-distribution.registry.svc.cluster.local:5000".into(),
                credentials: None,
                ca: None,
            },
            to: MigrationEndpoint {
                mode: RegistryMode::Harbor,
                url: "https://harbor.ai-platform.localhost".into(),
                credentials: Some(SecretCredentials {
                    secret: "platform-migration-robot".into(),
                    username_key: "username".into(),
                    password_key: "password".into(),
                }),
                ca: Some(("platform-harbor-ca".into(), "ca.crt".into())),
            },
            attempt: 2,
            image: "ghcr.io/aisp/registry-operator:0.1.0".into(),
        }
    }

    #[test]
    fn job_runs_migrate_with_secret_credentials_only() {
        let mut registry = Registry::new(
            "platform",
            RegistrySpec {
                mode: RegistryMode::Harbor,
                host: Some("harbor.ai-platform.localhost".into()),
                k3d: None,
                harbor: None,
                retention: Retention::Retain,
                migration: None,
            },
        );
        registry.metadata.namespace = Some("registry".into());
        let job = job(&registry, &plan()).unwrap();
        assert_eq!(job.name(), "platform-migrate-2");
        let container = &job.object.data["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(args.windows(2).any(|w| w
            == [
                "--from",
                "http://platform-distribution.registry.svc.cluster.local:5000"
            ]));
        assert!(
            args.contains(&"--insecure"),
            "plain-http k3d source needs --insecure"
        );
        assert!(args.contains(&"--dest-project=library"));
        let env = container["env"].as_array().unwrap();
        let password = env
            .iter()
            .find(|e| e["name"] == "MIGRATE_TO_PASSWORD")
            .unwrap();
        assert!(password.get("value").is_none());
        assert_eq!(
            password["valueFrom"]["secretKeyRef"]["name"],
            "platform-migration-robot"
        );
        // The robot's name is read from its Secret too: the Job never logs in as admin.
        let username = env
            .iter()
            .find(|e| e["name"] == "MIGRATE_TO_USERNAME")
            .unwrap();
        assert!(username.get("value").is_none());
        assert_eq!(
            username["valueFrom"]["secretKeyRef"],
            serde_json::json!({"name": "platform-migration-robot", "key": "username", "optional": false})
        );
        assert!(
            env.iter()
                .all(|e| !e["name"].as_str().unwrap().starts_with("MIGRATE_FROM")),
            "k3d source is anonymous"
        );
        assert_eq!(
            container["securityContext"]["allowPrivilegeEscalation"],
            false
        );
        // The generated CA is trusted beside the system roots, from the exported ConfigMap.
        let cert_dir = env.iter().find(|e| e["name"] == "SSL_CERT_DIR").unwrap();
        assert_eq!(
            cert_dir["value"],
            "/etc/ssl/certs:/etc/registry-operator/ca-0"
        );
        assert_eq!(
            container["volumeMounts"][0]["mountPath"],
            "/etc/registry-operator/ca-0"
        );
        let volume = &job.object.data["spec"]["template"]["spec"]["volumes"][0];
        assert_eq!(volume["configMap"]["name"], "platform-harbor-ca");
        assert_eq!(volume["configMap"]["items"][0]["key"], "ca.crt");
        assert_eq!(
            job.object.data["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
            true
        );
    }

    /// Harbor → K3d: repositories read from Harbor are already `library/app`; the k3d registry gets
    /// them under the same path, so no project is put in front again.
    #[test]
    fn downgrade_to_k3d_adds_no_project_prefix() {
        let mut registry = Registry::new(
            "platform",
            RegistrySpec {
                mode: RegistryMode::K3d,
                host: None,
                k3d: None,
                harbor: None,
                retention: Retention::Retain,
                migration: Some(MigrationSpec {
                    allow_downgrade: true,
                    ..MigrationSpec::default()
                }),
            },
        );
        registry.metadata.namespace = Some("registry".into());
        let mut plan = plan();
        std::mem::swap(&mut plan.from, &mut plan.to);
        let job = job(&registry, &plan).unwrap();
        let args: Vec<String> = serde_json::from_value(
            job.object.data["spec"]["template"]["spec"]["containers"][0]["args"].clone(),
        )
        .unwrap();
        assert!(args.contains(&"--dest-project=".to_string()), "{args:?}");
        assert!(!args.iter().any(|a| a.contains("library")), "{args:?}");
        assert_eq!(
            destination_project(&registry, RegistryMode::Harbor),
            "library"
        );

        // The arguments as `migrate` parses them: the destination repository keeps the source path.
        let parsed = <crate::cli::Cli as clap::Parser>::try_parse_from(
            std::iter::once("registry-operator".to_string()).chain(args),
        )
        .expect("the Job's arguments parse");
        let crate::cli::Command::Migrate(migrate) = parsed.command else {
            panic!("not migrate");
        };
        assert_eq!(migrate.dest_project, "");
        let options = crate::cli::migrate_options(&migrate).expect("options");
        assert_eq!(options.dest_repo("library/app"), "library/app");
    }
}
