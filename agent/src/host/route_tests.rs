use std::net::IpAddr;

use ipnet::IpNet;
use keel_sys::netlink::{addr::Addr, route::Route};
use netlink_packet_route::address::AddressScope;

use super::*;

fn addr(index: u32, a: &str, scope: AddressScope) -> Addr {
    Addr {
        index,
        addr: a.parse::<IpNet>().unwrap(),
        scope,
    }
}

fn default_via(gw: &str, oif: u32, metric: Option<u32>) -> Route {
    Route {
        priority: metric,
        ..Route::via("0.0.0.0/0".parse().unwrap(), gw.parse().unwrap(), Some(oif))
    }
}

#[test]
fn node_ip_from_the_default_route() {
    let addrs = [
        addr(1, "127.0.0.1/8", AddressScope::Host),
        addr(2, "192.0.2.10/24", AddressScope::Universe),
        addr(3, "198.51.100.7/24", AddressScope::Universe),
    ];
    let local = Route::direct("192.0.2.0/24".parse().unwrap(), 2);
    // The default route picks the link; its first global address is the IP.
    let routes = [local.clone(), default_via("198.51.100.1", 3, None)];
    assert_eq!(
        pick(&routes, &addrs),
        Some(DefaultRoute {
            oif: 3,
            ip: "198.51.100.7".parse().unwrap()
        })
    );
    // Lowest metric wins.
    let routes = [
        default_via("198.51.100.1", 3, Some(600)),
        default_via("192.0.2.1", 2, Some(100)),
    ];
    assert_eq!(pick(&routes, &addrs).unwrap().oif, 2);
    // The route's preferred source wins over the link's addresses.
    let mut r = default_via("192.0.2.1", 2, None);
    r.prefsrc = Some(IpAddr::V4("192.0.2.99".parse().unwrap()));
    assert_eq!(pick(&[r], &addrs).unwrap().ip.to_string(), "192.0.2.99");
    // No default route, or no address on its link: nothing.
    assert_eq!(pick(&[local], &addrs), None);
    assert_eq!(pick(&[default_via("203.0.113.1", 9, None)], &addrs), None);
}
