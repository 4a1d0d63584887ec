//! An in-memory [`PodRuntime`] for unit tests of the lifecycle: containers
//! are records that "run" until the test makes them exit (or a signal the
//! test says they honour ends them); exec answers from a table; exits are
//! reported to [`PodRuntime::wait`] like a real runtime's. Compiled only
//! for tests (`cfg(test)` or the `testing` feature).

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use keel_api::pod::PullPolicy;
use tokio::sync::watch;

use super::{ExecOutput, Observed, PodRef, PodRuntime, RuntimeError};
use crate::runtime::{
    container::{ContainerRequest, NodeRuntimeConfig},
    images::{ImageConfig, ImageError, ImageInfo, config::RunConfig},
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
    /// Calls made, by method name (what a test counts to see that an idle
    /// pod leaves the runtime alone).
    pub calls: BTreeMap<&'static str, u64>,
    /// `wait` answers "cannot tell", as an older shim does.
    pub cannot_wait: bool,
}

#[derive(Clone)]
pub struct FakeRuntime {
    pub state: Arc<Mutex<FakeState>>,
    /// Exits so far (what `wait` waits on).
    exits: Arc<watch::Sender<u64>>,
    node: NodeRuntimeConfig,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        Self {
            state: Default::default(),
            exits: Arc::new(watch::channel(0).0),
            node: NodeRuntimeConfig {
                memory_capacity: 1 << 30,
                ..Default::default()
            },
        }
    }
}

impl FakeRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    /// One whose node allows privileged pods (hostNetwork too).
    pub fn allowing_privileged() -> Self {
        let mut r = Self::default();
        r.node.allow_privileged = true;
        r
    }

    fn call(&self, name: &'static str) -> std::sync::MutexGuard<'_, FakeState> {
        let mut s = self.state.lock().unwrap();
        *s.calls.entry(name).or_default() += 1;
        s
    }

    /// Runtime calls so far, all methods together.
    pub fn calls(&self) -> u64 {
        self.state.lock().unwrap().calls.values().sum()
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
            self.exits.send_modify(|n| *n += 1);
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
    fn node_config(&self) -> &NodeRuntimeConfig {
        &self.node
    }

    fn pod_dir(&self, pod: &PodRef) -> PathBuf {
        std::env::temp_dir()
            .join(format!("keel-fake-runtime-{}", std::process::id()))
            .join(&pod.uid)
    }

    async fn start_pod(&self, _pod: &PodRef) -> Result<(), RuntimeError> {
        drop(self.call("start_pod"));
        Ok(())
    }

    /// The fake has no store: every image is pulled (from nowhere).
    fn image_present(&self, _image: &str) -> bool {
        false
    }

    async fn ensure_image(
        &self,
        image: &str,
        _p: PullPolicy,
        _auth: &crate::runtime::backend::PullAuth,
    ) -> Result<ImageInfo, RuntimeError> {
        if self
            .call("ensure_image")
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
            config: ImageConfig {
                config: Some(RunConfig {
                    cmd: Some(vec!["/bin/true".into()]),
                    ..Default::default()
                }),
                ..Default::default()
            },
            layers: vec![],
        })
    }

    async fn start_container(
        &self,
        _pod: &PodRef,
        req: ContainerRequest,
        image: &ImageInfo,
    ) -> Result<Observed, RuntimeError> {
        let mut s = self.call("start_container");
        s.next_pid += 1;
        let o = Observed {
            id: req.id,
            name: req.name,
            kind_init: req.init,
            attempt: req.attempt,
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
        Ok(self.call("list").containers.clone())
    }

    async fn signal(&self, _pod: &PodRef, id: &str, signal: i32) -> Result<(), RuntimeError> {
        let mut s = self.call("signal");
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
            self.exits.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    async fn remove_container(&self, _pod: &PodRef, id: &str) -> Result<(), RuntimeError> {
        self.call("remove_container")
            .containers
            .retain(|c| c.id != id);
        Ok(())
    }

    async fn exec(
        &self,
        _pod: &PodRef,
        id: &str,
        _cmd: &[String],
        _timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        let s = self.call("exec");
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

    /// Echoes stdin to stdout (and the first size and each resize as
    /// `resize WxH`), then
    /// exits with the container's exec code once stdin closes.
    async fn exec_stream(
        &self,
        _pod: &PodRef,
        id: &str,
        _cmd: &[String],
        attach: crate::runtime::exec_session::ExecAttach,
    ) -> Result<crate::runtime::exec_session::ExecSession, RuntimeError> {
        use crate::runtime::exec_session::{CHUNKS, ExecSession};
        use tokio::sync::{mpsc, oneshot};
        let code = {
            let s = self.call("exec_stream");
            let name = s
                .containers
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            s.exec_codes.get(&name).copied().unwrap_or(0)
        };
        let (out, stdout) = mpsc::channel(CHUNKS);
        let (stdin, mut input) = mpsc::channel::<Vec<u8>>(CHUNKS);
        let (resize, mut sizes) =
            mpsc::unbounded_channel::<crate::runtime::exec_session::TermSize>();
        let (done, exit) = oneshot::channel();
        let first = attach.size;
        tokio::spawn(async move {
            if let Some(s) = first {
                let _ = out
                    .send(format!("resize {}x{}\n", s.width, s.height).into_bytes())
                    .await;
            }
            loop {
                tokio::select! {
                    b = input.recv() => match b {
                        Some(b) => { let _ = out.send(b).await; }
                        None => {
                            while let Ok(s) = sizes.try_recv() {
                                let _ = out.send(format!("resize {}x{}\n", s.width, s.height).into_bytes()).await;
                            }
                            break;
                        }
                    },
                    Some(s) = sizes.recv() => {
                        let _ = out.send(format!("resize {}x{}\n", s.width, s.height).into_bytes()).await;
                    }
                }
            }
            drop(out);
            let _ = done.send(Ok(code));
        });
        Ok(ExecSession {
            stdin: attach.stdin.then_some(stdin),
            stdout,
            stderr: None,
            resize: attach.tty.then_some(resize),
            exit,
        })
    }

    async fn remove_pod(&self, pod: &PodRef) -> Result<(), RuntimeError> {
        let mut s = self.call("remove_pod");
        if let Some(c) = s.containers.iter().find(|c| c.exit.is_none()) {
            return Err(RuntimeError::StillRunning {
                pod: pod.key(),
                id: c.id.clone(),
            });
        }
        s.containers.clear();
        s.removed_pods.push(pod.uid.clone());
        Ok(())
    }

    async fn pods(&self) -> Result<Vec<PodRef>, RuntimeError> {
        drop(self.call("pods"));
        Ok(vec![])
    }

    async fn wait(
        &self,
        _pod: &PodRef,
        seen: Option<u64>,
        timeout: Duration,
    ) -> Result<Option<u64>, RuntimeError> {
        if self.call("wait").cannot_wait {
            return Ok(None);
        }
        let mut rx = self.exits.subscribe();
        let now = *rx.borrow_and_update();
        match seen {
            Some(s) if now <= s => {
                let _ = tokio::time::timeout(timeout, rx.changed()).await;
                Ok(Some(*rx.borrow()))
            }
            _ => Ok(Some(now)),
        }
    }
}
