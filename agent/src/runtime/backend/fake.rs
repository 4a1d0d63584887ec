//! An in-memory [`PodRuntime`] for unit tests of the lifecycle: containers
//! are records that "run" until the test makes them exit (or a signal the
//! test says they honour ends them); exec answers from a table.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use keel_api::{Pod, pod::PullPolicy};

use super::{ExecOutput, Observed, PodRef, PodRuntime, RuntimeError};
use crate::runtime::{
    container::resolve::Kind,
    images::{ImageConfig, ImageError, ImageInfo},
    shim::{Exit, proto::now_ms},
};

#[derive(Debug, Default)]
pub struct FakeState {
    pub containers: Vec<Observed>,
    /// Signals sent, in order: (container id, signal).
    pub signals: Vec<(String, i32)>,
    /// Signals that end a container (SIGKILL always does).
    pub honoured: Vec<i32>,
    /// Exec exit code by container name (0 when absent).
    pub exec_codes: BTreeMap<String, i32>,
    /// Images that "do not exist".
    pub missing_images: Vec<String>,
    pub removed_pods: Vec<String>,
    pub next_pid: i32,
}

#[derive(Clone, Default)]
pub struct FakeRuntime {
    pub state: Arc<Mutex<FakeState>>,
}

impl FakeRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes a running container exit.
    pub fn exit(&self, name: &str, code: i32) {
        let mut s = self.state.lock().unwrap();
        if let Some(c) = s
            .containers
            .iter_mut()
            .filter(|c| c.name == name && c.exit.is_none())
            .last()
        {
            c.exit = Some(Exit {
                code,
                signal: None,
                oom_killed: false,
                finished_at_ms: now_ms(),
            });
        }
    }

    pub fn running(&self, name: &str) -> usize {
        let s = self.state.lock().unwrap();
        s.containers
            .iter()
            .filter(|c| c.name == name && c.exit.is_none())
            .count()
    }
}

impl PodRuntime for FakeRuntime {
    async fn start_pod(&self, _pod: &PodRef) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn ensure_image(&self, image: &str, _p: PullPolicy) -> Result<ImageInfo, RuntimeError> {
        if self
            .state
            .lock()
            .unwrap()
            .missing_images
            .iter()
            .any(|m| m == image)
        {
            return Err(ImageError::NotFound {
                image: image.into(),
                detail: "manifest unknown".into(),
            }
            .into());
        }
        Ok(ImageInfo {
            reference: image.into(),
            manifest_digest: format!("sha256:{}", "0".repeat(64)),
            config: ImageConfig::default(),
            layers: vec![],
        })
    }

    async fn start_container(
        &self,
        pod: &PodRef,
        spec: &Pod,
        kind: Kind,
        index: usize,
        attempt: u32,
        image: &ImageInfo,
    ) -> Result<Observed, RuntimeError> {
        let c = match kind {
            Kind::Init => &spec.spec.init_containers[index],
            Kind::App => &spec.spec.containers[index],
        };
        let mut s = self.state.lock().unwrap();
        s.next_pid += 1;
        let o = Observed {
            id: format!("{}-{}-{attempt}", pod.uid, c.name),
            name: c.name.clone(),
            kind_init: kind == Kind::Init,
            attempt,
            image_id: image.manifest_digest.clone(),
            pid: s.next_pid,
            started_at_ms: now_ms(),
            exit: None,
            log: Default::default(),
        };
        s.containers.push(o.clone());
        Ok(o)
    }

    async fn list(&self, _pod: &PodRef) -> Result<Vec<Observed>, RuntimeError> {
        Ok(self.state.lock().unwrap().containers.clone())
    }

    async fn signal(&self, _pod: &PodRef, id: &str, signal: i32) -> Result<(), RuntimeError> {
        let mut s = self.state.lock().unwrap();
        s.signals.push((id.to_string(), signal));
        let ends = signal == 9 || s.honoured.contains(&signal);
        if let Some(c) = s.containers.iter_mut().find(|c| c.id == id)
            && c.exit.is_none()
            && ends
        {
            c.exit = Some(Exit {
                code: 128 + signal,
                signal: Some(signal),
                oom_killed: false,
                finished_at_ms: now_ms(),
            });
        }
        Ok(())
    }

    async fn remove_container(&self, _pod: &PodRef, id: &str) -> Result<(), RuntimeError> {
        self.state.lock().unwrap().containers.retain(|c| c.id != id);
        Ok(())
    }

    async fn exec(
        &self,
        _pod: &PodRef,
        id: &str,
        _cmd: &[String],
        _timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        let s = self.state.lock().unwrap();
        let name = s
            .containers
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        Ok(ExecOutput {
            exit_code: s.exec_codes.get(&name).copied().unwrap_or(0),
            stdout: vec![],
            stderr: vec![],
        })
    }

    async fn remove_pod(&self, pod: &PodRef) -> Result<(), RuntimeError> {
        let mut s = self.state.lock().unwrap();
        if s.containers.iter().any(|c| c.exit.is_none()) {
            return Err(RuntimeError::Other("containers still run".into()));
        }
        s.containers.clear();
        s.removed_pods.push(pod.uid.clone());
        Ok(())
    }

    async fn pods(&self) -> Result<Vec<PodRef>, RuntimeError> {
        Ok(vec![])
    }
}
