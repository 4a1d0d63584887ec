//! The lab's VPC: the router namespace's main routing table, where keel's
//! routes carry keel's route protocol number (77) and nothing else is
//! touched — as a cloud route table holds keel's entries among others.

use std::{collections::BTreeMap, net::IpAddr, net::Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use keel_sys::{
    netlink::{
        Handle,
        route::{MAIN_TABLE, Route, RouteAdd, RouteDel, RouteList},
    },
    ns::NetNs,
};
use netlink_packet_route::route::{RouteProtocol, RouteScope};

use super::{VpcError, VpcProvider};

const KEEL_ROUTE_PROTO: u8 = 77;

pub struct LabRouter {
    netns: String,
}

impl LabRouter {
    pub fn new(netns: &str) -> Self {
        Self {
            netns: netns.to_string(),
        }
    }

    fn err(&self, message: impl std::fmt::Display) -> VpcError {
        VpcError {
            provider: self.name(),
            message: message.to_string(),
        }
    }

    fn handle(&self) -> Result<Handle, VpcError> {
        let ns = NetNs::open(NetNs::named_path(&self.netns)).map_err(|e| self.err(e))?;
        Handle::in_netns(&ns).map_err(|e| self.err(e))
    }
}

impl VpcProvider for LabRouter {
    fn name(&self) -> String {
        format!("lab:{}", self.netns)
    }

    fn list(&self) -> Result<BTreeMap<Ipv4Net, Ipv4Addr>, VpcError> {
        let mut h = self.handle()?;
        let routes = RouteList::v4()
            .table(MAIN_TABLE)
            .execute(&mut h)
            .map_err(|e| self.err(e))?;
        Ok(routes
            .into_iter()
            .filter(|r| r.protocol == RouteProtocol::Other(KEEL_ROUTE_PROTO))
            .filter_map(|r| match (r.dst, r.gateway) {
                (IpNet::V4(d), Some(IpAddr::V4(g))) => Some((d, g)),
                _ => None,
            })
            .collect())
    }

    fn replace(&self, dst: Ipv4Net, next_hop: Ipv4Addr) -> Result<(), VpcError> {
        let mut h = self.handle()?;
        let mut r = Route::via(IpNet::V4(dst), IpAddr::V4(next_hop), None);
        r.protocol = RouteProtocol::Other(KEEL_ROUTE_PROTO);
        RouteAdd(r).execute(&mut h).map_err(|e| self.err(e))
    }

    fn delete(&self, dst: Ipv4Net) -> Result<(), VpcError> {
        let mut h = self.handle()?;
        let mut r = Route::direct(IpNet::V4(dst), 0);
        r.protocol = RouteProtocol::Other(KEEL_ROUTE_PROTO);
        r.scope = RouteScope::NoWhere;
        match RouteDel(r).execute(&mut h) {
            Err(e) if !e.is_not_found() => Err(self.err(e)),
            _ => Ok(()),
        }
    }
}
