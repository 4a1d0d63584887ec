//! CHECK: compare the attachment in the kernel and in IPAM with
//! `prevResult`, and report every mismatch (not just the first).

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use keel_sys::{
    netlink::{
        Handle,
        addr::AddrList,
        format_mac,
        link::LinkGet,
        route::{Route, RouteList},
    },
    ns::NetNs,
};

use crate::{
    attach::{self, AttachError},
    error::Error,
    ipam::Ipam,
    types::{CniEnv, CniResult, NetConf},
};

pub fn check(env: &CniEnv, conf: &NetConf) -> Result<(), Error> {
    let prev = conf.prev_result.as_ref().ok_or(Error::MissingForCommand {
        field: "prevResult",
        command: "CHECK",
    })?;
    let prev = CniResult::from_json(prev)?;
    let mut problems = Vec::new();

    let pod_if = prev
        .interfaces
        .iter()
        .position(|i| i.name == env.ifname && i.sandbox.is_some());
    if pod_if.is_none() {
        problems.push(format!(
            "prevResult: no interface {} inside a sandbox",
            env.ifname
        ));
    }
    let ips: Vec<(Ipv4Addr, Option<IpAddr>)> = prev
        .ips
        .iter()
        .filter(|ip| ip.interface.is_none() || ip.interface == pod_if)
        .filter_map(|ip| match ip.address {
            IpNet::V4(n) => Some((n.addr(), ip.gateway)),
            IpNet::V6(_) => None,
        })
        .collect();
    let Some(&(pod_ip, gw)) = ips.first() else {
        problems.push("prevResult: no IPv4 address for the interface".into());
        return Err(Error::Check(problems));
    };
    let gateway: IpAddr = gw
        .or(conf.default_gateway().map(IpAddr::V4))
        .unwrap_or(attach::LINK_LOCAL_GATEWAY.into());

    let netns_path = env
        .netns
        .as_ref()
        .expect("CNI_NETNS is validated for CHECK");
    let netns = NetNs::open(netns_path).map_err(|source| AttachError::Netns {
        path: netns_path.clone(),
        source,
    })?;
    let mut pod = Handle::in_netns(&netns)?;
    let mut node = Handle::new()?;

    // The pod side.
    match LinkGet::Name(env.ifname.clone()).execute(&mut pod)? {
        None => problems.push(format!("pod: interface {} is missing", env.ifname)),
        Some(link) => {
            if link.kind.as_deref() != Some("veth") {
                problems.push(format!(
                    "pod: {} is a {:?}, not a veth",
                    env.ifname, link.kind
                ));
            }
            if !link.up {
                problems.push(format!("pod: {} is down", env.ifname));
            }
            if link.mtu != conf.mtu {
                problems.push(format!(
                    "pod: {} has MTU {}, config says {}",
                    env.ifname, link.mtu, conf.mtu
                ));
            }
            let want_mac = pod_if.and_then(|i| prev.interfaces[i].mac.clone());
            if let (Some(want), Some(have)) = (want_mac, link.mac)
                && !want.eq_ignore_ascii_case(&format_mac(&have))
            {
                problems.push(format!(
                    "pod: {} has MAC {}, prevResult says {want}",
                    env.ifname,
                    format_mac(&have)
                ));
            }
            let addrs = AddrList::v4().link(link.index).execute(&mut pod)?;
            for (ip, _) in &ips {
                if !addrs.iter().any(|a| a.addr.addr() == IpAddr::V4(*ip)) {
                    problems.push(format!("pod: {} lacks address {ip}", env.ifname));
                }
            }
            let routes = RouteList::v4().oif(link.index).execute(&mut pod)?;
            let has = |dst: IpNet, gw: Option<IpAddr>| {
                routes.iter().any(|r| r.dst == dst && r.gateway == gw)
            };
            if !has(IpNet::new(gateway, 32).expect("/32"), None) {
                problems.push(format!(
                    "pod: no route to the gateway {gateway} on {}",
                    env.ifname
                ));
            }
            for r in &prev.routes {
                if r.dst.addr().is_ipv4() && !has(r.dst, Some(r.gw.unwrap_or(gateway))) {
                    problems.push(format!(
                        "pod: route {} via {} is missing",
                        r.dst,
                        r.gw.unwrap_or(gateway)
                    ));
                }
            }
        }
    }

    // The node side.
    let host_name = attach::host_ifname(&env.container_id, &env.ifname);
    let alias = attach::alias(&conf.name, &env.container_id, &env.ifname);
    match LinkGet::Name(host_name.clone()).execute(&mut node)? {
        None => problems.push(format!("node: host interface {host_name} is missing")),
        Some(link) => {
            if link.alias.as_deref() != Some(alias.as_str()) {
                problems.push(format!(
                    "node: {host_name} has alias {:?}, expected {alias:?}",
                    link.alias
                ));
            }
            if !link.up {
                problems.push(format!("node: {host_name} is down"));
            }
            if link.mtu != conf.mtu {
                problems.push(format!(
                    "node: {host_name} has MTU {}, config says {}",
                    link.mtu, conf.mtu
                ));
            }
            let routes = RouteList::v4().oif(link.index).execute(&mut node)?;
            for (ip, _) in &ips {
                let want = Route::direct(IpNet::new(IpAddr::V4(*ip), 32).expect("/32"), link.index);
                if !routes
                    .iter()
                    .any(|r| r.dst == want.dst && r.gateway.is_none())
                {
                    problems.push(format!("node: no route {}/32 dev {host_name}", ip));
                }
            }
        }
    }

    // IPAM.
    if let Some(mismatch) = Ipam::for_conf(conf).check(env, pod_ip)? {
        problems.push(mismatch);
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Check(problems))
    }
}
