//! `exec` through containerd: an extra process in the container's task
//! (`Tasks.Exec` with the container's own process spec and new args),
//! its stdout and stderr through two FIFOs the shim writes and we read,
//! bounded by the caller's timeout, then `DeleteProcess`.
//!
//! Each FIFO is read on a plain thread with a blocking open, which returns
//! once the shim opens the write end and reads to EOF when the shim closes
//! it after the process ends. A thread whose FIFO the shim never opened is
//! released by [`Fifos`]' drop (a non-blocking writer opened and closed).

use std::{
    fs,
    io::Read,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use containerd_client::{
    services::v1::{
        DeleteProcessRequest, ExecProcessRequest, KillRequest, StartRequest, WaitRequest,
        tasks_client::TasksClient,
    },
    tonic::transport::Channel,
};
use tokio::sync::oneshot;

use super::{ContainerdRuntime, PROCESS_TYPE_URL, grpc, label};
use crate::runtime::backend::{ExecOutput, PodRef, RuntimeError};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The exec's FIFO directory; drop unblocks readers and removes it.
struct Fifos {
    dir: PathBuf,
}

impl Fifos {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Fifos {
    fn drop(&mut self) {
        for name in ["stdout", "stderr"] {
            // ENXIO when no reader waits any more: fine.
            let _ = fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(self.path(name));
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Reads a FIFO to EOF on its own thread.
fn reader(path: PathBuf) -> oneshot::Receiver<Vec<u8>> {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Ok(mut f) = fs::File::open(&path) {
            let _ = f.read_to_end(&mut out);
        }
        let _ = tx.send(out);
    });
    rx
}

pub(super) async fn run(
    rt: &ContainerdRuntime,
    ch: &Channel,
    pod: &PodRef,
    id: &str,
    cmd: &[String],
    timeout: Duration,
) -> Result<ExecOutput, RuntimeError> {
    let fail = |message: String| RuntimeError::Exec {
        id: id.to_string(),
        message,
    };
    if cmd.is_empty() {
        return Err(fail("empty command".into()));
    }
    let container = rt
        .containers(ch, Some(&pod.uid))
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| RuntimeError::NoContainer {
            pod: pod.key(),
            id: id.to_string(),
        })?;
    let bundle = container
        .labels
        .get(label::BUNDLE)
        .map(PathBuf::from)
        .ok_or_else(|| fail("the container has no bundle label".into()))?;
    let mut process = process_spec(&bundle)?;
    process["args"] = serde_json::json!(cmd);
    process["terminal"] = serde_json::json!(false);

    let exec_id = format!(
        "exec-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let fifos = Fifos {
        dir: bundle.join("exec").join(&exec_id),
    };
    fs::create_dir_all(&fifos.dir).map_err(|e| RuntimeError::io("creating", &fifos.dir, e))?;
    for name in ["stdout", "stderr"] {
        nix::unistd::mkfifo(
            &fifos.path(name),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| fail(format!("making the {name} FIFO: {e}")))?;
    }
    let out_rx = reader(fifos.path("stdout"));
    let err_rx = reader(fifos.path("stderr"));

    let mut tasks = TasksClient::new(ch.clone());
    tasks
        .exec(rt.req(ExecProcessRequest {
            container_id: id.to_string(),
            stdin: String::new(),
            stdout: fifos.path("stdout").display().to_string(),
            stderr: fifos.path("stderr").display().to_string(),
            terminal: false,
            spec: Some(prost_types::Any {
                type_url: PROCESS_TYPE_URL.into(),
                value: serde_json::to_vec(&process).expect("serialise"),
            }),
            exec_id: exec_id.clone(),
        }))
        .await
        .map_err(|s| grpc("exec", id, s))?;
    let delete = |mut tasks: TasksClient<Channel>| {
        let r = rt.req(DeleteProcessRequest {
            container_id: id.to_string(),
            exec_id: exec_id.clone(),
        });
        async move {
            let _ = tasks.delete_process(r).await;
        }
    };
    let result = tokio::time::timeout(timeout, async {
        tasks
            .start(rt.req(StartRequest {
                container_id: id.to_string(),
                exec_id: exec_id.clone(),
            }))
            .await
            .map_err(|s| grpc("exec", id, s))?;
        let code = tasks
            .clone()
            .wait(rt.req_unbounded(WaitRequest {
                container_id: id.to_string(),
                exec_id: exec_id.clone(),
            }))
            .await
            .map_err(|s| grpc("wait for exec", id, s))?
            .into_inner()
            .exit_status;
        let stdout = out_rx.await.unwrap_or_default();
        let stderr = err_rx.await.unwrap_or_default();
        Ok::<_, RuntimeError>(ExecOutput {
            exit_code: code as i32,
            stdout,
            stderr,
        })
    })
    .await;
    match result {
        Ok(r) => {
            delete(tasks.clone()).await;
            r
        }
        Err(_) => {
            let _ = tasks
                .kill(rt.req(KillRequest {
                    container_id: id.to_string(),
                    exec_id: exec_id.clone(),
                    signal: libc::SIGKILL as u32,
                    all: false,
                }))
                .await;
            // Give the shim a moment to see it die, so the delete works.
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                tasks.clone().wait(rt.req_unbounded(WaitRequest {
                    container_id: id.to_string(),
                    exec_id: exec_id.clone(),
                })),
            )
            .await;
            delete(tasks.clone()).await;
            Err(RuntimeError::Timeout {
                pod: pod.key(),
                what: "exec",
                after: timeout,
            })
        }
    }
}

/// The container's process spec from the bundle's config.json.
fn process_spec(bundle: &Path) -> Result<serde_json::Value, RuntimeError> {
    let path = bundle.join("config.json");
    let raw = fs::read(&path).map_err(|e| RuntimeError::io("reading", &path, e))?;
    let spec: serde_json::Value = serde_json::from_slice(&raw)
        .map_err(|e| RuntimeError::io("parsing", &path, std::io::Error::other(e)))?;
    spec.get("process").cloned().ok_or_else(|| {
        RuntimeError::io(
            "reading the process of",
            &path,
            std::io::Error::other("no process in the spec"),
        )
    })
}
