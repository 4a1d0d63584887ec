//! `ip link show [dev X]`.

use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkMessage},
};

use super::Link;
use crate::netlink::{Handle, NetlinkError};

/// One link by name or index; `Ok(None)` when it does not exist.
#[derive(Debug, Clone)]
pub enum LinkGet {
    Name(String),
    Index(u32),
}

impl LinkGet {
    pub fn message(&self) -> RouteNetlinkMessage {
        let mut msg = LinkMessage::default();
        match self {
            LinkGet::Name(n) => msg.attributes.push(LinkAttribute::IfName(n.clone())),
            LinkGet::Index(i) => msg.header.index = *i,
        }
        RouteNetlinkMessage::GetLink(msg)
    }

    pub fn execute(&self, handle: &mut Handle) -> Result<Option<Link>, NetlinkError> {
        let what = || match self {
            LinkGet::Name(n) => format!("reading link {n}"),
            LinkGet::Index(i) => format!("reading link #{i}"),
        };
        match handle.get(what, self.message()) {
            Ok(answers) => Ok(answers.iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(Link::from_message(l)),
                _ => None,
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Every link of the namespace.
#[derive(Debug, Clone, Default)]
pub struct LinkList;

impl LinkList {
    pub fn message(&self) -> RouteNetlinkMessage {
        RouteNetlinkMessage::GetLink(LinkMessage::default())
    }

    pub fn execute(&self, handle: &mut Handle) -> Result<Vec<Link>, NetlinkError> {
        let answers = handle.dump(|| "listing links".to_string(), self.message())?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(Link::from_message(l)),
                _ => None,
            })
            .collect())
    }
}
