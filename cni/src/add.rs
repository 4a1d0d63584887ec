//! ADD: reserve an address, create the veth pair with the pod end directly
//! in the pod's namespace, configure both ends, and print the result.
//!
//! Everything made is undone if a later step fails (a disarmable guard,
//! as in the reference `bridge` plugin), so a failed ADD leaves no veth,
//! route or reservation behind. A repeated ADD of the same attachment
//! converges: the same address, a fresh veth.

use std::{
    net::Ipv4Addr,
    os::fd::{AsFd, AsRawFd},
};

use ipnet::{IpNet, Ipv4Net};
use keel_sys::{
    netlink::{
        Change, Handle,
        addr::AddrAdd,
        format_mac,
        link::{LinkAdd, LinkDel, LinkGet, LinkSet, VethPeer},
        neigh::NeighAdd,
        route::{Route, RouteAdd},
    },
    ns::NetNs,
};
use netlink_packet_route::address::AddressScope;

use crate::{
    attach::{self, AttachError},
    error::Error,
    ipam::{Ipam, Lease},
    types::{CniEnv, CniResult, Interface, IpConfig, NetConf, RouteConf},
};

/// Undoes a partial ADD when dropped armed.
struct Rollback<'a> {
    ipam: &'a Ipam<'a>,
    env: &'a CniEnv,
    /// The host-side veth this ADD created (deleted by name: it may not
    /// carry its alias yet).
    host_link: Option<String>,
    armed: bool,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(name) = &self.host_link
            && let Ok(mut node) = Handle::new()
        {
            match LinkDel::Name(name.clone()).execute(&mut node) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => eprintln!("keel-cni: rollback: deleting {name}: {e}"),
            }
        }
        if let Err(e) = self.ipam.del(self.env) {
            eprintln!("keel-cni: rollback: releasing the address: {e}");
        }
    }
}

pub fn add(env: &CniEnv, conf: &NetConf) -> Result<CniResult, Error> {
    let netns_path = env.netns.as_ref().expect("CNI_NETNS is validated for ADD");
    let netns = NetNs::open(netns_path).map_err(|source| AttachError::Netns {
        path: netns_path.clone(),
        source,
    })?;
    let mut node = Handle::new()?;
    let mut pod = Handle::in_netns(&netns)?;

    let ipam = Ipam::for_conf(conf);
    let lease = ipam.add(env)?;
    let mut rollback = Rollback {
        ipam: &ipam,
        env,
        host_link: None,
        armed: true,
    };

    let gateway = conf
        .gateway
        .or(lease.gateway)
        .or_else(|| conf.default_gateway())
        .unwrap_or(attach::LINK_LOCAL_GATEWAY);
    let host_name = attach::host_ifname(&env.container_id, &env.ifname);
    let alias = attach::alias(&conf.name, &env.container_id, &env.ifname);
    let host_mac = attach::host_mac(&env.container_id, &env.ifname);
    let pod_mac = attach::pod_mac(lease.ip);

    // The peer cannot be brought up in the same request (veth_open needs
    // the pair linked first), and IFLA_IFALIAS is ignored on creation: both
    // are set just after.
    let mut peer = VethPeer::new(&env.ifname);
    peer.mtu = Some(conf.mtu);
    peer.mac = Some(pod_mac);
    peer.netns_fd = Some(netns.as_fd().as_raw_fd());
    let create = LinkAdd::veth(&host_name, peer)
        .mtu(conf.mtu)
        .mac(host_mac)
        .up();
    match create.execute(&mut node) {
        Ok(()) => {}
        Err(e) if e.is_exists() => {
            // Either an earlier (maybe killed) ADD of this attachment left
            // its veth, then start afresh, or a name is taken by something
            // else.
            if LinkGet::Name(host_name.clone())
                .execute(&mut node)?
                .is_none()
            {
                return Err(if_taken(env).into());
            }
            attach::delete_host_link(&mut node, &host_name, &alias)?;
            create.execute(&mut node).map_err(|e| {
                if e.is_exists() {
                    if_taken(env)
                } else {
                    e.into()
                }
            })?;
        }
        Err(e) => return Err(e.into()),
    }
    rollback.host_link = Some(host_name.clone());

    configure_node(&mut node, &host_name, &alias, lease.ip, gateway, pod_mac)?;
    configure_pod(&mut pod, &env.ifname, lease.ip, gateway, host_mac, &lease)?;

    let mut result = build_result(env, conf, &lease, gateway, &host_name, host_mac, pod_mac)?;
    if let Some(prev) = &conf.prev_result {
        // Not first in a chain: keep what the earlier plugins reported.
        let mut merged = CniResult::from_json(prev)?;
        let offset = merged.interfaces.len();
        for ip in &mut result.ips {
            ip.interface = ip.interface.map(|i| i + offset);
        }
        merged.interfaces.extend(result.interfaces);
        merged.ips.extend(result.ips);
        merged.routes.extend(result.routes);
        merged.dns = merged.dns.or(result.dns);
        result = merged;
    }
    rollback.armed = false;
    Ok(result)
}

