//! The kernel side of host routing: the `keel-net` object loaded against
//! maps pinned under the node's bpffs directory, its TCX links pinned one
//! per device, and the [`HostDatapath`] trait the reconciler drives (with
//! an in-memory fake for unit tests).
//!
//! ```text
//! <dir>/maps/KEEL_NET_CIDRS …     the maps (reused by the next agent)
//! <dir>/links/from_pod-<ifindex>  one link per pod veth, to_pod-<ifindex>
//!                                 on the uplink and the VXLAN device
//! ```
//!
//! A restarted agent swaps the program behind every pinned link for its
//! own (`BPF_LINK_UPDATE`, atomic), so forwarding never pauses.

use std::{
    collections::BTreeMap,
    fs, io,
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf,
    maps::{HashMap as AyaHashMap, Map, MapData, MapType, PerCpuArray, lpm_trie},
    programs::{LinkOrder, SchedClassifier, TcAttachType, tc},
};
use ipnet::Ipv4Net;
use keel_ebpf_common::net::{
    self as common, CIDRS_MAP, CIDRS_MAX, CidrValue, ENDPOINTS_MAP, ENDPOINTS_MAX, MAPS, STATS,
    STATS_LEN, STATS_MAP,
};

use super::plan::{Endpoint, Observed, ObservedLink, Op, Prog, parse_pin};
use crate::bpf::{
    BpfError, net_object,
    object::{ObjectError, fd_link, load_pinned, program, program_fd},
    pin::{self, Layout, NO_PREALLOC, PinError, Target},
    sys,
};

