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
        CloseIoRequest, DeleteProcessRequest, ExecProcessRequest, KillRequest, ResizePtyRequest,
        StartRequest, WaitRequest, tasks_client::TasksClient,
    },
    tonic::transport::Channel,
};
use tokio::sync::oneshot;

use super::{ContainerdRuntime, PROCESS_TYPE_URL, grpc, label};
use crate::runtime::{
    backend::{ExecOutput, PodRef, RuntimeError},
    exec_session::{self, ExecAttach, ExecSession},
};

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
        // A writer of stdin still waiting for the shim to open it: a
        // reader's open releases it.
        let _ = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(self.path("stdin"));
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

/// Streams a FIFO into a channel: a blocking open (until the shim opens
/// the write end), then reads to EOF, on its own thread.
fn stream_from(path: PathBuf, tx: tokio::sync::mpsc::Sender<Vec<u8>>) {
    std::thread::spawn(move || {
        if let Ok(f) = fs::File::open(&path) {
            exec_session::read_blocking(f, tx);
        }
    });
}

/// Feeds a FIFO from a channel once the shim opens its read end; the
/// sender's drop closes it (the process's stdin sees EOF).
fn stream_to(path: PathBuf, at_end: &'static [u8]) -> tokio::sync::mpsc::Sender<Vec<u8>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(exec_session::CHUNKS);
    std::thread::spawn(move || {
        let Ok(f) = fs::OpenOptions::new().write(true).open(&path) else {
            return;
        };
        let inner = exec_session::write_blocking(f, at_end);
        while let Some(b) = rx.blocking_recv() {
            if inner.blocking_send(b).is_err() {
                return;
            }
        }
    });
    tx
}

