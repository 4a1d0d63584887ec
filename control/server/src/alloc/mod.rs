//! Allocators for pod CIDRs, cluster IPs and node ports. Pure functions over
//! what is in use (kept in the store's state, rebuilt from the objects on
//! start), called by the single writer inside the transaction that stores
//! the object: nothing is ever handed out twice, even across restarts.

use std::{net::Ipv4Addr, ops::RangeInclusive};

use imbl::OrdMap;
use ipnet::Ipv4Net;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error("no free {what} left in {range}")]
    Exhausted { what: &'static str, range: String },
    #[error("{value} is outside {range}")]
    OutOfRange { value: String, range: String },
    #[error("{value} is already allocated to {owner}")]
    InUse { value: String, owner: String },
    #[error("{value} is not a {what} of {range}")]
    Misaligned {
        value: String,
        what: String,
        range: String,
    },
}

/// The ranges the cluster allocates from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranges {
    /// Pod CIDRs are carved out of this (e.g. 10.244.0.0/16).
    pub cluster_cidr: Ipv4Net,
    /// Prefix length of each node's pod CIDR (e.g. 24).
    pub node_prefix: u8,
    /// Cluster IPs come from this (e.g. 10.96.0.0/16).
    pub service_cidr: Ipv4Net,
    pub node_ports: RangeInclusive<u16>,
}

impl Default for Ranges {
    fn default() -> Self {
        Self {
            cluster_cidr: "10.244.0.0/16".parse().expect("valid"),
            node_prefix: 24,
            service_cidr: "10.96.0.0/16".parse().expect("valid"),
            node_ports: keel_api::service::NODE_PORT_RANGE,
        }
    }
}

impl Ranges {
    /// Checks the ranges make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.node_prefix < self.cluster_cidr.prefix_len() || self.node_prefix > 30 {
            return Err(format!(
                "node CIDR prefix /{} must be between the cluster CIDR's /{} and /30",
                self.node_prefix,
                self.cluster_cidr.prefix_len()
            ));
        }
        if self.cluster_cidr.contains(&self.service_cidr)
            || self.service_cidr.contains(&self.cluster_cidr)
        {
            return Err(format!(
                "cluster CIDR {} and service CIDR {} overlap",
                self.cluster_cidr, self.service_cidr
            ));
        }
        if self.service_cidr.prefix_len() > 30 {
            return Err(format!("service CIDR {} is too small", self.service_cidr));
        }
        if self.node_ports.is_empty() {
            return Err("node port range is empty".into());
        }
        Ok(())
    }
}

/// Where each allocator resumes its scan, so a freed value is not handed out
/// again right away (stale routes or conntrack entries may still point at it).
#[derive(Debug, Clone, Default)]
pub struct Cursors {
    pub pod_cidr: u32,
    pub cluster_ip: u32,
    pub node_port: u32,
}

/// Scans `size` slots from `start`, wrapping, for the first one `free` accepts.
fn scan(size: u32, start: u32, free: impl Fn(u32) -> bool) -> Option<u32> {
    (0..size)
        .map(|i| (start.wrapping_add(i)) % size)
        .find(|&i| free(i))
}

