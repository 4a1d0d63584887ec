//! Pod spec + image config → [`ContainerRequest`], with the kubelet's rules:
//!
//! - command/args (Kubernetes "Define a command and arguments"): neither set
//!   → image Entrypoint + Cmd; command set → command + args, the image's
//!   ignored; only args → image Entrypoint + args.
//! - env: the image's, then HOSTNAME, then the container's as
//!   [`super::env`] resolves them (same name wins); a PATH default when
//!   none has one. The pod's command and args expand `$(VAR)`.
//! - workingDir: the container's, else the image's, else `/`.
//! - user: securityContext runAsUser/runAsGroup (container over pod), else
//!   the image's User; runAsNonRoot refuses uid 0.
//! - resources: requests → cpu.shares, limits → CFS quota and memory limit;
//!   oom_score_adj from the QoS class, clamped at 0.
//! - securityContext: default capabilities ± add/drop, readOnlyRootFilesystem,
//!   privileged, and capabilities beyond Pod Security "baseline"
//!   (`BASELINE_ADD`), only where the node allows it, no-new-privileges unless
//!   allowPrivilegeEscalation is true; seccompProfile (container over pod)
//!   RuntimeDefault when unset, Unconfined only where privileged is
//!   allowed, Localhost from the node's profile directory.

use std::path::{Path, PathBuf};

use keel_api::{
    Pod,
    pod::{Container, PodSecurityContext},
};
use serde::{Deserialize, Serialize};

use super::{ConfigError, ContainerRequest, Resources, env, seccomp, volumes};
use crate::runtime::images::ImageConfig;

/// Containerd's and Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// What Pod Security's "baseline" level lets a container add: the
/// default set without NET_RAW. Anything else (ALL, SYS_ADMIN, NET_ADMIN,
/// SYS_PTRACE, BPF …) needs a node started with `--allow-privileged`.
pub const BASELINE_ADD: &[&str] = &[
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Every capability, for privileged containers, in the kernel's order
/// (a capability's number is its position here).
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The runtime part of the node's config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeRuntimeConfig {
    /// Whether `securityContext.privileged: true`, capabilities beyond
    /// Pod Security "baseline" and an `Unconfined` seccomp profile are
    /// accepted.
    pub allow_privileged: bool,
    /// hostPath volumes must lie under one of these (none by default:
    /// no hostPath at all, as a Pod Security "baseline" node).
    pub host_path_roots: Vec<PathBuf>,
    /// Where `Localhost` seccomp profiles are read from.
    pub seccomp_profile_dir: PathBuf,
    /// cgroup parent of every pod (relative to the hierarchy roots).
    pub cgroup_parent: String,
    /// The node's memory, for the Burstable oom_score_adj.
    pub memory_capacity: u64,
    /// Cluster DNS and the node's resolv.conf, for pods' resolv.conf.
    pub dns: crate::dns::podfiles::NodeDns,
}

impl Default for NodeRuntimeConfig {
    fn default() -> Self {
        Self {
            allow_privileged: false,
            host_path_roots: Vec::new(),
            seccomp_profile_dir: PathBuf::from("/var/lib/keel/agent/seccomp"),
            cgroup_parent: "keel".into(),
            memory_capacity: total_memory(),
            dns: crate::dns::podfiles::NodeDns {
                cluster_domain: "cluster.local".into(),
                ..Default::default()
            },
        }
    }
}

/// MemTotal from /proc/meminfo, in bytes.
pub fn total_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(1 << 30)
}

/// QoS class of a pod (Kubernetes "Pod Quality of Service Classes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    Guaranteed,
    Burstable,
    BestEffort,
}

pub fn qos(pod: &Pod) -> Qos {
    let all: Vec<&Container> = pod
        .spec
        .containers
        .iter()
        .chain(&pod.spec.init_containers)
        .collect();
    if all.iter().all(|c| c.resources.is_empty()) {
        return Qos::BestEffort;
    }
    let guaranteed = all.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = c.resources.limits.get(*r);
            limit.is_some() && c.resources.request(r).map(|q| q.milli()) == limit.map(|q| q.milli())
        })
    });
    if guaranteed {
        Qos::Guaranteed
    } else {
        Qos::Burstable
    }
}

/// The kubelet's `GetContainerOOMScoreAdjust`, clamped at 0.
pub fn oom_score_adj(qos: Qos, memory_request: u64, capacity: u64) -> i32 {
    let v: i64 = match qos {
        Qos::Guaranteed => -997,
        Qos::BestEffort => 1000,
        Qos::Burstable => {
            let adj = 1000 - (1000 * memory_request as i128 / capacity.max(1) as i128) as i64;
            adj.clamp(2, 999)
        }
    };
    v.clamp(0, 1000) as i32
}

