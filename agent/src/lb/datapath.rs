//! Loading the LB programs and pinning their state per node under bpffs:
//!
//! ```text
//! <bpffs dir>/maps/KEEL_LB_SVC …   the maps (reused by the next agent)
//! <bpffs dir>/links/keel_lb_conn4 … the links (programs stay attached
//!                                   while no agent runs)
//! ```
//!
//! A restarted agent loads its programs against the pinned maps and swaps
//! each pinned link to the new program atomically, so established
//! connections, conntrack, affinity and backend choices all survive it. A
//! pinned map whose layout differs from this build's (an upgrade that
//! changed a type) is unpinned and recreated, and the reason logged.

use std::{
    fs::{self, File},
    io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf,
    maps::MapType,
    programs::{
        CgroupAttachMode, CgroupSockAddr, LinkOrder, SchedClassifier, TcAttachType,
        tc::TcAttachOptions,
    },
};
use keel_ebpf_common::lb::{
    AFFINITY_MAP, AFFINITY_MAX, AffinityKey, AffinityValue, BACKENDS_MAP, BACKENDS_MAX, Backend,
    CONFIG_MAP, CONNECT4_PROG, CT_MAP, CT_MAX, CtKey, CtValue, GETPEERNAME4_PROG, LbConfig,
    MAGLEV_MAP, MAGLEV_MAX, MAPS, MaglevChunk, MaglevKey, RECVMSG4_PROG, SENDMSG4_PROG,
    SERVICES_MAP, SERVICES_MAX, SOCK_REVNAT_MAP, SOCK_REVNAT_MAX, STATS_LEN, STATS_MAP, ServiceKey,
    ServiceValue, SockRevNatKey, SockRevNatValue, TC_EGRESS_PROG, TC_INGRESS_PROG,
};

use super::maps::{AyaMaps, MapsError};
use crate::bpf::{
    BpfError, object,
    object::{ObjectError, fd_link, load_pinned, program, program_fd},
    pin::{self, Layout, NO_PREALLOC, PinError, Target, ensure_bpffs, pin_link, reuse_link},
    sys,
};

/// The cgroup programs and their attach types.
pub const SOCK_PROGRAMS: [(&str, u32); 4] = [
    (CONNECT4_PROG, sys::BPF_CGROUP_INET4_CONNECT),
    (SENDMSG4_PROG, sys::BPF_CGROUP_UDP4_SENDMSG),
    (RECVMSG4_PROG, sys::BPF_CGROUP_UDP4_RECVMSG),
    (GETPEERNAME4_PROG, sys::BPF_CGROUP_INET4_GETPEERNAME),
];

/// The TC programs and their directions.
pub const TC_PROGRAMS: [(&str, TcAttachType, u32); 2] = [
    (TC_INGRESS_PROG, TcAttachType::Ingress, sys::BPF_TCX_INGRESS),
    (TC_EGRESS_PROG, TcAttachType::Egress, sys::BPF_TCX_EGRESS),
];

#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error(transparent)]
    Bpf(#[from] BpfError),
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error(transparent)]
    Maps(#[from] Box<MapsError>),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DatapathError {
    let err = pin::io_err(what, path);
    move |source| DatapathError::Pin(err(source))
}

/// The layout each map must have.
fn expected(name: &str) -> Option<Layout> {
    use std::mem::size_of;
    let l = |ty, key, value, max, flags| Layout {
        ty,
        key,
        value,
        max,
        flags,
    };
    Some(match name {
        SERVICES_MAP => l(
            MapType::Hash,
            size_of::<ServiceKey>(),
            size_of::<ServiceValue>(),
            SERVICES_MAX,
            NO_PREALLOC,
        ),
        BACKENDS_MAP => l(
            MapType::Hash,
            size_of::<u32>(),
            size_of::<Backend>(),
            BACKENDS_MAX,
            NO_PREALLOC,
        ),
        MAGLEV_MAP => l(
            MapType::Hash,
            size_of::<MaglevKey>(),
            size_of::<MaglevChunk>(),
            MAGLEV_MAX,
            NO_PREALLOC,
        ),
        AFFINITY_MAP => l(
            MapType::LruHash,
            size_of::<AffinityKey>(),
            size_of::<AffinityValue>(),
            AFFINITY_MAX,
            0,
        ),
        SOCK_REVNAT_MAP => l(
            MapType::LruHash,
            size_of::<SockRevNatKey>(),
            size_of::<SockRevNatValue>(),
            SOCK_REVNAT_MAX,
            0,
        ),
        CT_MAP => l(
            MapType::LruHash,
            size_of::<CtKey>(),
            size_of::<CtValue>(),
            CT_MAX,
            0,
        ),
        STATS_MAP => l(
            MapType::PerCpuArray,
            size_of::<u32>(),
            size_of::<u64>(),
            STATS_LEN,
            0,
        ),
        CONFIG_MAP => l(
            MapType::Array,
            size_of::<u32>(),
            size_of::<LbConfig>(),
            1,
            0,
        ),
        _ => return None,
    })
}

/// The loaded LB programs with their maps pinned under one directory.
pub struct Datapath {
    ebpf: Ebpf,
    dir: PathBuf,
    /// Maps that were pinned with another layout and recreated empty.
    pub recreated: Vec<String>,
}

