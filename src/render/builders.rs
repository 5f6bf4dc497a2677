//! Building blocks shared by the K3d and Harbor renders: env entries (plain and from Secrets), HTTP
//! probes, resource requirements, Pod Security "restricted" security contexts, container ports,
//! volumes (ConfigMap, Secret, emptyDir, claim), their mounts and volume claims.
//! Pure constructors of Kubernetes types; they must not know a mode or read anything.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, KeyToPath, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, Probe, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd::VolumeSpec;

/// An env entry with a literal value.
pub(crate) fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.into()),
        ..Default::default()
    }
}

/// An env entry read from a Secret's key (the Secret must exist: `optional: false`).
pub(crate) fn env_from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_string(),
                key: key.to_string(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An HTTP GET probe of `path` on the named container `port`, every 10 s, timing out after 5 s.
pub(crate) fn http_probe(
    path: &str,
    port: &str,
    initial_delay: i32,
    failure_threshold: i32,
) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String(port.to_string()),
            scheme: Some("HTTP".to_string()),
            ..Default::default()
        }),
        // The API server omits a zero (Go `omitempty`): written as 0, it would read as drift every pass.
        initial_delay_seconds: (initial_delay > 0).then_some(initial_delay),
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        failure_threshold: Some(failure_threshold),
        ..Default::default()
    }
}

/// `requests` cpu+memory and a memory `limits`, unless the spec overrides them.
pub(crate) fn resources(
    overridden: Option<&ResourceRequirements>,
    cpu: &str,
    memory: &str,
    memory_limit: &str,
) -> ResourceRequirements {
    overridden.cloned().unwrap_or_else(|| ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.to_string())),
            ("memory".to_string(), Quantity(memory.to_string())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_string(),
            Quantity(memory_limit.to_string()),
        )])),
        ..Default::default()
    })
}

/// The container runtime's default seccomp profile.
pub(crate) fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_string(),
        ..Default::default()
    }
}

/// Pod Security "restricted" container settings. `read_only_root` is false only for images that must
/// write to their root filesystem; each caller says why.
pub(crate) fn container_security(read_only_root: bool) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(read_only_root),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            ..Default::default()
        }),
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    }
}

/// A ReadWriteOnce claim of `volume`'s size on its StorageClass (the default when unset).
pub(crate) fn pvc_spec(volume: &VolumeSpec) -> PersistentVolumeClaimSpec {
    PersistentVolumeClaimSpec {
        access_modes: Some(vec!["ReadWriteOnce".to_string()]),
        storage_class_name: volume.storage_class_name.clone(),
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([(
                "storage".to_string(),
                volume.size.clone(),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A PersistentVolumeClaim of `volume` (see [`pvc_spec`]).
pub(crate) fn pvc(metadata: ObjectMeta, volume: &VolumeSpec) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata,
        spec: Some(pvc_spec(volume)),
        ..Default::default()
    }
}

/// A named TCP container port.
pub(crate) fn port(name: &str, container_port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_string()),
        container_port,
        protocol: Some("TCP".to_string()),
        ..Default::default()
    }
}

/// A volume mounted at `path` (or one file of it, `sub_path`), writable.
pub(crate) fn mount(name: &str, path: &str, sub_path: Option<&str>) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        sub_path: sub_path.map(str::to_string),
        read_only: None,
        ..Default::default()
    }
}

/// A volume mounted read-only (see [`mount`]).
pub(crate) fn read_only_mount(name: &str, path: &str, sub_path: Option<&str>) -> VolumeMount {
    VolumeMount {
        read_only: Some(true),
        ..mount(name, path, sub_path)
    }
}

/// A volume of a whole ConfigMap.
pub(crate) fn config_map_volume(name: &str, config_map: &str) -> Volume {
    Volume {
        name: name.to_string(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A volume with selected keys of a Secret (`(key, path)`), files readable by the pod's group only.
pub(crate) fn secret_volume(name: &str, secret: &str, items: &[(&str, &str)]) -> Volume {
    Volume {
        name: name.to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_string()),
            items: Some(
                items
                    .iter()
                    .map(|(key, path)| KeyToPath {
                        key: key.to_string(),
                        path: path.to_string(),
                        mode: None,
                    })
                    .collect(),
            ),
            default_mode: Some(0o440),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An empty scratch volume that lives as long as the pod.
pub(crate) fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }
}

/// A volume of a PersistentVolumeClaim.
pub(crate) fn pvc_volume(name: &str, claim: &str) -> Volume {
    Volume {
        name: name.to_string(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}
