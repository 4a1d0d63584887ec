//! Node networking: makes pods on other nodes reachable, by VXLAN, direct
//! routes, a VPC route table, or a mix (auto). A reconciler: the view's
//! Nodes are the desired state, the kernel is observed, [`plan`] decides
//! and [`kernel::apply`] changes only what differs — so an agent restart
//! over correct state changes nothing and cuts no flow.
//!
//! [`hostrouting`] is the other half: how packets cross the node itself
//! (BPF programs at TC instead of the IP stack, by default). [`egress`]
//! masquerades pods' traffic leaving the cluster, in the same pass.

pub mod egress;
pub mod hostrouting;
pub mod kernel;
pub mod plan;

use std::{net::Ipv4Addr, time::Duration};

use keel_api::node::NodeCondition;
use keel_sys::netlink::Handle as Netlink;
use tokio::sync::watch;

use self::plan::{Me, Mode, Peer, VxlanConfig};
use crate::{
    reconcile::{self, Batch, Handle, Reconcile, Report, backoff::Backoff},
    sync::Views,
};

/// Full re-check period even without changes (repairs external damage).
const RESYNC: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct NetConfig {
    pub mode: Mode,
    pub vxlan: VxlanConfig,
    pub node_name: String,
    pub node_ip: Ipv4Addr,
    pub egress: egress::EgressConfig,
    /// Where the pass reports egress (shown by `/net/status`).
    pub egress_status: egress::SharedStatus,
}

/// The underlay MTU of the interface holding the node IP (1500 if unknown).
pub fn underlay_mtu(node_ip: Ipv4Addr) -> u32 {
    Netlink::new()
        .ok()
        .and_then(|mut h| kernel::uplink(&mut h, node_ip).ok().flatten())
        .map(|(_, _, mtu)| mtu)
        .unwrap_or(1500)
}

/// The one key of node networking: it is reconciled as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeNetwork;

impl std::fmt::Display for NodeNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("node-network")
    }
}

/// Node networking on the agent's driver.
struct Reconciler {
    cfg: NetConfig,
    views: Views,
    conditions: watch::Sender<Vec<NodeCondition>>,
}

impl Reconcile for Reconciler {
    type Key = NodeNetwork;

    fn reconcile(&mut self, batch: &Batch<NodeNetwork>) -> Report<NodeNetwork> {
        let v = self.views.current();
        let Some(pod_cidr) = v.pod_cidr().filter(|_| v.synced) else {
            return Report::ok();
        };
        let peers: Vec<Peer> = v
            .nodes
            .values()
            .filter_map(|n| {
                Some(Peer {
                    name: n.metadata.name.clone(),
                    ip: n.internal_ip()?.parse().ok()?,
                    pod_cidr: n.spec.pod_cidr.parse().ok()?,
                })
            })
            .collect();
        let service_ips: Vec<Ipv4Addr> = v
            .services
            .values()
            .filter_map(|s| s.spec.cluster_ip.parse().ok())
            .collect();
        let served = served(&v);
        let cfg = &self.cfg;
        let mut egress_error = None;
        let (condition, report) = match reconcile(cfg, pod_cidr, &peers, &service_ips, &served) {
            Ok(report) => {
                if report.changes > 0 {
                    tracing::info!(mode = ?cfg.mode, changes = report.changes, peers = report.peers, "node networking updated");
                }
                let mut st = cfg.egress_status.write().unwrap_or_else(|e| e.into_inner());
                st.masquerade = cfg.egress.masquerade;
                st.source = report.egress_rules.as_ref().map(|r| r.source.to_string());
                st.kept = report
                    .egress_rules
                    .iter()
                    .flat_map(|r| r.keep.iter().map(|n| n.to_string()))
                    .collect();
                match &report.egress {
                    Ok(op) => {
                        if let Some(op) = op {
                            tracing::info!(%op, "egress updated");
                            st.changes += 1;
                        }
                        st.table = report
                            .egress_rules
                            .is_some()
                            .then(|| format!("ip {}", egress::TABLE));
                        st.last_error = None;
                    }
                    Err(e) => {
                        // Pods still reach each other: the node's network
                        // is not unavailable, the pass is retried.
                        tracing::warn!(error = %e, "egress: masquerade rule not applied");
                        egress_error = Some(e.to_string());
                        st.last_error = egress_error.clone();
                    }
                }
                let c = if report.problems.is_empty() {
                    condition(
                        "False",
                        "KeelNetworkReady",
                        &format!(
                            "{} mode: {} peers {}",
                            mode_name(cfg.mode),
                            report.peers,
                            if cfg.mode == Mode::Vpc {
                                "through the VPC route table"
                            } else {
                                "programmed"
                            }
                        ),
                    )
                } else {
                    let list: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
                    tracing::warn!(problems = ?list, "peers unreachable");
                    condition("True", "PeersUnreachable", &list.join("; "))
                };
                (c, Report::ok())
            }
            Err(e) => {
                let c = condition("True", "KeelNetworkError", &e.to_string());
                (c, Report::fail_batch(batch, e))
            }
        };
        self.conditions.send_if_modified(|c| {
            let changed = c.first().is_none_or(|old| {
                (&old.status, &old.reason, &old.message)
                    != (&condition.status, &condition.reason, &condition.message)
            });
            if changed {
                *c = vec![condition];
            }
            changed
        });
        match egress_error {
            Some(e) if report.is_ok() => Report::fail_batch(batch, format!("egress: {e}")),
            _ => report,
        }
    }
}

