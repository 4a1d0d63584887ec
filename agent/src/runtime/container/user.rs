//! Resolving an image's `User` (`uid`, `uid:gid`, `name`, `name:group`)
//! against the image's own /etc/passwd and /etc/group, as runc's
//! `user.GetExecUser` does.

use std::{fs, path::Path};

/// uid, gid and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Looks `spec` up in the files under `rootfs` (a user absent from passwd is
/// only allowed as a number).
pub fn lookup(rootfs: &Path, spec: &str) -> Result<ExecUser, String> {
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let group = fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    resolve(spec, &passwd, &group)
}

/// The pure part of [`lookup`].
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ExecUser, String> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users: Vec<Vec<&str>> = passwd
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let groups: Vec<Vec<&str>> = group
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let entry = users
        .iter()
        .find(|f| f[0] == u || (u.parse::<u32>().is_ok() && f[2] == u));
    let (uid, name, mut gid) = match (entry, u.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse::<u32>()
                .map_err(|_| format!("bad uid in passwd for {u}"))?,
            Some(f[0]),
            f[3].parse::<u32>().unwrap_or(0),
        ),
        (None, Ok(n)) => (n, None, 0),
        (None, Err(_)) => {
            return Err(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ));
        }
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        };
    }
    let additional_gids = match name {
        Some(n) => groups
            .iter()
            .filter(|f| f.get(3).is_some_and(|m| m.split(',').any(|m| m == n)))
            .filter_map(|f| f[2].parse().ok())
            .filter(|g| *g != gid)
            .collect(),
        None => Vec::new(),
    };
    Ok(ExecUser {
        uid,
        gid,
        additional_gids,
    })
}

#[cfg(test)]
mod tests;
