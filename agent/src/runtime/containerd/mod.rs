//! The containerd backend of [`PodRuntime`]: keel keeps its own image store
//! and builds bundles exactly as the direct runtime does (overlay rootfs +
//! OCI spec from [`super::bundle`]); containerd (`io.containerd.runc.v2`)
//! runs them. The spec is handed over with an absolute `root.path` and the
//! task is created without rootfs mounts, so containerd's snapshotters and
//! content store are not involved.
//!
//! ```text
//! <root>/images/...                      the image store (shared design with direct)
//! <root>/pods/<uid>/pod.json             which pod this is
//! <root>/pods/<uid>/containers/<id>/     rootfs, upper, work, config.json, meta.json, exec/
//! <root>/pods/<uid>/volumes/<name>/      emptyDirs
//! <root>/pods/<uid>/etc/hosts|hostname   files the pod's containers share
//! <root>/pods/<uid>/logs/<name>/<attempt>.log   written by `keel-agent containerd-log`
//! ```
//!
//! Containers carry `keel.*` labels (pod, container name, attempt, image,
//! log), which is how a new agent re-adopts them. Logs are written by
//! keel-agent re-executed as containerd's logging binary
//! ([`logger`]), a child of the task's shim. How a container ended comes
//! from its task (exit status, time) plus the OOM counter of its memory
//! cgroup, read once when the task is first seen stopped and kept in the
//! bundle's `meta.json`.
//!
//! Exits reach the pods' workers as they happen, from one subscription to
//! containerd's `/tasks/exit` events ([`events`]).
//!
//! Limits: one runc shim per container (no shim grouping per pod); a
//! gRPC connection per call (a tonic channel is tied to the tokio runtime
//! that made it); containerd 1.6's shims always put their sockets in
//! `/run/containerd/s` (named by a hash of daemon address, namespace and
//! ID), whatever the daemon's own state directory.

pub mod events;
pub mod exec;
pub mod logger;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use containerd_client::{
    services::v1::{
        Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest,
        DeleteTaskRequest, KillRequest, ListContainersRequest, ListTasksRequest, StartRequest,
        container::Runtime, containers_client::ContainersClient, tasks_client::TasksClient,
    },
    tonic::{self, Code, transport::Channel},
    types::v1::{Process, Status},
};
use keel_api::pod::PullPolicy;
use serde::{Deserialize, Serialize};

use super::{
    backend::{ExecOutput, Observed, PodRef, PodRuntime, RuntimeError},
    bundle::{self, Prepared},
    container::{ContainerRequest, NodeRuntimeConfig, rootfs},
    direct::remove_pod_cgroups,
    images::{ImageInfo, ImageStore, PullOptions},
    shim::{Exit, proto::now_ms, server::oom_killed},
};

/// The OCI runtime spec as containerd's typeurl registry names it.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/// An OCI process spec (for exec).
pub const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
/// containerd's shim for runc.
pub const RUNC_V2: &str = "io.containerd.runc.v2";
/// How long connecting to containerd may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// containerd's deadline for one call (a task create under load can take a
/// while; nothing should take this long).
const CALL_DEADLINE: Duration = Duration::from_secs(120);

/// Label keys on keel's containers.
pub mod label {
    pub const POD_UID: &str = "keel.pod.uid";
    pub const POD_NAMESPACE: &str = "keel.pod.namespace";
    pub const POD_NAME: &str = "keel.pod.name";
    pub const POD_NETNS: &str = "keel.pod.netns";
    pub const NAME: &str = "keel.container.name";
    pub const INIT: &str = "keel.container.init";
    pub const ATTEMPT: &str = "keel.container.attempt";
    pub const IMAGE_ID: &str = "keel.image.id";
    pub const LOG: &str = "keel.log";
    pub const CGROUP: &str = "keel.cgroup";
    /// keel's bundle directory (rootfs, meta.json).
    pub const BUNDLE: &str = "keel.bundle";
}