fn if_taken(env: &CniEnv) -> AttachError {
    AttachError::IfnameTaken {
        ifname: env.ifname.clone(),
        netns: env.netns.clone().unwrap_or_default(),
    }
}

fn host32(ip: Ipv4Addr) -> IpNet {
    IpNet::V4(Ipv4Net::new(ip, 32).expect("32 is a valid prefix"))
}

/// Node side: the gateway address, the /32 route and a static neighbour
/// towards the pod, and forwarding for packets the pod sends.
fn configure_node(
    node: &mut Handle,
    host_name: &str,
    alias: &str,
    ip: Ipv4Addr,
    gateway: Ipv4Addr,
    pod_mac: [u8; 6],
) -> Result<(), Error> {
    let host = LinkGet::Name(host_name.to_string())
        .execute(node)?
        .ok_or_else(|| AttachError::Vanished {
            what: format!("host interface {host_name}"),
        })?;
    // One round trip for all of it; the kernel applies them in order.
    node.apply(&[
        &LinkSet::index(host.index).alias(alias),
        &AddrAdd::new(host.index, host32(gateway)).scope(AddressScope::Link),
        &RouteAdd(Route::direct(host32(ip), host.index)),
        &NeighAdd::new(host.index, ip.into(), pod_mac),
    ])?;
    // Per link, never the namespace-wide switch: only what pods send is
    // forwarded because of keel.
    attach::set_if_sysctl(host_name, "forwarding", "1")?;
    Ok(())
}

/// Pod side: loopback up, the link up, the /32, the gateway reached on the
/// link, its MAC, and the default route (and any IPAM routes) via it.
fn configure_pod(
    pod: &mut Handle,
    ifname: &str,
    ip: Ipv4Addr,
    gateway: Ipv4Addr,
    host_mac: [u8; 6],
    lease: &Lease,
) -> Result<(), Error> {
    let link = LinkGet::Name(ifname.to_string())
        .execute(pod)?
        .ok_or_else(|| AttachError::Vanished {
            what: format!("pod interface {ifname}"),
        })?;
    let default: IpNet = "0.0.0.0/0".parse().expect("valid");
    // The loopback device is always ifindex 1 in a network namespace.
    let lo_up = LinkSet::index(1).up();
    let up = LinkSet::index(link.index).up();
    let addr = AddrAdd::new(link.index, host32(ip));
    let to_gateway = RouteAdd(Route::direct(host32(gateway), link.index));
    let gateway_mac = NeighAdd::new(link.index, gateway.into(), host_mac);
    let default_route = RouteAdd(Route::via(default, gateway.into(), Some(link.index)));
    let extra: Vec<RouteAdd> = lease
        .routes
        .iter()
        .filter(|r| r.dst != default)
        .map(|r| {
            RouteAdd(Route::via(
                r.dst,
                r.gw.unwrap_or(gateway.into()),
                Some(link.index),
            ))
        })
        .collect();
    let mut changes: Vec<&dyn Change> = vec![
        &lo_up,
        &up,
        &addr,
        &to_gateway,
        &gateway_mac,
        &default_route,
    ];
    changes.extend(extra.iter().map(|r| r as &dyn Change));
    pod.apply(&changes)?;
    Ok(())
}

fn build_result(
    env: &CniEnv,
    conf: &NetConf,
    lease: &Lease,
    gateway: Ipv4Addr,
    host_name: &str,
    host_mac: [u8; 6],
    pod_mac: [u8; 6],
) -> Result<CniResult, Error> {
    let default: IpNet = "0.0.0.0/0".parse().expect("valid");
    let mut routes = vec![RouteConf {
        dst: default,
        gw: Some(gateway.into()),
    }];
    routes.extend(
        lease
            .routes
            .iter()
            .filter(|r| r.dst != default)
            .map(|r| RouteConf {
                dst: r.dst,
                gw: r.gw.or(Some(gateway.into())),
            }),
    );
    Ok(CniResult {
        interfaces: vec![
            Interface {
                name: host_name.to_string(),
                mac: Some(format_mac(&host_mac)),
                mtu: Some(conf.mtu),
                sandbox: None,
            },
            Interface {
                name: env.ifname.clone(),
                mac: Some(format_mac(&pod_mac)),
                mtu: Some(conf.mtu),
                sandbox: env.netns.as_ref().map(|p| p.display().to_string()),
            },
        ],
        ips: vec![IpConfig {
            address: host32(lease.ip),
            gateway: Some(gateway.into()),
            interface: Some(1),
        }],
        routes,
        dns: conf.dns.clone().or_else(|| lease.dns.clone()),
    })
}
