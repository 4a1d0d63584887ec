//! Node networking: makes pods on other nodes reachable, by VXLAN, direct
//! routes, a VPC route table, or a mix (auto). A reconciler: the view's
//! Nodes are the desired state, the kernel is observed, [`plan`] decides
//! and [`kernel::apply`] changes only what differs — so an agent restart
//! over correct state changes nothing and cuts no flow.
//!
//! [`hostrouting`] is the other half: how packets cross the node itself
//! (BPF programs at TC instead of the IP stack, by default).

pub mod hostrouting;
pub mod kernel;
pub mod plan;

use std::{net::Ipv4Addr, time::Duration};

use keel_api::node::NodeCondition;
use keel_sys::netlink::Handle;
use tokio::sync::watch;

use self::plan::{Me, Mode, Peer, VxlanConfig};
use crate::sync::View;

/// Full re-check period even without changes (repairs external damage).
const RESYNC: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct NetConfig {
    pub mode: Mode,
    pub vxlan: VxlanConfig,
    pub node_name: String,
    pub node_ip: Ipv4Addr,
}

/// The underlay MTU of the interface holding the node IP (1500 if unknown).
pub fn underlay_mtu(node_ip: Ipv4Addr) -> u32 {
    Handle::new()
        .ok()
        .and_then(|mut h| kernel::uplink(&mut h, node_ip).ok().flatten())
        .map(|(_, _, mtu)| mtu)
        .unwrap_or(1500)
}

/// Runs until the view's sender is gone. `conditions` carries the node
/// condition this reconciler reports (NetworkUnavailable).
pub async fn run(
    cfg: NetConfig,
    mut view: watch::Receiver<View>,
    conditions: watch::Sender<Vec<NodeCondition>>,
) {
    if cfg.mode == Mode::None {
        return;
    }
    loop {
        let v = view.borrow_and_update().clone();
        if v.synced
            && let Some(pod_cidr) = v.pod_cidr()
        {
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
            let cfg2 = cfg.clone();
            let outcome =
                tokio::task::spawn_blocking(move || reconcile(&cfg2, pod_cidr, &peers)).await;
            let condition = match outcome {
                Ok(Ok(report)) => {
                    if report.changes > 0 {
                        tracing::info!(mode = ?cfg.mode, changes = report.changes, peers = report.peers, "node networking updated");
                    }
                    if report.problems.is_empty() {
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
                        let list: Vec<String> =
                            report.problems.iter().map(|p| p.to_string()).collect();
                        tracing::warn!(problems = ?list, "peers unreachable");
                        condition("True", "PeersUnreachable", &list.join("; "))
                    }
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "node networking failed; retrying");
                    condition("True", "KeelNetworkError", &e)
                }
                Err(_) => condition("True", "KeelNetworkError", "reconciler panicked"),
            };
            conditions.send_if_modified(|c| {
                let changed = c.first().is_none_or(|old| {
                    (&old.status, &old.reason, &old.message)
                        != (&condition.status, &condition.reason, &condition.message)
                });
                if changed {
                    *c = vec![condition];
                }
                changed
            });
        }
        tokio::select! {
            changed = view.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(RESYNC) => {}
        }
    }
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

struct Report {
    changes: usize,
    peers: usize,
    problems: Vec<plan::Unreachable>,
}

fn reconcile(cfg: &NetConfig, pod_cidr: ipnet::Ipv4Net, peers: &[Peer]) -> Result<Report, String> {
    let mut h = Handle::new().map_err(|e| e.to_string())?;
    let (uplink, subnet, mtu) = kernel::uplink(&mut h, cfg.node_ip)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no interface holds the node IP {}", cfg.node_ip))?;
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
    let have = kernel::observe(&mut h, &interesting).map_err(|e| e.to_string())?;
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
    kernel::apply(&mut h, &ops, uplink).map_err(|e| e.to_string())?;
    // After the device exists: some of these are its own.
    for (rel, value) in plan::sysctls(&want) {
        keel_sys::sysctl::set_rel(&rel, value).map_err(|e| e.to_string())?;
    }
    let peers_total = peers.iter().filter(|p| p.name != cfg.node_name).count();
    Ok(Report {
        changes: ops.len(),
        peers: peers_total - problems.len().min(peers_total),
        problems,
    })
}
