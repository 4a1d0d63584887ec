//! The mount propagation of a container's bind mounts (Kubernetes'
//! `mountPropagation`), for libcontainer: its fd-based bind mounts
//! (`open_tree` + `move_mount`) leave a bind of a shared mount in the
//! source's peer group whatever the spec's `rprivate`/`rslave`/`rshared`
//! option says. runc applies those options itself; here the shim applies
//! them between create and start — the container's mounts exist, its
//! process has not run yet — from a thread that joins the container's
//! mount namespace (whose root is then the container's root).

use std::{fs::File, os::fd::AsFd, path::Path};

use nix::{
    mount::{MsFlags, mount},
    sched::{CloneFlags, setns, unshare},
};
use serde_json::Value;

/// Each bind mount of `config` (an OCI runtime spec) with a propagation
/// option: its destination and the flags to set. Pure.
pub fn plan(config: &Value) -> Vec<(String, MsFlags)> {
    let mut out = Vec::new();
    for m in config["mounts"].as_array().into_iter().flatten() {
        let opts: Vec<&str> = m["options"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let bind = m["type"] == "bind" || opts.iter().any(|o| *o == "bind" || *o == "rbind");
        let Some(dest) = m["destination"].as_str() else {
            continue;
        };
        if !bind {
            continue;
        }
        // The last propagation option wins, as in runc.
        let flags = opts.iter().rev().find_map(|o| match *o {
            "rprivate" => Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            "private" => Some(MsFlags::MS_PRIVATE),
            "rslave" => Some(MsFlags::MS_SLAVE | MsFlags::MS_REC),
            "slave" => Some(MsFlags::MS_SLAVE),
            "rshared" => Some(MsFlags::MS_SHARED | MsFlags::MS_REC),
            "shared" => Some(MsFlags::MS_SHARED),
            _ => None,
        });
        if let Some(f) = flags {
            out.push((dest.to_string(), f));
        }
    }
    out
}

/// Sets `plan` in the mount namespace of process `pid` (the created,
/// not yet started container), on a thread of its own.
pub fn apply(pid: i32, plan: &[(String, MsFlags)]) -> anyhow::Result<()> {
    if plan.is_empty() {
        return Ok(());
    }
    let ns = File::open(format!("/proc/{pid}/ns/mnt"))?;
    std::thread::scope(|s| {
        s.spawn(|| -> anyhow::Result<()> {
            // setns(CLONE_NEWNS) needs a filesystem context of our own.
            unshare(CloneFlags::CLONE_FS)?;
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNS)?;
            for (dest, flags) in plan {
                mount(
                    None::<&str>,
                    Path::new(dest),
                    None::<&str>,
                    *flags,
                    None::<&str>,
                )
                .map_err(|e| anyhow::anyhow!("propagation of {dest}: {e}"))?;
            }
            Ok(())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the propagation thread panicked"))?
    })
}

#[cfg(test)]
mod tests;
