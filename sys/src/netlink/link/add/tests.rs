use super::*;

#[test]
fn veth_message_carries_peer_namespace_and_flags() {
    let mut peer = VethPeer::new("eth0");
    peer.netns_fd = Some(7);
    peer.up = true;
    peer.mtu = Some(1450);
    let add = LinkAdd::veth("kv0123", peer)
        .mtu(1450)
        .alias("keel:net:c:eth0")
        .up();
    let RouteNetlinkMessage::NewLink(msg) = add.message() else {
        panic!("not a NewLink")
    };
    assert!(msg.header.flags.contains(LinkFlags::Up));
    assert!(
        msg.attributes
            .contains(&LinkAttribute::IfName("kv0123".into()))
    );
    assert!(
        msg.attributes
            .contains(&LinkAttribute::IfAlias("keel:net:c:eth0".into()))
    );
    let info = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(i) => Some(i),
        _ => None,
    });
    let peer = info.unwrap().iter().find_map(|i| match i {
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) => Some(p),
        _ => None,
    });
    let peer = peer.expect("peer message");
    assert!(peer.attributes.contains(&LinkAttribute::NetNsFd(7)));
    assert!(peer.attributes.contains(&LinkAttribute::Mtu(1450)));
    assert_eq!(peer.header.change_mask, LinkFlags::Up);
}
