//! The lab's shape, decided before anything is created (pure, unit-tested):
//! namespaces, addresses and who sits on which L2 segment.
//!
//! ```text
//!   segment 0: 172.30.0.0/24 (bridge in keel-lab-N-seg0)     segment 1: 172.30.1.0/24 …
//!     .1 router   .2 control   .3 ext   .10+i nodes            .1 router   .10+i nodes
//!     with `--control-replicas N --store etcd`: .2 and .4+i more keel-control
//!     replicas (control, control-2 …), .100+i etcd members (etcd-1 …)
//!   router (keel-lab-N-router): one leg per segment, forwards between them,
//!   and one to the outside; it has no other link, so nothing can leave the
//!   machine.
//!   outside (keel-lab-N-outside): 203.0.113.10 and .200 (TEST-NET-3) on its
//!   own link to the router (.1), standing for the internet: it routes only
//!   the fabric's subnets back through the router, never a pod CIDR, so a
//!   reply to a pod's own address dies there (pods reach it SNATed).
//! ```

use std::{fmt, net::Ipv4Addr, str::FromStr};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// Every name the lab creates starts with this, then the lab's name.
pub const PREFIX: &str = "keel-lab";

/// How pods on different nodes reach each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Vxlan,
    Route,
    Vpc,
    Auto,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Vxlan, Mode::Route, Mode::Vpc, Mode::Auto];

    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Vxlan => "vxlan",
            Mode::Route => "route",
            Mode::Vpc => "vpc",
            Mode::Auto => "auto",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("mode {s:?} is not vxlan, route, vpc or auto"))
    }
}

/// What `keelctl lab up` was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub name: String,
    pub nodes: usize,
    pub mode: Mode,
    pub segments: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: &'static str,
    pub message: String,
}

impl Spec {
    pub fn validate(&self) -> Result<(), SpecError> {
        let err = |field, message: String| Err(SpecError { field, message });
        let n = &self.name;
        // Namespace names carry the lab name; link names do not, so the only
        // limit is readability and the netns name length.
        if n.is_empty()
            || n.len() > 20
            || !n
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return err(
                "--name",
                format!("{n:?} must be 1-20 lowercase letters, digits or '-'"),
            );
        }
        if !(1..=50).contains(&self.nodes) {
            return err("--nodes", format!("{} is not between 1 and 50", self.nodes));
        }
        if !(1..=8).contains(&self.segments) {
            return err(
                "--segments",
                format!("{} is not between 1 and 8", self.segments),
            );
        }
        if self.segments > self.nodes {
            return err(
                "--segments",
                format!(
                    "{} segments need at least as many nodes (got {})",
                    self.segments, self.nodes
                ),
            );
        }
        Ok(())
    }
}

/// Where the lab's keel-control keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    /// One redb file in the (single) replica's data directory.
    #[default]
    Redb,
    /// An etcd cluster of as many members as there are replicas.
    Etcd,
}

impl Store {
    pub fn as_str(&self) -> &'static str {
        match self {
            Store::Redb => "redb",
            Store::Etcd => "etcd",
        }
    }
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Store {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "redb" => Ok(Store::Redb),
            "etcd" => Ok(Store::Etcd),
            _ => Err(format!("store {s:?} is not redb or etcd")),
        }
    }
}

/// The lab's control plane: how many keel-control replicas, on which store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlPlane {
    pub replicas: usize,
    pub store: Store,
}

impl Default for ControlPlane {
    fn default() -> Self {
        Self {
            replicas: 1,
            store: Store::Redb,
        }
    }
}

/// The most keel-control replicas (and etcd members) a lab runs.
pub const MAX_CONTROL_REPLICAS: usize = 5;

impl ControlPlane {
    pub fn validate(&self) -> Result<(), SpecError> {
        let err = |field, message: String| Err(SpecError { field, message });
        if !(1..=MAX_CONTROL_REPLICAS).contains(&self.replicas) {
            return err(
                "--control-replicas",
                format!(
                    "{} is not between 1 and {MAX_CONTROL_REPLICAS}",
                    self.replicas
                ),
            );
        }
        if self.replicas > 1 && self.store != Store::Etcd {
            return err(
                "--control-replicas",
                format!(
                    "{} replicas need --store etcd (redb is one file of one replica)",
                    self.replicas
                ),
            );
        }
        Ok(())
    }
}

/// One namespace of the lab with its address on the fabric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// `control`, `ext`, `node-3`.
    pub role: String,
    pub netns: String,
    pub segment: usize,
    pub ip: Ipv4Addr,
    pub gateway: Ipv4Addr,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub spec: Spec,
    pub segments: Vec<Segment>,
    pub router: String,
    pub control: Host,
    pub ext: Host,
    pub outside: Outside,
    pub nodes: Vec<Host>,
    pub cluster_cidr: Ipv4Net,
    pub service_cidr: Ipv4Net,
    /// Replicas and store (older state files: one replica on redb).
    #[serde(default)]
    pub control_plane: ControlPlane,
    /// keel-control replicas beyond [`Topology::control`] (`control-2` …).
    #[serde(default)]
    pub more_controls: Vec<Host>,
    /// etcd members (`etcd-1` …), with `--store etcd`.
    #[serde(default)]
    pub etcd: Vec<Host>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub netns: String,
    pub subnet: Ipv4Net,
    /// The router's address on this segment (every host's gateway).
    pub router_ip: Ipv4Addr,
}

/// The host beyond the router standing for the internet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outside {
    pub netns: String,
    /// The link between it and the router.
    pub subnet: Ipv4Net,
    /// The router's address on that link.
    pub router_ip: Ipv4Addr,
    /// Its addresses: the first for servers pods reach SNATed, the second
    /// in [`Outside::SPARE_CIDR`], for a `--non-masquerade-cidr`.
    pub ips: [Ipv4Addr; 2],
}

