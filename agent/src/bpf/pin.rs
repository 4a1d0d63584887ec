//! State that outlives the agent on a bpf filesystem: making sure a pin
//! directory is on bpffs, telling which pinned maps a new build can reuse,
//! pinning a link, adopting a pinned link on restart by swapping its
//! program atomically (so nothing is ever detached while a new agent takes
//! over), and removing a datapath's pins.
//!
//! Every datapath pins the same way: `<dir>/maps/<MAP>` and
//! `<dir>/links/<link>`.

use std::{
    fs, io,
    os::fd::{AsFd, BorrowedFd},
    path::Path,
};

use aya::{
    maps::{MapInfo, MapType},
    programs::links::FdLink,
};

use super::sys;

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("{path} is not on a bpf filesystem (mount one: mount -t bpf bpf DIR)")]
    NotBpffs { path: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("pinning {name} at {path}: {reason}")]
    Pin {
        name: String,
        path: String,
        reason: String,
    },
}

pub fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> PinError {
    let path = path.display().to_string();
    move |source| PinError::Io { what, path, source }
}

/// Makes sure `dir` can hold pins: its nearest existing ancestor must be on
/// a bpf filesystem. Under /sys/fs/bpf, which a host may not have mounted,
/// bpffs is mounted there first (as Cilium's agent does).
pub fn ensure_bpffs(dir: &Path) -> Result<(), PinError> {
    let on_bpffs =
        |p: &Path| nix::sys::statfs::statfs(p).is_ok_and(|s| s.filesystem_type().0 == BPF_FS_MAGIC);
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    if on_bpffs(existing) {
        return Ok(());
    }
    let sysfs_bpf = Path::new("/sys/fs/bpf");
    if dir.starts_with(sysfs_bpf) && sysfs_bpf.is_dir() && !on_bpffs(sysfs_bpf) {
        nix::mount::mount(
            Some("bpf"),
            sysfs_bpf,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| PinError::Io {
            what: "mounting bpffs on",
            path: sysfs_bpf.display().to_string(),
            source: e.into(),
        })?;
        tracing::info!("mounted bpffs on /sys/fs/bpf");
        return Ok(());
    }
    Err(PinError::NotBpffs {
        path: dir.display().to_string(),
    })
}

/// Where a link should be attached: its link type, target (cgroup id or
/// ifindex) and attach type, as `BPF_OBJ_GET_INFO_BY_FD` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub link_type: u32,
    pub target: u64,
    pub attach_type: u32,
}

/// If a link is pinned at `pin` and attached at `want`, swaps its program
/// for `prog` (atomically) and returns true; a link pinned there but
/// attached elsewhere (or no longer attached) is unpinned, which detaches
/// it, and false returned.
pub fn reuse_link(pin: &Path, want: Target, prog: BorrowedFd<'_>) -> Result<bool, PinError> {
    let link = match sys::obj_get(pin) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err("opening pinned link", pin)(e)),
    };
    let info = sys::link_info(link.as_fd()).map_err(io_err("reading pinned link", pin))?;
    if (info.link_type, info.target, info.attach_type)
        == (want.link_type, want.target, want.attach_type)
    {
        sys::link_update(link.as_fd(), prog).map_err(io_err("updating pinned link", pin))?;
        return Ok(true);
    }
    tracing::info!(
        pin = %pin.display(),
        ?info,
        ?want,
        "pinned link is attached elsewhere; replacing it"
    );
    unpin(pin)?;
    Ok(false)
}

/// Pins `link` at `pin`, so it stays attached after the agent exits.
pub fn pin_link(name: &str, link: FdLink, pin: &Path) -> Result<(), PinError> {
    link.pin(pin).map_err(|e| PinError::Pin {
        name: name.to_string(),
        path: pin.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(())
}

/// Removes a pin; a pin already gone is not an error.
pub fn unpin(pin: &Path) -> Result<(), PinError> {
    match fs::remove_file(pin) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("unpinning", pin)(e)),
        _ => Ok(()),
    }
}

/// The layout a map must have to be reused: type, key and value sizes,
/// max entries, flags.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    pub ty: MapType,
    pub key: usize,
    pub value: usize,
    pub max: u32,
    pub flags: u32,
}

/// `BPF_F_NO_PREALLOC`.
pub const NO_PREALLOC: u32 = 1;

/// Why a pinned map cannot be reused with `want`, or None when it can.
pub fn incompatible(info: &MapInfo, want: &Layout) -> Option<String> {
    let got = (
        info.map_type().ok(),
        info.key_size() as usize,
        info.value_size() as usize,
        info.max_entries(),
        info.map_flags(),
    );
    let Layout {
        ty,
        key,
        value,
        max,
        flags,
    } = *want;
    (got != (Some(ty), key, value, max, flags)).then(|| {
        format!(
            "pinned as {:?} key={} value={} max={} flags={:#x}, this agent needs {ty:?} key={key} value={value} max={max} flags={flags:#x}",
            got.0, got.1, got.2, got.3, got.4
        )
    })
}

/// The maps pinned in `maps_dir` (of `names`) that this build cannot reuse,
/// with why: another layout (as `layout` says a map must be), or
/// unreadable.
pub fn stale_maps<'a>(
    maps_dir: &Path,
    names: &[&'a str],
    layout: impl Fn(&str) -> Option<Layout>,
) -> Vec<(&'a str, String)> {
    let mut stale = Vec::new();
    for name in names {
        let pin = maps_dir.join(name);
        if !pin.exists() {
            continue;
        }
        let why = match MapInfo::from_pin(&pin) {
            Ok(info) => layout(name).and_then(|l| incompatible(&info, &l)),
            Err(e) => Some(format!("unreadable: {e}")),
        };
        if let Some(why) = why {
            stale.push((*name, why));
        }
    }
    stale
}

/// Unpins each stale map (its entries are lost, the load creates it anew)
/// and returns `"NAME: why"` for each.
pub fn recreate(maps_dir: &Path, stale: Vec<(&str, String)>) -> Result<Vec<String>, PinError> {
    let mut recreated = Vec::new();
    for (name, why) in stale {
        tracing::warn!(map = name, %why, "recreating pinned map; its entries are lost");
        unpin(&maps_dir.join(name))?;
        recreated.push(format!("{name}: {why}"));
    }
    Ok(recreated)
}

/// Detaches a datapath and forgets its state pinned under `dir` (links
/// first, so no program runs against maps that are going away). Nothing
/// pinned is not an error.
pub fn remove_all(dir: &Path) -> io::Result<()> {
    for sub in ["links", "maps"] {
        match fs::remove_dir_all(dir.join(sub)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
