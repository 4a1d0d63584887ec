//! Choosing a free address: pure, so every edge (gateway, network and
//! broadcast addresses, wrap-around, exhaustion, a requested address) is
//! unit-tested by table.

use std::{collections::HashSet, net::Ipv4Addr};

use ipnet::Ipv4Net;

/// The addresses the built-in IPAM hands out: the subnet's hosts minus the
/// gateway (the network and broadcast addresses are never hosts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error("no free address in {subnet}: all {capacity} usable addresses are reserved")]
    Exhausted { subnet: Ipv4Net, capacity: u32 },
    #[error(
        "CNI_ARGS: IP={ip} is not a usable address of {subnet} (network, broadcast or gateway, or outside it)"
    )]
    RequestedUnusable { ip: Ipv4Addr, subnet: Ipv4Net },
    #[error("CNI_ARGS: IP={ip} is already reserved")]
    RequestedTaken { ip: Ipv4Addr },
}

impl Range {
    fn first(&self) -> u32 {
        u32::from(self.subnet.network()) + 1
    }

    fn last(&self) -> u32 {
        u32::from(self.subnet.broadcast()) - 1
    }

    /// Whether `ip` may be handed to a pod.
    pub fn usable(&self, ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        n >= self.first() && n <= self.last() && ip != self.gateway
    }

    /// How many addresses can be handed out.
    pub fn capacity(&self) -> u32 {
        let hosts = self.last() + 1 - self.first();
        let gw = u32::from(self.gateway);
        if gw >= self.first() && gw <= self.last() {
            hosts - 1
        } else {
            hosts
        }
    }
}

/// Picks an address: the requested one if it is usable and free, else the
/// next free one after `last` (round-robin like host-local, so a released
/// address is not reused at once), wrapping around the range.
pub fn allocate(
    range: &Range,
    taken: &HashSet<Ipv4Addr>,
    last: Option<Ipv4Addr>,
    requested: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, AllocError> {
    if let Some(ip) = requested {
        if !range.usable(ip) {
            return Err(AllocError::RequestedUnusable {
                ip,
                subnet: range.subnet,
            });
        }
        if taken.contains(&ip) {
            return Err(AllocError::RequestedTaken { ip });
        }
        return Ok(ip);
    }
    let (first, last_host) = (range.first(), range.last());
    let start = match last.map(u32::from) {
        Some(l) if l >= first && l < last_host => l + 1,
        _ => first,
    };
    let size = last_host - first + 1;
    for step in 0..size {
        let n = first + (start - first + step) % size;
        let ip = Ipv4Addr::from(n);
        if ip != range.gateway && !taken.contains(&ip) {
            return Ok(ip);
        }
    }
    Err(AllocError::Exhausted {
        subnet: range.subnet,
        capacity: range.capacity(),
    })
}

#[cfg(test)]
mod tests;