/// Starts node networking on a driver thread of its own (nothing with
/// `--network-mode none`): a pass whenever a Node changes, every
/// [`RESYNC`] (repairing external damage), and retries with back-off.
/// `conditions` carries the node condition it reports (NetworkUnavailable).
pub fn start(
    cfg: NetConfig,
    views: &Views,
    conditions: watch::Sender<Vec<NodeCondition>>,
) -> std::io::Result<Option<Handle<NodeNetwork>>> {
    if cfg.mode == Mode::None {
        return Ok(None);
    }
    let (handle, _thread) = reconcile::spawn(
        "net",
        Reconciler {
            cfg,
            views: views.clone(),
            conditions,
        },
        reconcile::Options {
            debounce: Duration::from_millis(5),
            resync: Some(RESYNC),
            backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(10)),
        },
    )?;
    let h = handle.clone();
    views.subscribe(move |_, changes| {
        // Services, Endpoints and Pods feed egress (kept cluster IPs, served ports).
        if changes.synced
            || !changes.nodes.is_empty()
            || !changes.services.is_empty()
            || !changes.endpoints.is_empty()
            || !changes.pods.is_empty()
        {
            h.trigger(NodeNetwork);
        }
    });
    Ok(Some(handle))
}

/// The ports pods serve on, from the view: every Endpoints address and
/// port (ready or not), every hostPort's pod IP and containerPort
/// ([`egress::desired`] keeps this node's).
fn served(v: &crate::sync::View) -> Vec<egress::Served> {
    let mut out = Vec::new();
    for e in v.endpoints.values() {
        for s in &e.subsets {
            for a in s.addresses.iter().chain(&s.not_ready_addresses) {
                let Ok(ip) = a.ip.parse() else { continue };
                out.extend(s.ports.iter().map(|p| egress::Served {
                    ip,
                    proto: p.protocol.into(),
                    port: p.port,
                }));
            }
        }
    }
    for p in v.pods.values() {
        let Ok(ip) = p.status.pod_ip.parse() else {
            continue;
        };
        for c in &p.spec.containers {
            for port in c.ports.iter().filter(|port| port.host_port.is_some()) {
                if let Ok(n) = u16::try_from(port.container_port) {
                    out.push(egress::Served {
                        ip,
                        proto: port.protocol.into(),
                        port: n,
                    });
                }
            }
        }
    }
    out
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::None => "none",
        Mode::Vxlan => "vxlan",
        Mode::Route => "route",
        Mode::Vpc => "vpc",
        Mode::Auto => "auto",
    }
}

