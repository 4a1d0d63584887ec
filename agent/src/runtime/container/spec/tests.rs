use super::*;
use crate::runtime::container::{BindMount, Resources};

pub(crate) fn request() -> ContainerRequest {
    ContainerRequest {
        id: "u1-app-0".into(),
        name: "app".into(),
        init: false,
        attempt: 0,
        image: "img".into(),
        args: vec!["/bin/sh".into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        uid: 1000,
        gid: 1000,
        additional_gids: vec![],
        user_name: None,
        hostname: "web".into(),
        hosts: String::new(),
        resolv_conf: None,
        mounts: vec![BindMount {
            source: "/var/lib/x".into(),
            destination: "/data".into(),
            read_only: true,
            propagation: Default::default(),
        }],
        resources: Resources {
            cpu_shares: Some(256),
            cpu_quota: Some(50_000),
            memory_limit: Some(64 << 20),
            oom_score_adj: 0,
        },
        read_only_rootfs: true,
        privileged: false,
        no_new_privileges: true,
        capabilities: vec!["CAP_KILL".into()],
        seccomp: Default::default(),
        cgroup_path: "/keel/u1/u1-app-0".into(),
        uts_ns: None,
        pid_ns: None,
        ipc_ns: None,
        netns: Some("/run/netns/x".into()),
    }
}

#[test]
fn builds_a_spec_libcontainer_parses() {
    let v = build(&request(), "rootfs");
    let spec: oci_spec::runtime::Spec = serde_json::from_value(v.clone()).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(std::path::Path::new("/keel/u1/u1-app-0"))
    );
    let ns = linux.namespaces().as_ref().unwrap();
    assert!(
        ns.iter()
            .any(|n| n.path().as_deref() == Some(std::path::Path::new("/run/netns/x")))
    );
    assert_eq!(v["process"]["noNewPrivileges"], true);
    assert_eq!(v["root"]["readonly"], true);
    assert_eq!(v["linux"]["resources"]["memory"]["limit"], 64 << 20);
    assert_eq!(v["mounts"][6]["options"][2], "ro");
    // keel's default seccomp profile: an allow-list (default ERRNO) that
    // libcontainer parses.
    assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert!(linux.seccomp().is_some());
}

#[test]
fn privileged_drops_masks_and_seccomp() {
    let mut r = request();
    r.privileged = true;
    let v = build(&r, "rootfs");
    assert!(v["linux"].get("seccomp").is_none());
    assert!(v["linux"].get("maskedPaths").is_none());
}

#[test]
fn host_network_joins_the_nodes_namespaces_without_a_hostname() {
    let mut r = request();
    assert_eq!(build(&r, "rootfs")["hostname"], r.hostname.as_str());
    r.netns = Some("/proc/42/ns/net".into());
    r.uts_ns = Some("/proc/42/ns/uts".into());
    let v = build(&r, "rootfs");
    let spec: oci_spec::runtime::Spec = serde_json::from_value(v.clone()).unwrap();
    let ns = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
    let path_of = |t: oci_spec::runtime::LinuxNamespaceType| {
        ns.iter()
            .find(|n| n.typ() == t)
            .and_then(|n| n.path().clone())
    };
    assert_eq!(
        path_of(oci_spec::runtime::LinuxNamespaceType::Network),
        Some("/proc/42/ns/net".into())
    );
    assert_eq!(
        path_of(oci_spec::runtime::LinuxNamespaceType::Uts),
        Some("/proc/42/ns/uts".into())
    );
    // Setting one would rename the node.
    assert!(v.get("hostname").is_none(), "{v}");
}

#[test]
fn host_pid_and_host_ipc_join_the_nodes_namespaces_and_shm() {
    use oci_spec::runtime::LinuxNamespaceType as T;
    let ns_of = |v: &Value| {
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v.clone()).unwrap();
        spec.linux().as_ref().unwrap().namespaces().clone().unwrap()
    };
    let shm = |v: &Value| {
        v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/dev/shm")
            .cloned()
            .unwrap()
    };
    let mut r = request();
    let v = build(&r, "rootfs");
    // Own PID and IPC namespaces, a tmpfs of its own on /dev/shm.
    for t in [T::Pid, T::Ipc] {
        let n = ns_of(&v).into_iter().find(|n| n.typ() == t).unwrap();
        assert_eq!(n.path(), &None, "{t:?}");
    }
    assert_eq!(shm(&v)["type"], "tmpfs");

    r.pid_ns = Some("/proc/42/ns/pid".into());
    r.ipc_ns = Some("/proc/42/ns/ipc".into());
    let v = build(&r, "rootfs");
    let ns = ns_of(&v);
    let path_of = |t: T| {
        ns.iter()
            .find(|n| n.typ() == t)
            .and_then(|n| n.path().clone())
    };
    assert_eq!(path_of(T::Pid), Some("/proc/42/ns/pid".into()));
    assert_eq!(path_of(T::Ipc), Some("/proc/42/ns/ipc".into()));
    // One entry per kind, and the rest unchanged.
    assert_eq!(ns.len(), 5);
    assert_eq!(path_of(T::Uts), None);
    // The node's IPC namespace with the node's /dev/shm.
    assert_eq!(shm(&v)["type"], "bind");
    assert_eq!(shm(&v)["source"], "/dev/shm");
    // The hostname is still the pod's (only the UTS namespace decides).
    assert_eq!(v["hostname"], "web");
}

#[test]
fn mount_propagation_sets_the_mount_and_root_propagation() {
    use keel_api::pod::MountPropagation as P;
    let opts_of = |v: &Value| v["mounts"][6]["options"].clone();
    let mut r = request();
    let v = build(&r, "rootfs");
    assert_eq!(opts_of(&v), serde_json::json!(["rbind", "rprivate", "ro"]));
    assert!(v["linux"].get("rootfsPropagation").is_none());
    for (p, mount, root) in [
        (P::HostToContainer, "rslave", "rslave"),
        (P::Bidirectional, "rshared", "rshared"),
    ] {
        r.mounts[0].propagation = p;
        let v = build(&r, "rootfs");
        assert_eq!(
            opts_of(&v),
            serde_json::json!(["rbind", mount, "ro"]),
            "{p:?}"
        );
        assert_eq!(v["linux"]["rootfsPropagation"], root, "{p:?}");
        // What the runtimes parse.
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v).unwrap();
        assert_eq!(
            spec.linux()
                .as_ref()
                .unwrap()
                .rootfs_propagation()
                .as_deref(),
            Some(root)
        );
    }
}