/// Interactive exec through containerd: `Tasks.Exec` with a stdin FIFO
/// (when asked) and, with a terminal, `terminal: true` (the shim opens the
/// pty in the container and copies it to the stdout FIFO; no stderr),
/// `ResizePty` for resizes, `CloseIO` when stdin ends. After the process
/// exits and its output is read, `DeleteProcess`.
pub(super) async fn stream(
    rt: &ContainerdRuntime,
    ch: &Channel,
    pod: &PodRef,
    id: &str,
    cmd: &[String],
    attach: ExecAttach,
) -> Result<ExecSession, RuntimeError> {
    let fail = |message: String| RuntimeError::Exec {
        id: id.to_string(),
        message,
    };
    let bundle = bundle_of(rt, ch, pod, id).await?;
    let (_, spec) = read_spec(&bundle)?;
    let process = exec_session::exec_process(&spec, cmd, attach.tty, attach.size).map_err(fail)?;

    let exec_id = format!(
        "exec-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let fifos = Fifos {
        dir: bundle.join("exec").join(&exec_id),
    };
    fs::create_dir_all(&fifos.dir).map_err(|e| RuntimeError::io("creating", &fifos.dir, e))?;
    let mut names = vec!["stdout"];
    if !attach.tty {
        names.push("stderr");
    }
    if attach.stdin {
        names.push("stdin");
    }
    for name in &names {
        nix::unistd::mkfifo(
            &fifos.path(name),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| fail(format!("making the {name} FIFO: {e}")))?;
    }
    let fifo = |name: &str| {
        if names.contains(&name) {
            fifos.path(name).display().to_string()
        } else {
            String::new()
        }
    };
    let (out, stdout) = tokio::sync::mpsc::channel(exec_session::CHUNKS);
    stream_from(fifos.path("stdout"), out);
    let stderr = (!attach.tty).then(|| {
        let (tx, rx) = tokio::sync::mpsc::channel(exec_session::CHUNKS);
        stream_from(fifos.path("stderr"), tx);
        rx
    });
    let input = attach.stdin.then(|| {
        stream_to(
            fifos.path("stdin"),
            if attach.tty {
                exec_session::TERMINAL_EOF
            } else {
                b""
            },
        )
    });

    let mut tasks = TasksClient::new(ch.clone());
    tasks
        .exec(rt.req(ExecProcessRequest {
            container_id: id.to_string(),
            stdin: fifo("stdin"),
            stdout: fifo("stdout"),
            stderr: fifo("stderr"),
            terminal: attach.tty,
            spec: Some(prost_types::Any {
                type_url: PROCESS_TYPE_URL.into(),
                value: serde_json::to_vec(&process).expect("serialise"),
            }),
            exec_id: exec_id.clone(),
        }))
        .await
        .map_err(|s| grpc("exec", id, s))?;
    if let Err(s) = tasks
        .start(rt.req(StartRequest {
            container_id: id.to_string(),
            exec_id: exec_id.clone(),
        }))
        .await
    {
        let _ = tasks
            .delete_process(rt.req(DeleteProcessRequest {
                container_id: id.to_string(),
                exec_id: exec_id.clone(),
            }))
            .await;
        return Err(grpc("exec", id, s));
    }

    // Stdin: what the client sends goes to the FIFO; at its end the
    // FIFO closes and the shim is told (CloseIO), as `ctr exec` does.
    let stdin = input.map(|to_fifo| {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(exec_session::CHUNKS);
        let (mut tasks, req) = (
            tasks.clone(),
            rt.req(CloseIoRequest {
                container_id: id.to_string(),
                exec_id: exec_id.clone(),
                stdin: true,
            }),
        );
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if to_fifo.send(b).await.is_err() {
                    break;
                }
            }
            drop(to_fifo);
            let _ = tasks.close_io(req).await;
        });
        tx
    });
    let resize = attach.tty.then(|| {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<exec_session::TermSize>();
        let mut tasks = tasks.clone();
        let reqs = {
            let (id, exec_id) = (id.to_string(), exec_id.clone());
            move |s: exec_session::TermSize| ResizePtyRequest {
                container_id: id.clone(),
                exec_id: exec_id.clone(),
                width: u32::from(s.width),
                height: u32::from(s.height),
            }
        };
        let rt = rt.clone();
        tokio::spawn(async move {
            while let Some(s) = rx.recv().await {
                if let Err(e) = tasks.resize_pty(rt.req(reqs(s))).await {
                    tracing::debug!(error = %e, "exec: resizing the terminal");
                }
            }
        });
        tx
    });
    let (done, exit) = tokio::sync::oneshot::channel();
    let wait = rt.req_unbounded(WaitRequest {
        container_id: id.to_string(),
        exec_id: exec_id.clone(),
    });
    let delete = rt.req(DeleteProcessRequest {
        container_id: id.to_string(),
        exec_id: exec_id.clone(),
    });
    let id = id.to_string();
    tokio::spawn(async move {
        let r = tasks
            .clone()
            .wait(wait)
            .await
            .map(|w| w.into_inner().exit_status as i32)
            .map_err(|s| grpc("wait for exec", &id, s).to_string());
        let _ = done.send(r);
        // The shim closes the output FIFOs once it has copied everything;
        // give the readers a moment before the process and its FIFOs go.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = tasks.delete_process(delete).await;
        drop(fifos);
    });
    Ok(ExecSession {
        stdin,
        stdout,
        stderr,
        resize,
        exit,
    })
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
    let bundle = bundle_of(rt, ch, pod, id).await?;
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
/// The bundle directory of container `id` of `pod` (its label).
async fn bundle_of(
    rt: &ContainerdRuntime,
    ch: &Channel,
    pod: &PodRef,
    id: &str,
) -> Result<PathBuf, RuntimeError> {
    let container = rt
        .containers(ch, Some(&pod.uid))
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| RuntimeError::NoContainer {
            pod: pod.key(),
            id: id.to_string(),
        })?;
    container
        .labels
        .get(label::BUNDLE)
        .map(PathBuf::from)
        .ok_or_else(|| RuntimeError::Exec {
            id: id.to_string(),
            message: "the container has no bundle label".into(),
        })
}

/// A bundle's OCI spec, with the path it was read from.
fn read_spec(bundle: &Path) -> Result<(PathBuf, serde_json::Value), RuntimeError> {
    let path = bundle.join("config.json");
    let raw = fs::read(&path).map_err(|e| RuntimeError::io("reading", &path, e))?;
    let spec = serde_json::from_slice(&raw)
        .map_err(|e| RuntimeError::io("parsing", &path, std::io::Error::other(e)))?;
    Ok((path, spec))
}

fn process_spec(bundle: &Path) -> Result<serde_json::Value, RuntimeError> {
    let (path, spec) = read_spec(bundle)?;
    spec.get("process").cloned().ok_or_else(|| {
        RuntimeError::io(
            "reading the process of",
            &path,
            std::io::Error::other("no process in the spec"),
        )
    })
}