impl Outside {
    /// The upper half of the outside link, holding its second address.
    pub const SPARE_CIDR: &str = "203.0.113.128/25";
}

/// Port keel-control listens on in the lab.
pub const CONTROL_PORT: u16 = 6443;
/// etcd's client and peer ports on each member's address.
pub const ETCD_CLIENT_PORT: u16 = 2379;
pub const ETCD_PEER_PORT: u16 = 2380;

pub fn netns_prefix(lab: &str) -> String {
    format!("{PREFIX}-{lab}")
}

impl Topology {
    /// The default control plane: one replica on redb.
    pub fn plan(spec: &Spec) -> Result<Self, SpecError> {
        Self::plan_with(spec, &ControlPlane::default())
    }

    pub fn plan_with(spec: &Spec, control_plane: &ControlPlane) -> Result<Self, SpecError> {
        spec.validate()?;
        control_plane.validate()?;
        let p = netns_prefix(&spec.name);
        let segments: Vec<Segment> = (0..spec.segments)
            .map(|s| Segment {
                netns: format!("{p}-seg{s}"),
                subnet: Ipv4Net::new(Ipv4Addr::new(172, 30, s as u8, 0), 24).expect("valid"),
                router_ip: Ipv4Addr::new(172, 30, s as u8, 1),
            })
            .collect();
        let host = |role: String, segment: usize, last: u8| Host {
            netns: format!("{p}-{role}"),
            role,
            segment,
            ip: Ipv4Addr::new(172, 30, segment as u8, last),
            gateway: segments[segment].router_ip,
        };
        let nodes = (1..=spec.nodes)
            .map(|i| host(format!("node-{i}"), (i - 1) % spec.segments, 10 + i as u8))
            .collect();
        // .3 is ext and .11-.60 the nodes: replicas take .4-.7, etcd .101-.105.
        let more_controls = (2..=control_plane.replicas)
            .map(|i| host(format!("control-{i}"), 0, 2 + i as u8))
            .collect();
        let etcd = match control_plane.store {
            Store::Redb => Vec::new(),
            Store::Etcd => (1..=control_plane.replicas)
                .map(|i| host(format!("etcd-{i}"), 0, 100 + i as u8))
                .collect(),
        };
        Ok(Self {
            spec: spec.clone(),
            router: format!("{p}-router"),
            control: host("control".into(), 0, 2),
            ext: host("ext".into(), 0, 3),
            outside: Outside {
                netns: format!("{p}-outside"),
                subnet: "203.0.113.0/24".parse().expect("valid"),
                router_ip: Ipv4Addr::new(203, 0, 113, 1),
                ips: [
                    Ipv4Addr::new(203, 0, 113, 10),
                    Ipv4Addr::new(203, 0, 113, 200),
                ],
            },
            nodes,
            segments,
            cluster_cidr: "10.244.0.0/16".parse().expect("valid"),
            service_cidr: "10.96.0.0/16".parse().expect("valid"),
            control_plane: *control_plane,
            more_controls,
            etcd,
        })
    }

    /// Every namespace, in creation order.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v: Vec<String> = self.segments.iter().map(|s| s.netns.clone()).collect();
        v.push(self.router.clone());
        v.push(self.control.netns.clone());
        v.extend(self.more_controls.iter().map(|h| h.netns.clone()));
        v.extend(self.etcd.iter().map(|h| h.netns.clone()));
        v.push(self.ext.netns.clone());
        v.push(self.outside.netns.clone());
        v.extend(self.nodes.iter().map(|n| n.netns.clone()));
        v
    }

    /// The first replica's URL.
    pub fn control_url(&self) -> String {
        format!("https://{}:{CONTROL_PORT}", self.control.ip)
    }

    /// Every keel-control replica, the first being [`Topology::control`].
    pub fn controls(&self) -> Vec<&Host> {
        std::iter::once(&self.control)
            .chain(&self.more_controls)
            .collect()
    }

    /// Every replica's URL, comma-separated: what clients and agents are
    /// given, so they fail over between replicas.
    pub fn control_urls(&self) -> String {
        self.controls()
            .iter()
            .map(|h| format!("https://{}:{CONTROL_PORT}", h.ip))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every etcd member's client URL, comma-separated (empty on redb).
    pub fn etcd_endpoints(&self) -> String {
        self.etcd
            .iter()
            .map(|h| format!("https://{}:{ETCD_CLIENT_PORT}", h.ip))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// etcd's `--initial-cluster`: `etcd-1=https://IP:2380,…`.
    pub fn etcd_initial_cluster(&self) -> String {
        self.etcd
            .iter()
            .map(|h| format!("{}=https://{}:{ETCD_PEER_PORT}", h.role, h.ip))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node(&self, name: &str) -> Option<&Host> {
        self.nodes.iter().find(|n| n.role == name)
    }

    /// Prefix of the network namespaces the agent of `node` makes for its pods.
    pub fn pod_netns_prefix(&self, node: &str) -> String {
        format!("{}-{node}-pod-", netns_prefix(&self.spec.name))
    }

    /// Where a node's agent pins its BPF state: the load balancer's maps
    /// and links, and host routing's under `net/`.
    pub fn node_bpffs(&self, node: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(format!(
            "/sys/fs/bpf/{}-bpf/{node}",
            netns_prefix(&self.spec.name)
        ))
    }

    /// The cgroup v2 subtree (relative to the cgroup2 root) of a node: its
    /// pods' and test clients' processes live here.
    pub fn node_cgroup(&self, node: &str) -> String {
        format!("{}-nodes/{node}", netns_prefix(&self.spec.name))
    }
}

#[cfg(test)]
mod tests;
