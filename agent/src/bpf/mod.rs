//! The BPF objects built from `ebpf/programs` and embedded at build time
//! (`keel-ebpf`: the load balancer; `keel-net`: host routing), and what both
//! datapaths share: loading an object with pinned maps and finding its
//! programs ([`object`]), pins on bpffs ([`pin`]) and the `bpf(2)` commands
//! aya lacks ([`sys`]). Test builds also carry the self-test program that
//! proves the build → embed → load → attach path ([`probe`]).

pub mod object;
pub mod pin;
#[cfg(any(test, feature = "testing"))]
pub mod probe;
pub mod sys;

#[cfg(any(test, feature = "testing"))]
pub use probe::{Probe, ProbeCounts};

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

/// Whether this build embeds its BPF programs (the load balancer's and
/// host routing's).
pub fn built() -> bool {
    !OBJECT.is_empty() && !NET_OBJECT.is_empty()
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
