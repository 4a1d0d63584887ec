//! One container, from pod spec to OCI bundle: [`resolve`] turns a pod's
//! container plus its image config into a [`ContainerRequest`] the way the
//! kubelet does (command/args against entrypoint/cmd, env merge, working
//! dir, user, volumes, resources, securityContext); [`spec`] turns that into
//! an OCI runtime `config.json`; [`rootfs`] mounts the image's layers as an
//! overlayfs with a writable upper dir per container. Everything but the
//! mount is pure. [`env`] is the container's environment (envFrom, env,
//! valueFrom, Service variables, `$(VAR)` expansion).

pub mod atomic_writer;
pub mod env;
pub mod projection;
pub mod resolve;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod user;
pub mod volumes;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use resolve::{NodeRuntimeConfig, resolve};

/// Why a container could not be configured: the waiting reason
/// `CreateContainerConfigError` with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The field of the pod spec at fault, e.g. `spec.containers[0].volumeMounts[1].subPath`.
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A bind mount into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
    /// Kubernetes' `mountPropagation` (`rprivate`, `rslave`, `rshared`).
    #[serde(default)]
    pub propagation: keel_api::pod::MountPropagation,
}

/// CPU and memory as the cgroup sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// cpu.shares (v1) from the CPU request: millicores × 1024 / 1000, at
    /// least 2, as the kubelet computes it.
    pub cpu_shares: Option<u64>,
    /// CFS quota (µs per 100 ms period) from the CPU limit.
    pub cpu_quota: Option<i64>,
    /// Bytes, from the memory limit.
    pub memory_limit: Option<i64>,
    /// The kubelet's QoS-based score, clamped to 0..=1000: without
    /// CAP_SYS_RESOURCE a negative value cannot be set.
    pub oom_score_adj: i32,
}

/// Everything needed to create one container, resolved from the pod spec and
/// the image; what the backends consume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRequest {
    /// Runtime-unique ID: `<pod uid>-<container name>-<attempt>`.
    pub id: String,
    pub name: String,
    /// An init container (run to completion before the others).
    pub init: bool,
    /// Restart attempt (0 for the first run).
    pub attempt: u32,
    pub image: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The image user still to be looked up in the rootfs (`name[:group]`),
    /// when it is not numeric.
    pub user_name: Option<String>,
    pub hostname: String,
    /// The pod's `/etc/hosts` (empty: a minimal one naming `hostname`).
    #[serde(default)]
    pub hosts: String,
    /// The pod's `/etc/resolv.conf` by its dnsPolicy (None: the image's).
    #[serde(default)]
    pub resolv_conf: Option<String>,
    pub mounts: Vec<BindMount>,
    pub resources: Resources,
    pub read_only_rootfs: bool,
    pub privileged: bool,
    pub no_new_privileges: bool,
    /// Final capability set (bounding = effective = permitted).
    pub capabilities: Vec<String>,
    /// The seccomp filter (ignored for privileged containers, which run
    /// unconfined as under containerd's CRI plugin).
    #[serde(default)]
    pub seccomp: seccomp::Profile,
    /// cgroup path relative to the hierarchy roots, e.g. `/keel/<pod>/<id>`.
    pub cgroup_path: String,
    /// The pod's network namespace (bind-mounted file; a hostNetwork
    /// pod's is the agent's own, `/proc/<agent pid>/ns/net`).
    pub netns: Option<PathBuf>,
    /// A UTS namespace to join instead of a new one (a hostNetwork pod's:
    /// the node's); then no hostname is set.
    #[serde(default)]
    pub uts_ns: Option<PathBuf>,
    /// A PID namespace to join instead of a new one (a hostPID pod's: the
    /// node's).
    #[serde(default)]
    pub pid_ns: Option<PathBuf>,
    /// An IPC namespace to join instead of a new one (a hostIPC pod's: the
    /// node's); then `/dev/shm` is the node's too.
    #[serde(default)]
    pub ipc_ns: Option<PathBuf>,
}
