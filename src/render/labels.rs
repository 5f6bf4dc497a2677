//! The one place that builds the labels every rendered child carries; pruning selects on them.
//! Pure string building; must not read the cluster.

use std::collections::BTreeMap;

/// Value of `app.kubernetes.io/managed-by` on everything the operator creates.
pub const MANAGER: &str = "registry-operator";
/// Value of `app.kubernetes.io/part-of`.
pub const PART_OF: &str = "aisp";
/// Label naming the owning Registry (or ImagePolicy), also on objects outside its namespace.
pub const OWNER_NAME: &str = "registry.aisp.dev/owner-name";
/// Label naming the owning Registry's namespace (empty for cluster-scoped owners).
pub const OWNER_NAMESPACE: &str = "registry.aisp.dev/owner-namespace";
/// Label naming the owning kind (`Registry` or `ImagePolicy`).
pub const OWNER_KIND: &str = "registry.aisp.dev/owner-kind";

/// Value of [`OWNER_NAMESPACE`] for cluster-scoped owners: empty, a valid label value that no
/// namespace can have, so `registry.aisp.dev/owner-namespace=` selects exactly the objects of
/// cluster-scoped owners (and never a namespaced Registry's) in selector maps and strings alike.
pub const CLUSTER_SCOPE: &str = "";

/// Identity of the custom resource that owns rendered objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner<'a> {
    /// `Registry` or `ImagePolicy`.
    pub kind: &'a str,
    /// Name of the owner.
    pub name: &'a str,
    /// Namespace of the owner; `None` for cluster-scoped owners.
    pub namespace: Option<&'a str>,
}

impl<'a> Owner<'a> {
    /// A Registry (namespaced) as owner.
    pub const fn registry(name: &'a str, namespace: &'a str) -> Self {
        Self {
            kind: "Registry",
            name,
            namespace: Some(namespace),
        }
    }

    /// An ImagePolicy (cluster-scoped) as owner.
    pub const fn image_policy(name: &'a str) -> Self {
        Self {
            kind: "ImagePolicy",
            name,
            namespace: None,
        }
    }

    /// Labels that select every object this owner manages (what prune lists by).
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        self.insert_selector_labels(&mut labels);
        labels
    }

    /// The same selector as a label-selector string for list calls.
    pub fn selector(&self) -> String {
        self.selector_labels()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Pod-selector labels of one component: stable for the component's lifetime (selectors are immutable).
    pub fn pod_selector(&self, app: &str, component: &str) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        self.insert_pod_selector(&mut labels, app, component);
        labels
    }

    /// All labels of one component's objects: selector labels plus the recommended app labels.
    pub fn labels(&self, app: &str, component: &str) -> BTreeMap<String, String> {
        // Filled in place: rendering calls this for every object and pod template, and building the
        // selector maps first only to merge them costs twice the allocations.
        let mut labels = BTreeMap::new();
        self.insert_selector_labels(&mut labels);
        self.insert_pod_selector(&mut labels, app, component);
        labels.insert("app.kubernetes.io/part-of".to_string(), PART_OF.to_string());
        labels
    }

    fn insert_selector_labels(&self, labels: &mut BTreeMap<String, String>) {
        labels.insert(
            "app.kubernetes.io/managed-by".to_string(),
            MANAGER.to_string(),
        );
        labels.insert(OWNER_KIND.to_string(), self.kind.to_string());
        labels.insert(OWNER_NAME.to_string(), self.name.to_string());
        labels.insert(
            OWNER_NAMESPACE.to_string(),
            self.namespace.unwrap_or(CLUSTER_SCOPE).to_string(),
        );
    }

    fn insert_pod_selector(
        &self,
        labels: &mut BTreeMap<String, String>,
        app: &str,
        component: &str,
    ) {
        labels.insert("app.kubernetes.io/name".to_string(), app.to_string());
        labels.insert(
            "app.kubernetes.io/instance".to_string(),
            self.name.to_string(),
        );
        labels.insert(
            "app.kubernetes.io/component".to_string(),
            component.to_string(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_contain_recommended_keys_and_selector() {
        let owner = Owner::registry("platform", "registry");
        let labels = owner.labels("distribution", "registry");
        for key in [
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
            "app.kubernetes.io/managed-by",
            "app.kubernetes.io/part-of",
        ] {
            assert!(labels.contains_key(key), "missing {key}");
        }
        for (k, v) in owner.selector_labels() {
            assert_eq!(labels.get(&k), Some(&v));
        }
        assert_eq!(
            owner.selector(),
            "app.kubernetes.io/managed-by=registry-operator,registry.aisp.dev/owner-kind=Registry,registry.aisp.dev/owner-name=platform,registry.aisp.dev/owner-namespace=registry"
        );
    }

    #[test]
    fn cluster_scoped_owner_gets_an_empty_namespace_label_that_the_api_server_accepts() {
        let owner = Owner::image_policy("p");
        let labels = owner.labels("image-policy", "disallow-latest-tag");
        assert_eq!(labels[OWNER_NAMESPACE], "");
        for (key, value) in &labels {
            crate::validate::metadata::label_key(key).expect("label key");
            crate::validate::metadata::label_value(value)
                .unwrap_or_else(|e| panic!("{key}={value:?}: {e}"));
        }
        // `key=` with an empty value is a valid selector requirement: present and empty.
        assert_eq!(
            owner.selector(),
            "app.kubernetes.io/managed-by=registry-operator,registry.aisp.dev/owner-kind=ImagePolicy,registry.aisp.dev/owner-name=p,registry.aisp.dev/owner-namespace="
        );
    }

    #[test]
    fn cluster_scoped_selector_never_matches_a_namespaced_owners_objects() {
        let policy = Owner::image_policy("p");
        let namespaced = Owner {
            kind: "ImagePolicy",
            name: "p",
            namespace: Some("default"),
        };
        let matches = |selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>| {
            selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        };
        let policy_labels = policy.labels("image-policy", "x");
        let namespaced_labels = namespaced.labels("image-policy", "x");
        assert!(matches(&policy.selector_labels(), &policy_labels));
        assert!(!matches(&policy.selector_labels(), &namespaced_labels));
        assert!(!matches(&namespaced.selector_labels(), &policy_labels));
    }
}
