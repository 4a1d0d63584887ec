//! A container's root filesystem: the image's unpacked layers as overlayfs
//! lowerdirs (top layer first) plus a writable upper and work dir of its own,
//! mounted at `<bundle>/rootfs`.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// The overlay mount options for `layers` (bottom first). Pure.
pub fn overlay_options(layers: &[PathBuf], empty: &Path, upper: &Path, work: &Path) -> String {
    let lower: Vec<String> = if layers.is_empty() {
        vec![empty.display().to_string()]
    } else {
        layers
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect()
    };
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    )
}

/// Mounts the rootfs for a bundle directory; idempotent (an existing mount
/// is kept).
pub fn mount_rootfs(bundle: &Path, layers: &[PathBuf]) -> io::Result<PathBuf> {
    let rootfs = bundle.join("rootfs");
    let upper = bundle.join("upper");
    let work = bundle.join("work");
    let empty = bundle.join("empty");
    // The bundle is root's (0700); `upper` keeps 0755, since it is the
    // container's `/`.
    crate::private::private_dir(bundle)?;
    for d in [&rootfs, &upper, &work, &empty] {
        fs::create_dir_all(d)?;
    }
    if is_mountpoint(&rootfs) {
        return Ok(rootfs);
    }
    let opts = overlay_options(layers, &empty, &upper, &work);
    if opts.len() >= 4096 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} layers make overlay options of {} bytes, over the kernel's page limit",
                layers.len(),
                opts.len()
            ),
        ));
    }
    mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .map_err(io::Error::from)?;
    Ok(rootfs)
}

/// Unmounts the rootfs (if mounted) and removes the bundle directory.
pub fn remove_bundle(bundle: &Path) -> io::Result<()> {
    let rootfs = bundle.join("rootfs");
    if is_mountpoint(&rootfs) {
        umount2(&rootfs, MntFlags::MNT_DETACH).map_err(io::Error::from)?;
    }
    match fs::remove_dir_all(bundle) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Lazily unmounts every mount point at or below `dir`, deepest first.
pub fn unmount_below(dir: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut mine: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect();
    mine.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for m in mine {
        let _ = umount2(&m, MntFlags::MNT_DETACH);
    }
}

/// Whether `path` is a mount point (listed in /proc/self/mountinfo).
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let p = path.display().to_string();
    info.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .any(|m| m.replace("\\040", " ") == p)
}

#[cfg(test)]
mod tests;
