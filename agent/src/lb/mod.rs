//! Service load balancing, the agent's side: Services and Endpoints in,
//! BPF maps out (the programs are in `ebpf/programs/src/lb`).
//!
//! - [`model`]: one Service + its Endpoints → frontends and ready backends.
//! - [`desired`]: those frontends for every Service, kept incrementally.
//! - [`maglev`]: Maglev tables for TC frontends.
//! - [`observed`]: what the maps hold, mirrored in memory.
//! - [`plan`]: the pure delta between the two.
//! - [`apply`]: the only writer of the maps.
//! - [`maps`]: the kernel boundary (`LbMaps`, aya and fake implementations).
//! - [`datapath`]: loading, pinning and attaching the programs (the
//!   `bpf(2)` calls aya lacks are in [`crate::bpf::sys`]).
//! - [`reconcile`]: the reconciler that ties it together, run by the
//!   agent's driver (single writer, retries with back-off, periodic
//!   resync, status).
//! - [`api`] and [`dump`]: the local API's `/lb/*` routes.

/// The map types shared with the BPF programs (re-exported for tests and tools).
pub use keel_ebpf_common::lb as common;

pub mod api;
pub mod apply;
pub mod datapath;
pub mod desired;
pub mod dump;
pub mod maglev;
pub mod maps;
pub mod model;
pub mod observed;
pub mod plan;
pub mod reconcile;

#[cfg(test)]
mod testutil;

use std::{net::Ipv4Addr, path::PathBuf, time::Duration};

use crate::{reconcile::Handle, sync::Views};

/// How the agent runs its load balancer (all from flags).
#[derive(Debug, Clone)]
pub struct LbOptions {
    pub node: model::NodeInfo,
    /// cgroup v2 directory whose sockets get ClusterIP translation.
    pub cgroup_root: PathBuf,
    /// Interface for the NodePort/externalIP TC programs; None: the one
    /// holding the node IP; "none": no TC programs.
    pub uplink: Option<String>,
    /// Where maps and links are pinned (per node).
    pub bpffs: PathBuf,
    /// How often to re-read the maps and compare everything.
    pub resync: Duration,
    /// `--nodeport-addresses`: NodePorts answer only on uplink addresses
    /// inside these (all of them when empty).
    pub nodeport_addresses: Vec<ipnet::Ipv4Net>,
}

/// How often the uplink's addresses are read for NodePorts.
const ADDRESS_POLL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Datapath(#[from] datapath::DatapathError),
    #[error(transparent)]
    Reconcile(#[from] reconcile::ReconcileError),
    #[error("BPF map: {0}")]
    Maps(#[from] Box<maps::MapsError>),
    #[error("starting the load balancer's reconciler: {0}")]
    Thread(#[source] std::io::Error),
    #[error("--uplink: no interface holds the node IP {ip}; pass --uplink IFACE (or none)")]
    NoUplink { ip: Ipv4Addr },
}

/// The IPv4 addresses of interface `iface`.
pub fn addresses_of(iface: &str) -> Vec<Ipv4Addr> {
    nix::ifaddrs::getifaddrs()
        .map(|it| {
            it.filter(|ifa| ifa.interface_name == iface)
                .filter_map(|ifa| Some(ifa.address?.as_sockaddr_in()?.ip()))
                .collect()
        })
        .unwrap_or_default()
}

/// The interface holding `ip`.
pub fn uplink_for(ip: Ipv4Addr) -> Option<String> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|ifa| {
        (ifa.address?.as_sockaddr_in()?.ip() == ip).then(|| ifa.interface_name.clone())
    })
}

/// The running load balancer: its local API routes, its reconciler and
/// that reconciler's thread.
pub struct Running {
    pub router: axum::Router,
    pub reconciler: Handle<String>,
    pub thread: std::thread::JoinHandle<()>,
    pub uplink: Option<String>,
}

/// Loads the programs against the node's pinned maps (adopting what they
/// hold), attaches them to the cgroup root and the uplink, and starts the
/// reconciler.
pub fn start(opts: LbOptions, views: &Views) -> Result<Running, StartError> {
    let uplink = match opts.uplink.as_deref() {
        Some("none") => None,
        Some(i) => Some(i.to_string()),
        None => Some(uplink_for(opts.node.ip).ok_or(StartError::NoUplink { ip: opts.node.ip })?),
    };
    let mut dp = datapath::Datapath::load(&opts.bpffs)?;
    for r in &dp.recreated {
        tracing::warn!(map = %r, "lb: recreated a pinned map with an incompatible layout");
    }
    let mut maps = dp.maps().map_err(Box::new)?;
    maps::LbMaps::set_config(
        &mut maps,
        &common::LbConfig {
            snat_addr: u32::from_ne_bytes(opts.node.ip.octets()),
            _pad: [0; 3],
        },
    )
    .map_err(Box::new)?;
    let read_ips = {
        let (uplink, node_ip, cidrs) = (
            uplink.clone(),
            opts.node.ip,
            opts.nodeport_addresses.clone(),
        );
        move || {
            let on_uplink = uplink.as_deref().map(addresses_of).unwrap_or_default();
            model::node_port_ips(node_ip, &on_uplink, &cidrs)
        }
    };
    let mut node = opts.node.clone();
    node.node_port_ips = read_ips();
    if node.node_port_ips.is_empty() {
        tracing::warn!(cidrs = ?opts.nodeport_addresses, "lb: no uplink address is inside --nodeport-addresses; NodePorts answer nowhere");
    }
    let rec = reconcile::Reconciler::new(maps, node)?;
    dp.attach_cgroup(&opts.cgroup_root)?;
    if let Some(iface) = &uplink {
        dp.attach_tc(iface)?;
    }
    tracing::info!(
        cgroup = %opts.cgroup_root.display(),
        uplink = uplink.as_deref().unwrap_or("none"),
        pins = %opts.bpffs.display(),
        "lb: datapath attached"
    );
    let router = api::router(rec.shared(), dp.maps_dir());
    let ips = rec.node_port_ips();
    // The datapath (programs) lives as long as the reconciler; the pinned
    // links keep the programs attached after the agent exits.
    let (reconciler, thread) =
        reconcile::start(rec, views, opts.resync, dp).map_err(StartError::Thread)?;
    // Addresses come and go on the uplink: NodePorts follow within a poll.
    let h = reconciler.clone();
    std::thread::Builder::new()
        .name("lb-addresses".into())
        .spawn(move || {
            loop {
                std::thread::sleep(ADDRESS_POLL);
                let now = read_ips();
                let mut current = ips.write().unwrap_or_else(|e| e.into_inner());
                if *current != now {
                    tracing::info!(addresses = ?now, "lb: NodePort addresses changed");
                    *current = now;
                    drop(current);
                    h.trigger_all();
                }
            }
        })
        .map_err(StartError::Thread)?;
    Ok(Running {
        router,
        reconciler,
        thread,
        uplink,
    })
}
