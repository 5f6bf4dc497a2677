//! The shipped ClusterRole grants nothing the operator does not use: every (verb, resource) of
//! `RBAC_RULES` (= config/rbac/role.yaml) must appear in the kube-apiserver audit logs that the
//! scenario tests left behind (tests/support/cluster records them when a control plane stops), or
//! be listed below with the reason no scenario can show it. `.ci/test` runs this after the suite.

use std::collections::BTreeSet;
use std::path::Path;

use registry_operator::reconcile::rbac::RBAC_RULES;

/// Permissions no scenario exercises, each with the reason it is still granted.
const UNUSED_BUT_NEEDED: &[(&str, &str, &str)] = &[
    (
        "update",
        "registry.aisp.dev/registries/finalizers",
        "checked by the OwnerReferencesPermissionEnforcement admission plugin (blockOwnerDeletion), which some distributions enable; never a request of its own",
    ),
    (
        "update",
        "registry.aisp.dev/imagepolicies/finalizers",
        "same: blockOwnerDeletion on the generated Kyverno policies",
    ),
    (
        "update",
        "registry.aisp.dev/registryprojects/finalizers",
        "same: blockOwnerDeletion on a RegistryProject's robot credentials Secret",
    ),
    // Prune paths no scenario reaches yet (each a gap in the scenarios, not a spare permission).
    (
        "delete",
        "apps/statefulsets",
        "prune of Harbor's Redis/Trivy StatefulSets (Trivy off, Redis made external, Harbor retired after an allowed downgrade)",
    ),
    (
        "delete",
        "networking.k8s.io/ingresses",
        "prune of Harbor's Ingress when Harbor is retired after an allowed downgrade",
    ),
    (
        "delete",
        "policies.kyverno.io/imagevalidatingpolicies",
        "prune when requireSignatures or an attestation is removed from a CEL-flavour ImagePolicy",
    ),
    (
        "delete",
        "postgresql.cnpg.io/clusters",
        "a retired Harbor's managed database Cluster under retention: Delete",
    ),
];

fn granted() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for rule in RBAC_RULES {
        let resource = if rule.group.is_empty() {
            rule.resource.to_string()
        } else {
            format!("{}/{}", rule.group, rule.resource)
        };
        for verb in rule.verbs {
            out.insert((verb.to_string(), resource.clone()));
        }
    }
    out
}

fn used(dir: &Path) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            if let Some(refused) = line.strip_prefix("forbidden ") {
                panic!(
                    "{}: the operator was refused {refused}",
                    entry.path().display()
                );
            }
            if let Some((verb, resource)) = line.split_once(' ') {
                out.insert((verb.to_string(), resource.to_string()));
            }
        }
    }
    out
}

#[test]
fn every_granted_permission_is_used_by_a_scenario_or_explained() {
    if std::env::var("REGISTRY_OPERATOR_RBAC_AUDIT").as_deref() != Ok("1") {
        // It reads what the other tests recorded, so it runs after them (.ci/test does).
        eprintln!("SKIPPED: set REGISTRY_OPERATOR_RBAC_AUDIT=1 after running the scenarios");
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rbac-usage");
    let used = used(&dir);
    assert!(
        !used.is_empty(),
        "no audit records in {}: run the scenario tests first",
        dir.display()
    );
    let granted = granted();
    let explained: BTreeSet<(String, String)> = UNUSED_BUT_NEEDED
        .iter()
        .map(|(v, r, _)| (v.to_string(), r.to_string()))
        .collect();
    let unused: Vec<_> = granted
        .iter()
        .filter(|p| !used.contains(*p) && !explained.contains(*p))
        .collect();
    let beyond: Vec<_> = used.iter().filter(|p| !granted.contains(*p)).collect();
    eprintln!(
        "FIGURES rbac: {} permissions granted, {} used by the scenarios, {} explained",
        granted.len(),
        used.intersection(&granted).count(),
        explained.len()
    );
    assert!(
        beyond.is_empty(),
        "the operator used permissions its role does not list: {beyond:?}"
    );
    assert!(
        unused.is_empty(),
        "granted but used by no scenario (remove from RBAC_RULES and config/rbac, or explain in UNUSED_BUT_NEEDED): {unused:?}"
    );
    for (verb, resource, _) in UNUSED_BUT_NEEDED {
        assert!(
            granted.contains(&(verb.to_string(), resource.to_string())),
            "{verb} {resource} is explained but not granted"
        );
    }
}
