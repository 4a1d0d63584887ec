//! A named network namespace for one test, removed on drop.

use std::process::Command;

use keel_sys::ns::{NetNs, NsError};

/// A fresh named network namespace with loopback up and no other interface,
/// so nothing sent inside it can leave the machine. Deleted on drop; any
/// process the test started inside it must be ended by the test (by PID).
pub struct TestNetns {
    name: String,
    ns: NetNs,
}

impl TestNetns {
    pub fn new(what: &str) -> Result<Self, NsError> {
        let name = crate::unique(what);
        let ns = NetNs::create(&name)?;
        let guard = Self { name, ns };
        let status = guard
            .command("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "bringing lo up in {}",
            guard.name
        );
        Ok(guard)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn ns(&self) -> &NetNs {
        &self.ns
    }

    /// Runs `f` on a thread inside the namespace.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.ns.run(f).expect("entering test namespace")
    }

    /// Runs `ip ARGS…` (whitespace-separated) inside the namespace and
    /// panics if it fails: for test fixtures.
    pub fn ip(&self, args: &str) {
        let st = self
            .command("ip")
            .args(args.split_whitespace())
            .status()
            .expect("running ip");
        assert!(st.success(), "ip {args} in {}", self.name);
    }

    /// Runs `sysctl -w KEY=VALUE` inside the namespace and panics if it
    /// fails: for test fixtures.
    pub fn sysctl(&self, kv: &str) {
        let st = self
            .command("sysctl")
            .args(["-qw", kv])
            .status()
            .expect("running sysctl");
        assert!(st.success(), "sysctl {kv} in {}", self.name);
    }

    /// A command that runs inside the namespace. Unlike `ip netns exec` it
    /// keeps the host's mounts (so /sys/fs/cgroup stays visible).
    pub fn command(&self, program: &str) -> Command {
        self.ns.command(program).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        if let Err(e) = NetNs::delete(&self.name) {
            eprintln!("cleanup: deleting netns {}: {e}", self.name);
        }
    }
}
