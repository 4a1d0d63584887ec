//! From a resolved container to an OCI bundle, the same for both runtimes:
//! the files the pod's containers share (`/etc/hosts`, `/etc/hostname`,
//! `/etc/resolv.conf` when the pod has one) are written under the pod's
//! directory and bind-mounted; the image's layers are mounted as the
//! container's overlay rootfs at `<pod dir>/containers/<id>/rootfs`; a user
//! the image names is looked up in that rootfs; and the OCI `config.json`
//! is built. What differs between runtimes — who runs the bundle — stays
//! with them.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::{
    backend::RuntimeError,
    container::{BindMount, ConfigError, ContainerRequest, rootfs, spec, user},
    images::ImageInfo,
};

/// A container's bundle directory with its rootfs mounted, and the OCI spec
/// to run it with (not yet written anywhere).
pub struct Prepared {
    pub req: ContainerRequest,
    pub bundle: PathBuf,
    pub config: serde_json::Value,
}

/// Prepares `req`'s bundle under the pod directory `dir`, with `root_path`
/// as the spec's `root.path` (empty: the rootfs's absolute path). A failed
/// user lookup removes the bundle again.
pub async fn prepare(
    dir: &Path,
    mut req: ContainerRequest,
    image: &ImageInfo,
    root_path: &str,
) -> Result<Prepared, RuntimeError> {
    let shared = write_pod_files_with(dir, &req.hostname, &req.hosts, req.resolv_conf.as_deref())
        .map_err(|e| RuntimeError::io("writing the pod's shared files in", dir, e))?;
    req.mounts.splice(0..0, shared);
    let bundle = dir.join("containers").join(&req.id);
    let b = bundle.clone();
    let layers = image.layers.clone();
    let rootfs = tokio::task::spawn_blocking(move || rootfs::mount_rootfs(&b, &layers))
        .await
        .map_err(|e| RuntimeError::Create {
            id: req.id.clone(),
            message: format!("mounting the rootfs: {e}"),
        })?
        .map_err(|e| RuntimeError::io("mounting the rootfs of", &bundle, e))?;
    if let Some(u) = req.user_name.take() {
        let eu = user::lookup(&rootfs, &u).map_err(|m| {
            let _ = rootfs::remove_bundle(&bundle);
            RuntimeError::Config(ConfigError::new("image config User", m))
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
/// `<pod dir>/etc` and returns their bind mounts (plus resolv.conf when one
/// was written there).
pub fn write_pod_files(dir: &Path, hostname: &str) -> std::io::Result<Vec<BindMount>> {
    write_pod_files_with(dir, hostname, "", None)
}

/// [`write_pod_files`] with the pod's own hosts file (empty: a minimal one
/// naming `hostname`) and resolv.conf (None: the image's stays). Each is
/// written once per pod: the first container's start; later containers and
/// restarts share it, as the kubelet's pods do.
pub fn write_pod_files_with(
    dir: &Path,
    hostname: &str,
    hosts_text: &str,
    resolv_conf: Option<&str>,
) -> std::io::Result<Vec<BindMount>> {
    let etc = dir.join("etc");
    fs::create_dir_all(&etc)?;
    let hosts = etc.join("hosts");
    if !hosts.exists() {
        let text = if hosts_text.is_empty() {
            format!(
                "# Kubernetes-managed hosts file (keel).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
            )
        } else {
            hosts_text.to_string()
        };
        write_new(&hosts, &text)?;
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
            propagation: Default::default(),
        },
        BindMount {
            source: hn,
            destination: "/etc/hostname".into(),
            read_only: false,
            propagation: Default::default(),
        },
    ];
    let resolv = etc.join("resolv.conf");
    if let Some(text) = resolv_conf
        && !resolv.exists()
    {
        write_new(&resolv, text)?;
    }
    if resolv.exists() {
        m.push(BindMount {
            source: resolv,
            destination: "/etc/resolv.conf".into(),
            read_only: false,
            propagation: Default::default(),
        });
    }
    Ok(m)
}

/// Writes `path` whole or not at all (a temporary file renamed over it), so
/// a container never sees half of it.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
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

/// Linux capability numbers: the position in `ALL_CAPS`, which is in the
/// kernel's order (include/uapi/linux/capability.h).
fn cap_number(name: &str) -> Option<u32> {
    super::container::resolve::ALL_CAPS
        .iter()
        .position(|c| *c == name)
        .map(|i| i as u32)
}

#[cfg(test)]
mod tests;
