//! The lab's VPC route table: the router namespace's main routing table,
//! programmed by `keelctl lab vpc-router`, which keel-control runs as its
//! `exec` VPC provider (control/server/src/vpc/EXEC.md) — exactly as it
//! would run an operator's script around a cloud's route API.
//!
//! keel's routes carry keel's route protocol number (77) and nothing else
//! in the table is touched, as a cloud route table holds keel's entries
//! among others; so unlike a cloud script, this one ignores the request's
//! `current` and reads keel's routes from the kernel. `--max-routes` plays
//! a cloud's route quota (AWS allows 50 routes per table by default): the
//! routes beyond it are reported as failed with `RouteLimitExceeded`.

use std::{
    collections::BTreeMap,
    io::{self, Read, Write},
    net::{IpAddr, Ipv4Addr},
};

use ipnet::{IpNet, Ipv4Net};
use keel_api::vpc::{ContractError, Failure, Request, Response, Route};
use keel_sys::{
    netlink::{
        Handle, NetlinkError,
        route::{self as rt, MAIN_TABLE, RouteAdd, RouteDel, RouteList},
    },
    ns::{NetNs, NsError},
};
use netlink_packet_route::route::{RouteProtocol, RouteScope};

/// The route protocol number marking keel's routes (as on the nodes).
pub const KEEL_ROUTE_PROTO: u8 = 77;
/// Reason of a route refused by `--max-routes`.
pub const ROUTE_LIMIT_EXCEEDED: &str = "RouteLimitExceeded";
/// Reason of a route the kernel refused.
pub const ROUTE_REJECTED: &str = "RouteRejected";
/// The most a request may hold (a route is ~80 bytes of JSON).
const MAX_REQUEST: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum VpcRouterError {
    #[error("router namespace {netns}: {source}")]
    Netns {
        netns: String,
        #[source]
        source: NsError,
    },
    #[error("router namespace {netns}: {source}")]
    Netlink {
        netns: String,
        #[source]
        source: NetlinkError,
    },
    #[error("reading the request from stdin: {0}")]
    Stdin(#[source] io::Error),
    #[error("the request exceeds {MAX_REQUEST} bytes")]
    RequestTooLarge,
    #[error("the request: {0}")]
    Request(#[source] ContractError),
    #[error("writing the answer to stdout: {0}")]
    Stdout(#[source] io::Error),
}

/// A change to keel's routes in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOp {
    Replace(Ipv4Net, Ipv4Addr),
    Delete(Ipv4Net),
}

/// What to change, and the desired routes refused by the quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub ops: Vec<RouteOp>,
    pub refused: Vec<Failure>,
}

/// Changes that make keel's routes `actual` into `desired` (pure).
/// Withdrawals come first: they free room under `max_routes`. A route that
/// moves to another next hop keeps its entry; a new one takes a free entry
/// or is refused.
pub fn plan(
    desired: &[Route],
    actual: &BTreeMap<Ipv4Net, Ipv4Addr>,
    max_routes: Option<usize>,
) -> Plan {
    let want: BTreeMap<Ipv4Net, Ipv4Addr> = desired
        .iter()
        .map(|r| (r.destination, r.next_hop))
        .collect();
    let mut ops: Vec<RouteOp> = actual
        .keys()
        .filter(|dst| !want.contains_key(*dst))
        .map(|dst| RouteOp::Delete(*dst))
        .collect();
    let mut refused = Vec::new();
    let mut held = actual.keys().filter(|d| want.contains_key(*d)).count();
    for (dst, hop) in &want {
        match actual.get(dst) {
            Some(have) if have == hop => {}
            Some(_) => ops.push(RouteOp::Replace(*dst, *hop)),
            None => match max_routes {
                Some(max) if held >= max => refused.push(Failure {
                    destination: *dst,
                    reason: ROUTE_LIMIT_EXCEEDED.into(),
                    message: format!("the lab's route table holds {held} of {max} routes"),
                }),
                _ => {
                    held += 1;
                    ops.push(RouteOp::Replace(*dst, *hop));
                }
            },
        }
    }
    Plan { ops, refused }
}

/// keel's routes in the table: destination → next hop.
fn keel_routes(h: &mut Handle) -> Result<BTreeMap<Ipv4Net, Ipv4Addr>, NetlinkError> {
    Ok(RouteList::v4()
        .table(MAIN_TABLE)
        .execute(h)?
        .into_iter()
        .filter(|r| r.protocol == RouteProtocol::Other(KEEL_ROUTE_PROTO))
        .filter_map(|r| match (r.dst, r.gateway) {
            (IpNet::V4(d), Some(IpAddr::V4(g))) => Some((d, g)),
            _ => None,
        })
        .collect())
}

/// Brings keel's routes in the router namespace `netns` to the request and
/// reports what the table holds afterwards.
pub fn sync(
    netns: &str,
    request: &Request,
    max_routes: Option<usize>,
) -> Result<Response, VpcRouterError> {
    let ns = NetNs::open(NetNs::named_path(netns)).map_err(|source| VpcRouterError::Netns {
        netns: netns.into(),
        source,
    })?;
    let netlink = |source| VpcRouterError::Netlink {
        netns: netns.into(),
        source,
    };
    let mut h = Handle::in_netns(&ns).map_err(netlink)?;
    let actual = keel_routes(&mut h).map_err(netlink)?;
    let Plan { ops, mut refused } = plan(&request.desired, &actual, max_routes);
    for op in ops {
        match op {
            RouteOp::Replace(dst, hop) => {
                let mut r = rt::Route::via(IpNet::V4(dst), IpAddr::V4(hop), None);
                r.protocol = RouteProtocol::Other(KEEL_ROUTE_PROTO);
                // One route the kernel refuses (its next hop unreachable)
                // is that node's problem, not the table's.
                if let Err(e) = RouteAdd(r).execute(&mut h) {
                    refused.push(Failure {
                        destination: dst,
                        reason: ROUTE_REJECTED.into(),
                        message: e.to_string(),
                    });
                }
            }
            RouteOp::Delete(dst) => {
                let mut r = rt::Route::direct(IpNet::V4(dst), 0);
                r.protocol = RouteProtocol::Other(KEEL_ROUTE_PROTO);
                r.scope = RouteScope::NoWhere;
                match RouteDel(r).execute(&mut h) {
                    Err(e) if !e.is_not_found() => return Err(netlink(e)),
                    _ => {}
                }
            }
        }
    }
    let routes = keel_routes(&mut h)
        .map_err(netlink)?
        .into_iter()
        .map(|(destination, next_hop)| Route {
            destination,
            next_hop,
            node: String::new(),
        })
        .collect();
    Ok(Response {
        routes,
        failed: refused,
    })
}

/// The whole provider: the request from stdin, the answer to stdout.
/// An error means the run failed as a whole (keelctl exits non-zero and
/// prints it on stderr, as the contract asks).
pub fn serve(netns: &str, max_routes: Option<usize>) -> Result<(), VpcRouterError> {
    let mut input = Vec::new();
    io::stdin()
        .take(MAX_REQUEST + 1)
        .read_to_end(&mut input)
        .map_err(VpcRouterError::Stdin)?;
    if input.len() as u64 > MAX_REQUEST {
        return Err(VpcRouterError::RequestTooLarge);
    }
    let request = Request::parse(&input).map_err(VpcRouterError::Request)?;
    let answer = sync(netns, &request, max_routes)?;
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, &answer).map_err(|e| VpcRouterError::Stdout(e.into()))?;
    out.write_all(b"\n").map_err(VpcRouterError::Stdout)
}

#[cfg(test)]
mod tests;
