//! The one table of every API permission the operator uses; `config/rbac/role.yaml` must grant exactly
//! this (a test compares both ways). Data only: it must not talk to the cluster.

/// One permission: `verbs` on `resource` (with subresource, e.g. `registries/status`) in API `group`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RbacRule {
    /// API group; `""` is the core group.
    pub group: &'static str,
    /// Plural resource name, optionally `resource/subresource`.
    pub resource: &'static str,
    /// Verbs granted.
    pub verbs: &'static [&'static str],
    /// Why the operator needs it (documentation; not part of the granted rule).
    pub why: &'static str,
}

// Trimmed to what the scenarios against the real kube-apiserver use (its audit log, checked by
// tests/rbac_audit.rs): children are read from watch caches, so no `get`; server-side apply that
// creates an object is authorized as `create` too.
const CHILD: &[&str] = &["list", "watch", "create", "patch", "delete"];
/// Children the operator also reads directly (`get`).
const CHILD_READ: &[&str] = &["get", "list", "watch", "create", "patch", "delete"];
const FINALIZERS: &[&str] = &["update"];

/// Every group/resource/verb the operator uses, and nothing else.
pub const RBAC_RULES: &[RbacRule] = &[
    RbacRule {
        group: "registry.aisp.dev",
        resource: "registries",
        verbs: &["list", "watch", "patch"],
        why: "watch Registries in every namespace; add/remove the finalizer",
    },
    RbacRule {
        group: "registry.aisp.dev",
        resource: "registries/status",
        verbs: &["patch"],
        why: "report conditions, endpoint and migration progress",
    },
    RbacRule {
        group: "registry.aisp.dev",
        resource: "registries/finalizers",
        verbs: FINALIZERS,
        why: "owner references with blockOwnerDeletion on children (OwnerReferencesPermissionEnforcement)",
    },
    RbacRule {
        group: "registry.aisp.dev",
        resource: "imagepolicies",
        verbs: &["list", "watch"],
        why: "watch ImagePolicies (their policies are owned, so no finalizer)",
    },
    RbacRule {
        group: "registry.aisp.dev",
        resource: "imagepolicies/status",
        verbs: &["patch"],
        why: "report conditions",
    },
    RbacRule {
        group: "registry.aisp.dev",
        resource: "imagepolicies/finalizers",
        verbs: FINALIZERS,
        why: "owner references with blockOwnerDeletion on generated policies",
    },
    RbacRule {
        group: "registry.aisp.dev",
        resource: "registryprojects",
        verbs: &["list", "watch", "patch"],
        why: "watch RegistryProjects in every namespace; add/remove their finalizer (robots, cross-namespace pull Secrets)",
    },
    RbacRule {
        group: "registry.aisp.dev",
        resource: "registryprojects/status",
        verbs: &["patch"],
        why: "report conditions, the Harbor project id and the robot secret refresh time",
    },
    RbacRule {
        group: "registry.aisp.dev",
        resource: "registryprojects/finalizers",
        verbs: FINALIZERS,
        why: "owner reference with blockOwnerDeletion on a RegistryProject's robot credentials Secret",
    },
    RbacRule {
        group: "",
        resource: "configmaps",
        verbs: CHILD_READ,
        why: "component configuration; the KEP-1755 announcement in kube-public",
    },
    RbacRule {
        group: "",
        resource: "services",
        verbs: CHILD,
        why: "registry and Harbor component Services",
    },
    RbacRule {
        group: "",
        resource: "persistentvolumeclaims",
        verbs: CHILD,
        why: "image, Redis and Trivy storage; released or deleted per spec.retention",
    },
    RbacRule {
        group: "",
        resource: "secrets",
        verbs: &["get", "list", "watch", "create", "update", "delete"],
        why: "generated Harbor secrets: created once, never patched; update only for the one-time PKCS#8 -> PKCS#1 rewrite of a token key, and for a RegistryProject's robot credentials and pull Secrets when the robot secret changes; watched: labelled ones, and by name (metadata only) the upstream credentials Secret each proxy-cache RegistryProject names",
    },
    RbacRule {
        group: "apps",
        resource: "deployments",
        verbs: CHILD,
        why: "the distribution registry and Harbor's stateless components",
    },
    RbacRule {
        group: "apps",
        resource: "statefulsets",
        verbs: CHILD,
        why: "Harbor's Redis and Trivy",
    },
    RbacRule {
        group: "",
        resource: "pods",
        verbs: &["list"],
        why: "read a finished migration Job's termination message (counts); listed by job label, never watched",
    },
    RbacRule {
        group: "batch",
        resource: "jobs",
        verbs: CHILD,
        why: "one-shot tasks such as migrations",
    },
    RbacRule {
        group: "batch",
        resource: "cronjobs",
        verbs: CHILD,
        why: "the hosted K3d registry's garbage collection (spec.k3d.gc)",
    },
    RbacRule {
        group: "networking.k8s.io",
        resource: "ingresses",
        verbs: CHILD,
        why: "Harbor's Ingress",
    },
    RbacRule {
        group: "events.k8s.io",
        resource: "events",
        verbs: &["create", "patch"],
        why: "Kubernetes Events when Ready changes",
    },
    RbacRule {
        group: "apiextensions.k8s.io",
        resource: "customresourcedefinitions",
        verbs: &["list", "watch"],
        why: "notice Kyverno or CloudNativePG being installed or removed (metadata only), no restart",
    },
    RbacRule {
        group: "postgresql.cnpg.io",
        resource: "clusters",
        verbs: CHILD_READ,
        why: "Harbor's managed PostgreSQL on CloudNativePG; get: the existing Cluster of spec.harbor.database.cnpg",
    },
    RbacRule {
        group: "postgresql.cnpg.io",
        resource: "databases",
        verbs: CHILD,
        why: "Harbor's database on an existing CloudNativePG Cluster (spec.harbor.database.cnpg)",
    },
    RbacRule {
        group: "postgresql.cnpg.io",
        resource: "databaseroles",
        verbs: CHILD,
        why: "Harbor's login role on an existing CloudNativePG Cluster (spec.harbor.database.cnpg)",
    },
    RbacRule {
        group: "postgresql.cnpg.io",
        resource: "scheduledbackups",
        verbs: CHILD,
        why: "backups of the managed database (spec.harbor.database.backup)",
    },
    RbacRule {
        group: "postgresql.cnpg.io",
        resource: "backups",
        verbs: &["list", "watch", "create", "patch"],
        why: "the on-demand backup taken before a Harbor upgrade (kept afterwards, never deleted)",
    },
    RbacRule {
        group: "kyverno.io",
        resource: "clusterpolicies",
        verbs: CHILD,
        why: "ImagePolicy rendered as a Kyverno ClusterPolicy",
    },
    RbacRule {
        group: "policies.kyverno.io",
        resource: "validatingpolicies",
        verbs: CHILD,
        why: "ImagePolicy rendered as a Kyverno ValidatingPolicy (CEL)",
    },
    RbacRule {
        group: "policies.kyverno.io",
        resource: "imagevalidatingpolicies",
        verbs: CHILD,
        why: "ImagePolicy signature rules as a Kyverno ImageValidatingPolicy",
    },
];

