//! Volumes: `emptyDir` (a directory under the pod's directory, or a tmpfs
//! for `medium: Memory`), `hostPath`, and `configMap`, `secret` and
//! `projected` (files from [`projection`] written by the
//! [`atomic_writer`], Secret data on a tmpfs, brought up to date by
//! [`refresh_projected`]), mounted at each container's `volumeMounts`. Paths that climb out — a hostPath outside the node's
//! allowed roots or with `..`, a subPath that leaves its volume — are
//! refused with the field that did it. Whatever is created (a
//! `DirectoryOrCreate`/`FileOrCreate` hostPath, a missing subPath) is
//! resolved inside its root first ([`inroot`]), never created and checked
//! after.

use std::{
    fs, io,
    path::{Component, Path, PathBuf},
};

use nix::fcntl::OFlag;

use keel_api::{
    Pod,
    pod::{Container, MountPropagation, Volume},
};

use super::{
    BindMount, ConfigError, atomic_writer,
    env::{NodeFacts, Sources},
    projection,
};
use crate::runtime::inroot::{self, Scope};

/// Where a pod's volumes live on the node.
pub fn volume_dir(pod_dir: &Path, name: &str) -> PathBuf {
    pod_dir.join("volumes").join(name)
}

fn has_parent(p: &str) -> bool {
    Path::new(p)
        .components()
        .any(|c| matches!(c, Component::ParentDir))
}

