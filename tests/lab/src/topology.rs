//! The lab's shape, decided before anything is created (pure, unit-tested):
//! namespaces, addresses and who sits on which L2 segment.
//!
//! ```text
//!   segment 0: 172.30.0.0/24 (bridge in keel-lab-N-seg0)     segment 1: 172.30.1.0/24 …
//!     .1 router   .2 control   .3 ext   .10+i nodes            .1 router   .10+i nodes
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

pub fn netns_prefix(lab: &str) -> String {
    format!("{PREFIX}-{lab}")
}

impl Topology {
    pub fn plan(spec: &Spec) -> Result<Self, SpecError> {
        spec.validate()?;
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
        })
    }

    /// Every namespace, in creation order.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v: Vec<String> = self.segments.iter().map(|s| s.netns.clone()).collect();
        v.push(self.router.clone());
        v.push(self.control.netns.clone());
        v.push(self.ext.netns.clone());
        v.push(self.outside.netns.clone());
        v.extend(self.nodes.iter().map(|n| n.netns.clone()));
        v
    }

    pub fn control_url(&self) -> String {
        format!("https://{}:{CONTROL_PORT}", self.control.ip)
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