/// A pod CIDR for `owner`: the requested one if it is valid and free, else
/// the next free subnet of the cluster CIDR.
pub fn pod_cidr(
    used: &OrdMap<Ipv4Net, String>,
    ranges: &Ranges,
    cursor: &mut u32,
    requested: Option<Ipv4Net>,
    owner: &str,
) -> Result<Ipv4Net, AllocError> {
    let cluster = ranges.cluster_cidr;
    let range = format!("cluster CIDR {cluster} (/{} per node)", ranges.node_prefix);
    if let Some(r) = requested {
        if !cluster.contains(&r) {
            return Err(AllocError::OutOfRange {
                value: r.to_string(),
                range,
            });
        }
        if r.prefix_len() != ranges.node_prefix || r.network() != r.addr() {
            return Err(AllocError::Misaligned {
                value: r.to_string(),
                what: format!("/{} subnet", ranges.node_prefix),
                range,
            });
        }
        if let Some((c, o)) = used
            .iter()
            .find(|(c, o)| (c.contains(&r) || r.contains(*c)) && o.as_str() != owner)
        {
            return Err(AllocError::InUse {
                value: format!("{r} (overlaps {c})"),
                owner: o.clone(),
            });
        }
        return Ok(r);
    }
    let bits = u32::from(ranges.node_prefix - cluster.prefix_len());
    let count = 1u32.checked_shl(bits).unwrap_or(u32::MAX);
    let base = u32::from(cluster.network());
    let step = 1u32 << (32 - u32::from(ranges.node_prefix));
    let subnet = |i: u32| {
        Ipv4Net::new(Ipv4Addr::from(base + i * step), ranges.node_prefix).expect("prefix checked")
    };
    let found =
        scan(count, *cursor, |i| !used.contains_key(&subnet(i))).ok_or(AllocError::Exhausted {
            what: "pod CIDR",
            range,
        })?;
    *cursor = found + 1;
    Ok(subnet(found))
}

/// A cluster IP: the requested one if inside the service CIDR and free, else
/// the next free host address (never the network or broadcast address).
pub fn cluster_ip(
    used: &OrdMap<Ipv4Addr, String>,
    ranges: &Ranges,
    cursor: &mut u32,
    requested: Option<Ipv4Addr>,
    owner: &str,
) -> Result<Ipv4Addr, AllocError> {
    let cidr = ranges.service_cidr;
    let range = format!("service CIDR {cidr}");
    let is_host =
        |ip: Ipv4Addr| cidr.contains(&ip) && ip != cidr.network() && ip != cidr.broadcast();
    if let Some(ip) = requested {
        if !is_host(ip) {
            return Err(AllocError::OutOfRange {
                value: ip.to_string(),
                range,
            });
        }
        if let Some(o) = used.get(&ip).filter(|o| o.as_str() != owner) {
            return Err(AllocError::InUse {
                value: ip.to_string(),
                owner: o.clone(),
            });
        }
        return Ok(ip);
    }
    let base = u32::from(cidr.network());
    let hosts = (1u32 << (32 - u32::from(cidr.prefix_len()))) - 2;
    let ip = |i: u32| Ipv4Addr::from(base + 1 + i);
    let found =
        scan(hosts, *cursor, |i| !used.contains_key(&ip(i))).ok_or(AllocError::Exhausted {
            what: "cluster IP",
            range,
        })?;
    *cursor = found + 1;
    Ok(ip(found))
}

/// A node port: the requested one if in range and free (or already this
/// owner's), else the next free one.
pub fn node_port(
    used: &OrdMap<u16, String>,
    ranges: &Ranges,
    cursor: &mut u32,
    requested: Option<u16>,
    owner: &str,
    taken_now: &[u16],
) -> Result<u16, AllocError> {
    let (lo, hi) = (*ranges.node_ports.start(), *ranges.node_ports.end());
    let range = format!("node port range {lo}-{hi}");
    if let Some(p) = requested {
        if !ranges.node_ports.contains(&p) {
            return Err(AllocError::OutOfRange {
                value: p.to_string(),
                range,
            });
        }
        if let Some(o) = used.get(&p).filter(|o| o.as_str() != owner) {
            return Err(AllocError::InUse {
                value: p.to_string(),
                owner: o.clone(),
            });
        }
        return Ok(p);
    }
    let size = u32::from(hi - lo) + 1;
    let found = scan(size, *cursor, |i| {
        let p = lo + i as u16;
        used.get(&p).is_none() && !taken_now.contains(&p)
    })
    .ok_or(AllocError::Exhausted {
        what: "node port",
        range,
    })?;
    *cursor = found + 1;
    Ok(lo + found as u16)
}

#[cfg(test)]
mod tests;
