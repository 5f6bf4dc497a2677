//! Every condition reason the operator writes in a status, and what each means to a reader (Argo CD,
//! `kubectl describe`): healthy, progressing, degraded, or stuck until someone acts. Pure data; the
//! controllers pick reasons, this module must not decide when.

use std::fmt;

/// What a reason tells whoever reads `Ready=False` (or `True`) with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meaning {
    /// Serving as asked (`Ready=True`).
    Healthy,
    /// Still working towards the desired state; it resolves by itself (`Progressing=True`).
    Progressing,
    /// Something that should work is failing (`Degraded=True`).
    Degraded,
    /// Nothing is applied until someone acts (fix the spec, install a dependency); neither
    /// progressing nor degraded in the status, shown as degraded by the Argo CD health checks.
    Blocked,
    /// Only the steady value of a secondary condition (`Progressing=False`, `Degraded=False`, a Harbor
    /// part's `…Ready`); never the reason of `Ready=False`.
    Neutral,
}

/// A custom resource kind whose status carries reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrittenBy {
    /// The Registry controller.
    Registry,
    /// The ImagePolicy controller.
    ImagePolicy,
    /// The RegistryProject controller.
    RegistryProject,
}

impl WrittenBy {
    /// The kind's name (`Registry`, `ImagePolicy`, `RegistryProject`).
    pub const fn kind(self) -> &'static str {
        match self {
            WrittenBy::Registry => "Registry",
            WrittenBy::ImagePolicy => "ImagePolicy",
            WrittenBy::RegistryProject => "RegistryProject",
        }
    }
}

macro_rules! reasons {
    ($($(#[doc = $doc:literal])* $name:ident => $meaning:ident, [$($writer:ident),+];)*) => {
        /// A condition reason the operator writes (the CamelCase word in `reason`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $($(#[doc = $doc])* $name,)*
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$name,)*];

            /// The word written in a condition's `reason`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => stringify!($name),)*
                }
            }

            /// What the reason means to a reader.
            pub const fn meaning(self) -> Meaning {
                match self {
                    $(Reason::$name => Meaning::$meaning,)*
                }
            }

            /// Which custom resources' statuses carry it.
            pub const fn written_by(self) -> &'static [WrittenBy] {
                match self {
                    $(Reason::$name => &[$(WrittenBy::$writer),+],)*
                }
            }

            /// Whether the status of `kind` (`Registry`, `ImagePolicy`, `RegistryProject`) carries it.
            pub fn is_written_by(self, kind: &str) -> bool {
                self.written_by().iter().any(|w| w.kind() == kind)
            }
        }
    };
}

