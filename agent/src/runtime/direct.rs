//! keel's own [`PodRuntime`]: images from the [`ImageStore`], bundles
//! prepared by [`super::bundle`], containers run by the pod's shim with
//! libcontainer, exits reported by the shim as they happen.
//!
//! ```text
//! <root>/images/...                      the image store
//! <root>/pods/<uid>/pod.json             which pod this is
//! <root>/pods/<uid>/shim.sock|pid|log    its shim
//! <root>/pods/<uid>/lc/<id>/             libcontainer state
//! <root>/pods/<uid>/containers/<id>/     bundle: config.json, rootfs, upper, work, meta.json
//! <root>/pods/<uid>/volumes/<name>/      emptyDirs
//! <root>/pods/<uid>/etc/hosts|hostname   files the pod's containers share
//! <root>/pods/<uid>/logs/<name>/<attempt>.log
//! ```

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use keel_api::pod::PullPolicy;
use serde::{Deserialize, Serialize};

use super::{
    backend::{ExecOutput, Observed, PodRef, PodRuntime, RuntimeError},
    bundle::{self, Prepared},
    container::{ContainerRequest, NodeRuntimeConfig, rootfs},
    exec_session::{self, ExecAttach, ExecSession},
    images::{ImageInfo, ImageStore, PullOptions},
    shim::{self, ShimClient, server::state_root},
};

static EXEC_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Settings of the direct runtime.
#[derive(Debug, Clone)]
pub struct DirectConfig {
    pub root: PathBuf,
    /// The binary re-executed as shim and exec helper (the agent itself).
    pub exe: PathBuf,
    pub node: NodeRuntimeConfig,
    pub pull: PullOptions,
}

#[derive(Clone)]
pub struct DirectRuntime {
    cfg: DirectConfig,
    images: ImageStore,
}

/// Per-container facts the shim does not know.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    name: String,
    init: bool,
    attempt: u32,
    image_id: String,
}

impl DirectRuntime {
    pub fn new(cfg: DirectConfig) -> Result<Self, RuntimeError> {
        let images = ImageStore::open(cfg.root.join("images"))?;
        // The runtime root and everything of the pods' is root's alone: a
        // Memory emptyDir's 0777 tmpfs and the rootfs upper dirs are
        // reachable only through the container.
        crate::private::private_dir(&cfg.root).map_err(io("creating", &cfg.root))?;
        let pods = cfg.root.join("pods");
        crate::private::private_dir(&pods).map_err(io("creating", &pods))?;
        Ok(Self { cfg, images })
    }

    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    fn shim(&self, pod: &PodRef) -> ShimClient {
        ShimClient::new(&PodRuntime::pod_dir(self, pod))
    }

    /// Where a container attempt's log goes.
    pub fn log_path(&self, pod: &PodRef, name: &str, attempt: u32) -> PathBuf {
        PodRuntime::pod_dir(self, pod)
            .join("logs")
            .join(name)
            .join(format!("{attempt}.log"))
    }

    /// The libcontainer state root of a pod (for `shim-exec`).
    pub fn state_root(&self, pod: &PodRef) -> PathBuf {
        state_root(&PodRuntime::pod_dir(self, pod))
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RuntimeError + 'a {
    move |e| RuntimeError::io(what, path, e)
}

impl PodRuntime for DirectRuntime {
    fn node_config(&self) -> &NodeRuntimeConfig {
        &self.cfg.node
    }

    fn pod_dir(&self, pod: &PodRef) -> PathBuf {
        self.cfg.root.join("pods").join(&pod.uid)
    }

    async fn start_pod(&self, pod: &PodRef) -> Result<(), RuntimeError> {
        let dir = PodRuntime::pod_dir(self, pod);
        fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        let pj = dir.join("pod.json");
        if !pj.exists() {
            fs::write(&pj, serde_json::to_vec_pretty(pod).expect("serialise"))
                .map_err(io("writing", &pj))?;
        }
        ShimClient::spawn(&dir, &self.cfg.exe).await?;
        Ok(())
    }

    fn image_present(&self, image: &str) -> bool {
        crate::runtime::images::reference::normalise(image)
            .ok()
            .and_then(|name| self.images.get(&name))
            .is_some()
    }

