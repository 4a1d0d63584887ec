//! What the node's load balancer should hold for one Service: its
//! frontends (ClusterIP, NodePort on this node's IP, externalIPs; one per
//! port and protocol) and, for each, the ready backends, the flags and the
//! affinity timeout. Pure: Services and Endpoints in, frontends out.
//!
//! A pod's `hostPort`s are frontends too ([`host_ports`]): node IP:hostPort
//! served like a NodePort (socket LB and TC on the uplink) by that one
//! pod's IP:containerPort, claimed under the pod's [`host_port_key`].

use std::{fmt, net::Ipv4Addr};

use keel_api::{
    Endpoints, Pod, Protocol, Service,
    service::{ServiceType, TrafficPolicy},
};
use keel_ebpf_common::lb::{
    IPPROTO_TCP, IPPROTO_UDP, SVC_F_AFFINITY, SVC_F_EXTERNAL_IP, SVC_F_LOCAL_ONLY, SVC_F_NODEPORT,
    SVC_F_SOCK, SVC_F_TC,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => IPPROTO_TCP,
            Proto::Udp => IPPROTO_UDP,
        }
    }

    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            IPPROTO_TCP => Some(Proto::Tcp),
            IPPROTO_UDP => Some(Proto::Udp),
            _ => None,
        }
    }
}

impl From<Protocol> for Proto {
    fn from(p: Protocol) -> Self {
        match p {
            Protocol::Tcp => Proto::Tcp,
            Protocol::Udp => Proto::Udp,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        })
    }
}

/// An address, port and protocol: what a client dials (a frontend) or
/// what a backend serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Addr {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub proto: Proto,
}

impl Addr {
    pub fn new(ip: Ipv4Addr, port: u16, proto: Proto) -> Self {
        Self { ip, port, proto }
    }

    /// The address in network byte order, as the maps store it.
    pub fn ip_be(&self) -> u32 {
        u32::from_ne_bytes(self.ip.octets())
    }

    /// The port in network byte order, as the maps store it.
    pub fn port_be(&self) -> u16 {
        self.port.to_be()
    }

    /// From the maps' network byte order.
    pub fn from_be(ip: u32, port: u16, proto: u8) -> Option<Self> {
        Some(Self {
            ip: Ipv4Addr::from(ip.to_ne_bytes()),
            port: u16::from_be(port),
            proto: Proto::from_number(proto)?,
        })
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.ip, self.port, self.proto)
    }
}

/// A Service address clients dial.
pub type Frontend = Addr;

/// A ready endpoint behind a frontend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackendSpec {
    pub addr: Addr,
    /// Runs on this node: NodePort traffic is DNATed to it without SNAT.
    pub local: bool,
}

/// Everything the maps should say about one frontend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontendSpec {
    /// `namespace/name` or `namespace/name:port-name`, for dumps and status.
    pub service: String,
    /// `SVC_F_*`.
    pub flags: u8,
    /// ClientIP affinity timeout in seconds (0 without affinity).
    pub affinity_timeout: u32,
    /// Ready backends, sorted, without duplicates.
    pub backends: Vec<BackendSpec>,
}

/// This node, as the load balancer needs to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    /// The node's own address (SNAT source, hostPorts).
    pub ip: Ipv4Addr,
    /// The addresses NodePort frontends answer on ([`node_port_ips`]).
    pub node_port_ips: Vec<Ipv4Addr>,
}

impl NodeInfo {
    /// A node whose NodePorts answer on its own address only.
    pub fn new(name: impl Into<String>, ip: Ipv4Addr) -> Self {
        Self {
            name: name.into(),
            ip,
            node_port_ips: vec![ip],
        }
    }
}

