//! Cluster DNS on the node (`--cluster-dns ADDR`): the agent answers its
//! pods' queries itself, from its watched view — no query goes to
//! keel-control — on an address every pod of the node reaches without
//! leaving it: a link-local address on a dummy device (`keel.dns`) in the
//! node's network namespace, as NodeLocal DNSCache does (on `lo` where the
//! kernel has no dummy driver). Pods route
//! everything through the node, so the node's own stack delivers to it.
//!
//! - [`zone`]: the cluster's names, answered from a view (pure).
//! - [`forward`]: everything else, asked of the node's upstreams, cached.
//! - [`server`]: UDP and TCP.
//! - [`wire`]: whole answers kept by request, served without parsing.
//! - [`podfiles`]: pods' `/etc/resolv.conf` and `/etc/hosts` (pure).

pub mod forward;
pub mod podfiles;
pub mod server;
pub mod wire;
pub mod zone;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
};

use ipnet::{IpNet, Ipv4Net};
use keel_sys::netlink::{
    Handle, NetlinkError,
    addr::AddrAdd,
    link::{LinkAdd, LinkGet, LinkKind, LinkSet},
};

use crate::sync::view::Views;

/// The dummy device holding the cluster DNS address.
pub const DNS_DEVICE: &str = "keel.dns";
/// The address NodeLocal DNSCache uses by convention.
pub const DEFAULT_CLUSTER_DNS: Ipv4Addr = Ipv4Addr::new(169, 254, 20, 10);
/// Upstream answers kept at most.
pub const CACHE_ENTRIES: usize = 10_000;
/// Whole answers kept at most (cluster and upstream ones, by request).
pub const WIRE_ENTRIES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("no upstream resolver (none in the node's resolv.conf)")]
    NoUpstream,
    #[error("upstream {upstream}: {message}")]
    Upstream {
        upstream: SocketAddr,
        message: String,
    },
    /// The upstream query an identical one waited for failed: its error.
    #[error("{0}")]
    Shared(String),
    #[error("--cluster-domain: {0}")]
    Domain(String),
    #[error("setting up {DNS_DEVICE} with {addr}: {source}")]
    Device {
        addr: Ipv4Addr,
        #[source]
        source: NetlinkError,
    },
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    ResolvConf {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What `keel-agent` was told.
#[derive(Debug, Clone)]
pub struct DnsOptions {
    pub addr: Ipv4Addr,
    pub domain: String,
    /// The node's resolver configuration (upstreams, search domains).
    pub host: podfiles::ResolvConf,
}

/// The running server.
pub struct Running {
    pub resolver: Arc<server::Resolver>,
    pub addr: Ipv4Addr,
}

impl Running {
    /// `GET /dns` on the agent's socket: address, domain, upstreams,
    /// queries answered by kind, upstream answers cached.
    pub fn router(&self) -> axum::Router {
        let r = self.resolver.clone();
        let addr = self.addr;
        axum::Router::new().route(
            "/dns",
            axum::routing::get(move || async move {
                axum::Json(serde_json::json!({
                    "address": addr.to_string(),
                    "domain": r.zone.domain(),
                    "upstreams": r.forwarder.upstreams().iter().map(|u| u.to_string()).collect::<Vec<_>>(),
                    "queries": r.stats.snapshot(),
                    "cached": r.forwarder.cached(),
                    "answersKept": r.wire.len(),
                }))
            }),
        )
    }
}

/// Puts the address on [`DNS_DEVICE`] (made if missing) in the current
/// network namespace — the node's — and serves on it.
pub async fn start(opts: DnsOptions, views: &Views) -> Result<Running, DnsError> {
    let zone = zone::Zone::new(&opts.domain).map_err(DnsError::Domain)?;
    let addr = opts.addr;
    let device = tokio::task::spawn_blocking(move || ensure_device(addr))
        .await
        .expect("device task")
        .map_err(|source| DnsError::Device { addr, source })?;
    let upstreams = opts.host.upstreams(Some(IpAddr::V4(addr)));
    if upstreams.is_empty() {
        tracing::warn!("cluster DNS: no upstream in the node's resolv.conf; other names fail");
    }
    let resolver = Arc::new(server::Resolver::new(
        zone,
        views,
        forward::Forwarder::new(upstreams, CACHE_ENTRIES),
    ));
    let sa = SocketAddr::new(IpAddr::V4(addr), 53);
    // Bind here, so a failure is the caller's; then serve in the background.
    let udp = tokio::net::UdpSocket::bind(sa)
        .await
        .map_err(|source| DnsError::Listen { addr: sa, source })?;
    let tcp = tokio::net::TcpListener::bind(sa)
        .await
        .map_err(|source| DnsError::Listen { addr: sa, source })?;
    tokio::spawn(server::serve_on(resolver.clone(), udp, tcp));
    tracing::info!(%addr, %device, domain = %opts.domain, upstreams = ?resolver.forwarder.upstreams(), "cluster DNS serving");
    Ok(Running { resolver, addr })
}

/// `ip link add keel.dns type dummy; ip addr add ADDR/32 dev keel.dns`,
/// idempotent. A kernel without the dummy driver (EOPNOTSUPP) gets the
/// address on `lo` instead: either way it is local to the node's stack.
/// Returns the device used.
pub fn ensure_device(addr: Ipv4Addr) -> Result<&'static str, NetlinkError> {
    let mut h = Handle::new()?;
    let (name, link) = match LinkGet::Name(DNS_DEVICE.into()).execute(&mut h)? {
        Some(l) => (DNS_DEVICE, l),
        None => {
            let name = match LinkAdd::new(DNS_DEVICE, LinkKind::Dummy)
                .up()
                .execute(&mut h)
            {
                Ok(()) => DNS_DEVICE,
                Err(e) if e.is_exists() => DNS_DEVICE,
                Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => "lo",
                Err(e) => return Err(e),
            };
            let link = LinkGet::Name(name.into()).execute(&mut h)?.ok_or_else(|| {
                NetlinkError::Unexpected {
                    what: format!("adding {name}"),
                    reason: "gone right after it was made".into(),
                }
            })?;
            (name, link)
        }
    };
    if !link.up {
        LinkSet::index(link.index).up().execute(&mut h)?;
    }
    AddrAdd::new(link.index, IpNet::V4(Ipv4Net::new(addr, 32).expect("/32"))).execute(&mut h)?;
    Ok(name)
}