#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error(transparent)]
    Bpf(#[from] BpfError),
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error("BPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
    #[error("attaching {prog} to {dev}: it is now #{got}, not #{want}; retrying")]
    Moved {
        prog: &'static str,
        dev: String,
        got: u64,
        want: u32,
    },
}

fn map_err(name: &'static str) -> impl FnOnce(aya::maps::MapError) -> DatapathError {
    move |source| DatapathError::Map {
        name,
        source: Box::new(source),
    }
}

/// The reconciler's view of the kernel.
pub trait HostDatapath {
    fn observe(&mut self) -> Result<Observed, DatapathError>;
    fn apply(&mut self, op: &Op) -> Result<(), DatapathError>;
    /// Counters summed over CPUs, by [`STATS`] name.
    fn stats(&mut self) -> Result<BTreeMap<&'static str, u64>, DatapathError>;
}

/// The layout each map must have.
fn expected(name: &str) -> Option<Layout> {
    use std::mem::size_of;
    let (ty, key, value, max, flags) = match name {
        CIDRS_MAP => (
            MapType::LpmTrie,
            size_of::<lpm_trie::Key<u32>>(),
            size_of::<CidrValue>(),
            CIDRS_MAX,
            NO_PREALLOC,
        ),
        ENDPOINTS_MAP => (
            MapType::Hash,
            size_of::<u32>(),
            size_of::<common::Endpoint>(),
            ENDPOINTS_MAX,
            NO_PREALLOC,
        ),
        STATS_MAP => (
            MapType::PerCpuArray,
            size_of::<u32>(),
            size_of::<u64>(),
            STATS_LEN,
            0,
        ),
        _ => return None,
    };
    Some(Layout {
        ty,
        key,
        value,
        max,
        flags,
    })
}

fn tcx_ingress(ifindex: u32) -> Target {
    Target {
        link_type: sys::BPF_LINK_TYPE_TCX,
        target: u64::from(ifindex),
        attach_type: sys::BPF_TCX_INGRESS,
    }
}

/// The maps, typed.
struct Maps {
    cidrs: lpm_trie::LpmTrie<MapData, u32, CidrValue>,
    endpoints: AyaHashMap<MapData, u32, common::Endpoint>,
    stats: PerCpuArray<MapData, u64>,
}

impl Maps {
    fn from(mut get: impl FnMut(&'static str) -> Option<Map>) -> Result<Self, DatapathError> {
        let mut take = |name| get(name).ok_or(ObjectError::Missing(name));
        Ok(Self {
            cidrs: lpm_trie::LpmTrie::try_from(take(CIDRS_MAP)?).map_err(map_err(CIDRS_MAP))?,
            endpoints: AyaHashMap::try_from(take(ENDPOINTS_MAP)?)
                .map_err(map_err(ENDPOINTS_MAP))?,
            stats: PerCpuArray::try_from(take(STATS_MAP)?).map_err(map_err(STATS_MAP))?,
        })
    }

    /// Opens the maps pinned under `maps_dir` (for dumps, beside the
    /// reconciler).
    fn open_pinned(maps_dir: &Path) -> Result<Self, DatapathError> {
        let mut err = None;
        let maps = Self::from(|name| {
            let path = maps_dir.join(name);
            match MapData::from_pin(&path).and_then(Map::from_map_data) {
                Ok(m) => Some(m),
                Err(e) => {
                    err.get_or_insert(DatapathError::Map {
                        name,
                        source: Box::new(e),
                    });
                    None
                }
            }
        });
        match (maps, err) {
            (_, Some(e)) => Err(e),
            (m, None) => m,
        }
    }

    fn cidrs(&self) -> Result<BTreeMap<Ipv4Net, u32>, DatapathError> {
        let mut out = BTreeMap::new();
        for entry in self.cidrs.iter() {
            let (k, v) = entry.map_err(map_err(CIDRS_MAP))?;
            let addr = Ipv4Addr::from(k.data().to_ne_bytes());
            if let Ok(net) = Ipv4Net::new(addr, k.prefix_len() as u8) {
                out.insert(net, v.flags);
            }
        }
        Ok(out)
    }

    fn endpoints(&self) -> Result<BTreeMap<Ipv4Addr, Endpoint>, DatapathError> {
        let mut out = BTreeMap::new();
        for entry in self.endpoints.iter() {
            let (k, v) = entry.map_err(map_err(ENDPOINTS_MAP))?;
            out.insert(
                Ipv4Addr::from(k.to_ne_bytes()),
                Endpoint {
                    ifindex: v.ifindex,
                    mtu: v.mtu,
                    pod_mac: v.pod_mac,
                    host_mac: v.host_mac,
                },
            );
        }
        Ok(out)
    }

    fn stats(&self) -> Result<BTreeMap<&'static str, u64>, DatapathError> {
        let mut out = BTreeMap::new();
        for (i, name) in STATS.iter().enumerate() {
            let v = self.stats.get(&(i as u32), 0).map_err(map_err(STATS_MAP))?;
            out.insert(*name, v.iter().sum());
        }
        Ok(out)
    }
}

fn cidr_key(c: &Ipv4Net) -> lpm_trie::Key<u32> {
    lpm_trie::Key::new(
        u32::from(c.prefix_len()),
        u32::from_ne_bytes(c.network().octets()),
    )
}

/// The loaded programs with their maps and links pinned under one directory.
pub struct NetDatapath {
    ebpf: Ebpf,
    dir: PathBuf,
    maps: Maps,
    /// Maps that were pinned with another layout and recreated empty.
    pub recreated: Vec<String>,
    /// Pinned links whose program was swapped for this agent's at load.
    pub adopted: usize,
}

impl NetDatapath {
    /// Loads the programs against the maps pinned under `dir/maps`
    /// (creating them if absent) and adopts every pinned link that is still
    /// attached where its name says.
    pub fn load(dir: &Path) -> Result<Self, DatapathError> {
        let object = net_object()?;
        pin::ensure_bpffs(dir)?;
        let (maps_dir, links_dir) = (dir.join("maps"), dir.join("links"));
        for d in [&maps_dir, &links_dir] {
            fs::create_dir_all(d).map_err(pin::io_err("creating", d))?;
        }
        let recreated = pin::recreate(&maps_dir, pin::stale_maps(&maps_dir, &MAPS, expected))?;
        let mut ebpf = load_pinned(object, "host-routing", &maps_dir, &MAPS)?;
        for prog in Prog::ALL {
            classifier(&mut ebpf, prog)?
                .load()
                .map_err(ObjectError::program(prog.name()))?;
        }
        let maps = Maps::from(|name| ebpf.take_map(name))?;
        let mut dp = Self {
            ebpf,
            dir: dir.to_path_buf(),
            maps,
            recreated,
            adopted: 0,
        };
        dp.adopt()?;
        Ok(dp)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A loaded program's descriptor (for `BPF_PROG_TEST_RUN`).
    pub fn program_fd(&self, prog: Prog) -> Result<std::os::fd::BorrowedFd<'_>, DatapathError> {
        Ok(program_fd(&self.ebpf, prog.name())?)
    }

    fn links_dir(&self) -> PathBuf {
        self.dir.join("links")
    }

    /// Swaps our programs into the links an earlier agent pinned; pins that
    /// no longer fit (device gone, foreign name) are left to the plan.
    fn adopt(&mut self) -> Result<(), DatapathError> {
        for name in pin_names(&self.links_dir())? {
            let Some((prog, ifindex)) = parse_pin(&name) else {
                continue;
            };
            let fd = program_fd(&self.ebpf, prog.name())?;
            if pin::reuse_link(&self.links_dir().join(&name), tcx_ingress(ifindex), fd)? {
                self.adopted += 1;
            }
        }
        Ok(())
    }

    fn attach(
        &mut self,
        pin_path: &Path,
        prog: Prog,
        ifindex: u32,
        dev: &str,
    ) -> Result<(), DatapathError> {
        // to_pod goes before any other ingress program on the uplink (the
        // load balancer's passes what it does not translate, which in TCX
        // ends the chain); from_pod is alone on a pod's veth.
        let order = match prog {
            Prog::ToPod => LinkOrder::first(),
            Prog::FromPod => LinkOrder::default(),
        };
        let p = classifier(&mut self.ebpf, prog)?;
        let err = ObjectError::program(prog.name());
        let id = p
            .attach_with_options(
                dev,
                TcAttachType::Ingress,
                tc::TcAttachOptions::TcxOrder(order),
            )
            .map_err(err)?;
        let link = p.take_link(id).map_err(err)?;
        let link = fd_link(prog.name(), link)?;
        pin::unpin(pin_path)?;
        pin::pin_link(prog.name(), link, pin_path)?;
        let pinned = sys::obj_get(pin_path).map_err(pin::io_err("opening new link", pin_path))?;
        let info = sys::link_info(std::os::fd::AsFd::as_fd(&pinned))
            .map_err(pin::io_err("reading new link", pin_path))?;
        if info.target != u64::from(ifindex) {
            // The name now belongs to another device: unpinning detaches
            // the link, and the next pass sees the new ifindex.
            pin::unpin(pin_path)?;
            return Err(DatapathError::Moved {
                prog: prog.name(),
                dev: dev.to_string(),
                got: info.target,
                want: ifindex,
            });
        }
        Ok(())
    }
}

impl HostDatapath for NetDatapath {
    fn observe(&mut self) -> Result<Observed, DatapathError> {
        Ok(Observed {
            cidrs: self.maps.cidrs()?,
            endpoints: self.maps.endpoints()?,
            links: observe_links(&self.links_dir())?,
        })
    }

    fn apply(&mut self, op: &Op) -> Result<(), DatapathError> {
        match op {
            Op::Detach(pin_name) => pin::unpin(&self.links_dir().join(pin_name))?,
            Op::DelEndpoint(a) => match self.maps.endpoints.remove(&u32::from_ne_bytes(a.octets()))
            {
                Err(aya::maps::MapError::KeyNotFound) => {}
                r => r.map_err(map_err(ENDPOINTS_MAP))?,
            },
            // An update in place: a lookup sees the old entry or the new.
            Op::PutEndpoint(a, e) => self
                .maps
                .endpoints
                .insert(
                    u32::from_ne_bytes(a.octets()),
                    common::Endpoint {
                        ifindex: e.ifindex,
                        mtu: e.mtu,
                        pod_mac: e.pod_mac,
                        host_mac: e.host_mac,
                    },
                    0,
                )
                .map_err(map_err(ENDPOINTS_MAP))?,
            Op::DelCidr(c) => match self.maps.cidrs.remove(&cidr_key(c)) {
                Err(aya::maps::MapError::KeyNotFound) => {}
                r => r.map_err(map_err(CIDRS_MAP))?,
            },
            Op::PutCidr(c, flags) => self
                .maps
                .cidrs
                .insert(&cidr_key(c), CidrValue { flags: *flags }, 0)
                .map_err(map_err(CIDRS_MAP))?,
            Op::Attach { pin: name, at } => {
                let path = self.links_dir().join(name);
                self.attach(&path, at.prog, at.ifindex, &at.dev)?
            }
        }
        Ok(())
    }

    fn stats(&mut self) -> Result<BTreeMap<&'static str, u64>, DatapathError> {
        self.maps.stats()
    }
}

