//! Support for keel's integration tests: unique names, namespace and cgroup
//! guards that clean up on success and on failure, the sweeper, and paths to
//! the workspace's binaries.
//!
//! Every guard removes what it made in `Drop`; `cargo xtask sweep` removes
//! whatever a killed test left behind, by keel's name prefix.

pub mod bench;
pub mod bpffs;
pub mod cgroup;
pub mod cni;
pub mod containerd;
pub mod etcd;
pub mod labnet;
pub mod lb;
pub mod lb_node;
pub mod names;
pub mod netns;
pub mod packet;
pub mod podman;
pub mod probe;
pub mod process;
pub mod prog_run;
pub mod runtime;
pub mod sweep;

pub use bpffs::TestBpffs;
pub use cgroup::TestCgroup;
pub use names::unique;
pub use netns::TestNetns;

/// Fails the test unless it runs as root: keel's integration tests need
/// namespaces, cgroups and BPF, and must not pass by skipping them.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "keel integration tests need root (namespaces, cgroups, BPF); run them with `cargo xtask test` as root"
    );
}
