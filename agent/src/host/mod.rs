//! What the agent finds out about the host it runs on before doing
//! anything: its mounts (the cgroup v2 root for the load balancer, bpffs),
//! its default route (the node IP and uplink when none is given), and
//! whether the features the flags turn on can work here ([`checks`]).
//!
//! Reading is split from judging: the parsers and the checks are pure and
//! unit-tested on fake `/proc` text; [`probe::Real`] reads the host.

pub mod checks;
pub mod mountinfo;
pub mod probe;
pub mod route;
