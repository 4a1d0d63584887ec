//! keel's benchmark suites. Each suite measures keel side by side with its
//! baseline in the same run, prints a table (ratios, not just absolute
//! times) and writes the same rows as JSON to target/bench/<suite>.json.
//! Every loop is bounded in count and time.

pub mod agent;
pub mod api;
pub mod cni;
pub mod dns;
pub mod lb;
pub mod lb_lab;
pub mod lb_rules;
pub mod net;
pub mod report;
pub mod runtime;
pub mod runtime_pods;
pub mod stats;

pub use report::Table;
pub use stats::Samples;

/// A suite: its name on the command line, a one-line description, and the
/// function that runs it (arguments after the suite name).
pub struct Suite {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(&[String]) -> anyhow::Result<()>,
}

/// Every suite `keel-bench` (and `cargo xtask bench`) knows.
pub fn suites() -> Vec<Suite> {
    vec![
        Suite {
            name: "agent",
            about: "keel-agent's own cost vs another build of it (--baseline PATH), side by side in one lab: pod startup, idle pods (CPU, runtime calls, wake-ups), 10k Services (programming time, memory), Endpoints change latency",
            run: agent::run,
        },
        Suite {
            name: "api",
            about: "keel-control: creates/s (1 vs 64 clients), watch fan-out latency, memory at 10k Services + 50k Pods",
            run: api::run,
        },
        Suite {
            name: "lb",
            about: "Service programming on a node: keel BPF maps vs kube-proxy-equivalent iptables and nftables, cold and per change, at 1/1k/10k Services",
            run: lb::run,
        },
        Suite {
            name: "cni",
            about: "keel-cni vs Debian ptp+host-local: ADD/DEL p50/p99 one at a time, 50-pod parallel bursts",
            run: cni::run,
        },
        Suite {
            name: "runtime",
            about: "one container create→start→exit: keel's direct libcontainer path vs Debian runc and crun on the same bundle",
            run: runtime::run,
        },
        Suite {
            name: "pods",
            about: "pod startup in the lab: 1, 10, 50 pods at once, create → Ready p50/p99 (keel-agent --runtime direct)",
            run: runtime_pods::run,
        },
        Suite {
            name: "dns",
            about: "cluster DNS on a node: keel-agent vs dnsmasq with the same records, both on one core: queries/s and p50/p99 for Service names and cached outside names (dnsperf)",
            run: dns::run,
        },
        Suite {
            name: "net",
            about: "pod-to-pod throughput and latency per mode vs the underlay; node join/leave propagation",
            run: net::run,
        },
    ]
}
