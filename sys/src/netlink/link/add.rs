//! `ip link add`: veth pairs (the peer created directly in its target
//! namespace), VXLAN devices and dummies, optionally up from the start.

use std::{net::Ipv4Addr, os::fd::RawFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{
        InfoData, InfoKind, InfoVeth, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    },
};

use crate::netlink::{Handle, Mac, NetlinkError};

/// The other end of a veth pair.
#[derive(Debug, Clone)]
pub struct VethPeer {
    pub name: String,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    pub up: bool,
    /// Creates the peer directly in the namespace behind this fd, so it
    /// never appears (or needs renaming) in the creator's namespace.
    pub netns_fd: Option<RawFd>,
}

impl VethPeer {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            mtu: None,
            mac: None,
            up: false,
            netns_fd: None,
        }
    }
}

/// A VXLAN device (flannel-style: one per node, peers programmed by FDB
/// entries and static neighbours).
#[derive(Debug, Clone)]
pub struct Vxlan {
    pub vni: u32,
    pub local: Option<Ipv4Addr>,
    /// The underlay device's ifindex.
    pub dev: Option<u32>,
    /// UDP destination port (4789 is the IANA port).
    pub port: u16,
    pub learning: bool,
}

#[derive(Debug, Clone)]
pub enum LinkKind {
    Dummy,
    /// A Linux bridge (the lab's L2 fabric segments).
    Bridge,
    Veth(VethPeer),
    Vxlan(Vxlan),
}

/// A link to create. Fails with EEXIST if the name is taken.
#[derive(Debug, Clone)]
pub struct LinkAdd {
    pub name: String,
    pub kind: LinkKind,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    pub alias: Option<String>,
    pub up: bool,
}

impl LinkAdd {
    pub fn new(name: impl Into<String>, kind: LinkKind) -> Self {
        Self {
            name: name.into(),
            kind,
            mtu: None,
            mac: None,
            alias: None,
            up: false,
        }
    }

    pub fn veth(name: impl Into<String>, peer: VethPeer) -> Self {
        Self::new(name, LinkKind::Veth(peer))
    }

    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    pub fn mac(mut self, mac: Mac) -> Self {
        self.mac = Some(mac);
        self
    }

    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.alias = Some(alias.into());
        self
    }

    pub fn up(mut self) -> Self {
        self.up = true;
        self
    }

    pub fn message(&self) -> RouteNetlinkMessage {
        let mut msg = base(&self.name, self.mtu, self.mac, self.up);
        if let Some(alias) = &self.alias {
            msg.attributes.push(LinkAttribute::IfAlias(alias.clone()));
        }
        let info = match &self.kind {
            LinkKind::Dummy => vec![LinkInfo::Kind(InfoKind::Dummy)],
            LinkKind::Bridge => vec![LinkInfo::Kind(InfoKind::Bridge)],

            LinkKind::Veth(peer) => {
                let mut p = base(&peer.name, peer.mtu, peer.mac, peer.up);
                if let Some(fd) = peer.netns_fd {
                    p.attributes.push(LinkAttribute::NetNsFd(fd));
                }
                vec![
                    LinkInfo::Kind(InfoKind::Veth),
                    LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
                ]
            }
            LinkKind::Vxlan(v) => {
                let mut data = vec![
                    InfoVxlan::Id(v.vni),
                    InfoVxlan::Port(v.port),
                    InfoVxlan::Learning(v.learning),
                ];
                if let Some(local) = v.local {
                    data.push(InfoVxlan::Local(local));
                }
                if let Some(dev) = v.dev {
                    data.push(InfoVxlan::Link(dev));
                }
                vec![
                    LinkInfo::Kind(InfoKind::Vxlan),
                    LinkInfo::Data(InfoData::Vxlan(data)),
                ]
            }
        };
        msg.attributes.push(LinkAttribute::LinkInfo(info));
        RouteNetlinkMessage::NewLink(msg)
    }

    pub fn execute(&self, handle: &mut Handle) -> Result<(), NetlinkError> {
        handle.request(
            || format!("creating link {}", self.name),
            self.message(),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }
}

fn base(name: &str, mtu: Option<u32>, mac: Option<Mac>, up: bool) -> LinkMessage {
    let mut msg = LinkMessage::default();
    if up {
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
    }
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    if let Some(mtu) = mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = mac {
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
    msg
}

impl crate::netlink::Change for LinkAdd {
    fn message(&self) -> RouteNetlinkMessage {
        LinkAdd::message(self)
    }

    fn flags(&self) -> u16 {
        NLM_F_CREATE | NLM_F_EXCL
    }

    fn describe(&self) -> String {
        format!("creating link {}", self.name)
    }
}

#[cfg(test)]
mod tests;
