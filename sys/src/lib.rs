//! keel-sys: the kernel plumbing keel's crates share — the CNI plugin, the
//! agent, the lab and the tests.
//!
//! - [`netlink`]: a synchronous rtnetlink layer (links, addresses, routes,
//!   neighbours; pure message builders, batched requests, kernel errors
//!   classified in one place).
//! - [`ns`]: network namespaces: create, open, delete, run a closure inside.
//! - [`command`]: a `std::process::Command` whose child enters a network
//!   namespace (and optionally a cgroup and a new session) before it execs.
//! - [`sysctl`]: the calling thread's namespace's kernel parameters.
//! - [`fs`]: replacing a file atomically (temporary file, fsync, rename).

pub mod command;
pub mod fs;
pub mod netlink;
pub mod ns;
pub mod sysctl;
