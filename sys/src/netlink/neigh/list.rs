//! `ip neigh show` and `bridge fdb show`.

use netlink_packet_route::{AddressFamily, RouteNetlinkMessage, neighbour::NeighbourMessage};

use super::Neigh;
use crate::netlink::{Handle, NetlinkError};

/// Neighbours of one family (Bridge for FDB entries), optionally of one link.
#[derive(Debug, Clone)]
pub struct NeighList {
    pub family: AddressFamily,
    pub index: Option<u32>,
}

impl NeighList {
    pub fn v4() -> Self {
        Self {
            family: AddressFamily::Inet,
            index: None,
        }
    }

    pub fn fdb() -> Self {
        Self {
            family: AddressFamily::Bridge,
            index: None,
        }
    }

    pub fn link(mut self, index: u32) -> Self {
        self.index = Some(index);
        self
    }

    pub fn message(&self) -> RouteNetlinkMessage {
        let mut msg = NeighbourMessage::default();
        // Strict dump checking rejects an ifindex in the header of
        // neighbour dumps; filter below instead.
        msg.header.family = self.family;
        RouteNetlinkMessage::GetNeighbour(msg)
    }

    pub fn execute(&self, handle: &mut Handle) -> Result<Vec<Neigh>, NetlinkError> {
        let answers = handle.dump(|| "listing neighbours".to_string(), self.message())?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => Some(Neigh::from_message(n)),
                _ => None,
            })
            .filter(|n| n.family == self.family && self.index.is_none_or(|i| n.index == i))
            .collect())
    }
}
