//! The migration Job of a mode switch: `registry-operator migrate` in the operator's own image, with
//! credentials only from Secret references and the Pod Security "restricted" profile. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecretKeySelector,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::labels::Owner;
use super::{RenderError, RenderedObject, owner_reference};
use crate::crd::Registry;

/// One side of a copy: where and, for Harbor, which Secret key holds the admin password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationEndpoint {
    /// `http://host[:port]` or `https://host`.
    pub url: String,
    /// `(secret, key)` of the password of user `admin`, when the registry needs credentials.
    pub admin_password: Option<(String, String)>,
}

/// What the Job copies, and with which image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationPlan {
    /// Registry copied from (never written to).
    pub from: MigrationEndpoint,
    /// Registry copied to.
    pub to: MigrationEndpoint,
    /// Attempt number, part of the Job name so a failed Job is replaced, never mutated.
    pub attempt: u32,
    /// The operator's own image.
    pub image: String,
}

/// Name of the Job of `attempt`.
pub fn job_name(registry: &Registry, attempt: u32) -> String {
    format!("{}-migrate-{attempt}", registry.name_any())
}

fn credential_env(prefix: &str, endpoint: &MigrationEndpoint) -> Vec<EnvVar> {
    let Some((secret, key)) = &endpoint.admin_password else {
        return Vec::new();
    };
    vec![
        EnvVar {
            name: format!("MIGRATE_{prefix}_USERNAME"),
            value: Some("admin".to_string()),
            ..Default::default()
        },
        EnvVar {
            name: format!("MIGRATE_{prefix}_PASSWORD"),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.clone(),
                    key: key.clone(),
                    optional: Some(false),
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
    ]
}

/// The Job that runs `migrate` for `plan`.
pub fn job(registry: &Registry, plan: &MigrationPlan) -> Result<RenderedObject, RenderError> {
    let name = registry.name_any();
    let namespace = registry.namespace().unwrap_or_default();
    let owner = Owner {
        kind: "Registry",
        name: &name,
        namespace: Some(&namespace),
    };
    let migration = registry.spec.migration.clone().unwrap_or_default();
    let mut args = vec![
        "--json-logs".to_string(),
        "migrate".to_string(),
        "--from".to_string(),
        plan.from.url.clone(),
        "--to".to_string(),
        plan.to.url.clone(),
        "--dest-project".to_string(),
        migration.destination_project.clone(),
        "--concurrency".to_string(),
        migration.concurrency.to_string(),
        "--output".to_string(),
        "json".to_string(),
        "--termination-log".to_string(),
        "/dev/termination-log".to_string(),
    ];
    if !migration.repositories.is_empty() {
        args.push("--repos".to_string());
        args.push(migration.repositories.join(","));
    }
    if plan.from.url.starts_with("http://") || plan.to.url.starts_with("http://") {
        args.push("--insecure".to_string());
    }
    let mut env = credential_env("FROM", &plan.from);
    env.extend(credential_env("TO", &plan.to));
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
        ..Default::default()
    };
    let job = Job {
        metadata: ObjectMeta {
            name: Some(job_name(registry, plan.attempt)),
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
    use crate::crd::{RegistryMode, RegistrySpec, Retention};

    fn plan() -> MigrationPlan {
        MigrationPlan {
            from: MigrationEndpoint {
                url: "http://platform-distribution.registry.svc.cluster.local:5000".into(),
                admin_password: None,
            },
            to: MigrationEndpoint {
                url: "http://harbor.ai-platform.localhost".into(),
                admin_password: Some(("platform-harbor-admin-secret".into(), "password".into())),
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
        assert!(args.windows(2).any(|w| w == ["--dest-project", "library"]));
        let env = container["env"].as_array().unwrap();
        let password = env
            .iter()
            .find(|e| e["name"] == "MIGRATE_TO_PASSWORD")
            .unwrap();
        assert!(password.get("value").is_none());
        assert_eq!(
            password["valueFrom"]["secretKeyRef"]["name"],
            "platform-harbor-admin-secret"
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
        assert_eq!(
            job.object.data["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
            true
        );
    }
}
