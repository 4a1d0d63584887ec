//! [`ContainerRequest`] → OCI runtime spec (`config.json`), shaped like
//! containerd's CRI default spec: own pid/ipc/uts/mount namespaces (or the
//! node's pid/ipc/uts for hostPID/hostIPC/hostNetwork pods), the pod's
//! network namespace joined by path, the usual /proc, /dev, /sys
//! mounts, masked and read-only paths, the default seccomp profile, cgroup
//! limits. Pure; the same bundle runs under keel's shim, runc and crun.

use serde_json::{Value, json};

use keel_api::pod::MountPropagation;

use super::{ContainerRequest, seccomp};

/// Paths masked from containers (containerd's `defaultUnixMaskedPaths`).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths mounted read-only (containerd's `defaultUnixReadonlyPaths`).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Builds the spec. `rootfs` is the path written into `root.path` (relative
/// to the bundle).
pub fn build(req: &ContainerRequest, rootfs: &str) -> Value {
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        // The node's IPC namespace goes with the node's /dev/shm (POSIX
        // shared memory lives there), as containerd's CRI plugin mounts it
        // for hostIPC.
        if req.ipc_ns.is_some() {
            json!({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                   "options": ["rbind", "rprivate", "nosuid", "noexec", "nodev"]})
        } else {
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                   "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]})
        },
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    for m in &req.mounts {
        // Kubernetes' mountPropagation as the CRI runtimes map it.
        let propagation = match m.propagation {
            MountPropagation::None => "rprivate",
            MountPropagation::HostToContainer => "rslave",
            MountPropagation::Bidirectional => "rshared",
        };
        let mut opts = vec!["rbind", propagation];
        if m.read_only {
            opts.push("ro");
        }
        mounts.push(json!({
            "destination": m.destination,
            "type": "bind",
            "source": m.source,
            "options": opts,
        }));
    }

    let join = |kind: &str, path: &Option<std::path::PathBuf>| match path {
        Some(p) => json!({"type": kind, "path": p}),
        None => json!({"type": kind}),
    };
    let mut namespaces = vec![
        join("pid", &req.pid_ns),
        join("ipc", &req.ipc_ns),
        json!({"type": "mount"}),
    ];
    match &req.uts_ns {
        Some(p) => namespaces.push(json!({"type": "uts", "path": p})),
        None => namespaces.push(json!({"type": "uts"})),
    }
    match &req.netns {
        Some(p) => namespaces.push(json!({"type": "network", "path": p})),
        None => namespaces.push(json!({"type": "network"})),
    }

    let mut cpu = serde_json::Map::new();
    if let Some(s) = req.resources.cpu_shares {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(q) = req.resources.cpu_quota {
        cpu.insert("quota".into(), json!(q));
        cpu.insert("period".into(), json!(100_000));
    }
    let mut resources = json!({
        "devices": [{"allow": false, "access": "rwm"}],
    });
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if let Some(m) = req.resources.memory_limit {
        // No swap beyond the limit, as the kubelet configures it.
        resources["memory"] = json!({"limit": m, "swap": m});
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": req.cgroup_path,
        "resources": resources,
    });
    // A propagating mount needs the container's root to pass events on
    // (containerd's CRI plugin: rslave for HostToContainer, rshared for
    // Bidirectional); otherwise the runtime's default.
    let props = req.mounts.iter().map(|m| m.propagation);
    if props.clone().any(|p| p == MountPropagation::Bidirectional) {
        linux["rootfsPropagation"] = json!("rshared");
    } else if props
        .clone()
        .any(|p| p == MountPropagation::HostToContainer)
    {
        linux["rootfsPropagation"] = json!("rslave");
    }
    if !req.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        match &req.seccomp {
            seccomp::Profile::RuntimeDefault => {
                linux["seccomp"] = seccomp::default_profile(&req.capabilities);
            }
            seccomp::Profile::Localhost(profile) => linux["seccomp"] = profile.clone(),
            seccomp::Profile::Unconfined => {}
        }
    }

    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {
                "uid": req.uid,
                "gid": req.gid,
                "additionalGids": req.additional_gids,
            },
            "args": req.args,
            "env": req.env,
            "cwd": req.cwd,
            "capabilities": {
                "bounding": req.capabilities,
                "effective": req.capabilities,
                "permitted": req.capabilities,
            },
            "noNewPrivileges": req.no_new_privileges,
            "oomScoreAdj": req.resources.oom_score_adj,
        },
        "root": {"path": rootfs, "readonly": req.read_only_rootfs},
        "hostname": req.hostname,
        "mounts": mounts,
        "linux": linux,
    });
    // Joining the node's UTS namespace, the runtime must not set a
    // hostname there (it would rename the node).
    if req.uts_ns.is_some() {
        spec.as_object_mut().expect("an object").remove("hostname");
    }
    spec
}

/// What libcontainer (the direct runtime) takes for the root's
/// propagation: `shared`/`slave` (it always adds MS_REC, so they mean what
/// runc's `rshared`/`rslave` do; it refuses the `r` forms).
pub fn for_libcontainer(config: &mut Value) {
    if let Some(p) = config["linux"].get_mut("rootfsPropagation")
        && let Some(s) = p.as_str()
        && let Some(plain) = s.strip_prefix('r')
    {
        *p = json!(plain);
    }
}

#[cfg(test)]
mod tests;