/// The addresses NodePorts answer on, as kube-proxy's
/// `--nodeport-addresses`: every IPv4 address of the uplink (where the TC
/// programs see outside traffic) and the node's own, but loopback; only
/// those inside `cidrs` when any are given. Sorted, without repeats.
pub fn node_port_ips(
    node_ip: Ipv4Addr,
    uplink: &[Ipv4Addr],
    cidrs: &[ipnet::Ipv4Net],
) -> Vec<Ipv4Addr> {
    let mut ips: Vec<Ipv4Addr> = uplink
        .iter()
        .copied()
        .chain([node_ip])
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .filter(|ip| cidrs.is_empty() || cidrs.iter().any(|c| c.contains(ip)))
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// A Service field the load balancer cannot use; the rest of the Service
/// is still programmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service {service}: {field}: {message}")]
pub struct ModelError {
    pub service: String,
    pub field: String,
    pub message: String,
}

/// The frontends of one Service, with their backends from its Endpoints
/// (None: not derived yet, so no ready backends), plus what had to be skipped.
pub fn frontends(
    svc: &Service,
    endpoints: Option<&Endpoints>,
    node: &NodeInfo,
) -> (Vec<(Frontend, FrontendSpec)>, Vec<ModelError>) {
    let key = format!("{}/{}", svc.metadata.namespace, svc.metadata.name);
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut error = |field: String, message: String| {
        errors.push(ModelError {
            service: key.clone(),
            field,
            message,
        })
    };
    let spec = &svc.spec;
    let cluster_ip = match spec.cluster_ip.as_str() {
        "" | "None" => None,
        ip => match ip.parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                error(
                    "spec.clusterIP".into(),
                    format!("{ip:?} is not an IPv4 address"),
                );
                None
            }
        },
    };
    let mut external_ips = Vec::new();
    for (i, ip) in spec.external_ips.iter().enumerate() {
        match ip.parse::<Ipv4Addr>() {
            Ok(ip) => external_ips.push(ip),
            Err(_) => error(
                format!("spec.externalIPs[{i}]"),
                format!("{ip:?} is not an IPv4 address"),
            ),
        }
    }
    let (affinity_flag, affinity_timeout) = match svc.affinity_timeout() {
        Some(t) => (SVC_F_AFFINITY, u32::try_from(t.max(1)).unwrap_or(u32::MAX)),
        None => (0, 0),
    };
    let local_only = spec.external_traffic_policy == TrafficPolicy::Local;
    // ClusterIP connections (made on this node) under
    // internalTrafficPolicy: Local reach only this node's endpoints.
    let internal_local = spec.internal_traffic_policy == Some(TrafficPolicy::Local);
    for (i, p) in spec.ports.iter().enumerate() {
        let proto = Proto::from(p.protocol);
        let Ok(port) = u16::try_from(p.port) else {
            error(
                format!("spec.ports[{i}].port"),
                format!("{} is out of range 1-65535", p.port),
            );
            continue;
        };
        let service = if p.name.is_empty() {
            key.clone()
        } else {
            format!("{key}:{}", p.name)
        };
        let all = endpoints
            .map(|e| ready_backends(e, &p.name, p.protocol, &node.name))
            .unwrap_or_default();
        let local: Vec<BackendSpec> = all.iter().copied().filter(|b| b.local).collect();
        let spec_for = |flags: u8, external: bool| {
            let external_local = external && local_only;
            let only_local = external_local || (!external && internal_local);
            FrontendSpec {
                service: service.clone(),
                flags: flags | affinity_flag | if external_local { SVC_F_LOCAL_ONLY } else { 0 },
                affinity_timeout,
                backends: if only_local {
                    local.clone()
                } else {
                    all.clone()
                },
            }
        };
        if let Some(ip) = cluster_ip {
            out.push((Addr::new(ip, port, proto), spec_for(SVC_F_SOCK, false)));
        }
        if spec.type_ == ServiceType::NodePort
            && let Some(np) = p.node_port
        {
            match u16::try_from(np) {
                Ok(np) if np != 0 => {
                    for ip in &node.node_port_ips {
                        out.push((
                            Addr::new(*ip, np, proto),
                            spec_for(SVC_F_SOCK | SVC_F_TC | SVC_F_NODEPORT, true),
                        ));
                    }
                }
                _ => error(
                    format!("spec.ports[{i}].nodePort"),
                    format!("{np} is out of range 1-65535"),
                ),
            }
        }
        for ip in &external_ips {
            out.push((
                Addr::new(*ip, port, proto),
                spec_for(SVC_F_SOCK | SVC_F_TC | SVC_F_EXTERNAL_IP, true),
            ));
        }
    }
    (out, errors)
}

