//! The self-test program's map: proves the build → embed → load → attach
//! pipeline and that a cgroup hook sees the sockets of its subtree.

/// Name of the per-CPU counter array written by `keel_probe_connect4`.
pub const PROBE_COUNTERS_MAP: &str = "KEEL_PROBE";
/// Name of the cgroup/connect4 self-test program.
pub const PROBE_CONNECT4_PROG: &str = "keel_probe_connect4";

/// Index in [`PROBE_COUNTERS_MAP`]: IPv4 `connect()` calls seen.
pub const PROBE_CONNECT4: u32 = 0;
/// Index in [`PROBE_COUNTERS_MAP`]: of those, calls to a loopback address.
pub const PROBE_CONNECT4_LOOPBACK: u32 = 1;
/// Number of entries in [`PROBE_COUNTERS_MAP`].
pub const PROBE_COUNTERS_LEN: u32 = 2;
