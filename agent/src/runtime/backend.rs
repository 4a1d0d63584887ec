//! The boundary between the pod lifecycle logic and whatever runs the
//! containers: [`PodRuntime`]. keel's own implementation
//! ([`crate::runtime::direct::DirectRuntime`]) launches containers with
//! libcontainer through a per-pod shim; the containerd one hands them to
//! containerd; unit tests of the lifecycle use an in-memory fake.
//!
//! A runtime receives containers already resolved from the pod spec
//! ([`ContainerRequest`]); turning one into a bundle is
//! [`super::bundle`]'s, which both real runtimes use.

use std::{
    future::Future,
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use keel_api::{
    Pod,
    pod::{Container, Probe, PullPolicy},
};
use serde::{Deserialize, Serialize};

use super::{
    container::{ConfigError, ContainerRequest, NodeRuntimeConfig},
    images::{ImageError, ImageInfo},
    probe::{Outcome, check_network},
    shim::client::ShimError,
};

/// Registry credentials by `host[:port]`.
pub type PullAuth = std::collections::BTreeMap<String, super::images::pull::RegistryAuth>;

/// The pod a runtime call is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRef {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    /// The pod's network namespace (from the sandbox), if any.
    pub netns: Option<PathBuf>,
}

impl PodRef {
    pub fn of(pod: &Pod, netns: Option<&Path>) -> Self {
        Self {
            uid: if pod.metadata.uid.is_empty() {
                format!("{}_{}", pod.metadata.namespace, pod.metadata.name)
            } else {
                pod.metadata.uid.clone()
            },
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            netns: netns.map(Path::to_path_buf),
        }
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A container as the runtime sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub id: String,
    /// The container's name in the pod spec.
    pub name: String,
    pub kind_init: bool,
    /// Restart attempt (0 for the first run).
    pub attempt: u32,
    pub image_id: String,
    pub pid: i32,
    pub started_at_ms: u64,
    pub exit: Option<super::shim::Exit>,
    pub log: PathBuf,
}

/// What `exec` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Why a runtime call failed, with the Kubernetes reason it shows as.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Creating or starting the container failed (bad command, …); the
    /// message is the low-level runtime's.
    #[error("container {id}: {message}")]
    Create { id: String, message: String },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Shim(#[from] ShimError),
    #[error("containerd {call}: {message}")]
    Containerd { call: &'static str, message: String },
    #[error("pod {pod}: no container {id}")]
    NoContainer { pod: String, id: String },
    #[error("pod {pod}: container {id} still runs")]
    StillRunning { pod: String, id: String },
    #[error("pod {pod}: {what} timed out after {after:?}")]
    Timeout {
        pod: String,
        what: &'static str,
        after: Duration,
    },
    #[error("exec in {id}: {message}")]
    Exec { id: String, message: String },
}

impl RuntimeError {
    pub fn reason(&self) -> &'static str {
        match self {
            RuntimeError::Image(e) => e.reason(),
            RuntimeError::Config(_) => "CreateContainerConfigError",
            RuntimeError::Create { .. } => "CreateContainerError",
            _ => "RunContainerError",
        }
    }

    pub fn io(what: &'static str, path: &Path, source: std::io::Error) -> Self {
        RuntimeError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What runs a node's containers. Every method is idempotent where that
/// makes sense (starting a pod twice, removing what is gone).
pub trait PodRuntime: Send + Sync + 'static {
    /// The node's policy for containers (what resolution checks against).
    fn node_config(&self) -> &NodeRuntimeConfig;

    /// Where the pod's own files live (volumes, the files its containers
    /// share, bundles); containers are resolved against it.
    fn pod_dir(&self, pod: &PodRef) -> PathBuf;

    /// Makes the pod's runtime side exist (its shim); idempotent.
    fn start_pod(&self, pod: &PodRef) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Whether `image` is in the node's image store (so `IfNotPresent`
    /// will not pull it).
    fn image_present(&self, image: &str) -> bool;

    /// Makes an image present per its pull policy, with the pod's registry
    /// credentials (from its imagePullSecrets) before the node's.
    fn ensure_image(
        &self,
        image: &str,
        policy: PullPolicy,
        auth: &PullAuth,
    ) -> impl Future<Output = Result<ImageInfo, RuntimeError>> + Send;

    /// Creates and starts a resolved container from `image`.
    fn start_container(
        &self,
        pod: &PodRef,
        req: ContainerRequest,
        image: &ImageInfo,
    ) -> impl Future<Output = Result<Observed, RuntimeError>> + Send;

    /// The pod's containers, running and exited.
    fn list(
        &self,
        pod: &PodRef,
    ) -> impl Future<Output = Result<Vec<Observed>, RuntimeError>> + Send;

    /// Sends a signal to a container's init process.
    fn signal(
        &self,
        pod: &PodRef,
        id: &str,
        signal: i32,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Removes an exited container and its rootfs; its log stays.
    fn remove_container(
        &self,
        pod: &PodRef,
        id: &str,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Runs a command in a running container and collects its output.
    fn exec(
        &self,
        pod: &PodRef,
        id: &str,
        cmd: &[String],
        timeout: std::time::Duration,
    ) -> impl Future<Output = Result<ExecOutput, RuntimeError>> + Send;

    /// Starts a command in a running container with its streams attached
    /// (stdin when asked; a pseudo-terminal with `attach.tty`), for
    /// interactive exec. It runs until it ends by itself; dropping the
    /// session closes its stdin (and, with a terminal, hangs the terminal
    /// up).
    fn exec_stream(
        &self,
        pod: &PodRef,
        id: &str,
        cmd: &[String],
        attach: super::exec_session::ExecAttach,
    ) -> impl Future<Output = Result<super::exec_session::ExecSession, RuntimeError>> + Send;

    /// Removes everything of the pod (containers must have exited).
    fn remove_pod(&self, pod: &PodRef) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Pods the runtime holds, for re-adoption after an agent restart.
    fn pods(&self) -> impl Future<Output = Result<Vec<PodRef>, RuntimeError>> + Send;

    /// Removes images that neither `wanted` (references the node's pods
    /// name) nor any container the runtime holds uses; returns how many.
    fn gc_images(
        &self,
        wanted: &std::collections::BTreeSet<String>,
    ) -> impl Future<Output = Result<usize, RuntimeError>> + Send {
        let _ = wanted;
        async { Ok(0) }
    }

    /// Waits until the pod's containers may have changed without the agent
    /// doing anything (one exited), or `timeout` passed. `seen` is the
    /// generation the last call returned (None: answer the current one at
    /// once); the answer is the generation now. `Ok(None)`: this runtime
    /// cannot tell (an older shim), and the caller has to look itself.
    fn wait(
        &self,
        pod: &PodRef,
        seen: Option<u64>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<u64>, RuntimeError>> + Send {
        let _ = (pod, seen, timeout);
        async { Ok(None) }
    }

    /// Runs one probe of a running container: exec through the runtime,
    /// httpGet and tcpSocket from inside the pod's network namespace
    /// against `host` (the pod IP).
    fn probe(
        &self,
        pod: &PodRef,
        id: &str,
        c: &Container,
        probe: &Probe,
        host: IpAddr,
    ) -> impl Future<Output = Outcome> + Send {
        async move {
            if let Some(exec) = &probe.exec {
                let timeout = Duration::from_secs(probe.timeout().max(1) as u64);
                return match self.exec(pod, id, &exec.command, timeout).await {
                    Ok(out) => Outcome {
                        ok: out.exit_code == 0,
                        detail: format!(
                            "command {:?} exited with {}: {}",
                            exec.command,
                            out.exit_code,
                            String::from_utf8_lossy(&out.stdout).trim()
                        ),
                    },
                    Err(e) => Outcome {
                        ok: false,
                        detail: e.to_string(),
                    },
                };
            }
            let netns = pod.netns.clone();
            let (c, p) = (c.clone(), probe.clone());
            tokio::task::spawn_blocking(move || {
                let run = move || check_network(&c, &p, host);
                match netns {
                    Some(ns) => keel_sys::ns::NetNs::open(&ns)
                        .map_err(|e| e.to_string())
                        .and_then(|n| n.run(run).map_err(|e| e.to_string()))
                        .unwrap_or_else(|e| {
                            Some(Outcome {
                                ok: false,
                                detail: format!("entering pod netns: {e}"),
                            })
                        }),
                    None => run(),
                }
            })
            .await
            .ok()
            .flatten()
            .unwrap_or(Outcome {
                ok: false,
                detail: "probe has no handler".into(),
            })
        }
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod fake;