fn resources(pod: &Pod, c: &Container, node: &NodeRuntimeConfig) -> Resources {
    let r = &c.resources;
    Resources {
        // No request: the kubelet's minimum shares (2), not the cgroup
        // default of 1024 that would rank it with a 1-CPU request.
        cpu_shares: Some(
            r.request("cpu")
                .map(|q| (q.milli() * 1024 / 1000).max(2))
                .unwrap_or(2),
        ),
        cpu_quota: r
            .limits
            .get("cpu")
            .map(|q| (q.milli() * 100).max(1000) as i64),
        memory_limit: r.limits.get("memory").map(|q| q.value() as i64),
        oom_score_adj: oom_score_adj(
            qos(pod),
            r.request("memory").map(|q| q.value()).unwrap_or(0),
            node.memory_capacity,
        ),
    }
}

fn user_field<T: Copy>(
    c: &Container,
    pod: Option<&PodSecurityContext>,
    f: impl Fn(&keel_api::pod::SecurityContext) -> Option<T>,
    g: impl Fn(&PodSecurityContext) -> Option<T>,
) -> Option<T> {
    c.security_context.as_ref().and_then(&f).or(pod.and_then(g))
}

/// Which list a container is in, for field paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Init,
    App,
}

/// Resolves container `index` of `kind` for restart `attempt`.
#[expect(
    clippy::too_many_arguments,
    reason = "each input is a separate fact (spec, image, node, pod dir, netns, attempt)"
)]
pub fn resolve(
    pod: &Pod,
    kind: Kind,
    index: usize,
    image: &ImageConfig,
    node: &NodeRuntimeConfig,
    pod_dir: &Path,
    netns: Option<&Path>,
    attempt: u32,
    sources: &dyn env::Sources,
) -> Result<ContainerRequest, ConfigError> {
    let (list, c) = match kind {
        Kind::Init => ("initContainers", &pod.spec.init_containers[index]),
        Kind::App => ("containers", &pod.spec.containers[index]),
    };
    let field = format!("spec.{list}[{index}]");
    // The node's network is a node-level privilege (Pod Security
    // "baseline" forbids hostNetwork): the same switch as privileged
    // containers.
    if pod.spec.host_network && !node.allow_privileged {
        return Err(ConfigError::new(
            "spec.hostNetwork",
            "hostNetwork pods run only on nodes started with --allow-privileged",
        ));
    }
    // So are the node's PID and IPC namespaces (Pod Security "baseline"
    // forbids hostPID and hostIPC alike).
    for (on, name) in [
        (pod.spec.host_pid, "hostPID"),
        (pod.spec.host_ipc, "hostIPC"),
    ] {
        if on && !node.allow_privileged {
            return Err(ConfigError::new(
                format!("spec.{name}"),
                format!("{name} pods run only on nodes started with --allow-privileged"),
            ));
        }
    }
    let run = image.run();
    let facts = env::NodeFacts {
        host_ip: String::new(),
        cpu_milli: std::thread::available_parallelism().map_or(1, |n| n.get() as u64) * 1000,
        memory: node.memory_capacity,
    };
    let resolved = env::resolve(pod, c, &field, sources, &facts)?;
    for w in &resolved.warnings {
        tracing::warn!(pod = %format!("{}/{}", pod.metadata.namespace, pod.metadata.name), container = %c.name, reason = "InvalidEnvironmentVariableNames", "{w}");
    }

    let entrypoint = run.entrypoint.clone().unwrap_or_default();
    let cmd = run.cmd.clone().unwrap_or_default();
    let args: Vec<String> = match (c.command.is_empty(), c.args.is_empty()) {
        (true, true) => entrypoint.into_iter().chain(cmd).collect(),
        (false, _) => c.command.iter().chain(&c.args).cloned().collect(),
        (true, false) => entrypoint.into_iter().chain(c.args.clone()).collect(),
    };
    // The pod's own command and args expand `$(VAR)` against the
    // container's variables, as the kubelet does; the image's never do.
    let expand = |a: &String| {
        env::expand(a, |n| {
            resolved
                .vars
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        })
    };
    let args: Vec<String> = match (c.command.is_empty(), c.args.is_empty()) {
        (true, true) => args,
        (false, _) => c.command.iter().chain(&c.args).map(expand).collect(),
        (true, false) => {
            let n = args.len() - c.args.len();
            args[..n]
                .iter()
                .cloned()
                .chain(c.args.iter().map(expand))
                .collect()
        }
    };
    if args.is_empty() {
        return Err(ConfigError::new(
            format!("{field}.command"),
            "no command given and the image has no entrypoint or cmd",
        ));
    }

    let hostname = if pod.spec.host_network {
        crate::dns::podfiles::node_hostname()
    } else {
        crate::dns::podfiles::hostname(pod)
    };
    let mut env: Vec<String> = run.env.clone().unwrap_or_default();
    let mut set = |kv: String| {
        let name = kv.split('=').next().unwrap_or_default().to_string();
        env.retain(|e| e.split('=').next() != Some(name.as_str()));
        env.push(kv);
    };
    set(format!("HOSTNAME={hostname}"));
    for (k, v) in &resolved.vars {
        set(format!("{k}={v}"));
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.into());
    }

    let cwd = if !c.working_dir.is_empty() {
        c.working_dir.clone()
    } else {
        run.working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    };
    if !cwd.starts_with('/') {
        return Err(ConfigError::new(
            format!("{field}.workingDir"),
            format!("{cwd:?} is not an absolute path"),
        ));
    }

    let psc = pod.spec.security_context.as_ref();
    let run_as_user = user_field(c, psc, |s| s.run_as_user, |p| p.run_as_user);
    let run_as_group = user_field(c, psc, |s| s.run_as_group, |p| p.run_as_group);
    let non_root = user_field(c, psc, |s| s.run_as_non_root, |p| p.run_as_non_root);
    let id = |v: i64, f: &str| {
        u32::try_from(v).map_err(|_| {
            ConfigError::new(
                format!("{field}.securityContext.{f}"),
                format!("{v} is out of range"),
            )
        })
    };
    let (mut uid, mut gid, mut user_name) = (0u32, 0u32, None);
    match run_as_user {
        Some(u) => uid = id(u, "runAsUser")?,
        None => {
            let u = run.user.clone().unwrap_or_default();
            if !u.is_empty() {
                let (user, group) = match u.split_once(':') {
                    Some((a, b)) => (a, Some(b)),
                    None => (u.as_str(), None),
                };
                match (user.parse::<u32>(), group.map(str::parse::<u32>)) {
                    (Ok(n), None) => uid = n,
                    (Ok(n), Some(Ok(g))) => (uid, gid) = (n, g),
                    _ => user_name = Some(u.clone()),
                }
            }
        }
    }
    if let Some(g) = run_as_group {
        gid = id(g, "runAsGroup")?;
    }
    if non_root == Some(true) && user_name.is_none() && uid == 0 {
        return Err(ConfigError::new(
            format!("{field}.securityContext.runAsNonRoot"),
            "container's runAsUser breaks non-root policy (the user is root)",
        ));
    }

    let sc = c.security_context.clone().unwrap_or_default();
    let privileged = sc.privileged == Some(true);
    if privileged && !node.allow_privileged {
        return Err(ConfigError::new(
            format!("{field}.securityContext.privileged"),
            "privileged containers are not allowed on this node",
        ));
    }
    let norm = |c: &String| {
        let up = c.to_ascii_uppercase();
        if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        }
    };
    let mut caps: Vec<String> = if privileged {
        ALL_CAPS.iter().map(|s| s.to_string()).collect()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    if let Some(cs) = &sc.capabilities {
        for (j, a) in cs.add.iter().enumerate() {
            let a = norm(a);
            if !privileged && !node.allow_privileged && !BASELINE_ADD.contains(&a.as_str()) {
                return Err(ConfigError::new(
                    format!("{field}.securityContext.capabilities.add[{j}]"),
                    format!(
                        "{a} is beyond the Pod Security baseline set; this node adds it only \
                         when started with --allow-privileged"
                    ),
                ));
            }
            if a == "CAP_ALL" {
                caps = ALL_CAPS.iter().map(|s| s.to_string()).collect();
            } else if !ALL_CAPS.contains(&a.as_str()) {
                return Err(ConfigError::new(
                    format!("{field}.securityContext.capabilities.add[{j}]"),
                    format!("unknown capability {a:?}"),
                ));
            } else if !caps.contains(&a) {
                caps.push(a);
            }
        }
        for d in &cs.drop {
            let d = norm(d);
            if d == "CAP_ALL" {
                caps.clear();
            } else {
                caps.retain(|c| *c != d);
            }
        }
    }

    let seccomp = seccomp_profile(&field, &sc, psc, node)?;

    if let Some(f) = pod.spec.resource_claims_field() {
        return Err(ConfigError::new(
            f,
            "keel allocates no devices (dynamic resource allocation): the pod's containers are not started without what they claim",
        ));
    }
    volumes::validate(&pod.spec.volumes, &node.host_path_roots)?;
    let expanded = volumes::expand_sub_paths(&field, c, &resolved.vars)?;
    let mounts = volumes::mounts(
        &field,
        &expanded,
        &pod.spec.volumes,
        pod_dir,
        &node.host_path_roots,
        pod,
        &facts,
        sources,
    )?;

    let uid_pod = if pod.metadata.uid.is_empty() {
        format!("{}_{}", pod.metadata.namespace, pod.metadata.name)
    } else {
        pod.metadata.uid.clone()
    };
    let id = format!("{uid_pod}-{}-{attempt}", c.name);
    Ok(ContainerRequest {
        cgroup_path: format!("/{}/{uid_pod}/{id}", node.cgroup_parent.trim_matches('/')),
        id,
        name: c.name.clone(),
        init: kind == Kind::Init,
        attempt,
        image: c.image.clone(),
        args,
        env,
        cwd,
        uid,
        gid,
        additional_gids: Vec::new(),
        user_name,
        hostname,
        hosts: if pod.spec.host_network {
            crate::dns::podfiles::host_network_hosts(
                &std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
                pod,
            )
        } else {
            crate::dns::podfiles::hosts(pod, &node.dns.cluster_domain)
        },
        resolv_conf: node
            .dns
            .writes_resolv_conf(pod)
            .then(|| crate::dns::podfiles::resolv_conf(pod, &node.dns).render()),
        mounts,
        resources: resources(pod, c, node),
        read_only_rootfs: sc.read_only_root_filesystem == Some(true),
        privileged,
        no_new_privileges: sc.allow_privilege_escalation != Some(true) && !privileged,
        capabilities: caps,
        seccomp,
        // A hostNetwork pod joins the namespaces the agent runs in (the
        // node's), named through the agent's /proc entry, never the
        // runtime's own (which may be elsewhere).
        netns: if pod.spec.host_network {
            Some(host_ns("net"))
        } else {
            netns.map(Path::to_path_buf)
        },
        uts_ns: pod.spec.host_network.then(|| host_ns("uts")),
        pid_ns: pod.spec.host_pid.then(|| host_ns("pid")),
        ipc_ns: pod.spec.host_ipc.then(|| host_ns("ipc")),
    })
}