fn condition(status: &str, reason: &str, message: &str) -> NodeCondition {
    NodeCondition {
        type_: "NetworkUnavailable".into(),
        status: status.into(),
        last_heartbeat_time: None,
        last_transition_time: Some(keel_api::Time::now()),
        reason: reason.into(),
        message: message.into(),
    }
}

/// Why a pass over node networking failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("netlink: {0}")]
    Netlink(#[from] keel_sys::netlink::NetlinkError),
    #[error("no interface holds the node IP {ip}")]
    NoUplink { ip: Ipv4Addr },
    #[error(transparent)]
    Sysctl(#[from] keel_sys::sysctl::SysctlError),
}

struct Pass {
    changes: usize,
    peers: usize,
    problems: Vec<plan::Unreachable>,
    /// The egress rule wanted (None: masquerading is off).
    egress_rules: Option<egress::Rules>,
    /// The egress change made, if any, or why it failed.
    egress: Result<Option<egress::Op>, egress::nft::NftError>,
}

fn reconcile(
    cfg: &NetConfig,
    pod_cidr: ipnet::Ipv4Net,
    peers: &[Peer],
    service_ips: &[Ipv4Addr],
    served: &[egress::Served],
) -> Result<Pass, NetError> {
    let mut h = Netlink::new()?;
    let (uplink, subnet, mtu) =
        kernel::uplink(&mut h, cfg.node_ip)?.ok_or(NetError::NoUplink { ip: cfg.node_ip })?;
    let me = Me {
        name: cfg.node_name.clone(),
        ip: cfg.node_ip,
        pod_cidr,
        subnet,
        uplink,
        uplink_mtu: mtu,
    };
    let (want, problems) = plan::desired(cfg.mode, &me, peers, cfg.vxlan);
    let interesting: Vec<ipnet::Ipv4Net> = want.routes.keys().copied().collect();
    let have = kernel::observe(&mut h, &interesting)?;
    let (ops, skipped) = plan::plan(&want, &have);
    let mut problems = problems;
    for dst in skipped {
        problems.push(plan::Unreachable {
            peer: dst.to_string(),
            reason: "a route keel did not create already covers this pod CIDR; left untouched"
                .into(),
        });
    }
    for op in &ops {
        tracing::debug!(?op, "applying");
    }
    kernel::apply(&mut h, &ops, uplink)?;
    // After the device exists: some of these are its own.
    for (rel, value) in plan::sysctls(&want) {
        keel_sys::sysctl::set_rel(&rel, value)?;
    }
    let rules = egress::desired(&egress::Inputs {
        config: &cfg.egress,
        pod_cidr,
        pod_cidrs: peers.iter().map(|p| p.pod_cidr).collect(),
        node_ips: peers.iter().map(|p| p.ip).chain([cfg.node_ip]).collect(),
        service_ips: service_ips.to_vec(),
        served: served.to_vec(),
    });
    let egress = match &rules {
        Some(want) => egress::nft::observe().and_then(|have| {
            let op = egress::plan(Some(want), &have);
            if let Some(op) = &op {
                egress::nft::apply(op)?;
            }
            Ok(op)
        }),
        // Off: a host without nft has no table of keel's to remove.
        None => egress::nft::remove().map(|gone| gone.then_some(egress::Op::Delete)),
    };
    let peers_total = peers.iter().filter(|p| p.name != cfg.node_name).count();
    Ok(Pass {
        changes: ops.len(),
        peers: peers_total - problems.len().min(peers_total),
        problems,
        egress_rules: rules,
        egress,
    })
}

#[cfg(test)]
mod tests;
