//! Interface addresses: add (or replace), delete, list.

mod add;
mod del;
mod list;

pub use add::AddrAdd;
pub use del::AddrDel;
pub use list::AddrList;

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::{
    AddressFamily,
    address::{AddressAttribute, AddressMessage, AddressScope},
};

/// One address on one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub index: u32,
    /// The address with its prefix length (`10.1.0.5/32`).
    pub addr: IpNet,
    pub scope: AddressScope,
}

impl Addr {
    pub(crate) fn from_message(msg: &AddressMessage) -> Option<Self> {
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer
        // on point-to-point links, so prefer LOCAL.
        let local = msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        });
        let address = msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        });
        let ip = local.or(address)?;
        Some(Addr {
            index: msg.header.index,
            addr: IpNet::new(ip, msg.header.prefix_len).ok()?,
            scope: msg.header.scope,
        })
    }
}

fn message(index: u32, addr: IpAddr, prefix_len: u8, scope: AddressScope) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.index = index;
    msg.header.prefix_len = prefix_len;
    msg.header.scope = scope;
    msg.attributes.push(AddressAttribute::Address(addr));
    if addr.is_ipv4() {
        msg.attributes.push(AddressAttribute::Local(addr));
    }
    msg
}