/// What the host ports of pod `namespace/name` are claimed under in the
/// desired state (no Service key starts so: namespaces have no `:`).
pub fn host_port_key(pod_key: &str) -> String {
    format!("{HOST_PORT_PREFIX}{pod_key}")
}

/// The prefix of [`host_port_key`]s.
pub const HOST_PORT_PREFIX: &str = "hostport:";

/// The frontends of a pod's `hostPort`s on this node: `node IP:hostPort`
/// forwarded (socket LB from the node, TC from outside) to the pod's
/// `IP:containerPort`, as the CNI portmap plugin does with iptables. None
/// for a hostNetwork pod (its containers bind the node's ports
/// themselves), a finished pod, or one without an IP yet. A `hostIP`
/// other than empty, `0.0.0.0` or this node's IP cannot be bound here: an
/// error names it and that port is skipped.
pub fn host_ports(pod: &Pod, node: &NodeInfo) -> (Vec<(Frontend, FrontendSpec)>, Vec<ModelError>) {
    let key = format!("{}/{}", pod.metadata.namespace, pod.metadata.name);
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    if pod.spec.host_network
        || !pod.is_active()
        || pod.metadata.is_terminating()
        || pod.spec.node_name != node.name
    {
        return (out, errors);
    }
    let Ok(pod_ip) = pod.status.pod_ip.parse::<Ipv4Addr>() else {
        return (out, errors);
    };
    for (i, c) in pod.spec.containers.iter().enumerate() {
        for (j, p) in c.ports.iter().enumerate() {
            let Some(h) = p.host_port else { continue };
            let field = format!("spec.containers[{i}].ports[{j}]");
            let mut error = |f: &str, message: String| {
                errors.push(ModelError {
                    service: format!("pod {key}"),
                    field: format!("{field}.{f}"),
                    message,
                })
            };
            let (Ok(host), Ok(target)) = (u16::try_from(h), u16::try_from(p.container_port)) else {
                error("hostPort", format!("{h} is out of range 1-65535"));
                continue;
            };
            if host == 0 || target == 0 {
                error("hostPort", format!("{h} is out of range 1-65535"));
                continue;
            }
            let node_ip = node.ip.to_string();
            if !matches!(p.host_ip.as_str(), "" | "0.0.0.0") && p.host_ip != node_ip {
                error(
                    "hostIP",
                    format!(
                        "{} is not this node's address {node_ip}; hostPort {h} is not forwarded",
                        p.host_ip
                    ),
                );
                continue;
            }
            let proto = Proto::from(p.protocol);
            out.push((
                Addr::new(node.ip, host, proto),
                FrontendSpec {
                    service: format!("{key} hostPort"),
                    flags: SVC_F_SOCK | SVC_F_TC | SVC_F_NODEPORT,
                    affinity_timeout: 0,
                    backends: vec![BackendSpec {
                        addr: Addr::new(pod_ip, target, proto),
                        local: true,
                    }],
                },
            ));
        }
    }
    (out, errors)
}

/// Ready addresses of the endpoint port named `port_name` (Endpoints list
/// only Ready pods under `addresses`; `notReadyAddresses` never serve).
fn ready_backends(
    e: &Endpoints,
    port_name: &str,
    protocol: Protocol,
    node: &str,
) -> Vec<BackendSpec> {
    let mut out = Vec::new();
    for s in &e.subsets {
        let Some(p) = s
            .ports
            .iter()
            .find(|p| p.name == port_name && p.protocol == protocol)
        else {
            continue;
        };
        for a in &s.addresses {
            if let Ok(ip) = a.ip.parse::<Ipv4Addr>() {
                out.push(BackendSpec {
                    addr: Addr::new(ip, p.port, protocol.into()),
                    local: !node.is_empty() && a.node_name == node,
                });
            }
        }
    }
    out.sort();
    out.dedup_by_key(|b| b.addr);
    out
}

#[cfg(test)]
mod tests;
