//! The kubelet's atomic writer (`pkg/volume/util/atomic_writer.go`): a
//! volume's files (a ConfigMap's or Secret's keys) are written into a
//! fresh timestamped directory `..2026_12_03_06_30_00.123456789`, then the
//! `..data` symlink is pointed at it by renaming a new link over the old
//! one (one atomic step), then each top-level name is a symlink
//! `name -> ..data/name`. A reader inside the container sees the old set
//! or the new one, never a half-written directory; a key that went away
//! loses its link. A write that changes nothing changes nothing.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs, io,
    os::unix::fs::{PermissionsExt, symlink},
    path::{Component, Path, PathBuf},
    time::SystemTime,
};

/// The link to the current timestamped directory.
pub const DATA_DIR: &str = "..data";
const DATA_DIR_TMP: &str = "..data_tmp";

/// One file of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    /// Permission bits (0644 and the like).
    pub mode: u32,
}

/// Paths to files, relative to the volume.
pub type Payload = BTreeMap<String, FileProjection>;

/// A payload path: relative, no `..` element, not starting with `..`
/// (names the writer itself uses).
pub fn validate_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("an empty path".into());
    }
    if Path::new(p).is_absolute() {
        return Err(format!("{p:?} is absolute"));
    }
    if Path::new(p)
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(format!("{p:?} contains '..'"));
    }
    if p.starts_with("..") {
        return Err(format!("{p:?} starts with '..'"));
    }
    Ok(())
}

/// Writes `payload` into `dir` (made if missing). Returns whether anything
/// changed.
pub fn write(dir: &Path, payload: &Payload) -> io::Result<bool> {
    for p in payload.keys() {
        validate_path(p).map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
    }
    fs::create_dir_all(dir)?;
    let old_ts = fs::read_link(dir.join(DATA_DIR)).ok();
    let old = match &old_ts {
        Some(ts) => Some(read_payload(&dir.join(ts))?),
        None => None,
    };
    if old.as_ref() == Some(payload) {
        return Ok(false);
    }
    // The new generation, complete before anyone can see it.
    let ts = new_ts_dir(dir)?;
    let ts_path = dir.join(&ts);
    let written = (|| {
        for (p, f) in payload {
            let path = ts_path.join(p);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&path, &f.data)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(f.mode))?;
        }
        Ok::<_, io::Error>(())
    })();
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&ts_path);
        return Err(e);
    }
    // Swap `..data` in one rename.
    let tmp = dir.join(DATA_DIR_TMP);
    let _ = fs::remove_file(&tmp);
    symlink(&ts, &tmp)?;
    fs::rename(&tmp, dir.join(DATA_DIR))?;
    // The user-visible names.
    let new_top = top_level(payload.keys());
    for name in &new_top {
        let link = dir.join(name);
        if fs::symlink_metadata(&link).is_err() {
            symlink(Path::new(DATA_DIR).join(name), &link)?;
        }
    }
    if let Some(old) = &old {
        for name in top_level(old.keys()).difference(&new_top) {
            let _ = fs::remove_file(dir.join(name));
        }
    }
    if let Some(old_ts) = old_ts {
        let _ = fs::remove_dir_all(dir.join(old_ts));
    }
    Ok(true)
}

/// The first component of each path.
fn top_level<'a>(paths: impl Iterator<Item = &'a String>) -> BTreeSet<String> {
    paths
        .filter_map(|p| p.split('/').find(|s| !s.is_empty() && *s != "."))
        .map(str::to_string)
        .collect()
}

/// A fresh `..YYYY_MM_DD_HH_MM_SS.NNNNNNNNN` directory in `dir`.
fn new_ts_dir(dir: &Path) -> io::Result<PathBuf> {
    let stamp = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
    // 2026-12-03T06:30:00.123456789Z → 2026_12_03_06_30_00.123456789
    let base: String = stamp
        .trim_end_matches('Z')
        .chars()
        .map(|c| if matches!(c, '-' | 'T' | ':') { '_' } else { c })
        .collect();
    for i in 0..1000u32 {
        let name = if i == 0 {
            format!("..{base}")
        } else {
            format!("..{base}_{i}")
        };
        match fs::create_dir(dir.join(&name)) {
            Ok(()) => {
                fs::set_permissions(dir.join(&name), fs::Permissions::from_mode(0o755))?;
                return Ok(PathBuf::from(name));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free timestamped directory name",
    ))
}

/// Every file below `root`, by path relative to it, with its mode.
fn read_payload(root: &Path) -> io::Result<Payload> {
    let mut out = Payload::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let rel = rel.join(entry.file_name());
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(rel);
            } else {
                out.insert(
                    rel.to_string_lossy().into_owned(),
                    FileProjection {
                        data: fs::read(root.join(&rel))?,
                        mode: meta.permissions().mode() & 0o7777,
                    },
                );
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
