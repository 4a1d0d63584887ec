//! The pipeline self-test (test builds only): a `cgroup/connect4` program
//! from its own object (`keel-probe`) that counts IPv4 connects in a cgroup
//! subtree and always allows them.

use std::{fs::File, path::Path};

use aya::{
    Ebpf,
    maps::PerCpuArray,
    programs::{CgroupAttachMode, CgroupSockAddr},
};
use keel_ebpf_common::probe::{
    PROBE_CONNECT4, PROBE_CONNECT4_LOOPBACK, PROBE_CONNECT4_PROG, PROBE_COUNTERS_MAP,
};

use super::BpfError;

static PROBE_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/keel-probe"));

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
        if PROBE_OBJECT.is_empty() {
            return Err(BpfError::NotBuilt);
        }
        let mut ebpf = Ebpf::load(PROBE_OBJECT)?;
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
