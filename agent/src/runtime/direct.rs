//! keel's own [`PodRuntime`]: images from the [`ImageStore`], bundles
//! prepared here (overlay rootfs + `config.json`), containers run by the
//! pod's shim with libcontainer.
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

use keel_api::{Pod, pod::PullPolicy};
use serde::{Deserialize, Serialize};

use super::{
    backend::{ExecOutput, Observed, PodRef, PodRuntime, RuntimeError},
    container::{
        BindMount, NodeRuntimeConfig,
        resolve::{Kind, resolve},
        rootfs, spec, user,
    },
    images::{ImageInfo, ImageStore, PullOptions},
    shim::{ShimClient, server::state_root},
};

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
        fs::create_dir_all(cfg.root.join("pods"))
            .map_err(|e| RuntimeError::Other(format!("creating {}: {e}", cfg.root.display())))?;
        Ok(Self { cfg, images })
    }

    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    pub fn pod_dir(&self, pod: &PodRef) -> PathBuf {
        self.cfg.root.join("pods").join(&pod.uid)
    }

    fn shim(&self, pod: &PodRef) -> ShimClient {
        ShimClient::new(&self.pod_dir(pod))
    }

    /// Where a container attempt's log goes.
    pub fn log_path(&self, pod: &PodRef, name: &str, attempt: u32) -> PathBuf {
        self.pod_dir(pod)
            .join("logs")
            .join(name)
            .join(format!("{attempt}.log"))
    }

    /// The libcontainer state root of a pod (for `shim-exec`).
    pub fn state_root(&self, pod: &PodRef) -> PathBuf {
        state_root(&self.pod_dir(pod))
    }
}

/// A container's bundle directory with its rootfs mounted, and the OCI spec
/// to run it with (not yet written anywhere).
pub(crate) struct Prepared {
    pub req: super::container::ContainerRequest,
    pub bundle: PathBuf,
    pub config: serde_json::Value,
}

/// What both runtimes do before a container runs: resolve the pod's
/// container against its image, write the pod's shared files, mount the
/// rootfs at `<pod dir>/containers/<id>/rootfs`, look up a named user in it
/// and build the spec with `root_path` as `root.path` (empty: the rootfs's
/// absolute path). A failed user lookup removes the bundle again.
#[expect(
    clippy::too_many_arguments,
    reason = "one call per runtime, all of them needed"
)]
pub(crate) async fn prepare_bundle(
    node: &NodeRuntimeConfig,
    dir: &Path,
    pod: &PodRef,
    spec_pod: &Pod,
    kind: Kind,
    index: usize,
    attempt: u32,
    image: &ImageInfo,
    root_path: &str,
) -> Result<Prepared, RuntimeError> {
    let mut req = resolve(
        spec_pod,
        kind,
        index,
        &image.config,
        node,
        dir,
        pod.netns.as_deref(),
        attempt,
    )?;
    req.mounts.splice(
        0..0,
        write_pod_files(dir, &req.hostname).map_err(|e| other("pod files", e))?,
    );
    let bundle = dir.join("containers").join(&req.id);
    let b = bundle.clone();
    let layers = image.layers.clone();
    let rootfs = tokio::task::spawn_blocking(move || rootfs::mount_rootfs(&b, &layers))
        .await
        .map_err(|e| other("rootfs task", e))?
        .map_err(|e| other(&format!("mounting rootfs of {}", req.id), e))?;
    if let Some(u) = req.user_name.take() {
        let eu = user::lookup(&rootfs, &u).map_err(|m| {
            let _ = rootfs::remove_bundle(&bundle);
            RuntimeError::Config(super::container::ConfigError::new("image config User", m))
        })?;
        req.uid = eu.uid;
        req.gid = eu.gid;
        req.additional_gids = eu.additional_gids;
    }
    // A capability outside this process's bounding set cannot be given
    // (here, e.g., CAP_SYS_RESOURCE): privileged gets what there is.
    let bounding = bounding_caps();
    if req.privileged && !bounding.is_empty() {
        req.capabilities.retain(|c| bounding.contains(c));
    }
    let root_path = if root_path.is_empty() {
        rootfs.display().to_string()
    } else {
        root_path.to_string()
    };
    let config = spec::build(&req, &root_path);
    Ok(Prepared {
        req,
        bundle,
        config,
    })
}

/// Writes the files a pod's containers share (hosts, hostname) under
/// `<pod dir>/etc` and returns their bind mounts (plus resolv.conf when the
/// sandbox wrote one).
pub(crate) fn write_pod_files(dir: &Path, hostname: &str) -> std::io::Result<Vec<BindMount>> {
    let etc = dir.join("etc");
    fs::create_dir_all(&etc)?;
    let hosts = etc.join("hosts");
    if !hosts.exists() {
        fs::write(
            &hosts,
            format!(
                "# Kubernetes-managed hosts file (keel).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
            ),
        )?;
    }
    let hn = etc.join("hostname");
    if !hn.exists() {
        fs::write(&hn, format!("{hostname}\n"))?;
    }
    let mut m = vec![
        BindMount {
            source: hosts,
            destination: "/etc/hosts".into(),
            read_only: false,
        },
        BindMount {
            source: hn,
            destination: "/etc/hostname".into(),
            read_only: false,
        },
    ];
    let resolv = etc.join("resolv.conf");
    if resolv.exists() {
        m.push(BindMount {
            source: resolv,
            destination: "/etc/resolv.conf".into(),
            read_only: false,
        });
    }
    Ok(m)
}

fn other(what: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Other(format!("{what}: {e}"))
}

