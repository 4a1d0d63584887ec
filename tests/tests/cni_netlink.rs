//! keel-sys's rtnetlink layer, which keel-cni attaches pods with, against
//! the kernel in fresh namespaces: links (veth, VXLAN), addresses, routes
//! (replace, via a gateway, onlink, other tables), neighbours and VXLAN FDB
//! entries, and the errno classification the callers rely on. The agent and
//! the lab use the same layer.

use std::net::IpAddr;

use keel_sys::netlink::{
    Handle,
    addr::{AddrAdd, AddrDel, AddrList},
    link::{LinkAdd, LinkDel, LinkGet, LinkKind, LinkList, LinkSet, VethPeer, Vxlan},
    neigh::{FdbAdd, NeighAdd, NeighDel, NeighList},
    parse_mac,
    route::{Route, RouteAdd, RouteDel, RouteList},
};
use keel_tests::{TestNetns, require_root};
use netlink_packet_route::neighbour::NeighbourState;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn links_addresses_routes_and_neighbours() {
    require_root();
    let ns = TestNetns::new("nl").unwrap();
    let other = TestNetns::new("nl-other").unwrap();
    // A handle opened for `ns` acts there from this (unmoved) thread.
    let mut h = Handle::in_netns(ns.ns()).unwrap();

    let mut peer = VethPeer::new("nl-b");
    peer.mtu = Some(1300);
    LinkAdd::veth("nl-a", peer)
        .mtu(1300)
        .up()
        .execute(&mut h)
        .unwrap();
    let dup = LinkAdd::veth("nl-a", VethPeer::new("nl-c"))
        .execute(&mut h)
        .unwrap_err();
    assert!(dup.is_exists(), "{dup}");
    let a = LinkGet::Name("nl-a".into())
        .execute(&mut h)
        .unwrap()
        .expect("nl-a exists");
    assert_eq!((a.kind.as_deref(), a.mtu, a.up), (Some("veth"), 1300, true));
    let b = LinkGet::Name("nl-b".into())
        .execute(&mut h)
        .unwrap()
        .unwrap();
    assert_eq!(a.peer_index, Some(b.index), "IFLA_LINK names the peer");
    assert!(
        LinkGet::Name("nl-zz".into())
            .execute(&mut h)
            .unwrap()
            .is_none()
    );
    assert!(
        other
            .run(|| LinkGet::Name("nl-a".into())
                .execute(&mut Handle::new().unwrap())
                .unwrap())
            .is_none()
    );

    LinkSet::index(b.index)
        .up()
        .mtu(1280)
        .alias("peer of a")
        .execute(&mut h)
        .unwrap();
    let b = LinkGet::Index(b.index).execute(&mut h).unwrap().unwrap();
    assert_eq!(
        (b.up, b.mtu, b.alias.as_deref()),
        (true, 1280, Some("peer of a"))
    );
    assert_eq!(LinkList.execute(&mut h).unwrap().len(), 3, "lo, nl-a, nl-b");

    // Addresses: adding twice converges, deleting twice reports not-found.
    let addr = "10.50.0.1/24".parse().unwrap();
    AddrAdd::new(a.index, addr).execute(&mut h).unwrap();
    AddrAdd::new(a.index, addr).execute(&mut h).unwrap();
    let addrs = AddrList::v4().link(a.index).execute(&mut h).unwrap();
    assert_eq!(addrs.iter().map(|x| x.addr).collect::<Vec<_>>(), vec![addr]);
    AddrDel::new(a.index, addr).execute(&mut h).unwrap();
    assert!(
        AddrDel::new(a.index, addr)
            .execute(&mut h)
            .unwrap_err()
            .is_not_found()
    );
    AddrAdd::new(a.index, addr).execute(&mut h).unwrap();

    // Routes: direct, via a gateway, replaced in place, onlink, table 100.
    RouteAdd(Route::direct("10.60.0.0/24".parse().unwrap(), a.index))
        .execute(&mut h)
        .unwrap();
    let via = Route::via(
        "10.61.0.0/16".parse().unwrap(),
        ip("10.50.0.2"),
        Some(a.index),
    );
    RouteAdd(via.clone()).execute(&mut h).unwrap();
    RouteAdd(Route {
        gateway: Some(ip("10.50.0.3")),
        ..via.clone()
    })
    .execute(&mut h)
    .unwrap();
    let onlink = Route {
        onlink: true,
        ..Route::via(
            "10.62.0.0/24".parse().unwrap(),
            ip("192.0.2.9"),
            Some(a.index),
        )
    };
    RouteAdd(onlink).execute(&mut h).unwrap();
    RouteAdd(Route {
        table: 100,
        ..Route::direct("10.63.0.0/24".parse().unwrap(), a.index)
    })
    .execute(&mut h)
    .unwrap();
    let main = RouteList::v4().execute(&mut h).unwrap();
    let find = |dst: &str| main.iter().find(|r| r.dst == dst.parse().unwrap()).cloned();
    assert_eq!(
        find("10.61.0.0/16").unwrap().gateway,
        Some(ip("10.50.0.3")),
        "replace, not a second route"
    );
    assert_eq!(
        main.iter()
            .filter(|r| r.dst == "10.61.0.0/16".parse().unwrap())
            .count(),
        1
    );
    assert!(find("10.62.0.0/24").unwrap().onlink);
    assert!(find("10.63.0.0/24").is_none(), "table 100 is not main");
    let t100 = RouteList::v4().table(100).execute(&mut h).unwrap();
    assert_eq!(t100.len(), 1);
    // A delete naming the old gateway matches nothing; the current one goes.
    assert!(
        RouteDel(via.clone())
            .execute(&mut h)
            .unwrap_err()
            .is_not_found()
    );
    let current = Route {
        gateway: Some(ip("10.50.0.3")),
        ..via
    };
    RouteDel(current.clone()).execute(&mut h).unwrap();
    assert!(
        RouteDel(current)
            .execute(&mut h)
            .unwrap_err()
            .is_not_found()
    );

    // Neighbours: permanent, replaced, deleted.
    let mac1 = parse_mac("02:00:00:00:00:01").unwrap();
    let mac2 = parse_mac("02:00:00:00:00:02").unwrap();
    NeighAdd::new(a.index, ip("10.50.0.9"), mac1)
        .execute(&mut h)
        .unwrap();
    NeighAdd::new(a.index, ip("10.50.0.9"), mac2)
        .execute(&mut h)
        .unwrap();
    let n = NeighList::v4().link(a.index).execute(&mut h).unwrap();
    let entry = n
        .iter()
        .find(|e| e.dst == Some(ip("10.50.0.9")))
        .expect("neighbour listed");
    assert_eq!(
        (entry.lladdr, entry.state),
        (Some(mac2), NeighbourState::Permanent)
    );
    NeighDel::Ip {
        index: a.index,
        dst: ip("10.50.0.9"),
    }
    .execute(&mut h)
    .unwrap();
    let err = NeighDel::Ip {
        index: a.index,
        dst: ip("10.50.0.9"),
    }
    .execute(&mut h)
    .unwrap_err();
    assert!(err.is_not_found(), "{err}");

    LinkDel::Name("nl-a".into()).execute(&mut h).unwrap();
    assert!(
        LinkGet::Name("nl-b".into())
            .execute(&mut h)
            .unwrap()
            .is_none(),
        "the peer went with it"
    );
    assert!(
        LinkDel::Name("nl-a".into())
            .execute(&mut h)
            .unwrap_err()
            .is_not_found()
    );
}