/// Settings of the containerd runtime.
#[derive(Debug, Clone)]
pub struct ContainerdConfig {
    /// keel's side: images, pod bundles, logs.
    pub root: PathBuf,
    /// The binary the shims start as logging driver (the agent itself).
    pub exe: PathBuf,
    /// containerd's gRPC socket.
    pub socket: PathBuf,
    /// containerd namespace of this agent's containers.
    pub namespace: String,
    /// runc's state root for the shims (`<root>/<namespace>/<id>`);
    /// runc's default, `/run/containerd/runc`, when unset.
    pub runc_root: Option<PathBuf>,
    pub node: NodeRuntimeConfig,
    pub pull: PullOptions,
}

#[derive(Clone)]
pub struct ContainerdRuntime {
    cfg: ContainerdConfig,
    images: ImageStore,
    exits: events::Exits,
}

/// What keel remembers of a container besides containerd's labels.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    started_at_ms: u64,
    /// The exit as first seen (with the OOM verdict, which the cgroup no
    /// longer tells once the task is deleted).
    exit: Option<Exit>,
}

/// `containerd.runc.v1.Options` (containerd's
/// `runtime/v2/runc/options/oci.proto`), which containerd-client does not
/// generate: the runc shim's settings for a container.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RuncOptions {
    #[prost(bool, tag = "1")]
    pub no_pivot_root: bool,
    #[prost(bool, tag = "2")]
    pub no_new_keyring: bool,
    #[prost(string, tag = "3")]
    pub shim_cgroup: String,
    #[prost(uint32, tag = "4")]
    pub io_uid: u32,
    #[prost(uint32, tag = "5")]
    pub io_gid: u32,
    #[prost(string, tag = "6")]
    pub binary_name: String,
    #[prost(string, tag = "7")]
    pub root: String,
    #[prost(bool, tag = "9")]
    pub systemd_cgroup: bool,
}

impl RuncOptions {
    /// As containerd's typeurl registry names it.
    pub fn to_any(&self) -> prost_types::Any {
        prost_types::Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: prost::Message::encode_to_vec(self),
        }
    }
}

