//! The Pod Security "restricted" profile, field by field, as one assertion shared by every test that
//! checks a pod we ship or render. It asserts only; it builds nothing.

use k8s_openapi::api::core::v1::PodSpec;

/// Assert that `pod` meets "restricted". `writable_root` names the containers allowed a writable root
/// filesystem (each a documented exception); every other container must have a read-only one.
pub fn assert_pod_restricted(pod: &PodSpec, at: &str, writable_root: &[&str]) {
    let pod_security = pod.security_context.clone().expect("pod securityContext");
    assert_eq!(pod_security.run_as_non_root, Some(true), "{at}");
    assert!(pod_security.run_as_user.is_some_and(|u| u > 0), "{at}");
    assert_eq!(
        pod_security.seccomp_profile.map(|s| s.type_).as_deref(),
        Some("RuntimeDefault"),
        "{at}"
    );
    assert_ne!(pod.host_network, Some(true), "{at}");
    assert_ne!(pod.host_pid, Some(true), "{at}");
    assert_ne!(pod.host_ipc, Some(true), "{at}");
    for volume in pod.volumes.iter().flatten() {
        assert!(
            volume.host_path.is_none(),
            "{at}: hostPath volume {}",
            volume.name
        );
    }
    for container in pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
    {
        let at = format!("{at} container {}", container.name);
        let security = container
            .security_context
            .clone()
            .expect("container securityContext");
        assert_eq!(security.allow_privilege_escalation, Some(false), "{at}");
        assert_ne!(security.privileged, Some(true), "{at}");
        assert_eq!(security.run_as_non_root, Some(true), "{at}");
        assert_eq!(
            security.capabilities.and_then(|c| c.drop),
            Some(vec!["ALL".to_string()]),
            "{at}"
        );
        assert_eq!(
            security.seccomp_profile.map(|s| s.type_).as_deref(),
            Some("RuntimeDefault"),
            "{at}"
        );
        assert!(
            container
                .ports
                .iter()
                .flatten()
                .all(|p| p.host_port.is_none()),
            "{at}: hostPort"
        );
        let read_only = !writable_root.contains(&container.name.as_str());
        assert_eq!(
            security.read_only_root_filesystem,
            Some(read_only),
            "{at}: undocumented root filesystem exception"
        );
    }
}
