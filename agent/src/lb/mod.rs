//! Service load balancing, the agent's side: Services and Endpoints in,
//! BPF maps out (the programs are in `ebpf/programs/src/lb`).
//!
//! - [`model`]: one Service + its Endpoints → frontends and ready backends.
//! - [`desired`]: those frontends for every Service, kept incrementally.
//! - [`maglev`]: Maglev tables for TC frontends.
//! - [`observed`]: what the maps hold, mirrored in memory.
//! - [`plan`]: the pure delta between the two.
//! - [`apply`]: the only writer of the maps.
//! - [`maps`]: the kernel boundary (`LbMaps`, aya and fake implementations).
//! - [`datapath`]: loading, pinning and attaching the programs.
//! - [`reconcile`]: the loop that ties it together (single writer,
//!   retries with backoff, periodic resync, status).
//! - [`api`] and [`dump`]: the local API's `/lb/*` routes.

/// The map types shared with the BPF programs (re-exported for tests and tools).
pub use keel_ebpf_common::lb as common;

pub mod apply;
pub mod datapath;
pub mod desired;
pub mod maglev;
pub mod maps;
pub mod model;
pub mod observed;
pub mod plan;
pub mod sys;

#[cfg(test)]
mod testutil;