    async fn ensure_image(
        &self,
        image: &str,
        policy: PullPolicy,
        auth: &crate::runtime::backend::PullAuth,
    ) -> Result<ImageInfo, RuntimeError> {
        if auth.is_empty() {
            return Ok(self.images.ensure(image, policy, &self.cfg.pull).await?);
        }
        let mut pull = self.cfg.pull.clone();
        pull.auth.extend(auth.clone());
        Ok(self.images.ensure(image, policy, &pull).await?)
    }

    async fn start_container(
        &self,
        pod: &PodRef,
        req: ContainerRequest,
        image: &ImageInfo,
    ) -> Result<Observed, RuntimeError> {
        let dir = PodRuntime::pod_dir(self, pod);
        let Prepared {
            req,
            bundle,
            mut config,
        } = bundle::prepare(&dir, req, image, "rootfs").await?;
        crate::runtime::container::seccomp::for_libcontainer(&mut config);
        crate::runtime::container::spec::for_libcontainer(&mut config);
        let cleanup = |e: RuntimeError| {
            let _ = rootfs::remove_bundle(&bundle);
            e
        };
        let config_json = bundle.join("config.json");
        fs::write(
            &config_json,
            serde_json::to_vec_pretty(&config).expect("serialise"),
        )
        .map_err(|e| cleanup(RuntimeError::io("writing", &config_json, e)))?;
        let meta = Meta {
            name: req.name.clone(),
            init: req.init,
            attempt: req.attempt,
            image_id: image.manifest_digest.clone(),
        };
        let meta_json = bundle.join("meta.json");
        fs::write(&meta_json, serde_json::to_vec(&meta).expect("serialise"))
            .map_err(|e| cleanup(RuntimeError::io("writing", &meta_json, e)))?;
        let log = self.log_path(pod, &req.name, req.attempt);
        let pid = self
            .shim(pod)
            .run(&req.id, &bundle, &log, &req.cgroup_path)
            .await
            .map_err(|e| {
                cleanup(RuntimeError::Create {
                    id: req.id.clone(),
                    message: e.to_string(),
                })
            })?;
        Ok(Observed {
            id: req.id,
            name: meta.name,
            kind_init: meta.init,
            attempt: meta.attempt,
            image_id: meta.image_id,
            pid,
            started_at_ms: super::shim::proto::now_ms(),
            exit: None,
            log,
        })
    }

    async fn list(&self, pod: &PodRef) -> Result<Vec<Observed>, RuntimeError> {
        let shim = self.shim(pod);
        let infos = shim.state().await?;
        let mut out = Vec::new();
        for i in infos {
            let Ok(meta) = fs::read(i.bundle.join("meta.json"))
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Meta>(&b).map_err(|e| e.to_string()))
            else {
                continue;
            };
            out.push(Observed {
                id: i.id,
                name: meta.name,
                kind_init: meta.init,
                attempt: meta.attempt,
                image_id: meta.image_id,
                pid: i.pid,
                started_at_ms: i.started_at_ms,
                exit: i.exit,
                log: i.log,
            });
        }
        Ok(out)
    }

    async fn signal(&self, pod: &PodRef, id: &str, signal: i32) -> Result<(), RuntimeError> {
        Ok(self.shim(pod).kill(id, signal).await?)
    }

    async fn remove_container(&self, pod: &PodRef, id: &str) -> Result<(), RuntimeError> {
        self.shim(pod).delete(id).await?;
        let bundle = PodRuntime::pod_dir(self, pod).join("containers").join(id);
        let b = bundle.clone();
        tokio::task::spawn_blocking(move || rootfs::remove_bundle(&b))
            .await
            .map_err(|e| RuntimeError::io("removing", &bundle, std::io::Error::other(e)))?
            .map_err(|e| RuntimeError::io("removing", &bundle, e))
    }

