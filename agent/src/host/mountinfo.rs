//! `/proc/self/mountinfo` (proc(5)): which filesystem a path is on, and
//! where cgroup v2 is mounted — `/sys/fs/cgroup` on a unified host,
//! `/sys/fs/cgroup/unified` on a hybrid one (systemd's layout with the v1
//! controllers beside it).

use std::path::{Path, PathBuf};

#[cfg(test)]
#[path = "mountinfo_tests.rs"]
mod tests;

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub point: PathBuf,
    /// The filesystem's directory mounted there (`/` for a whole filesystem).
    pub root: String,
    pub fstype: String,
}

/// The mounts of a mountinfo text, in order; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            // ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER
            let (left, right) = line.split_once(" - ")?;
            let mut l = left.split(' ');
            let root = unescape(l.nth(3)?);
            let point = unescape(l.next()?);
            let fstype = right.split(' ').next()?.to_string();
            Some(Mount {
                point: PathBuf::from(point),
                root,
                fstype,
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..=i + 3].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v2 mount that holds the whole hierarchy (its root is `/`);
/// the first one when several are.
pub fn cgroup2_root(mounts: &[Mount]) -> Option<PathBuf> {
    mounts
        .iter()
        .filter(|m| m.fstype == "cgroup2")
        .find(|m| m.root == "/")
        .map(|m| m.point.clone())
}

/// The mount `path` is on: the last mount (later ones hide earlier ones)
/// whose mount point is the longest prefix of `path`. `path` need not exist.
pub fn mount_of<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    let mut best: Option<&Mount> = None;
    for m in mounts {
        if path.starts_with(&m.point)
            && best.is_none_or(|b| m.point.as_os_str().len() >= b.point.as_os_str().len())
        {
            best = Some(m);
        }
    }
    best
}

/// Whether `path` is on a filesystem of type `fstype`.
pub fn is_on(mounts: &[Mount], path: &Path, fstype: &str) -> bool {
    mount_of(mounts, path).is_some_and(|m| m.fstype == fstype)
}
