//! Volumes: `emptyDir` (a directory under the pod's directory, or a tmpfs
//! for `medium: Memory`) and `hostPath`, mounted at each container's
//! `volumeMounts`. Paths that climb out — a hostPath outside the node's
//! allowed roots or with `..`, a subPath that leaves its volume — are
//! refused with the field that did it.

use std::{
    fs,
    path::{Component, Path, PathBuf},
};

use keel_api::pod::{Container, Volume};

use super::{BindMount, ConfigError};

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
        match (&v.empty_dir, &v.host_path) {
            (Some(_), None) => {}
            (None, Some(h)) => {
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
                            host_path_roots
                                .iter()
                                .map(|r| r.display().to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            _ => {
                return Err(ConfigError::new(
                    field,
                    "exactly one of emptyDir and hostPath must be set",
                ));
            }
        }
    }
    Ok(())
}

/// The bind mounts of one container. Creates emptyDirs and
/// `DirectoryOrCreate`/`FileOrCreate` hostPaths; resolves symlinks so a
/// subPath or hostPath cannot lead out through a link.
pub fn mounts(
    field: &str,
    c: &Container,
    volumes: &[Volume],
    pod_dir: &Path,
    host_path_roots: &[PathBuf],
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
        let base = if let Some(ed) = &v.empty_dir {
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
                "DirectoryOrCreate" => fs::create_dir_all(&p).map_err(|e| {
                    ConfigError::new(&mf, format!("creating hostPath {}: {e}", p.display()))
                })?,
                "FileOrCreate" if !p.exists() => {
                    if let Some(parent) = p.parent() {
                        let _ = fs::create_dir_all(parent);
                    }
                    fs::write(&p, b"").map_err(|e| {
                        ConfigError::new(&mf, format!("creating hostPath {}: {e}", p.display()))
                    })?
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
        let source = if m.sub_path.is_empty() {
            base
        } else {
            if m.sub_path.starts_with('/') || has_parent(&m.sub_path) {
                return Err(ConfigError::new(
                    format!("{mf}.subPath"),
                    format!("{:?} must be a relative path without '..'", m.sub_path),
                ));
            }
            let p = base.join(&m.sub_path);
            if !p.exists() {
                fs::create_dir_all(&p)
                    .map_err(|e| ConfigError::new(&mf, format!("creating subPath: {e}")))?;
            }
            let real =
                fs::canonicalize(&p).map_err(|e| ConfigError::new(&mf, format!("subPath: {e}")))?;
            let base_real = fs::canonicalize(&base)
                .map_err(|e| ConfigError::new(&mf, format!("volume: {e}")))?;
            if !real.starts_with(&base_real) {
                return Err(ConfigError::new(
                    format!("{mf}.subPath"),
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
        out.push(BindMount {
            source,
            destination: m.mount_path.clone(),
            read_only: m.read_only,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
