//! `ip addr show [dev X]`.

use netlink_packet_route::{AddressFamily, RouteNetlinkMessage, address::AddressMessage};

use super::Addr;
use crate::netlink::{Handle, NetlinkError};

/// Addresses of one family, of one link or of all.
#[derive(Debug, Clone)]
pub struct AddrList {
    pub index: Option<u32>,
    pub family: AddressFamily,
}

impl AddrList {
    pub fn v4() -> Self {
        Self {
            index: None,
            family: AddressFamily::Inet,
        }
    }

    pub fn link(mut self, index: u32) -> Self {
        self.index = Some(index);
        self
    }

    pub fn message(&self) -> RouteNetlinkMessage {
        let mut msg = AddressMessage::default();
        msg.header.family = self.family;
        msg.header.index = self.index.unwrap_or(0);
        RouteNetlinkMessage::GetAddress(msg)
    }

    pub fn execute(&self, handle: &mut Handle) -> Result<Vec<Addr>, NetlinkError> {
        let answers = handle.dump(|| "listing addresses".to_string(), self.message())?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => Addr::from_message(a),
                _ => None,
            })
            .filter(|a| self.index.is_none_or(|i| a.index == i))
            .collect())
    }
}