/// Every `(group, resource, verb)` triple the table grants.
pub fn granted() -> std::collections::BTreeSet<(String, String, String)> {
    RBAC_RULES
        .iter()
        .flat_map(|rule| {
            rule.verbs.iter().map(|verb| {
                (
                    rule.group.to_string(),
                    rule.resource.to_string(),
                    verb.to_string(),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    use std::collections::BTreeSet;
    use std::path::Path;

    fn read(relative: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn role_grants(role: &ClusterRole) -> BTreeSet<(String, String, String)> {
        let mut found = BTreeSet::new();
        for rule in role.rules.iter().flatten() {
            assert!(
                rule.resource_names.is_none() && rule.non_resource_urls.is_none(),
                "role.yaml uses a rule shape the table cannot express: {rule:?}"
            );
            for group in rule.api_groups.iter().flatten() {
                for resource in rule.resources.iter().flatten() {
                    for verb in &rule.verbs {
                        found.insert((group.clone(), resource.clone(), verb.clone()));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn role_yaml_grants_exactly_the_table() {
        let role: ClusterRole = yaml_serde::from_str(&read("config/rbac/role.yaml")).expect("role");
        let in_role = role_grants(&role);
        let in_table = granted();
        let extra: Vec<_> = in_role.difference(&in_table).collect();
        let missing: Vec<_> = in_table.difference(&in_role).collect();
        assert!(
            extra.is_empty(),
            "role.yaml grants more than RBAC_RULES: {extra:?}"
        );
        assert!(
            missing.is_empty(),
            "role.yaml lacks RBAC_RULES entries: {missing:?}"
        );
    }

    #[test]
    fn no_wildcard_anywhere() {
        for file in [
            "config/rbac/role.yaml",
            "config/rbac/role_binding.yaml",
            "config/rbac/service_account.yaml",
        ] {
            assert!(!read(file).contains('*'), "{file} contains a wildcard");
        }
        for rule in RBAC_RULES {
            assert!(
                !rule.group.contains('*')
                    && !rule.resource.contains('*')
                    && rule.verbs.iter().all(|v| !v.contains('*')),
                "{rule:?}"
            );
        }
    }

    #[test]
    fn table_has_no_duplicate_and_no_escalating_verbs() {
        let mut seen = BTreeSet::new();
        for rule in RBAC_RULES {
            assert!(
                seen.insert((rule.group, rule.resource)),
                "duplicate {rule:?}"
            );
            for verb in rule.verbs {
                assert!(
                    !["escalate", "bind", "impersonate", "deletecollection"].contains(verb),
                    "{rule:?}"
                );
            }
        }
    }

    #[test]
    fn binding_gives_the_role_to_the_manager_service_account() {
        let binding: ClusterRoleBinding =
            yaml_serde::from_str(&read("config/rbac/role_binding.yaml")).expect("binding");
        let role: ClusterRole = yaml_serde::from_str(&read("config/rbac/role.yaml")).expect("role");
        assert_eq!(binding.role_ref.kind, "ClusterRole");
        assert_eq!(Some(binding.role_ref.name), role.metadata.name);
        let subjects = binding.subjects.unwrap_or_default();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(subjects[0].name, "manager");
    }
}