/// A failed containerd call; `on` names what it was about ("" for nothing).
fn grpc(call: &'static str, on: &str, s: tonic::Status) -> RuntimeError {
    RuntimeError::Containerd {
        call,
        message: if on.is_empty() {
            s.message().to_string()
        } else {
            format!("{on}: {}", s.message())
        },
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RuntimeError + 'a {
    move |e| RuntimeError::io(what, path, e)
}

fn is_not_found(s: &tonic::Status) -> bool {
    s.code() == Code::NotFound
}

/// containerd IDs are at most 76 characters of `[A-Za-z0-9_.-]`; keel's
/// `<pod uid>-<name>-<attempt>` can be longer (a 36-character UID and a
/// 63-character name), and then the ID is its SHA-256. Pure.
pub fn containerd_id(id: &str) -> String {
    let valid = !id.is_empty()
        && id.len() <= 76
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if valid {
        id.to_string()
    } else {
        super::images::store::sha256_bytes(id.as_bytes())
            .trim_start_matches("sha256:")
            .to_string()
    }
}

/// Unix milliseconds of a protobuf timestamp; `None` for the zero time.
fn ms(t: Option<&prost_types::Timestamp>) -> Option<u64> {
    let t = t?;
    (t.seconds > 0).then(|| t.seconds as u64 * 1000 + t.nanos.max(0) as u64 / 1_000_000)
}

impl ContainerdRuntime {
    pub fn new(cfg: ContainerdConfig) -> Result<Self, RuntimeError> {
        let images = ImageStore::open(cfg.root.join("images"))?;
        // The runtime root and everything of the pods' is root's alone: a
        // Memory emptyDir's 0777 tmpfs and the rootfs upper dirs are
        // reachable only through the container.
        crate::private::private_dir(&cfg.root).map_err(io("creating", &cfg.root))?;
        let pods = cfg.root.join("pods");
        crate::private::private_dir(&pods).map_err(io("creating", &pods))?;
        Ok(Self {
            cfg,
            images,
            exits: Default::default(),
        })
    }

    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    pub fn namespace(&self) -> &str {
        &self.cfg.namespace
    }

    /// Where a container attempt's log goes.
    pub fn log_path(&self, pod: &PodRef, name: &str, attempt: u32) -> PathBuf {
        PodRuntime::pod_dir(self, pod)
            .join("logs")
            .join(name)
            .join(format!("{attempt}.log"))
    }

    /// A connection per call: a tonic channel lives on the tokio runtime
    /// that made it, and callers (tests, the API server) come from several.
    /// Bounded, so a wedged containerd fails calls instead of hanging them.
    async fn channel(&self) -> Result<Channel, RuntimeError> {
        let fail = |message: String| RuntimeError::Containerd {
            call: "connect",
            message: format!("{}: {message}", self.cfg.socket.display()),
        };
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            containerd_client::connect(&self.cfg.socket),
        )
        .await
        .map_err(|_| fail(format!("no answer in {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| fail(e.to_string()))
    }

    /// A request in this runtime's containerd namespace, with containerd's
    /// deadline of [`CALL_DEADLINE`] (the `grpc-timeout` header).
    fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = self.req_unbounded(msg);
        r.set_timeout(CALL_DEADLINE);
        r
    }

    /// A request without a deadline, for waits the caller bounds itself.
    fn req_unbounded<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Ok(v) = self.cfg.namespace.parse() {
            r.metadata_mut().insert("containerd-namespace", v);
        }
        r
    }

    /// keel's containers in the namespace, optionally of one pod.
    async fn containers(
        &self,
        ch: &Channel,
        uid: Option<&str>,
    ) -> Result<Vec<Container>, RuntimeError> {
        let list = ContainersClient::new(ch.clone())
            .list(self.req(ListContainersRequest { filters: vec![] }))
            .await
            .map_err(|s| grpc("list containers", "", s))?
            .into_inner();
        Ok(list
            .containers
            .into_iter()
            .filter(|c| match (uid, c.labels.get(label::POD_UID)) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(u), Some(l)) => l == u,
            })
            .collect())
    }

    async fn tasks(&self, ch: &Channel) -> Result<BTreeMap<String, Process>, RuntimeError> {
        let list = TasksClient::new(ch.clone())
            .list(self.req(ListTasksRequest {
                filter: String::new(),
            }))
            .await
            .map_err(|s| grpc("list tasks", "", s))?
            .into_inner();
        Ok(list
            .tasks
            .into_iter()
            // containerd 1.6 names an init process by `id` (the
            // container's) and leaves `container_id` empty.
            .map(|t| {
                let key = if t.container_id.is_empty() {
                    t.id.clone()
                } else {
                    t.container_id.clone()
                };
                (key, t)
            })
            .collect())
    }

    fn read_meta(bundle: &Path) -> Meta {
        fs::read(bundle.join("meta.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write_meta(dir: &Path, meta: &Meta) {
        if dir.is_dir() {
            let _ = fs::write(
                dir.join("meta.json"),
                serde_json::to_vec(meta).expect("serialise"),
            );
        }
    }

    /// One container as the pod worker sees it.
    fn observe(&self, c: &Container, task: Option<&Process>) -> Option<Observed> {
        let l = &c.labels;
        let bundle = PathBuf::from(l.get(label::BUNDLE)?);
        let mut meta = Self::read_meta(&bundle);
        let running = task.filter(|t| t.status != Status::Stopped as i32);
        let exit = match task {
            _ if running.is_some() => None,
            Some(_) if meta.exit.is_some() => meta.exit,
            // First sight of the end: decide OOM while the cgroup is there,
            // and keep it.
            Some(t) => {
                let code = t.exit_status as i32;
                meta.exit = Some(Exit {
                    code,
                    signal: (129..160).contains(&code).then_some(code - 128),
                    oom_killed: l.get(label::CGROUP).is_some_and(|cg| oom_killed(cg)),
                    finished_at_ms: ms(t.exited_at.as_ref()).unwrap_or_else(now_ms),
                });
                Self::write_meta(&bundle, &meta);
                meta.exit
            }
            // No task after one started: its shim died (or the node
            // rebooted). Remembered, so the time stays put.
            None if meta.started_at_ms > 0 => {
                if meta.exit.is_none() {
                    meta.exit = Some(Exit {
                        code: 255,
                        signal: None,
                        oom_killed: false,
                        finished_at_ms: now_ms(),
                    });
                    Self::write_meta(&bundle, &meta);
                }
                meta.exit
            }
            // Never started (being created now, or an agent died midway):
            // not remembered, so a task that does start reports its own end.
            None => Some(Exit {
                code: 255,
                signal: None,
                oom_killed: false,
                finished_at_ms: ms(c.created_at.as_ref()).unwrap_or(0),
            }),
        };
        Some(Observed {
            id: c.id.clone(),
            name: l.get(label::NAME)?.clone(),
            kind_init: l.get(label::INIT).is_some_and(|v| v == "true"),
            attempt: l.get(label::ATTEMPT)?.parse().ok()?,
            image_id: l.get(label::IMAGE_ID).cloned().unwrap_or_default(),
            pid: task.map(|t| t.pid as i32).unwrap_or(0),
            started_at_ms: meta.started_at_ms,
            exit,
            log: l.get(label::LOG).map(PathBuf::from).unwrap_or_default(),
        })
    }

    /// Deletes a container's task (when it has one) and the container.
    async fn delete(&self, ch: &Channel, id: &str) -> Result<(), RuntimeError> {
        match TasksClient::new(ch.clone())
            .delete(self.req(DeleteTaskRequest {
                container_id: id.to_string(),
            }))
            .await
        {
            Err(s) if !is_not_found(&s) => return Err(grpc("delete task", id, s)),
            _ => {}
        }
        match ContainersClient::new(ch.clone())
            .delete(self.req(DeleteContainerRequest { id: id.to_string() }))
            .await
        {
            Err(s) if !is_not_found(&s) => Err(grpc("delete container", id, s)),
            _ => Ok(()),
        }
    }

    /// Creates and starts the task of a created container; its pid.
    async fn run_task(&self, ch: &Channel, id: &str, log: &Path) -> Result<u32, tonic::Status> {
        let io = logger::stdio_uri(&self.cfg.exe, log);
        let mut tasks = TasksClient::new(ch.clone());
        tasks
            .create(self.req(CreateTaskRequest {
                container_id: id.to_string(),
                stdout: io.clone(),
                stderr: io,
                ..Default::default()
            }))
            .await?;
        let pid = tasks
            .start(self.req(StartRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
            }))
            .await?
            .into_inner()
            .pid;
        Ok(pid)
    }
}

