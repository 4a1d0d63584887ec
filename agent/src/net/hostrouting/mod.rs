//! BPF host routing: pod-to-pod traffic forwarded by TC programs on the
//! node's devices instead of the node's IP stack (the programs are in
//! `ebpf/programs/src/net`; Cilium calls this "BPF host routing").
//!
//! A packet a pod sends leaves through the device the routing table picks
//! without an IP-stack pass in the node; a packet for a pod on this node is
//! handed straight into the pod's namespace (`bpf_redirect_peer`). Routes,
//! neighbours and forwarding switches are still the kernel's and decide
//! every hop. What changes is that netfilter in the node's namespace no
//! longer sees pod-to-pod packets: `--host-routing kernel` keeps the old
//! path for nodes that filter pod traffic with iptables or nftables.
//!
//! - [`plan`]: devices and pod CIDRs → the maps and links wanted (pure).
//! - [`devices`]: which devices those are, read from the kernel, and a
//!   netlink subscription that wakes the reconciler when they change.
//! - [`datapath`]: the kernel boundary (object, pinned maps and links).
//! - this module: the reconciler (on the agent's driver, woken by netlink
//!   for devices and by the view for pod CIDRs) and the local API's
//!   `/net/*` routes.

pub mod datapath;
pub mod devices;
pub mod plan;

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::PathBuf,
    str::FromStr,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use ipnet::Ipv4Net;
use keel_ebpf_common::net::CidrEntry;
use keel_sys::netlink::{Handle as Netlink, NetlinkError};

use self::{
    datapath::{DatapathError, HostDatapath, NetDatapath},
    devices::Devices,
    plan::Inputs,
};
use crate::{
    reconcile::{self, Batch, Handle, Reconcile, Report, backoff::Backoff},
    sync::{View, Views},
};

/// Re-check everything this often even without a change.
const RESYNC: Duration = Duration::from_secs(30);
/// Changes arriving this close together are reconciled once.
const DEBOUNCE: Duration = Duration::from_millis(5);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// `--host-routing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// BPF where this agent is the node's kube-proxy replacement (its load
    /// balancer runs) and the kernel takes the programs; the kernel's stack
    /// otherwise (said in the status and the log). Without keel's load
    /// balancer, Services may be NATed by netfilter (kube-proxy), and a
    /// reply that skipped the node's conntrack would never be un-NATed.
    Auto,
    /// BPF or the agent does not start.
    Bpf,
    /// The kernel's IP stack forwards pod traffic; anything an earlier
    /// agent attached is detached.
    Kernel,
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Mode::Auto),
            "bpf" => Ok(Mode::Bpf),
            "kernel" => Ok(Mode::Kernel),
            _ => Err(format!("{s:?} is not auto, bpf or kernel")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// keel's load balancer runs on this node (for [`Mode::Auto`]).
    pub lb: bool,
    /// Where the maps and links are pinned (`<bpffs>/net`).
    pub dir: PathBuf,
    pub node_ip: Ipv4Addr,
    /// Egress's status, reported alongside (node networking writes it).
    pub egress: crate::net::egress::SharedStatus,
}