    async fn exec(
        &self,
        pod: &PodRef,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        let mut c = tokio::process::Command::new(&self.cfg.exe);
        c.arg("shim-exec")
            .arg("--root")
            .arg(self.state_root(pod))
            .arg("--id")
            .arg(id)
            .arg("--")
            .args(cmd)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(timeout, c.output())
            .await
            .map_err(|_| RuntimeError::Timeout {
                pod: pod.key(),
                what: "exec",
                after: timeout,
            })?
            .map_err(|e| RuntimeError::Exec {
                id: id.to_string(),
                message: e.to_string(),
            })?;
        Ok(ExecOutput {
            exit_code: out.status.code().unwrap_or(128),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    async fn exec_stream(
        &self,
        pod: &PodRef,
        id: &str,
        cmd: &[String],
        attach: ExecAttach,
    ) -> Result<ExecSession, RuntimeError> {
        let fail = |message: String| RuntimeError::Exec {
            id: id.to_string(),
            message,
        };
        let mut c = tokio::process::Command::new(&self.cfg.exe);
        c.arg("shim-exec")
            .arg("--root")
            .arg(self.state_root(pod))
            .arg("--id")
            .arg(id)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(false);
        // With a terminal: the container's process with `terminal: true`
        // (written beside its bundle) and a socket on fd 3 for the master.
        let mut console = None;
        let mut process_file = None;
        if attach.tty {
            let bundle = PodRuntime::pod_dir(self, pod).join("containers").join(id);
            let config = bundle.join("config.json");
            let spec: serde_json::Value = fs::read(&config)
                .map_err(io("reading", &config))
                .and_then(|b| {
                    serde_json::from_slice(&b)
                        .map_err(|e| RuntimeError::io("parsing", &config, std::io::Error::other(e)))
                })?;
            let process =
                exec_session::exec_process(&spec, cmd, true, attach.size).map_err(fail)?;
            let file = bundle.join(format!(
                "exec-{}-{}.json",
                std::process::id(),
                EXEC_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            fs::write(&file, serde_json::to_vec(&process).expect("serialise"))
                .map_err(io("writing", &file))?;
            let (ours, theirs) = std::os::unix::net::UnixStream::pair()
                .map_err(|e| fail(format!("a socket for the terminal: {e}")))?;
            let fd = std::os::fd::AsRawFd::as_raw_fd(&theirs);
            // SAFETY: between fork and exec only dup2/fcntl (async-signal-
            // safe) run; `theirs` stays open in the parent until spawn returns.
            unsafe {
                c.pre_exec(move || {
                    if fd == 3 {
                        let flags = libc::fcntl(3, libc::F_GETFD);
                        if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0
                        {
                            return Err(std::io::Error::last_os_error());
                        }
                    } else if libc::dup2(fd, 3) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            c.arg("--process")
                .arg(&file)
                .arg("--console-fd")
                .arg("3")
                .stdin(std::process::Stdio::null());
            if let Some(s) = attach.size {
                c.arg("--size").arg(format!("{}x{}", s.width, s.height));
            }
            console = Some((ours, theirs));
            process_file = Some(file);
        } else {
            c.arg("--").args(cmd).stdin(if attach.stdin {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            });
        }
        let spawned = c.spawn();
        // The child has its copy of the terminal's socket now.
        let console = console.map(|(ours, _)| ours);
        let mut child = spawned.map_err(|e| {
            if let Some(f) = &process_file {
                let _ = fs::remove_file(f);
            }
            fail(e.to_string())
        })?;
        let (out, stdout) = tokio::sync::mpsc::channel(exec_session::CHUNKS);
        let (err_tx, stderr) = tokio::sync::mpsc::channel(exec_session::CHUNKS);
        let (stdin, resize, stderr) = match console {
            Some(sock) => {
                let master = tokio::task::spawn_blocking(move || {
                    sock.set_read_timeout(Some(Duration::from_secs(15)))?;
                    shim::console::recv_fd(&sock)
                })
                .await
                .map_err(|e| fail(e.to_string()))?;
                if let Some(f) = &process_file {
                    let _ = fs::remove_file(f);
                }
                let master = match master {
                    Ok(Some(m)) => m,
                    other => {
                        // shim-exec said why on stderr before it exited.
                        let why = match other {
                            Err(e) => format!("no terminal from the container: {e}"),
                            _ => String::new(),
                        };
                        let _ = child.start_kill();
                        let out = child.wait_with_output().await;
                        let said = out
                            .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
                            .unwrap_or_default();
                        return Err(fail(format!("{said} {why}").trim().to_string()));
                    }
                };
                if let Some(s) = attach.size {
                    let _ = exec_session::set_size(&master, s);
                }
                // What shim-exec itself says (errors) shows on the terminal.
                if let Some(e) = child.stderr.take() {
                    exec_session::read_async(e, out.clone());
                }
                let (stdin, resize) = exec_session::on_terminal(master, attach.stdin, out)
                    .map_err(|e| fail(format!("the terminal: {e}")))?;
                (stdin, Some(resize), None)
            }
            None => {
                if let Some(o) = child.stdout.take() {
                    exec_session::read_async(o, out);
                }
                if let Some(e) = child.stderr.take() {
                    exec_session::read_async(e, err_tx);
                }
                let stdin = child.stdin.take().map(exec_session::write_async);
                (stdin, None, Some(stderr))
            }
        };
        let (done, exit) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let r = child
                .wait()
                .await
                .map(|s| {
                    use std::os::unix::process::ExitStatusExt;
                    s.code().or(s.signal().map(|n| 128 + n)).unwrap_or(128)
                })
                .map_err(|e| format!("waiting for the exec: {e}"));
            let _ = done.send(r);
        });
        Ok(ExecSession {
            stdin,
            stdout,
            stderr,
            resize,
            exit,
        })
    }

    async fn remove_pod(&self, pod: &PodRef) -> Result<(), RuntimeError> {
        let dir = PodRuntime::pod_dir(self, pod);
        let shim = self.shim(pod);
        if shim.alive().await {
            for c in shim.state().await? {
                if c.exit.is_none() {
                    return Err(RuntimeError::StillRunning {
                        pod: pod.key(),
                        id: c.id,
                    });
                }
                let _ = shim.delete(&c.id).await;
            }
            let _ = shim.shutdown().await;
        }
        if let Ok(rd) = fs::read_dir(dir.join("containers")) {
            for e in rd.flatten() {
                let _ = rootfs::remove_bundle(&e.path());
            }
        }
        // Anything still mounted below the pod (Memory emptyDirs).
        rootfs::unmount_below(&dir);
        // The pod cgroup parent libcontainer left behind.
        remove_pod_cgroups(&self.cfg.node.cgroup_parent, &pod.uid);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(RuntimeError::io("removing", &dir, e))
            }
            _ => Ok(()),
        }
    }

    async fn gc_images(
        &self,
        wanted: &std::collections::BTreeSet<String>,
    ) -> Result<usize, RuntimeError> {
        let mut in_use: std::collections::BTreeSet<String> = wanted
            .iter()
            .filter_map(|i| super::images::reference::normalise(i).ok())
            .collect();
        // Whatever a container still stands on, mounted or not, stays.
        for p in self.pods().await? {
            let shim = self.shim(&p);
            if !shim.alive().await {
                continue;
            }
            for o in self.list(&p).await? {
                in_use.insert(o.image_id);
            }
        }
        let gone = self.images.gc(&in_use).await?;
        if !gone.images.is_empty() {
            tracing::info!(images = ?gone.images, blobs = gone.blobs, layers = gone.layers, "image GC");
        }
        Ok(gone.images.len())
    }

    async fn pods(&self) -> Result<Vec<PodRef>, RuntimeError> {
        let mut out = Vec::new();
        let pods = self.cfg.root.join("pods");
        let rd = fs::read_dir(&pods).map_err(io("reading", &pods))?;
        for e in rd.flatten() {
            if let Ok(b) = fs::read(e.path().join("pod.json"))
                && let Ok(p) = serde_json::from_slice::<PodRef>(&b)
            {
                out.push(p);
            }
        }
        Ok(out)
    }

    async fn wait(
        &self,
        pod: &PodRef,
        seen: Option<u64>,
        timeout: Duration,
    ) -> Result<Option<u64>, RuntimeError> {
        Ok(self.shim(pod).wait(seen, timeout).await?)
    }
}

/// Removes `<parent>/<pod uid>` under every cgroup hierarchy (deepest
/// first; fails quietly while something still lives there).
pub fn remove_pod_cgroups(parent: &str, uid: &str) {
    let rel = Path::new(parent.trim_matches('/')).join(uid);
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        roots.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for r in roots {
        let d = r.join(&rel);
        if d.is_dir() {
            if let Ok(rd) = fs::read_dir(&d) {
                for c in rd.flatten() {
                    if c.path().is_dir() {
                        let _ = fs::remove_dir(c.path());
                    }
                }
            }
            let _ = fs::remove_dir(&d);
        }
    }
}