fn classifier(ebpf: &mut Ebpf, prog: Prog) -> Result<&mut SchedClassifier, ObjectError> {
    program(ebpf, prog.name())
}

fn pin_names(dir: &Path) -> Result<Vec<String>, DatapathError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(pin::io_err("listing", dir)(e).into()),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// Every link pinned in `dir`, as the kernel reports it.
fn observe_links(dir: &Path) -> Result<BTreeMap<String, ObservedLink>, DatapathError> {
    let mut out = BTreeMap::new();
    for name in pin_names(dir)? {
        let path = dir.join(&name);
        let fd = match sys::obj_get(&path) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            // Not a link (or unreadable): report it nowhere, so it is removed.
            Err(_) => {
                out.insert(
                    name,
                    ObservedLink {
                        ifindex: 0,
                        ingress: false,
                    },
                );
                continue;
            }
        };
        let info = sys::link_info(std::os::fd::AsFd::as_fd(&fd))
            .map_err(pin::io_err("reading pinned link", &path))?;
        let tcx = info.link_type == sys::BPF_LINK_TYPE_TCX;
        out.insert(
            name,
            ObservedLink {
                ifindex: if tcx { info.target as u32 } else { 0 },
                ingress: tcx && info.attach_type == sys::BPF_TCX_INGRESS,
            },
        );
    }
    Ok(out)
}