impl PodRuntime for ContainerdRuntime {
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
        // Fail early (and visibly) when containerd is not there.
        self.channel().await.map(|_| ())
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
        let ch = self.channel().await?;
        let dir = PodRuntime::pod_dir(self, pod);
        // An empty root path: the absolute path of the mounted rootfs, so
        // runc finds it from containerd's own bundle directory.
        let Prepared {
            req,
            bundle,
            config,
        } = bundle::prepare(&dir, req, image, "").await?;
        let attempt = req.attempt;
        let id = containerd_id(&req.id);
        let log = self.log_path(pod, &req.name, attempt);
        let cleanup = |e: RuntimeError| {
            let _ = rootfs::remove_bundle(&bundle);
            e
        };
        let spec = serde_json::to_vec_pretty(&config).expect("serialise");
        let config_json = bundle.join("config.json");
        fs::write(&config_json, &spec)
            .map_err(|e| cleanup(RuntimeError::io("writing", &config_json, e)))?;
        // A leftover of a failed earlier try with the same ID. Should it
        // still run, the bundle is its own: leave it mounted.
        self.delete(&ch, &id).await?;
        let labels: std::collections::HashMap<String, String> = [
            (label::POD_UID, pod.uid.clone()),
            (label::POD_NAMESPACE, pod.namespace.clone()),
            (label::POD_NAME, pod.name.clone()),
            (
                label::POD_NETNS,
                pod.netns
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            (label::NAME, req.name.clone()),
            (label::INIT, req.init.to_string()),
            (label::ATTEMPT, attempt.to_string()),
            (label::IMAGE_ID, image.manifest_digest.clone()),
            (label::LOG, log.display().to_string()),
            (label::CGROUP, req.cgroup_path.clone()),
            (label::BUNDLE, bundle.display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        ContainersClient::new(ch.clone())
            .create(self.req(CreateContainerRequest {
                container: Some(Container {
                    id: id.clone(),
                    labels,
                    image: req.image.clone(),
                    runtime: Some(Runtime {
                        name: RUNC_V2.into(),
                        options: self.cfg.runc_root.as_ref().map(|r| {
                            RuncOptions {
                                root: r.display().to_string(),
                                ..Default::default()
                            }
                            .to_any()
                        }),
                    }),
                    spec: Some(prost_types::Any {
                        type_url: SPEC_TYPE_URL.into(),
                        value: spec,
                    }),
                    ..Default::default()
                }),
            }))
            .await
            .map_err(|s| {
                cleanup(RuntimeError::Create {
                    id: id.clone(),
                    message: format!("containerd: {}", s.message()),
                })
            })?;
        self.exits.expect(&id, &pod.uid);
        let started_at_ms = now_ms();
        let pid = match self.run_task(&ch, &id, &log).await {
            Ok(pid) => pid,
            Err(s) => {
                let _ = self.delete(&ch, &id).await;
                return Err(cleanup(RuntimeError::Create {
                    id,
                    message: s.message().to_string(),
                }));
            }
        };
        // Only now: a container without a start time never ran.
        Self::write_meta(
            &bundle,
            &Meta {
                started_at_ms,
                exit: None,
            },
        );
        Ok(Observed {
            id,
            name: req.name,
            kind_init: req.init,
            attempt,
            image_id: image.manifest_digest.clone(),
            pid: pid as i32,
            started_at_ms,
            exit: None,
            log,
        })
    }

    async fn list(&self, pod: &PodRef) -> Result<Vec<Observed>, RuntimeError> {
        let ch = self.channel().await?;
        let containers = self.containers(&ch, Some(&pod.uid)).await?;
        if containers.is_empty() {
            return Ok(Vec::new());
        }
        for c in &containers {
            self.exits.expect(&c.id, &pod.uid);
        }
        let tasks = self.tasks(&ch).await?;
        Ok(containers
            .iter()
            .filter_map(|c| self.observe(c, tasks.get(&c.id)))
            .collect())
    }

    async fn signal(&self, _pod: &PodRef, id: &str, signal: i32) -> Result<(), RuntimeError> {
        let ch = self.channel().await?;
        match TasksClient::new(ch)
            .kill(self.req(KillRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
                signal: signal as u32,
                all: false,
            }))
            .await
        {
            // Gone or already stopped: nothing to signal.
            Err(s) if !is_not_found(&s) && s.code() != Code::FailedPrecondition => {
                Err(grpc("kill", id, s))
            }
            _ => Ok(()),
        }
    }

    async fn remove_container(&self, pod: &PodRef, id: &str) -> Result<(), RuntimeError> {
        let ch = self.channel().await?;
        let bundle = self
            .containers(&ch, Some(&pod.uid))
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .and_then(|c| c.labels.get(label::BUNDLE).map(PathBuf::from))
            // Only ever below our own root, whatever a label says.
            .filter(|b| b.starts_with(self.cfg.root.join("pods")));
        self.delete(&ch, id).await?;
        let Some(bundle) = bundle else {
            return Ok(());
        };
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
        let ch = self.channel().await?;
        exec::run(self, &ch, pod, id, cmd, timeout).await
    }

    async fn exec_stream(
        &self,
        pod: &PodRef,
        id: &str,
        cmd: &[String],
        attach: crate::runtime::exec_session::ExecAttach,
    ) -> Result<crate::runtime::exec_session::ExecSession, RuntimeError> {
        let ch = self.channel().await?;
        exec::stream(self, &ch, pod, id, cmd, attach).await
    }

    async fn remove_pod(&self, pod: &PodRef) -> Result<(), RuntimeError> {
        let dir = PodRuntime::pod_dir(self, pod);
        let ch = self.channel().await?;
        let containers = self.containers(&ch, Some(&pod.uid)).await?;
        if !containers.is_empty() {
            let tasks = self.tasks(&ch).await?;
            for c in &containers {
                if tasks
                    .get(&c.id)
                    .is_some_and(|t| t.status != Status::Stopped as i32)
                {
                    return Err(RuntimeError::StillRunning {
                        pod: pod.key(),
                        id: c.id.clone(),
                    });
                }
            }
            for c in &containers {
                self.delete(&ch, &c.id).await?;
            }
        }
        if let Ok(rd) = fs::read_dir(dir.join("containers")) {
            for e in rd.flatten() {
                let _ = rootfs::remove_bundle(&e.path());
            }
        }
        rootfs::unmount_below(&dir);
        remove_pod_cgroups(&self.cfg.node.cgroup_parent, &pod.uid);
        self.exits.forget(&pod.uid);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(RuntimeError::io("removing", &dir, e))
            }
            _ => Ok(()),
        }
    }

    async fn pods(&self) -> Result<Vec<PodRef>, RuntimeError> {
        let mut out: BTreeMap<String, PodRef> = BTreeMap::new();
        // Pods with containers, from containerd's labels.
        let ch = self.channel().await?;
        for c in self.containers(&ch, None).await? {
            let l = &c.labels;
            let (Some(uid), Some(ns), Some(name)) = (
                l.get(label::POD_UID),
                l.get(label::POD_NAMESPACE),
                l.get(label::POD_NAME),
            ) else {
                continue;
            };
            out.entry(uid.clone()).or_insert_with(|| PodRef {
                uid: uid.clone(),
                namespace: ns.clone(),
                name: name.clone(),
                netns: l
                    .get(label::POD_NETNS)
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from),
            });
        }
        // Pods started but without containers yet, from their directories.
        if let Ok(rd) = fs::read_dir(self.cfg.root.join("pods")) {
            for e in rd.flatten() {
                if let Ok(b) = fs::read(e.path().join("pod.json"))
                    && let Ok(p) = serde_json::from_slice::<PodRef>(&b)
                {
                    out.entry(p.uid.clone()).or_insert(p);
                }
            }
        }
        Ok(out.into_values().collect())
    }

    async fn wait(
        &self,
        pod: &PodRef,
        seen: Option<u64>,
        timeout: Duration,
    ) -> Result<Option<u64>, RuntimeError> {
        let (socket, namespace) = (self.cfg.socket.clone(), self.cfg.namespace.clone());
        self.exits.start_once(move || {
            let (socket, namespace) = (socket.clone(), namespace.clone());
            async move {
                let ch = containerd_client::connect(&socket)
                    .await
                    .map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
                events::subscribe(ch, &namespace).await
            }
        });
        Ok(self.exits.wait(&pod.uid, seen, timeout).await)
    }

    async fn gc_images(&self, wanted: &BTreeSet<String>) -> Result<usize, RuntimeError> {
        let mut in_use: BTreeSet<String> = wanted
            .iter()
            .filter_map(|i| super::images::reference::normalise(i).ok())
            .collect();
        // Whatever a container still stands on, running or not, stays.
        let ch = self.channel().await?;
        for c in self.containers(&ch, None).await? {
            if let Some(i) = c.labels.get(label::IMAGE_ID) {
                in_use.insert(i.clone());
            }
        }
        let gone = self.images.gc(&in_use).await?;
        if !gone.images.is_empty() {
            tracing::info!(images = ?gone.images, blobs = gone.blobs, layers = gone.layers, "image GC");
        }
        Ok(gone.images.len())
    }
}

#[cfg(test)]
mod tests;