/// What `/net/status` reports.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// "bpf" or "kernel": what forwards pod traffic on this node.
    pub host_routing: String,
    /// Why, when that is not what was asked for.
    pub reason: String,
    pub pins: String,
    pub pod_devices: usize,
    pub uplink: Option<String>,
    pub vxlan: Option<String>,
    pub pod_cidrs: usize,
    /// Links an earlier agent left, adopted (program swapped) at start.
    pub adopted: usize,
    pub syncs: u64,
    pub changes: u64,
    pub last_error: Option<String>,
    /// Egress masquerading (not host routing's, reported here too).
    pub egress: crate::net::egress::Status,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("--host-routing bpf: {0}")]
    Datapath(#[from] DatapathError),
    #[error("--host-routing: removing the BPF state pinned under {dir}: {source}")]
    Remove {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--host-routing: watching links: {0}")]
    Monitor(#[source] std::io::Error),
    #[error("--host-routing: starting the reconciler: {0}")]
    Thread(#[source] std::io::Error),
}

/// Why a host-routing pass failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("reading devices: {0}")]
    Devices(#[from] NetlinkError),
    #[error(transparent)]
    Datapath(#[from] DatapathError),
}

/// The running reconciler's API routes (and its driver, with BPF).
pub struct Running {
    pub router: Router,
    pub status: Arc<RwLock<Status>>,
    pub handle: Option<Handle<Trigger>>,
}

/// Starts host routing as `opts.mode` says (kernel: detaches what an
/// earlier agent attached and returns).
pub fn start(opts: Options, views: &Views) -> Result<Running, StartError> {
    let status = Arc::new(RwLock::new(Status {
        pins: opts.dir.display().to_string(),
        ..Status::default()
    }));
    let kernel = |reason: String| -> Result<Running, StartError> {
        datapath::remove(&opts.dir).map_err(|source| StartError::Remove {
            dir: opts.dir.display().to_string(),
            source,
        })?;
        {
            let mut s = status.write().unwrap_or_else(|e| e.into_inner());
            s.host_routing = "kernel".into();
            s.reason = reason;
        }
        Ok(Running {
            router: router(status.clone(), None, opts.egress.clone()),
            status: status.clone(),
            handle: None,
        })
    };
    if opts.mode == Mode::Kernel {
        tracing::info!("host routing: the kernel's IP stack forwards pod traffic");
        return kernel("--host-routing kernel".into());
    }
    if opts.mode == Mode::Auto && !opts.lb {
        tracing::info!(
            "host routing: the kernel's IP stack forwards pod traffic (auto: keel's load balancer is off, so Services may be netfilter's)"
        );
        return kernel(
            "--host-routing auto without keel's load balancer (--cgroup-root): Service NAT may be netfilter's, which BPF host routing would bypass".into(),
        );
    }
    let dp = match NetDatapath::load(&opts.dir) {
        Ok(dp) => dp,
        Err(e) if opts.mode == Mode::Auto => {
            tracing::warn!(error = %e, "host routing: BPF unavailable, the kernel's IP stack forwards pod traffic");
            return kernel(format!("BPF unavailable: {e}"));
        }
        Err(e) => return Err(e.into()),
    };
    for r in &dp.recreated {
        tracing::warn!(map = %r, "host routing: recreated a pinned map with an incompatible layout");
    }
    {
        let mut s = status.write().unwrap_or_else(|e| e.into_inner());
        s.host_routing = "bpf".into();
        s.adopted = dp.adopted;
    }
    tracing::info!(pins = %opts.dir.display(), adopted = dp.adopted, "host routing: BPF");

    let dir = opts.dir.clone();
    let (handle, _thread) = reconcile::spawn(
        "hostrouting",
        Reconciler {
            dp,
            node_ip: opts.node_ip,
            netlink: None,
            views: views.clone(),
            status: status.clone(),
        },
        reconcile::Options {
            debounce: DEBOUNCE,
            resync: Some(RESYNC),
            backoff: Backoff::new(BACKOFF_MIN, BACKOFF_MAX),
        },
    )
    .map_err(StartError::Thread)?;
    // Devices: the kernel says when they change.
    let h = handle.clone();
    devices::monitor(move || {
        h.trigger(Trigger::Devices);
        true
    })
    .map_err(StartError::Monitor)?;
    // Pod CIDRs: the watched Nodes, once synced, when a CIDR changes.
    let h = handle.clone();
    let last = Mutex::new(None);
    views.subscribe(move |v, changes| {
        if changes.nodes.is_empty() && !changes.synced {
            return;
        }
        let now = cidrs_of(v);
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if now.is_some() && *last != now {
            *last = now;
            h.trigger(Trigger::Cidrs);
        }
    });
    Ok(Running {
        router: router(status.clone(), Some(dir), opts.egress.clone()),
        status,
        handle: Some(handle),
    })
}

/// What woke host routing (either way the pass looks at everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trigger {
    Devices,
    Cidrs,
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Trigger::Devices => "devices",
            Trigger::Cidrs => "pod-cidrs",
        })
    }
}

/// Every node's pod CIDR (this node's marked), from the view once it has
/// synced (before that, nothing is known to be gone).
fn cidrs_of(v: &View) -> Option<BTreeMap<Ipv4Net, bool>> {
    if !v.synced {
        return None;
    }
    let me = v.node.as_ref().map(|n| n.metadata.name.clone());
    Some(
        v.nodes
            .values()
            .filter_map(|n| {
                let cidr: Ipv4Net = n.spec.pod_cidr.parse().ok()?;
                Some((cidr, Some(&n.metadata.name) == me.as_ref()))
            })
            .collect(),
    )
}

/// One pass: observe the maps and links, plan against `devices` and
/// `cidrs` (None: keep the CIDRs the maps hold), apply in order, stopping
/// at the first error. Returns how many changes were made.
pub fn sync(
    dp: &mut impl HostDatapath,
    devices: &Devices,
    cidrs: Option<&BTreeMap<Ipv4Net, bool>>,
) -> Result<usize, DatapathError> {
    let have = dp.observe()?;
    let inputs = Inputs {
        pod_devs: devices.pod_devs.clone(),
        uplink: devices.uplink.clone(),
        vxlan: devices.vxlan.clone(),
        cidrs: match cidrs {
            Some(c) => c.clone(),
            None => have
                .cidrs
                .iter()
                .map(|(c, f)| (*c, f & keel_ebpf_common::net::CIDR_F_LOCAL != 0))
                .collect(),
        },
    };
    let ops = plan::plan(&plan::desired(&inputs), &have);
    for (i, op) in ops.iter().enumerate() {
        tracing::debug!(%op, "host routing");
        dp.apply(op).inspect_err(|e| {
            tracing::warn!(%op, error = %e, done = i, "host routing: change failed");
        })?;
    }
    Ok(ops.len())
}