/// What the pinned state holds, for the local API: read from the pins
/// themselves, beside (never through) the reconciler.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub cidrs: BTreeMap<String, u32>,
    /// Pod address → entry.
    pub endpoints: BTreeMap<Ipv4Addr, Endpoint>,
    /// Pin name → ifindex it is attached to (0: detached).
    pub links: BTreeMap<String, u32>,
    pub stats: BTreeMap<&'static str, u64>,
}

pub fn snapshot(dir: &Path) -> Result<Snapshot, DatapathError> {
    let maps = Maps::open_pinned(&dir.join("maps"))?;
    Ok(Snapshot {
        cidrs: maps
            .cidrs()?
            .into_iter()
            .map(|(c, f)| (c.to_string(), f))
            .collect(),
        endpoints: maps.endpoints()?,
        links: observe_links(&dir.join("links"))?
            .into_iter()
            .map(|(n, l)| (n, l.ifindex))
            .collect(),
        stats: maps.stats()?,
    })
}

/// Detaches everything and forgets the state pinned under `dir` (see
/// [`pin::remove_all`]).
pub fn remove(dir: &Path) -> io::Result<()> {
    pin::remove_all(dir)
}

/// An in-memory [`HostDatapath`] for unit tests: applies ops to an
/// [`Observed`], and can be told to fail.
#[cfg(test)]
#[derive(Default)]
pub struct FakeDatapath {
    pub state: Observed,
    pub applied: Vec<Op>,
    /// Fail the next this many `apply` calls.
    pub fail: usize,
}

#[cfg(test)]
impl HostDatapath for FakeDatapath {
    fn observe(&mut self) -> Result<Observed, DatapathError> {
        Ok(self.state.clone())
    }

    fn apply(&mut self, op: &Op) -> Result<(), DatapathError> {
        if self.fail > 0 {
            self.fail -= 1;
            return Err(ObjectError::Missing("a working fake").into());
        }
        self.applied.push(op.clone());
        let s = &mut self.state;
        match op {
            Op::Detach(p) => {
                s.links.remove(p);
            }
            Op::DelEndpoint(a) => {
                s.endpoints.remove(a);
            }
            Op::PutEndpoint(a, e) => {
                s.endpoints.insert(*a, *e);
            }
            Op::DelCidr(c) => {
                s.cidrs.remove(c);
            }
            Op::PutCidr(c, f) => {
                s.cidrs.insert(*c, *f);
            }
            Op::Attach { pin, at } => {
                s.links.insert(
                    pin.clone(),
                    ObservedLink {
                        ifindex: at.ifindex,
                        ingress: true,
                    },
                );
            }
        }
        Ok(())
    }

    fn stats(&mut self) -> Result<BTreeMap<&'static str, u64>, DatapathError> {
        Ok(STATS.iter().map(|n| (*n, 0)).collect())
    }
}
