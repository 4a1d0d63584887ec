//! The sweeper: removes whatever keel's tests and labs left behind after a
//! crash or a kill -9, found by name prefix: processes inside leftover
//! namespaces and cgroups, network namespaces, cgroups (v2 and v1
//! controllers), bpffs pins, mounts, and host links.
//!
//! Only things whose name starts with the prefix are touched; a process is
//! ended only if it lives in a keel-named namespace or cgroup, which only
//! keel's tools create, or is a containerd, runc shim or log driver whose
//! command line names a keel-named directory (the containerd runtime's
//! tests and labs).

use std::{
    fs, io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use keel_sys::ns::{NETNS_RUN_DIR, NetNs};

/// What one sweep removed, for the report line.
#[derive(Debug, Default)]
pub struct Swept {
    pub processes: usize,
    pub netns: usize,
    pub cgroups: usize,
    pub pins: usize,
    pub mounts: usize,
    pub links: usize,
    /// Temp dirs (IPAM stores, podman roots) left in the temp directory.
    pub tempdirs: usize,
    pub errors: Vec<String>,
}

impl std::fmt::Display for Swept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "removed {} processes, {} network namespaces, {} cgroups, {} bpffs pins, {} mounts, {} links, {} temp dirs",
            self.processes,
            self.netns,
            self.cgroups,
            self.pins,
            self.mounts,
            self.links,
            self.tempdirs
        )?;
        for e in &self.errors {
            write!(f, "\n  error: {e}")?;
        }
        Ok(())
    }
}

/// Removes everything named with `prefix` (e.g. "keel" for all of keel's
/// leftovers, "keel-t" for tests only, "keel-lab-demo" for one lab).
pub fn sweep(prefix: &str) -> Swept {
    assert!(
        prefix.starts_with("keel"),
        "the sweeper only removes keel's own things"
    );
    let mut swept = Swept::default();
    let netns = named_netns(prefix);
    let cgroups = cgroup_dirs(prefix);

    // Processes first, so namespaces and cgroups can go.
    let mut victims = Vec::new();
    let mut shim_sockets = Vec::new();
    let ns_inodes: Vec<u64> = netns
        .iter()
        .filter_map(|p| fs::metadata(p).ok().map(|m| m.ino()))
        .collect();
    for pid in all_pids() {
        if pid == std::process::id() as i32 {
            continue;
        }
        let in_ns =
            fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| ns_inodes.contains(&m.ino()));
        let in_cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| {
            c.lines().any(|l| {
                l.rsplit(':')
                    .next()
                    .is_some_and(|p| path_has_prefix(p, prefix))
            })
        });
        // A pod shim of keel's runtime (`keel-agent shim --dir DIR`) whose
        // pod directory has a keel-named component: it lives in no keel
        // namespace or cgroup of its own.
        let shim = fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
            let args: Vec<String> = c
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.get(1).is_some_and(|a| a == "shim")
                && args.get(2).is_some_and(|a| a == "--dir")
                && args.get(3).is_some_and(|d| path_has_prefix(d, prefix))
        });
        let keel_containerd = containerd_of_keel(pid, prefix);
        if keel_containerd && let Some(s) = shim_socket(&cmdline(pid)) {
            shim_sockets.push(s);
        }
        if in_ns || in_cg || shim || keel_containerd {
            victims.push(pid);
        }
    }
    for &pid in &victims {
        if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
            .is_ok()
        {
            swept.processes += 1;
        }
    }
    wait_gone(&victims);
    for s in shim_sockets {
        let _ = fs::remove_file(s);
    }

    for m in keel_mounts(prefix) {
        match nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => swept.mounts += 1,
            Err(e) => swept.errors.push(format!("umount {}: {e}", m.display())),
        }
    }
    for path in netns {
        match NetNs::delete_path(&path) {
            Ok(()) => swept.netns += 1,
            Err(e) => swept.errors.push(e.to_string()),
        }
    }
    // Deepest first: a cgroup can only be removed once its children are.
    let mut cgroups = cgroups;
    cgroups.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for dir in cgroups {
        match fs::remove_dir(&dir) {
            Ok(()) => swept.cgroups += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => swept.errors.push(format!("rmdir {}: {e}", dir.display())),
        }
    }
    if let Ok(entries) = fs::read_dir("/sys/fs/bpf") {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(prefix) {
                let path = e.path();
                swept.pins += count_files(&path);
                let res = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                if let Err(err) = res {
                    swept
                        .errors
                        .push(format!("removing pin {}: {err}", path.display()));
                }
            }
        }
    }
    for link in host_links(prefix) {
        let ok = Command::new("ip")
            .args(["link", "del", &link])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            swept.links += 1;
        } else {
            swept.errors.push(format!("ip link del {link} failed"));
        }
    }
    // Last: mounts under them (podman's) are gone by now.
    if let Ok(entries) = fs::read_dir(std::env::temp_dir()) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(prefix)
                && e.file_type().is_ok_and(|t| t.is_dir())
            {
                match fs::remove_dir_all(e.path()) {
                    Ok(()) => swept.tempdirs += 1,
                    Err(err) => swept
                        .errors
                        .push(format!("removing {}: {err}", e.path().display())),
                }
            }
        }
    }
    swept
}