reasons! {
    /// Serving; the message gives the endpoint.
    Available => Healthy, [Registry];
    /// The Harbor project, its robots and pull Secrets are as the RegistryProject declares.
    ProjectReady => Healthy, [RegistryProject];
    /// Every generated Kyverno policy is ready.
    PoliciesReady => Healthy, [ImagePolicy];
    /// A switch finished: the new mode serves (Progressing and Migrating turn False with it).
    Switched => Healthy, [Registry];
    /// Children are not ready yet; the message lists which.
    Provisioning => Progressing, [Registry];
    /// Progressing while children are not ready; the message lists which.
    WaitingForChildren => Progressing, [Registry];
    /// Harbor core is held back until the CloudNativePG Cluster is ready.
    WaitingForDatabase => Progressing, [Registry];
    /// A switch provisions the target mode while the old registry serves.
    ProvisioningTarget => Progressing, [Registry];
    /// A switch's bulk copy runs (a migration Job); the old registry still takes pushes.
    Copying => Progressing, [Registry];
    /// A switch makes the old registry read-only (distribution's maintenance setting, or Harbor's
    /// `read_only` through its API) before the catch-up pass.
    Freezing => Progressing, [Registry];
    /// A switch copies what changed since the bulk copy (a second migration Job).
    CatchingUp => Progressing, [Registry];
    /// A switch compares every tag's digest on both sides before the flip.
    Verifying => Progressing, [Registry];
    /// After the flip: both hosts are served and allowed until the grace window ends and no
    /// running pod uses the old host; the message says how many still do.
    Grace => Progressing, [Registry];
    /// The old registry of a finished switch is retired (`Migrating=False`).
    Retired => Neutral, [Registry];
    /// `SourceFrozen=False`: the old registry cannot be made read-only by the operator (an adopted
    /// k3d registry runs outside the cluster); the catch-up pass and the final copy-and-verify cover
    /// pushes that land meanwhile.
    FreezeUnsupported => Neutral, [Registry];
    /// The hosted k3d registry is read-only while its garbage collection Job runs (released once
    /// the read-only rollout is done); writable again when the Job finished.
    GarbageCollecting => Progressing, [Registry];
    /// A Harbor version change runs step by step (read-only, backup, core, components, read-only
    /// off); the message names the step and what it waits for.
    Upgrading => Progressing, [Registry];
    /// The Registry a RegistryProject names does not exist (yet); looked at again every resync.
    WaitingForRegistry => Progressing, [RegistryProject];
    /// Kyverno has not reported the generated policies ready yet.
    WaitingForKyverno => Progressing, [ImagePolicy];
    /// `restrictRegistries` waits for the referenced Registry's `status.endpoint`.
    WaitingForRegistryEndpoint => Progressing, [ImagePolicy];
    /// The API server refused a child's apply or prune; the message names it.
    ApplyFailed => Degraded, [Registry, ImagePolicy, RegistryProject];
    /// `spec.k3d.nodePort` is taken by another Service; nothing was applied.
    NodePortConflict => Degraded, [Registry];
    /// Another Registry owns what this one needs (e.g. the KEP-1755 ConfigMap).
    Conflict => Degraded, [Registry, RegistryProject];
    /// Harbor serves, but its API refused or did not answer when the operator kept the settings the
    /// spec declares (`spec.harbor.readOnly`, `spec.harbor.gc`, a RegistryProject); retried.
    HarborUnavailable => Degraded, [Registry, RegistryProject];
    /// Harbor → K3d without `spec.migration.allowDowngrade`; Harbor keeps serving.
    DowngradeRefused => Degraded, [Registry];
    /// The copy failed; the old registry keeps serving and the copy is retried with backoff.
    MigrationFailed => Degraded, [Registry];
    /// The Kyverno policy kinds needed are not served; nothing was applied.
    KyvernoNotInstalled => Degraded, [ImagePolicy];
    /// The referenced Registry's endpoint cannot be used in a policy.
    InvalidEndpoint => Degraded, [ImagePolicy];
    /// Kyverno reports a generated policy not ready.
    PolicyNotReady => Degraded, [ImagePolicy];
    /// Degraded by findings of render (warnings) that do not stop the policies.
    Warnings => Degraded, [ImagePolicy];
    /// The spec breaks a rule; the message names the field; nothing was applied.
    InvalidSpec => Blocked, [Registry, ImagePolicy, RegistryProject];
    /// A Harbor database on CloudNativePG (managed, or on an existing Cluster) needs CloudNativePG
    /// kinds that are not served; nothing was applied.
    CNPGNotInstalled => Blocked, [Registry];
    /// The existing CloudNativePG Cluster `spec.harbor.database.cnpg.clusterRef` names does not
    /// exist; nothing was applied.
    ClusterNotFound => Blocked, [Registry];
    /// The Registry a RegistryProject names runs in K3d mode, which has no projects; nothing is done.
    NeedsHarbor => Blocked, [RegistryProject];
    /// `spec.harbor.version` is a downgrade (without `allowDowngrade`) or skips Harbor's upgrade
    /// path; the message gives the way forward; nothing was applied, the running Harbor keeps serving.
    UpgradeRefused => Blocked, [Registry];
    /// `Progressing=False`: nothing left to do.
    Reconciled => Neutral, [Registry, ImagePolicy, RegistryProject];
    /// `Degraded=False`: nothing is wrong.
    AsExpected => Neutral, [Registry, ImagePolicy, RegistryProject];
    /// A Harbor part (`DatabaseReady`, `CacheReady`, `StorageReady`, `ComponentsReady`) is ready.
    Ready => Neutral, [Registry];
    /// A Harbor part is not ready yet; the message lists what it waits for.
    NotReady => Neutral, [Registry];
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_unique_camel_case_words() {
        let mut seen = std::collections::BTreeSet::new();
        for reason in Reason::ALL {
            let word = reason.as_str();
            assert!(seen.insert(word), "{word} twice");
            assert!(word.chars().next().is_some_and(|c| c.is_ascii_uppercase()));
            assert!(word.chars().all(|c| c.is_ascii_alphanumeric()), "{word}");
        }
    }
}
