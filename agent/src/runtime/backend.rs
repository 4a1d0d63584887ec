//! The boundary between the pod lifecycle logic and whatever runs the
//! containers: [`PodRuntime`]. keel's own implementation
//! ([`crate::runtime::direct::DirectRuntime`]) launches containers with
//! libcontainer through a per-pod shim; tests of the lifecycle use
//! [`fake::FakeRuntime`].

use std::{
    future::Future,
    path::{Path, PathBuf},
};

use keel_api::{Pod, pod::PullPolicy};
use serde::{Deserialize, Serialize};

use super::{
    container::{ConfigError, resolve::Kind},
    images::{ImageError, ImageInfo},
};

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
    /// Creating or starting the container failed (bad command, …).
    #[error("{0}")]
    Create(String),
    #[error("{0}")]
    Other(String),
}

impl RuntimeError {
    pub fn reason(&self) -> &'static str {
        match self {
            RuntimeError::Image(e) => e.reason(),
            RuntimeError::Config(_) => "CreateContainerConfigError",
            RuntimeError::Create(_) => "CreateContainerError",
            RuntimeError::Other(_) => "RunContainerError",
        }
    }
}

/// What runs a node's containers. Every method is idempotent where that
/// makes sense (starting a pod twice, removing what is gone).
pub trait PodRuntime: Send + Sync + 'static {
    /// Makes the pod's runtime side exist (its shim); idempotent.
    fn start_pod(&self, pod: &PodRef) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Makes an image present per its pull policy.
    fn ensure_image(
        &self,
        image: &str,
        policy: PullPolicy,
    ) -> impl Future<Output = Result<ImageInfo, RuntimeError>> + Send;

    /// Creates and starts container `index` of `kind` for `attempt`.
    fn start_container(
        &self,
        pod: &PodRef,
        spec: &Pod,
        kind: Kind,
        index: usize,
        attempt: u32,
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
}

pub mod fake;