#[test]
fn vxlan_device_and_fdb_entries() {
    require_root();
    let ns = TestNetns::new("nl-vx").unwrap();
    let mut h = Handle::in_netns(ns.ns()).unwrap();
    let vx = Vxlan {
        vni: 42,
        local: Some("10.70.0.1".parse().unwrap()),
        dev: None,
        port: 4789,
        learning: false,
    };
    LinkAdd::new("keel-vx", LinkKind::Vxlan(vx))
        .mtu(1450)
        .up()
        .execute(&mut h)
        .unwrap();
    let link = LinkGet::Name("keel-vx".into())
        .execute(&mut h)
        .unwrap()
        .unwrap();
    assert_eq!((link.kind.as_deref(), link.mtu), (Some("vxlan"), 1450));

    let peer_mac = parse_mac("0e:00:00:00:00:07").unwrap();
    FdbAdd::new(link.index, peer_mac, ip("10.70.0.7"))
        .execute(&mut h)
        .unwrap();
    FdbAdd::new(link.index, peer_mac, ip("10.70.0.7"))
        .execute(&mut h)
        .unwrap();
    let fdb = NeighList::fdb().link(link.index).execute(&mut h).unwrap();
    assert!(
        fdb.iter()
            .any(|e| e.lladdr == Some(peer_mac) && e.dst == Some(ip("10.70.0.7"))),
        "FDB entry listed: {fdb:?}"
    );
    // flannel's per-peer trio: neighbour for the peer's VTEP address, and a
    // route to its pod CIDR via it, onlink.
    NeighAdd::new(link.index, ip("10.244.7.0"), peer_mac)
        .execute(&mut h)
        .unwrap();
    let r = Route {
        onlink: true,
        ..Route::via(
            "10.244.7.0/24".parse().unwrap(),
            ip("10.244.7.0"),
            Some(link.index),
        )
    };
    RouteAdd(r).execute(&mut h).unwrap();
    assert!(
        RouteList::v4()
            .oif(link.index)
            .execute(&mut h)
            .unwrap()
            .iter()
            .any(|r| r.onlink)
    );
    NeighDel::Fdb {
        index: link.index,
        mac: peer_mac,
        dst: ip("10.70.0.7"),
    }
    .execute(&mut h)
    .unwrap();
    let fdb = NeighList::fdb().link(link.index).execute(&mut h).unwrap();
    assert!(
        !fdb.iter().any(|e| e.lladdr == Some(peer_mac)),
        "FDB entry deleted: {fdb:?}"
    );
}
