//! How keel attaches a pod, shared by ADD, DEL, CHECK and GC: the
//! host-side name, MACs and alias of one attachment, derived only from
//! (network, container ID, interface), so every command finds the same
//! objects without any state of its own.
//!
//! Layout (like Calico and CCE's cptp, no bridge, no iptables):
//!
//! ```text
//!  pod netns                          node netns
//!  eth0 10.244.1.5/32  ── veth ──  kv<13 hex>  (has 10.244.1.1/32, scope link)
//!  169.254… none; routes:             route 10.244.1.5/32 dev kv… scope link
//!    10.244.1.1 dev eth0 scope link   neigh 10.244.1.5 lladdr 0a:58:… permanent
//!    default via 10.244.1.1           forwarding=1 on kv… only
//!  neigh 10.244.1.1 lladdr <kv… MAC> permanent
//! ```
//!
//! The gateway is the subnet's first address (or `gateway`), put on every
//! host-side veth as a /32: the node answers ARP for it on each veth and
//! uses it as the source when it talks to a pod, and static neighbours on
//! both sides spare the first packet an ARP round trip.

use std::{io, net::Ipv4Addr, path::PathBuf};

use keel_sys::{
    netlink::{
        Handle, Mac, NetlinkError,
        link::{LinkDel, LinkGet},
    },
    ns::NsError,
};

use crate::types::code;

/// Prefix of host-side veth names. Deliberately not "keel": the test
/// sweeper removes host links named keel*, and these are real pods'.
pub const HOST_IF_PREFIX: &str = "kv";

/// Prefix of the host-side link alias that marks a link as keel's.
pub const ALIAS_PREFIX: &str = "keel-cni";

/// The address pods route through when neither the config nor IPAM
/// names a gateway (Calico's choice).
pub const LINK_LOCAL_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("CNI_NETNS: {path}: {source}")]
    Netns {
        path: PathBuf,
        #[source]
        source: NsError,
    },
    #[error("sysctl {path}: {source}")]
    Sysctl {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("host interface {name} exists and is not this attachment's (alias {alias:?})")]
    Conflict { name: String, alias: Option<String> },
    #[error("CNI_IFNAME: {ifname} already exists in {netns}")]
    IfnameTaken { ifname: String, netns: PathBuf },
    #[error("{what} vanished while being configured")]
    Vanished { what: String },
}

impl AttachError {
    pub fn code(&self) -> u32 {
        match self {
            AttachError::Netns { source, .. } if source.is_not_found() => code::UNKNOWN_CONTAINER,
            AttachError::Netns { .. } => code::IO,
            AttachError::Conflict { .. } => code::CONFLICT,
            AttachError::IfnameTaken { .. } => code::INVALID_ENV,
            AttachError::Netlink(_) | AttachError::Sysctl { .. } | AttachError::Vanished { .. } => {
                code::IO
            }
        }
    }
}

/// FNV-1a, 64 bit: stable across Rust versions (unlike std's hasher),
/// which host-side names must be.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0xff;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        for b in p.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The host-side veth name: `kv` + 13 hex digits (15 characters, the
/// kernel's limit), from container ID and interface.
pub fn host_ifname(container_id: &str, ifname: &str) -> String {
    let h = fnv1a(&[container_id, ifname]);
    format!("{HOST_IF_PREFIX}{:013x}", h >> 12)
}

/// The host-side veth MAC: locally administered, unicast, from the same
/// hash as the name.
pub fn host_mac(container_id: &str, ifname: &str) -> Mac {
    let h = fnv1a(&[container_id, ifname, "mac"]).to_be_bytes();
    [0x02, h[0], h[1], h[2], h[3], h[4]]
}

/// The pod-side MAC: `0a:58` + the IPv4 address (Kubernetes' convention),
/// unique per pod IP on a node.
pub fn pod_mac(ip: Ipv4Addr) -> Mac {
    let o = ip.octets();
    [0x0a, 0x58, o[0], o[1], o[2], o[3]]
}

/// The alias set on the host-side veth: `keel-cni:<network>:<container
/// ID>:<ifname>`. None of the three may contain ':' (the spec forbids it in
/// interface names; network names and container IDs are [A-Za-z0-9_.-]).
pub fn alias(network: &str, container_id: &str, ifname: &str) -> String {
    format!("{ALIAS_PREFIX}:{network}:{container_id}:{ifname}")
}

/// Whether `name` has the shape of a keel host-side veth name.
pub fn is_host_ifname(name: &str) -> bool {
    name.len() == 15
        && name.starts_with(HOST_IF_PREFIX)
        && name[HOST_IF_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The (network, container ID, ifname) an alias names, if it is keel's.
pub fn parse_alias(alias: &str) -> Option<(&str, &str, &str)> {
    let mut parts = alias.splitn(4, ':');
    (parts.next()? == ALIAS_PREFIX).then_some(())?;
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// Deletes the host-side link `name` if it carries `alias`, or no alias
/// at all (an ADD killed between creating the veth and naming it). A link
/// of the same name that is someone else's is left alone and reported.
/// Returns whether a link was deleted; a missing link is not an error.
pub fn delete_host_link(node: &mut Handle, name: &str, alias: &str) -> Result<bool, AttachError> {
    match LinkGet::Name(name.to_string()).execute(node)? {
        None => Ok(false),
        Some(link)
            if link
                .alias
                .as_deref()
                .is_none_or(|a| a.is_empty() || a == alias) =>
        {
            match LinkDel::Index(link.index).execute(node) {
                Ok(()) => Ok(true),
                Err(e) if e.is_not_found() => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
        Some(link) => Err(AttachError::Conflict {
            name: name.to_string(),
            alias: link.alias,
        }),
    }
}

/// Writes an IPv4 per-interface sysctl of the calling thread's namespace
/// (/proc/sys/net is per network namespace).
pub fn set_if_sysctl(ifname: &str, key: &str, value: &str) -> Result<(), AttachError> {
    let path = format!("/proc/sys/net/ipv4/conf/{ifname}/{key}");
    std::fs::write(&path, value).map_err(|source| AttachError::Sysctl { path, source })
}

#[cfg(test)]
mod tests;
