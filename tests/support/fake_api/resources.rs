//! The table of API resources the fake server serves (built-in kinds and test-chosen CRDs).
//! Only describes resources; it must not hold objects or do any I/O.

/// One served resource type: `group/version`, `Kind`, plural and scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiResourceSpec {
    /// API group; empty string for the core group (`/api/v1`).
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// Whether `/{plural}/{name}/status` exists (main-resource writes then ignore `status`).
    pub status_subresource: bool,
}

#[allow(dead_code)]
impl ApiResourceSpec {
    pub fn new(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
        status: bool,
    ) -> Self {
        Self {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            namespaced,
            status_subresource: status,
        }
    }

    /// `v1` for core, `group/version` otherwise (the `apiVersion` field value).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Stable key used by the store: `group/version/plural`.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.group, self.version, self.plural)
    }

    pub fn singular(&self) -> String {
        self.kind.to_lowercase()
    }

    /// `registry.aisp.dev/v1alpha1` `Registry`, namespaced, with status.
    pub fn registry() -> Self {
        Self::new(
            "registry.aisp.dev",
            "v1alpha1",
            "Registry",
            "registries",
            true,
            true,
        )
    }
    /// `registry.aisp.dev/v1alpha1` `ImagePolicy`, cluster-scoped, with status.
    pub fn image_policy() -> Self {
        Self::new(
            "registry.aisp.dev",
            "v1alpha1",
            "ImagePolicy",
            "imagepolicies",
            false,
            true,
        )
    }
    /// CloudNativePG `postgresql.cnpg.io/v1` `Cluster`, namespaced, with status.
    pub fn cnpg_cluster() -> Self {
        Self::new(
            "postgresql.cnpg.io",
            "v1",
            "Cluster",
            "clusters",
            true,
            true,
        )
    }
    /// Kyverno `kyverno.io/v1` `ClusterPolicy`, cluster-scoped, with status.
    pub fn kyverno_cluster_policy() -> Self {
        Self::new(
            "kyverno.io",
            "v1",
            "ClusterPolicy",
            "clusterpolicies",
            false,
            true,
        )
    }
    /// Kyverno `policies.kyverno.io/v1` `ValidatingPolicy`, cluster-scoped, with status.
    pub fn kyverno_validating_policy() -> Self {
        Self::new(
            "policies.kyverno.io",
            "v1",
            "ValidatingPolicy",
            "validatingpolicies",
            false,
            true,
        )
    }
    /// Kyverno `policies.kyverno.io/v1` `ImageValidatingPolicy`, cluster-scoped, with status.
    pub fn kyverno_image_validating_policy() -> Self {
        Self::new(
            "policies.kyverno.io",
            "v1",
            "ImageValidatingPolicy",
            "imagevalidatingpolicies",
            false,
            true,
        )
    }
}

/// The built-in kinds enabled by `with_core()`.
pub fn core_resources() -> Vec<ApiResourceSpec> {
    let r = ApiResourceSpec::new;
    vec![
        r("", "v1", "Namespace", "namespaces", false, true),
        r("", "v1", "ConfigMap", "configmaps", true, false),
        r("", "v1", "Secret", "secrets", true, false),
        r("", "v1", "Service", "services", true, true),
        r(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            true,
        ),
        r("", "v1", "Pod", "pods", true, true),
        r("", "v1", "ServiceAccount", "serviceaccounts", true, false),
        r("", "v1", "Event", "events", true, false),
        r("apps", "v1", "Deployment", "deployments", true, true),
        r("apps", "v1", "StatefulSet", "statefulsets", true, true),
        r("batch", "v1", "Job", "jobs", true, true),
        r(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            true,
            true,
        ),
        r("events.k8s.io", "v1", "Event", "events", true, false),
        r("coordination.k8s.io", "v1", "Lease", "leases", true, false),
        r(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            true,
        ),
    ]
}

/// Finds a resource by a short reference: `plural`, `Kind`, `group/plural`, `version/plural`
/// or `group/version/plural` (core group: `v1/events`). The first registered match wins,
/// so a bare `events` means the core `v1` Event.
pub fn resolve<'a>(
    resources: &'a [ApiResourceSpec],
    reference: &str,
) -> Option<&'a ApiResourceSpec> {
    let parts: Vec<&str> = reference.split('/').collect();
    resources.iter().find(|r| match parts.as_slice() {
        [one] => r.plural == *one || r.kind == *one,
        [gv, plural] => {
            (r.plural == *plural || r.kind == *plural) && (r.group == *gv || r.api_version() == *gv)
        }
        [g, v, plural] => {
            (r.plural == *plural || r.kind == *plural) && r.group == *g && r.version == *v
        }
        _ => false,
    })
}