fn cmdline(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn containerd_of_keel(pid: i32, prefix: &str) -> bool {
    is_keel_containerd(&cmdline(pid), prefix)
}

/// Whether a command line is a containerd that keel's tests or labs started
/// for the containerd runtime (`containerd --config DIR/config.toml` with a
/// keel-named directory), one of its runc shims (`containerd-shim-runc-v2 …
/// -address DIR/c.sock`), or keel-agent running as a shim's log driver
/// (`keel-agent containerd-log DIR/…`). Never any other containerd: the
/// directory must carry the prefix. Pure.
pub fn is_keel_containerd(args: &[String], prefix: &str) -> bool {
    let Some(exe) = args.first() else {
        return false;
    };
    let after = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .is_some_and(|d| path_has_prefix(d, prefix))
    };
    (exe.ends_with("/containerd") || exe == "containerd") && after("--config")
        || exe.ends_with("containerd-shim-runc-v2") && after("-address")
        || exe.ends_with("keel-agent") && after("containerd-log")
}

/// The socket a containerd 1.6 runc shim listens on, from its command line:
/// `/run/containerd/s/<sha256 of ADDRESS/NAMESPACE/ID>` (containerd's
/// `runtime/v2/shim/util_unix.go`). A killed shim leaves it behind. Pure.
pub fn shim_socket(args: &[String]) -> Option<PathBuf> {
    if !args.first()?.ends_with("containerd-shim-runc-v2") {
        return None;
    }
    let after = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    use sha2::Digest;
    let key = format!(
        "{}/{}/{}",
        after("-address")?,
        after("-namespace")?,
        after("-id")?
    );
    Some(Path::new("/run/containerd/s").join(hex::encode(sha2::Sha256::digest(key.as_bytes()))))
}

fn path_has_prefix(path: &str, prefix: &str) -> bool {
    path.split('/').any(|c| c.starts_with(prefix))
}

fn named_netns(prefix: &str) -> Vec<PathBuf> {
    fs::read_dir(NETNS_RUN_DIR)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Directories named with the prefix anywhere under /sys/fs/cgroup (v2 root
/// and every v1 controller), including their descendants.
fn cgroup_dirs(prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn walk(dir: &Path, prefix: &str, inside: bool, depth: usize, out: &mut Vec<PathBuf>) {
        if depth > 6 {
            return;
        }
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if !ft.is_dir() {
                continue;
            }
            let mine = inside || e.file_name().to_string_lossy().starts_with(prefix);
            if mine {
                out.push(e.path());
            }
            // Outside keel's subtrees only descend a little: keel's cgroups
            // sit near the top (or under a lab node's folder).
            if mine || depth < 3 {
                walk(&e.path(), prefix, mine, depth + 1, out);
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), prefix, false, 0, &mut out);
    out
}

fn all_pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn wait_gone(pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && pids
            .iter()
            .any(|p| Path::new(&format!("/proc/{p}")).exists())
    {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Mount points whose path has a component starting with the prefix,
/// deepest first (netns bind mounts are handled by NetNs::delete_path).
fn keel_mounts(prefix: &str) -> Vec<PathBuf> {
    let Ok(mounts) = fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| {
            path_has_prefix(p, prefix)
                && !p.starts_with(NETNS_RUN_DIR)
                && !p.starts_with("/sys/fs/cgroup")
        })
        .map(PathBuf::from)
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

fn host_links(prefix: &str) -> Vec<String> {
    fs::read_dir("/sys/class/net")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

fn count_files(path: &Path) -> usize {
    if path.is_dir() {
        fs::read_dir(path)
            .map(|rd| rd.flatten().map(|e| count_files(&e.path())).sum())
            .unwrap_or(0)
    } else {
        1
    }
}

#[cfg(test)]
mod tests;