/// The agent's own namespace of `kind` (`net`, `uts`, `pid`, `ipc`): the
/// node's.
fn host_ns(kind: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{}/ns/{kind}", std::process::id()))
}

/// `securityContext.seccompProfile`, the container's over the pod's;
/// unset is `RuntimeDefault`, as containerd's CRI plugin defaults it.
fn seccomp_profile(
    field: &str,
    sc: &keel_api::pod::SecurityContext,
    psc: Option<&PodSecurityContext>,
    node: &NodeRuntimeConfig,
) -> Result<seccomp::Profile, ConfigError> {
    let (f, p) = match (
        &sc.seccomp_profile,
        psc.and_then(|p| p.seccomp_profile.as_ref()),
    ) {
        (Some(p), _) => (format!("{field}.securityContext.seccompProfile"), p),
        (None, Some(p)) => ("spec.securityContext.seccompProfile".to_string(), p),
        (None, None) => return Ok(seccomp::Profile::RuntimeDefault),
    };
    match p.type_.as_str() {
        "RuntimeDefault" => Ok(seccomp::Profile::RuntimeDefault),
        "Unconfined" if node.allow_privileged || sc.privileged == Some(true) => {
            Ok(seccomp::Profile::Unconfined)
        }
        "Unconfined" => Err(ConfigError::new(
            format!("{f}.type"),
            "Unconfined is accepted only on nodes started with --allow-privileged",
        )),
        "Localhost" => {
            let rel = p.localhost_profile.as_deref().unwrap_or_default();
            let lf = format!("{f}.localhostProfile");
            if rel.is_empty() {
                return Err(ConfigError::new(lf, "required when type is Localhost"));
            }
            seccomp::localhost(&node.seccomp_profile_dir, rel)
                .map(seccomp::Profile::Localhost)
                .map_err(|e| ConfigError::new(lf, e.to_string()))
        }
        other => Err(ConfigError::new(
            format!("{f}.type"),
            format!("{other:?} is not one of RuntimeDefault, Unconfined, Localhost"),
        )),
    }
}

#[cfg(test)]
mod tests;