/// Host routing on the agent's driver: every pass reads the devices from
/// the kernel and the pod CIDRs from the view and reconciles both.
struct Reconciler {
    dp: NetDatapath,
    node_ip: Ipv4Addr,
    /// Reused between passes; dropped after an error.
    netlink: Option<Netlink>,
    views: Views,
    status: Arc<RwLock<Status>>,
}

impl Reconcile for Reconciler {
    type Key = Trigger;

    fn reconcile(&mut self, batch: &Batch<Trigger>) -> Report<Trigger> {
        let cidrs = cidrs_of(&self.views.current());
        let result = (|| -> Result<(usize, Devices), SyncError> {
            let h = match &mut self.netlink {
                Some(h) => h,
                None => self.netlink.insert(Netlink::new()?),
            };
            let devs = devices::observe(h, self.node_ip)?;
            let n = sync(&mut self.dp, &devs, cidrs.as_ref())?;
            Ok((n, devs))
        })();
        let mut s = self.status.write().unwrap_or_else(|e| e.into_inner());
        s.syncs += 1;
        match result {
            Ok((n, devs)) => {
                if n > 0 {
                    tracing::info!(
                        changes = n,
                        pod_devices = devs.pod_devs.len(),
                        "host routing updated"
                    );
                }
                s.changes += n as u64;
                s.pod_devices = devs.pod_devs.len();
                s.uplink = devs.uplink.map(|d| d.name);
                s.vxlan = devs.vxlan.map(|d| d.name);
                s.pod_cidrs = cidrs.as_ref().map_or(0, |c| c.len());
                s.last_error = None;
                Report::ok()
            }
            Err(e) => {
                s.last_error = Some(e.to_string());
                self.netlink = None;
                Report::fail_batch(batch, e)
            }
        }
    }
}

#[derive(Clone)]
struct Api {
    status: Arc<RwLock<Status>>,
    dir: Option<PathBuf>,
    egress: crate::net::egress::SharedStatus,
}

/// `GET /net/status` (JSON) and `GET /net/dump` (the pinned maps and links
/// as the kernel holds them, and the counters, one per line).
fn router(
    status: Arc<RwLock<Status>>,
    dir: Option<PathBuf>,
    egress: crate::net::egress::SharedStatus,
) -> Router {
    Router::new()
        .route("/net/status", get(status_route))
        .route("/net/dump", get(dump_route))
        .with_state(Api {
            status,
            dir,
            egress,
        })
}

async fn status_route(State(api): State<Api>) -> Response {
    let mut s = api.status.read().unwrap_or_else(|e| e.into_inner()).clone();
    s.egress = api.egress.read().unwrap_or_else(|e| e.into_inner()).clone();
    Json(s).into_response()
}

async fn dump_route(State(api): State<Api>) -> Response {
    let Some(dir) = api.dir else {
        return (StatusCode::OK, "host routing: kernel (nothing pinned)\n").into_response();
    };
    let text = tokio::task::spawn_blocking(move || -> Result<String, DatapathError> {
        let snap = datapath::snapshot(&dir)?;
        Ok(dump_text(&snap))
    })
    .await;
    match text {
        Ok(Ok(t)) => (StatusCode::OK, t).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The snapshot as lines: `CIDR 10.244.1.0/24 local`, `EP 10.244.0.5
/// dev=#7 mac=… gw=…`, `LINK from_pod-7 #7`, `STAT to_pod 1234`.
pub fn dump_text(snap: &datapath::Snapshot) -> String {
    let mut out = String::new();
    for (cidr, flags) in &snap.cidrs {
        if let Ok(net) = cidr.parse::<Ipv4Net>() {
            let e = CidrEntry {
                addr: u32::from_ne_bytes(net.network().octets()),
                prefix_len: u32::from(net.prefix_len()),
                value: keel_ebpf_common::net::CidrValue { flags: *flags },
            };
            out.push_str(&format!("{e}\n"));
        }
    }
    for (addr, e) in &snap.endpoints {
        let entry = keel_ebpf_common::net::EndpointEntry {
            addr: u32::from_ne_bytes(addr.octets()),
            value: keel_ebpf_common::net::Endpoint {
                ifindex: e.ifindex,
                mtu: e.mtu,
                pod_mac: e.pod_mac,
                host_mac: e.host_mac,
            },
        };
        out.push_str(&format!("{entry}\n"));
    }
    for (pin, ifindex) in &snap.links {
        out.push_str(&format!("LINK {pin} #{ifindex}\n"));
    }
    for (name, v) in &snap.stats {
        out.push_str(&format!("STAT {name} {v}\n"));
    }
    out
}

#[cfg(test)]
mod tests;
