//! The route controller (`vpc` mode): keeps the VPC route table holding one
//! route per node, its pod CIDR via its InternalIP, and withdraws the
//! routes of deleted nodes. Runs on node changes and on a timer (a VPC
//! table can be changed behind keel's back).

use std::{collections::BTreeMap, net::Ipv4Addr, sync::Arc};

use ipnet::Ipv4Net;

use super::{ControllerConfig, Follower, Work};
use crate::{
    store::{Obj, State, Store},
    vpc::{self, RouteOp, VpcProvider},
};

/// The routes the VPC should hold (pure).
pub fn desired(state: &State) -> BTreeMap<Ipv4Net, Ipv4Addr> {
    state
        .nodes
        .values()
        .filter_map(|n| {
            Some((
                n.spec.pod_cidr.parse().ok()?,
                n.internal_ip()?.parse().ok()?,
            ))
        })
        .collect()
}

pub async fn run(store: Store, cfg: ControllerConfig, provider: Arc<dyn VpcProvider>) {
    let mut follower = Follower::new(store, cfg.resync);
    loop {
        let state = match follower.next().await {
            Work::Resync(s) => s,
            Work::Events(events, s) => {
                if !events.iter().any(|e| matches!(e.obj, Obj::Node(_))) {
                    continue;
                }
                s
            }
        };
        let want = desired(&state);
        let p = provider.clone();
        let result = tokio::task::spawn_blocking(move || -> Result<usize, vpc::VpcError> {
            let have = p.list()?;
            let ops = vpc::plan(&want, &have);
            for op in &ops {
                match op {
                    RouteOp::Replace(dst, hop) => p.replace(*dst, *hop)?,
                    RouteOp::Delete(dst) => p.delete(*dst)?,
                }
            }
            Ok(ops.len())
        })
        .await;
        match result {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                tracing::info!(provider = %provider.name(), changes = n, "VPC routes updated")
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "VPC route update failed; retrying on the next change or resync")
            }
            Err(_) => {}
        }
    }
}