impl Datapath {
    /// Loads the programs, reusing (or creating and pinning) the maps under
    /// `dir/maps`.
    pub fn load(dir: &Path) -> Result<Self, DatapathError> {
        let object = object()?;
        ensure_bpffs(dir)?;
        let maps_dir = dir.join("maps");
        let links_dir = dir.join("links");
        for d in [&maps_dir, &links_dir] {
            fs::create_dir_all(d).map_err(io_err("creating", d))?;
        }
        let mut stale = pin::stale_maps(&maps_dir, &MAPS, expected);
        // Slots name backend ids and tables name slots: these three are
        // only consistent together, so one stale means all are rebuilt.
        let linked = [SERVICES_MAP, BACKENDS_MAP, MAGLEV_MAP];
        if stale.iter().any(|(n, _)| linked.contains(n)) {
            for name in linked {
                if !stale.iter().any(|(n, _)| *n == name) && maps_dir.join(name).exists() {
                    stale.push((name, "rebuilt with the other service maps".into()));
                }
            }
        }
        let recreated = pin::recreate(&maps_dir, stale)?;
        let mut ebpf = load_pinned(object, "LB", &maps_dir, &MAPS)?;
        for (name, _) in SOCK_PROGRAMS {
            let p: &mut CgroupSockAddr = program(&mut ebpf, name)?;
            p.load().map_err(ObjectError::program(name))?;
        }
        for (name, _, _) in TC_PROGRAMS {
            let p: &mut SchedClassifier = program(&mut ebpf, name)?;
            p.load().map_err(ObjectError::program(name))?;
        }
        Ok(Self {
            ebpf,
            dir: dir.to_path_buf(),
            recreated,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn maps_dir(&self) -> PathBuf {
        self.dir.join("maps")
    }

    /// Takes the maps for the reconciler (once).
    pub fn maps(&mut self) -> Result<AyaMaps, MapsError> {
        AyaMaps::take(&mut self.ebpf)
    }

    /// A loaded program's descriptor (for `BPF_PROG_TEST_RUN`).
    pub fn program_fd(
        &self,
        name: &'static str,
    ) -> Result<std::os::fd::BorrowedFd<'_>, DatapathError> {
        Ok(program_fd(&self.ebpf, name)?)
    }

    /// Attaches the socket programs to the cgroup v2 directory `cgroup`
    /// (and everything below it), through pinned links.
    pub fn attach_cgroup(&mut self, cgroup: &Path) -> Result<(), DatapathError> {
        let id = fs::metadata(cgroup)
            .map_err(io_err("reading cgroup", cgroup))?
            .ino();
        for (name, attach_type) in SOCK_PROGRAMS {
            let pin = self.dir.join("links").join(name);
            if self.reuse_link(name, &pin, sys::BPF_LINK_TYPE_CGROUP, id, attach_type)? {
                continue;
            }
            let file = File::open(cgroup).map_err(io_err("opening cgroup", cgroup))?;
            let p: &mut CgroupSockAddr = program(&mut self.ebpf, name)?;
            let link = p
                .attach(file, CgroupAttachMode::Single)
                .and_then(|l| p.take_link(l))
                .map_err(ObjectError::program(name))?;
            pin_link(name, fd_link(name, link)?, &pin)?;
        }
        Ok(())
    }

    /// Attaches the TC programs to `iface` (ingress and egress, TCX) in the
    /// agent's network namespace, through pinned links.
    pub fn attach_tc(&mut self, iface: &str) -> Result<(), DatapathError> {
        let ifindex = nix::net::if_::if_nametoindex(iface)
            .map_err(|e| io_err("finding interface", Path::new(iface))(e.into()))?;
        for (name, direction, attach_type) in TC_PROGRAMS {
            let pin = self.dir.join("links").join(name);
            if self.reuse_link(
                name,
                &pin,
                sys::BPF_LINK_TYPE_TCX,
                u64::from(ifindex),
                attach_type,
            )? {
                continue;
            }
            let p: &mut SchedClassifier = program(&mut self.ebpf, name)?;
            let link = p
                .attach_with_options(
                    iface,
                    direction,
                    TcAttachOptions::TcxOrder(LinkOrder::default()),
                )
                .and_then(|l| p.take_link(l))
                .map_err(ObjectError::program(name))?;
            pin_link(name, fd_link(name, link)?, &pin)?;
        }
        Ok(())
    }

    /// Adopts the link pinned at `pin` if it is attached at `want` (see
    /// [`crate::bpf::pin::reuse_link`]).
    fn reuse_link(
        &self,
        name: &'static str,
        pin: &Path,
        link_type: u32,
        target: u64,
        attach_type: u32,
    ) -> Result<bool, DatapathError> {
        let want = Target {
            link_type,
            target,
            attach_type,
        };
        Ok(reuse_link(pin, want, self.program_fd(name)?)?)
    }
}

/// Detaches the programs and forgets the state pinned under `dir` (see
/// [`pin::remove_all`]).
pub fn remove(dir: &Path) -> io::Result<()> {
    pin::remove_all(dir)
}
