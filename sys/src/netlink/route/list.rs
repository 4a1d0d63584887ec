//! `ip route show [table T] [dev X]`.

use netlink_packet_route::{AddressFamily, RouteNetlinkMessage, route::RouteMessage};

use super::{MAIN_TABLE, Route};
use crate::netlink::{Handle, NetlinkError};

/// Routes of one family and table, optionally only those out of one link.
#[derive(Debug, Clone)]
pub struct RouteList {
    pub family: AddressFamily,
    pub table: u32,
    pub oif: Option<u32>,
}

impl RouteList {
    /// IPv4 routes of the main table.
    pub fn v4() -> Self {
        Self {
            family: AddressFamily::Inet,
            table: MAIN_TABLE,
            oif: None,
        }
    }

    pub fn table(mut self, table: u32) -> Self {
        self.table = table;
        self
    }

    pub fn oif(mut self, oif: u32) -> Self {
        self.oif = Some(oif);
        self
    }

    pub fn message(&self) -> RouteNetlinkMessage {
        let mut msg = RouteMessage::default();
        msg.header.address_family = self.family;
        RouteNetlinkMessage::GetRoute(msg)
    }

    pub fn execute(&self, handle: &mut Handle) -> Result<Vec<Route>, NetlinkError> {
        let answers = handle.dump(|| "listing routes".to_string(), self.message())?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Route::from_message(r),
                _ => None,
            })
            .filter(|r| r.table == self.table && self.oif.is_none_or(|o| r.oif == Some(o)))
            .collect())
    }
}