/// Checks a pod's volumes against the node's allowed hostPath roots. Pure.
pub fn validate(volumes: &[Volume], host_path_roots: &[PathBuf]) -> Result<(), ConfigError> {
    for (i, v) in volumes.iter().enumerate() {
        let field = format!("spec.volumes[{i}]");
        if let Some(source) = v.unsupported_source() {
            return Err(ConfigError::new(
                format!("{field}.{source}"),
                format!(
                    "volume {:?}: keel has no {source} volumes; the pod's containers are not started without their storage",
                    v.name
                ),
            ));
        }
        let kinds = usize::from(v.empty_dir.is_some())
            + usize::from(v.host_path.is_some())
            + usize::from(v.config_map.is_some())
            + usize::from(v.secret.is_some())
            + usize::from(v.projected.is_some())
            + usize::from(v.downward_api.is_some());
        if kinds != 1 {
            return Err(ConfigError::new(
                field,
                "exactly one of emptyDir, hostPath, configMap, secret, projected and downwardAPI must be set",
            ));
        }
        if let Some(h) = &v.host_path {
            let f = format!("{field}.hostPath.path");
            if !h.path.starts_with('/') {
                return Err(ConfigError::new(f, format!("{:?} is not absolute", h.path)));
            }
            if has_parent(&h.path) {
                return Err(ConfigError::new(
                    f,
                    format!("{:?} contains '..' and escapes its directory", h.path),
                ));
            }
            if !host_path_roots
                .iter()
                .any(|r| Path::new(&h.path).starts_with(r))
            {
                return Err(ConfigError::new(
                    f,
                    format!(
                        "{:?} is outside the host paths this node allows ({})",
                        h.path,
                        if host_path_roots.is_empty() {
                            "none: the node's agent takes them with --allow-host-path DIR"
                                .to_string()
                        } else {
                            host_path_roots
                                .iter()
                                .map(|r| r.display().to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The bind mounts of one container. Creates emptyDirs and
/// `DirectoryOrCreate`/`FileOrCreate` hostPaths; resolves symlinks so a
/// subPath or hostPath cannot lead out through a link.
#[expect(
    clippy::too_many_arguments,
    reason = "the container, the pod it belongs to, and the node's paths and facts"
)]
pub fn mounts(
    field: &str,
    c: &Container,
    volumes: &[Volume],
    pod_dir: &Path,
    host_path_roots: &[PathBuf],
    pod: &Pod,
    node: &NodeFacts,
    sources: &dyn Sources,
) -> Result<Vec<BindMount>, ConfigError> {
    let mut out = Vec::new();
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let mf = format!("{field}.volumeMounts[{i}]");
        if !m.mount_path.starts_with('/') || has_parent(&m.mount_path) {
            return Err(ConfigError::new(
                format!("{mf}.mountPath"),
                format!("{:?} must be an absolute path without '..'", m.mount_path),
            ));
        }
        let v = volumes.iter().find(|v| v.name == m.name).ok_or_else(|| {
            ConfigError::new(
                format!("{mf}.name"),
                format!("no volume named {:?} in spec.volumes", m.name),
            )
        })?;
        let base = if projection::is_projected(v) {
            let i = volumes.iter().position(|x| x.name == v.name).unwrap_or(0);
            write_projected(
                v,
                &format!("spec.volumes[{i}]"),
                pod_dir,
                pod,
                node,
                sources,
            )?;
            volume_dir(pod_dir, &v.name)
        } else if let Some(ed) = &v.empty_dir {
            let d = volume_dir(pod_dir, &v.name);
            fs::create_dir_all(&d)
                .map_err(|e| ConfigError::new(&mf, format!("creating emptyDir: {e}")))?;
            if ed.medium == "Memory" && !super::rootfs::is_mountpoint(&d) {
                let mut opts = String::from("mode=0777");
                if let Some(limit) = &ed.size_limit {
                    opts.push_str(&format!(",size={}", limit.value()));
                }
                nix::mount::mount(
                    Some("tmpfs"),
                    &d,
                    Some("tmpfs"),
                    nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
                    Some(opts.as_str()),
                )
                .map_err(|e| ConfigError::new(&mf, format!("mounting the Memory emptyDir: {e}")))?;
            }
            d
        } else {
            let h = v.host_path.as_ref().expect("validated");
            let p = PathBuf::from(&h.path);
            match h.type_.as_str() {
                "DirectoryOrCreate" | "FileOrCreate" => {
                    create_host_path(&p, h.type_ == "FileOrCreate", host_path_roots).map_err(
                        |e| {
                            ConfigError::new(&mf, format!("creating hostPath {}: {e}", p.display()))
                        },
                    )?
                }
                "Directory" if !p.is_dir() => {
                    return Err(ConfigError::new(
                        &mf,
                        format!("hostPath {} is not a directory", p.display()),
                    ));
                }
                "File" if !p.is_file() => {
                    return Err(ConfigError::new(
                        &mf,
                        format!("hostPath {} is not a file", p.display()),
                    ));
                }
                _ => {}
            }
            let real = fs::canonicalize(&p)
                .map_err(|e| ConfigError::new(&mf, format!("hostPath {}: {e}", p.display())))?;
            if !host_path_roots.iter().any(|r| real.starts_with(r)) {
                return Err(ConfigError::new(
                    &mf,
                    format!(
                        "hostPath {} resolves to {}, outside the host paths this node allows",
                        p.display(),
                        real.display()
                    ),
                ));
            }
            real
        };
        // `subPathExpr`, expanded by [`expand_sub_paths`], arrives here
        // as `subPath`; errors name the field the user wrote.
        let sub_field = if m.sub_path_expr.is_empty() {
            format!("{mf}.subPath")
        } else {
            format!("{mf}.subPathExpr")
        };
        let source = if m.sub_path.is_empty() {
            base
        } else {
            if m.sub_path.starts_with('/') || has_parent(&m.sub_path) {
                return Err(ConfigError::new(
                    &sub_field,
                    format!("{:?} must be a relative path without '..'", m.sub_path),
                ));
            }
            let p = base.join(&m.sub_path);
            // A configMap/secret volume holds only its files: a subPath
            // that is not one of them is an error, never a new directory.
            if projection::is_projected(v) && fs::metadata(&p).is_err() {
                return Err(ConfigError::new(
                    &sub_field,
                    format!("{:?} is not a file of volume {:?}", m.sub_path, m.name),
                ));
            }
            // Resolved beneath the volume before anything is made: a link
            // in the volume (its owner is the container) cannot lead the
            // create out.
            let made = inroot::open_root(&base).and_then(|r| {
                match inroot::open(&r, Path::new(&m.sub_path), OFlag::O_PATH, 0, Scope::Beneath) {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        inroot::open_dir(&r, Path::new(&m.sub_path), Scope::Beneath, Some(0o755))
                            .map(drop)
                    }
                    Err(e) => Err(e),
                }
            });
            match made {
                Ok(()) => {}
                Err(e) if inroot::is_escape(&e) => {
                    return Err(ConfigError::new(
                        &sub_field,
                        format!("{:?} resolves outside volume {:?}", m.sub_path, m.name),
                    ));
                }
                Err(e) => return Err(ConfigError::new(&mf, format!("creating subPath: {e}"))),
            }
            let real =
                fs::canonicalize(&p).map_err(|e| ConfigError::new(&mf, format!("subPath: {e}")))?;
            let base_real = fs::canonicalize(&base)
                .map_err(|e| ConfigError::new(&mf, format!("volume: {e}")))?;
            if !real.starts_with(&base_real) {
                return Err(ConfigError::new(
                    &sub_field,
                    format!(
                        "{:?} resolves to {}, outside volume {:?}",
                        m.sub_path,
                        real.display(),
                        m.name
                    ),
                ));
            }
            real
        };
        let propagation = m.mount_propagation.unwrap_or_default();
        if propagation != MountPropagation::None {
            let info = fs::read_to_string("/proc/self/mountinfo")
                .map_err(|e| ConfigError::new(&mf, format!("reading mountinfo: {e}")))?;
            check_propagation(&info, &source, propagation)
                .map_err(|e| ConfigError::new(format!("{mf}.mountPropagation"), e))?;
        }
        out.push(BindMount {
            source,
            destination: m.mount_path.clone(),
            read_only: m.read_only,
            propagation,
        });
    }
    Ok(out)
}

/// `c` with every `subPathExpr` expanded into `subPath` from the
/// container's variables `vars`, as the kubelet's
/// `ExpandContainerVolumeMounts` does: a `$(VAR)` that is not set (or is
/// empty) is an error, and so is an expansion that is absolute or
/// contains `..`. `field` is the container's path. Pure.
pub fn expand_sub_paths(
    field: &str,
    c: &Container,
    vars: &[(String, String)],
) -> Result<Container, ConfigError> {
    let mut out = c.clone();
    for (i, m) in out.volume_mounts.iter_mut().enumerate() {
        if m.sub_path_expr.is_empty() {
            continue;
        }
        let f = format!("{field}.volumeMounts[{i}].subPathExpr");
        if !m.sub_path.is_empty() {
            return Err(ConfigError::new(
                f,
                "subPathExpr and subPath are mutually exclusive",
            ));
        }
        let missing = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let expanded = super::env::expand(&m.sub_path_expr, |name| {
            let v = vars
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty());
            if v.is_none() {
                missing.borrow_mut().insert(name.to_string());
            }
            Some(v.unwrap_or_default())
        });
        let missing = missing.into_inner();
        if !missing.is_empty() {
            let names: Vec<String> = missing.into_iter().collect();
            return Err(ConfigError::new(
                f,
                format!(
                    "{:?}: missing value for {}",
                    m.sub_path_expr,
                    names.join(", ")
                ),
            ));
        }
        if expanded.starts_with('/') {
            return Err(ConfigError::new(
                f,
                format!(
                    "{:?} expands to {expanded:?}, which must not be an absolute path",
                    m.sub_path_expr
                ),
            ));
        }
        if has_parent(&expanded) {
            return Err(ConfigError::new(
                f,
                format!(
                    "{:?} expands to {expanded:?}, which must not contain '..'",
                    m.sub_path_expr
                ),
            ));
        }
        m.sub_path = expanded;
    }
    Ok(out)
}

/// Whether the mount holding `path` (the longest mount point above it in
/// `/proc/self/mountinfo`'s text `info`, the last one of equal length: it
/// is on top) lets mounts travel as `want` asks: HostToContainer needs it
/// shared or a slave, Bidirectional shared (containerd's CRI plugin refuses
/// the same; a private source would give the container nothing). Pure.
pub fn check_propagation(info: &str, path: &Path, want: MountPropagation) -> Result<(), String> {
    let mut best: Option<(usize, &str, bool, bool)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let Some(point) = fields.get(4) else { continue };
        let point = crate::host::mountinfo::unescape(point);
        if !path.starts_with(&point) {
            continue;
        }
        let optional = &fields[6.min(sep)..sep];
        let shared = optional.iter().any(|o| o.starts_with("shared:"));
        let slave = optional.iter().any(|o| o.starts_with("master:"));
        let len = Path::new(&point).components().count();
        if best.is_none_or(|(l, ..)| len >= l) {
            best = Some((len, fields[4], shared, slave));
        }
    }
    let Some((_, point, shared, slave)) = best else {
        return Err(format!("no mount holds {}", path.display()));
    };
    match want {
        MountPropagation::None => Ok(()),
        MountPropagation::HostToContainer if shared || slave => Ok(()),
        MountPropagation::Bidirectional if shared => Ok(()),
        MountPropagation::HostToContainer => Err(format!(
            "HostToContainer needs {} mounted on {point}, a shared or slave mount; it is private",
            path.display()
        )),
        MountPropagation::Bidirectional => Err(format!(
            "Bidirectional needs {} mounted on {point}, a shared mount; it is {}",
            path.display(),
            if slave { "a slave" } else { "private" }
        )),
    }
}

/// Writes (or brings up to date) the files of a configMap, secret or
/// projected volume with the atomic writer; a volume holding Secret data
/// is a tmpfs of its own (never on the node's disk), made the first time.
/// Returns whether the files changed.
pub fn write_projected(
    v: &Volume,
    field: &str,
    pod_dir: &Path,
    pod: &Pod,
    node: &NodeFacts,
    sources: &dyn Sources,
) -> Result<bool, ConfigError> {
    let payload = projection::payload(v, field, pod, node, sources)?;
    let d = volume_dir(pod_dir, &v.name);
    fs::create_dir_all(&d)
        .map_err(|e| ConfigError::new(field, format!("creating the volume: {e}")))?;
    if projection::holds_secrets(v) && !super::rootfs::is_mountpoint(&d) {
        nix::mount::mount(
            Some("tmpfs"),
            &d,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some("mode=0755"),
        )
        .map_err(|e| ConfigError::new(field, format!("mounting the secret volume's tmpfs: {e}")))?;
    }
    atomic_writer::write(&d, &payload)
        .map_err(|e| ConfigError::new(field, format!("writing the volume's files: {e}")))
}

/// Brings every configMap, secret and projected volume of a pod that was
/// written before (a container uses it) up to date with the objects, as
/// the kubelet's periodic volume sync does; `subPath` mounts of them keep
/// the file they were made from. Returns the volumes that could not be
/// written (an object gone, …): their files stay as they were.
pub fn refresh_projected(
    pod: &Pod,
    pod_dir: &Path,
    node: &NodeFacts,
    sources: &dyn Sources,
) -> Vec<ConfigError> {
    let volumes = &pod.spec.volumes;
    let mut errs = Vec::new();
    for (i, v) in volumes.iter().enumerate() {
        if !projection::is_projected(v) {
            continue;
        }
        let d = volume_dir(pod_dir, &v.name);
        if fs::symlink_metadata(d.join(atomic_writer::DATA_DIR)).is_err() {
            continue;
        }
        match write_projected(
            v,
            &format!("spec.volumes[{i}]"),
            pod_dir,
            pod,
            node,
            sources,
        ) {
            Ok(true) => {
                tracing::info!(volume = %v.name, dir = %d.display(), "updated the volume's files")
            }
            Ok(false) => {}
            Err(e) => errs.push(e),
        }
    }
    errs
}

/// Creates a `DirectoryOrCreate`/`FileOrCreate` hostPath, every
/// component resolved beneath the allowed root that holds it (validated
/// before), so a symlink on the way cannot make the agent create outside
/// it. Made as the kubelet makes them: directories 0755, files 0644.
fn create_host_path(p: &Path, file: bool, roots: &[PathBuf]) -> io::Result<()> {
    let root = roots
        .iter()
        .filter(|r| p.starts_with(r))
        .max_by_key(|r| r.as_os_str().len())
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::PermissionDenied, "not under an allowed root")
        })?;
    let rel = p.strip_prefix(root).unwrap_or(p);
    // Beneath `/` there is no outside; absolute links resolve as usual.
    let scope = if root == Path::new("/") {
        Scope::InRoot
    } else {
        Scope::Beneath
    };
    let r = inroot::open_root(root)?;
    if !file {
        return inroot::open_dir(&r, rel, scope, Some(0o755)).map(drop);
    }
    match inroot::open(&r, rel, OFlag::O_PATH, 0, scope) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let (parent, name) = inroot::open_parent(&r, rel, scope, Some(0o755))?;
            nix::fcntl::openat(
                &parent,
                name,
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::from_bits_truncate(0o644),
            )
            .map(drop)
            .map_err(io::Error::from)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
