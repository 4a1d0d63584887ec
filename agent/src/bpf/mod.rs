//! The BPF objects built from `ebpf/programs` and embedded at build time
//! (`keel-ebpf`: the load balancer and the self-test probe; `keel-net`:
//! host routing), the self-test program that proves the build → embed →
//! load → attach path, and what both datapaths share: loading an object
//! with pinned maps and finding its programs ([`object`]), pins on bpffs
//! ([`pin`]) and the `bpf(2)` commands aya lacks ([`sys`]).

pub mod object;
pub mod pin;
pub mod sys;

use std::{fs::File, path::Path};

use aya::{
    Ebpf,
    maps::PerCpuArray,
    programs::{CgroupAttachMode, CgroupSockAddr},
};
use keel_ebpf_common::probe::{
    PROBE_CONNECT4, PROBE_CONNECT4_LOOPBACK, PROBE_CONNECT4_PROG, PROBE_COUNTERS_MAP,
};

/// The BPF ELF objects; empty when the agent was built without the BPF toolchain.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/keel-ebpf"));
static NET_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/keel-net"));

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error(
        "this keel-agent was built without its BPF programs (no bpf-linker or nightly rust-src at build time); run `cargo xtask setup` and rebuild"
    )]
    NotBuilt,
    #[error("loading the BPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("BPF program {name}: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("BPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("BPF object has no {kind} named {name}")]
    Missing {
        kind: &'static str,
        name: &'static str,
    },
    #[error("opening cgroup {path}: {source}")]
    Cgroup {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The embedded load-balancer object, or [`BpfError::NotBuilt`].
pub fn object() -> Result<&'static [u8], BpfError> {
    if OBJECT.is_empty() {
        Err(BpfError::NotBuilt)
    } else {
        Ok(OBJECT)
    }
}

/// The embedded host-routing object, or [`BpfError::NotBuilt`].
pub fn net_object() -> Result<&'static [u8], BpfError> {
    if NET_OBJECT.is_empty() {
        Err(BpfError::NotBuilt)
    } else {
        Ok(NET_OBJECT)
    }
}

/// The self-test `cgroup/connect4` program attached to one cgroup v2 directory.
/// Detached and unloaded on drop.
pub struct Probe {
    ebpf: Ebpf,
}

/// What [`Probe`] counted, summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeCounts {
    pub connects: u64,
    pub loopback_connects: u64,
}

impl Probe {
    /// Loads the program and attaches it to `cgroup` (a cgroup v2 directory).
    pub fn attach(cgroup: &Path) -> Result<Self, BpfError> {
        let mut ebpf = Ebpf::load(object()?)?;
        let file = File::open(cgroup).map_err(|source| BpfError::Cgroup {
            path: cgroup.display().to_string(),
            source,
        })?;
        let name = PROBE_CONNECT4_PROG;
        let program: &mut CgroupSockAddr = ebpf
            .program_mut(name)
            .ok_or(BpfError::Missing {
                kind: "program",
                name,
            })?
            .try_into()
            .map_err(|source| BpfError::Program { name, source })?;
        program
            .load()
            .map_err(|source| BpfError::Program { name, source })?;
        // With BPF links (kernel >= 5.7, which aya uses) the kernel requires
        // flags == 0 and every link coexists with others, so "Single" here
        // does not exclude other programs on the same cgroup.
        program
            .attach(file, CgroupAttachMode::Single)
            .map_err(|source| BpfError::Program { name, source })?;
        Ok(Self { ebpf })
    }

    pub fn counts(&self) -> Result<ProbeCounts, BpfError> {
        let name = PROBE_COUNTERS_MAP;
        let map = self
            .ebpf
            .map(name)
            .ok_or(BpfError::Missing { kind: "map", name })?;
        let counters: PerCpuArray<_, u64> =
            PerCpuArray::try_from(map).map_err(|source| BpfError::Map { name, source })?;
        let sum = |index| -> Result<u64, BpfError> {
            let values = counters
                .get(&index, 0)
                .map_err(|source| BpfError::Map { name, source })?;
            Ok(values.iter().sum())
        };
        Ok(ProbeCounts {
            connects: sum(PROBE_CONNECT4)?,
            loopback_connects: sum(PROBE_CONNECT4_LOOPBACK)?,
        })
    }
}
