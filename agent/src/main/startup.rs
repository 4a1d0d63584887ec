//! What the binary does before the agent starts: its config file
//! (`/etc/keel/agent.yaml`, `--config-file`, `KEEL_AGENT_CONFIG`), `config
//! show`, the node IP from the default route, and the start-up checks.

use std::{net::Ipv4Addr, path::PathBuf};

use keel_agent::host::{
    checks::{self, CgroupRoot, Features, Runtime},
    probe::{Probe, Real},
    route,
};

use super::Args;

/// The agent's config file: `--config-file` (the agent's `--config` is
/// keel-control's client.json), `KEEL_AGENT_CONFIG`, else this path.
pub const CONFIG_FILE: keel_config::FileFlag = keel_config::FileFlag {
    id: "config_file",
    default_path: "/etc/keel/agent.yaml",
};

/// `keel-agent config show`: the effective flags, and what the automatic
/// ones resolve to on this host.
pub fn show(args: &Args, effective: &keel_config::Effective) -> String {
    let mut out = effective.to_yaml("keel-agent");
    if args.node_ip.is_none() {
        match node_ip() {
            Ok(ip) => out.push_str(&format!("# node-ip resolves to {ip}\n")),
            Err(e) => out.push_str(&format!("# node-ip does not resolve: {e}\n")),
        }
    }
    if args.cgroup_root == CgroupRoot::Auto {
        match checks::cgroup_root(&CgroupRoot::Auto, &Real.mountinfo()) {
            Ok(Some(r)) => out.push_str(&format!("# cgroup-root resolves to {}\n", r.display())),
            Ok(None) => {}
            Err(e) => out.push_str(&format!("# cgroup-root does not resolve: {e}\n")),
        }
    }
    out
}

/// The address of the default route's interface; without a default
/// route, the first non-loopback IPv4 address.
pub fn node_ip() -> anyhow::Result<Ipv4Addr> {
    match route::detect() {
        Ok(Some(r)) => return Ok(r.ip),
        Ok(None) => tracing::debug!("no IPv4 default route"),
        Err(e) => tracing::warn!(error = %e, "reading the default route"),
    }
    super::first_ipv4().ok_or_else(|| {
        anyhow::anyhow!("--node-ip: no default route and no non-loopback IPv4 address; pass one")
    })
}

/// Runs the start-up checks for what `args` turn on; returns the cgroup v2
/// directory the load balancer attaches to (None: it is off).
pub fn check(args: &Args, bpffs: &std::path::Path) -> anyhow::Result<Option<PathBuf>> {
    let cni_bin_dirs = args.cni_bin_dir.clone();
    let features = Features {
        node_networking: args.network_mode != keel_agent::net::plan::Mode::None,
        cgroup_root: args.cgroup_root.clone(),
        uplink: args.uplink.clone(),
        host_routing_bpf: args.host_routing == keel_agent::net::hostrouting::Mode::Bpf
            && args.network_mode != keel_agent::net::plan::Mode::None,
        bpffs: bpffs.to_path_buf(),
        cni_bin_dirs,
        cni_conf_dir: args.cni_conf_dir.clone(),
        runtime: match args.runtime.as_str() {
            "direct" => Runtime::Direct,
            "containerd" => Runtime::Containerd {
                socket: args.containerd_socket.clone(),
            },
            _ => Runtime::None,
        },
        bpf_built: keel_agent::bpf::built(),
        masquerade: args.masquerade,
        path: std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default(),
    };
    checks::check(&features, &Real).map_err(|e| anyhow::anyhow!("keel-agent cannot start: {e}"))?;
    checks::cgroup_root(&args.cgroup_root, &Real.mountinfo()).map_err(anyhow::Error::msg)
}