impl PodRuntime for DirectRuntime {
    async fn start_pod(&self, pod: &PodRef) -> Result<(), RuntimeError> {
        let dir = self.pod_dir(pod);
        fs::create_dir_all(&dir).map_err(|e| other("pod dir", e))?;
        let pj = dir.join("pod.json");
        if !pj.exists() {
            fs::write(&pj, serde_json::to_vec_pretty(pod).expect("serialise"))
                .map_err(|e| other("pod.json", e))?;
        }
        ShimClient::spawn(&dir, &self.cfg.exe)
            .await
            .map_err(|e| other("starting shim", e))?;
        Ok(())
    }

    async fn ensure_image(
        &self,
        image: &str,
        policy: PullPolicy,
    ) -> Result<ImageInfo, RuntimeError> {
        Ok(self.images.ensure(image, policy, &self.cfg.pull).await?)
    }

    async fn start_container(
        &self,
        pod: &PodRef,
        spec_pod: &Pod,
        kind: Kind,
        index: usize,
        attempt: u32,
        image: &ImageInfo,
    ) -> Result<Observed, RuntimeError> {
        let dir = self.pod_dir(pod);
        let Prepared {
            req,
            bundle,
            config,
        } = prepare_bundle(
            &self.cfg.node,
            &dir,
            pod,
            spec_pod,
            kind,
            index,
            attempt,
            image,
            "rootfs",
        )
        .await?;
        let cleanup = |e: RuntimeError| {
            let _ = rootfs::remove_bundle(&bundle);
            e
        };
        fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&config).expect("serialise"),
        )
        .map_err(|e| cleanup(other("config.json", e)))?;
        let meta = Meta {
            name: req.name.clone(),
            init: kind == Kind::Init,
            attempt,
            image_id: image.manifest_digest.clone(),
        };
        fs::write(
            bundle.join("meta.json"),
            serde_json::to_vec(&meta).expect("serialise"),
        )
        .map_err(|e| cleanup(other("meta.json", e)))?;
        let log = self.log_path(pod, &req.name, attempt);
        let pid = self
            .shim(pod)
            .run(&req.id, &bundle, &log, &req.cgroup_path)
            .await
            .map_err(|e| cleanup(RuntimeError::Create(e.to_string())))?;
        Ok(Observed {
            id: req.id,
            name: meta.name,
            kind_init: meta.init,
            attempt,
            image_id: meta.image_id,
            pid,
            started_at_ms: super::shim::proto::now_ms(),
            exit: None,
            log,
        })
    }

    async fn list(&self, pod: &PodRef) -> Result<Vec<Observed>, RuntimeError> {
        let shim = self.shim(pod);
        let infos = shim.state().await.map_err(|e| other("shim state", e))?;
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
        self.shim(pod)
            .kill(id, signal)
            .await
            .map_err(|e| other("signal", e))
    }

    async fn remove_container(&self, pod: &PodRef, id: &str) -> Result<(), RuntimeError> {
        self.shim(pod)
            .delete(id)
            .await
            .map_err(|e| other("delete", e))?;
        let bundle = self.pod_dir(pod).join("containers").join(id);
        tokio::task::spawn_blocking(move || rootfs::remove_bundle(&bundle))
            .await
            .map_err(|e| other("remove task", e))?
            .map_err(|e| other("removing bundle", e))
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
            .map_err(|_| other("exec", format!("timed out after {timeout:?}")))?
            .map_err(|e| other("exec", e))?;
        Ok(ExecOutput {
            exit_code: out.status.code().unwrap_or(128),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    async fn remove_pod(&self, pod: &PodRef) -> Result<(), RuntimeError> {
        let dir = self.pod_dir(pod);
        let shim = self.shim(pod);
        if shim.alive().await {
            for c in shim.state().await.map_err(|e| other("shim state", e))? {
                if c.exit.is_none() {
                    return Err(other(
                        "remove pod",
                        format!("container {} still runs", c.id),
                    ));
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
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(other("pod dir", e)),
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
        let rd = fs::read_dir(self.cfg.root.join("pods")).map_err(|e| other("pods", e))?;
        for e in rd.flatten() {
            if let Ok(b) = fs::read(e.path().join("pod.json"))
                && let Ok(p) = serde_json::from_slice::<PodRef>(&b)
            {
                out.push(p);
            }
        }
        Ok(out)
    }
}

/// The capabilities in this process's bounding set, by name.
pub fn bounding_caps() -> Vec<String> {
    let Some(mask) = fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
    }) else {
        return Vec::new();
    };
    super::container::resolve::ALL_CAPS
        .iter()
        .filter(|name| cap_number(name).is_some_and(|n| mask & (1 << n) != 0))
        .map(|s| s.to_string())
        .collect()
}

/// Linux capability numbers: the position in [`ALL_CAPS`], which is in the
/// kernel's order (include/uapi/linux/capability.h).
fn cap_number(name: &str) -> Option<u32> {
    super::container::resolve::ALL_CAPS
        .iter()
        .position(|c| *c == name)
        .map(|i| i as u32)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_numbers_follow_the_kernel() {
        assert_eq!(cap_number("CAP_CHOWN"), Some(0));
        assert_eq!(cap_number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(cap_number("CAP_SYS_RESOURCE"), Some(24));
        assert_eq!(cap_number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(cap_number("CAP_NOPE"), None);
        let b = bounding_caps();
        assert!(
            b.iter()
                .all(|c| super::super::container::resolve::ALL_CAPS.contains(&c.as_str()))
        );
        if nix::unistd::geteuid().is_root() {
            assert!(b.contains(&"CAP_CHOWN".to_string()), "{b:?}");
        }
    }
}
