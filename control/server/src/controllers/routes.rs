//! The route controller (`vpc` mode): keeps the VPC route table holding one
//! route per node — its pod CIDR via its InternalIP — through the
//! [`VpcProvider`], withdrawing the routes of deleted nodes, and reports on
//! every Node whether its route is in place (the [`CONDITION`]).
//!
//! The provider runs when the desired table changes and on every resync (a
//! VPC table can be changed behind keel's back, and a failed run is retried
//! there); node events that leave the table alone — heartbeats — only
//! re-check the conditions, so a cloud API is not called per heartbeat.
//!
//! The condition is keel-control's own type, not `NetworkUnavailable`.
//! Kubernetes' cloud route controller writes `NetworkUnavailable`, but in
//! keel the agent owns that type on every node (its view of its peers) and
//! posts its whole status unconditionally: a second writer of the same type
//! would flip it back and forth. The store carries this condition through
//! the agents' status writes (`store::admit`), so the two never fight.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use keel_api::{
    Node,
    vpc::{Request, Response, Route},
};

use super::{ControllerConfig, Follower, Work};
use crate::{
    store::{Obj, State, Store, StoreError},
    vpc::VpcProvider,
};

/// The Node condition this controller owns: True when the node's route is
/// not in the VPC route table (with why), False when it is.
pub const CONDITION: &str = "VPCRouteUnavailable";
/// Reason when the route is in place (Kubernetes' route controller's).
pub const ROUTE_CREATED: &str = "RouteCreated";
/// Reason when the provider failed as a whole (exit status, timeout,
/// invalid answer) and the route is not known to be in place.
pub const PROVIDER_FAILED: &str = "VPCProviderFailed";
/// Reason when the provider reported success but its table lacks the route.
pub const ROUTE_MISSING: &str = "RouteMissing";
/// Condition messages are cut here: a provider's stderr can be long.
const MAX_MESSAGE: usize = 1024;
/// Attempts to write a node's condition when its Node changes meanwhile.
const WRITE_ATTEMPTS: u64 = 3;

/// The routes the VPC should hold, by destination (pure).
pub fn desired(state: &State) -> Vec<Route> {
    let by_dst: BTreeMap<_, _> = state
        .nodes
        .values()
        .filter_map(|n| {
            let route = Route {
                destination: n.spec.pod_cidr.parse().ok()?,
                next_hop: n.internal_ip()?.parse().ok()?,
                node: n.metadata.name.clone(),
            };
            Some((route.destination, route))
        })
        .collect();
    by_dst.into_values().collect()
}

/// What the provider said last.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Synced(Response),
    /// The run failed as a whole; the error, as people read it.
    Failed(String),
}

/// A node's condition, as this controller would write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: &'static str,
    pub reason: String,
    pub message: String,
}

/// Each desired route's node's condition after `outcome`, given the last
/// successful report `last_ok` (pure). When a run fails as a whole, nodes
/// whose route that report holds get no verdict: they keep their condition,
/// since the failure says nothing about routes already in place.
pub fn verdicts(
    desired: &[Route],
    outcome: &Outcome,
    last_ok: Option<&Response>,
    provider: &str,
) -> BTreeMap<String, Verdict> {
    let mut out = BTreeMap::new();
    for r in desired {
        let route = format!("route {} via {}", r.destination, r.next_hop);
        let verdict = match outcome {
            Outcome::Synced(report) => {
                match report
                    .failed
                    .iter()
                    .find(|f| f.destination == r.destination)
                {
                    Some(f) => Verdict {
                        status: "True",
                        reason: f.reason.clone(),
                        message: format!("{route}: {} ({provider})", f.message),
                    },
                    None if report.holds(r.destination, r.next_hop) => Verdict {
                        status: "False",
                        reason: ROUTE_CREATED.into(),
                        message: format!("{route} is in the VPC route table ({provider})"),
                    },
                    None => Verdict {
                        status: "True",
                        reason: ROUTE_MISSING.into(),
                        message: format!("{provider} reported success but its table lacks {route}"),
                    },
                }
            }
            Outcome::Failed(_) if last_ok.is_some_and(|ok| ok.holds(r.destination, r.next_hop)) => {
                continue;
            }
            Outcome::Failed(error) => Verdict {
                status: "True",
                reason: PROVIDER_FAILED.into(),
                message: format!("{route}: {error}"),
            },
        };
        out.insert(r.node.clone(), verdict);
    }
    out
}

/// The Nodes whose condition differs from their verdict, with it set (pure).
pub fn changes(state: &State, verdicts: &BTreeMap<String, Verdict>) -> Vec<Node> {
    verdicts
        .iter()
        .filter_map(|(name, v)| {
            let node = state.nodes.get(name)?;
            let message = truncate(&v.message);
            let same = node.condition(CONDITION).is_some_and(|c| {
                c.status == v.status && c.reason == v.reason && c.message == message
            });
            if same {
                return None;
            }
            let mut n = (**node).clone();
            n.set_condition(CONDITION, v.status, &v.reason, message, None);
            Some(n)
        })
        .collect()
}

fn truncate(s: &str) -> &str {
    if s.len() <= MAX_MESSAGE {
        return s;
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub async fn run(store: Store, cfg: ControllerConfig, provider: Arc<dyn VpcProvider>) {
    let mut follower = Follower::new(store.clone(), cfg.resync);
    // The desired table of the last run, its outcome, and the last
    // successful report (the next request's `current`).
    let mut attempted: Option<Vec<Route>> = None;
    let mut outcome: Option<Outcome> = None;
    let mut last_ok: Option<Response> = None;
    loop {
        let (state, resync) = match follower.next().await {
            Work::Resync(s) => (s, true),
            Work::Events(events, s) => {
                if !events.iter().any(|e| matches!(e.obj, Obj::Node(_))) {
                    continue;
                }
                (s, false)
            }
        };
        let want = desired(&state);
        if resync || attempted.as_ref() != Some(&want) {
            let request = Request::new(want.clone(), last_ok.as_ref().map(|r| r.routes.clone()));
            match provider.sync(&request).await {
                Ok(report) => {
                    if last_ok.as_ref().map(|r| &r.routes) != Some(&report.routes) {
                        tracing::info!(provider = %provider.name(), routes = report.routes.len(), failed = report.failed.len(), "VPC route table synced");
                    }
                    for f in &report.failed {
                        tracing::warn!(provider = %provider.name(), destination = %f.destination, reason = %f.reason, message = %f.message, "VPC route not programmed");
                    }
                    last_ok = Some(report.clone());
                    outcome = Some(Outcome::Synced(report));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "VPC route update failed; retrying on the next change or resync");
                    outcome = Some(Outcome::Failed(e.to_string()));
                }
            }
            attempted = Some(want.clone());
        }
        if let Some(outcome) = &outcome {
            let v = verdicts(&want, outcome, last_ok.as_ref(), provider.name());
            write_conditions(&store, &v).await;
        }
    }
}

/// Writes the conditions that differ, against the newest state: the
/// provider may have taken seconds, and a Node that changed meanwhile (an
/// agent's heartbeat) refuses the write, so it is retried on a fresh copy.
async fn write_conditions(store: &Store, verdicts: &BTreeMap<String, Verdict>) {
    for attempt in 1..=WRITE_ATTEMPTS {
        let pending = changes(&store.snapshot(), verdicts);
        if pending.is_empty() {
            return;
        }
        let mut conflicted = false;
        for node in pending {
            let name = node.metadata.name.clone();
            match store.update_status(node).await {
                Ok(_) => {}
                Err(StoreError::Conflict { .. }) => conflicted = true,
                Err(e) => {
                    tracing::debug!(node = %name, error = %e, "writing the VPC route condition failed; retrying on the next change")
                }
            }
        }
        if !conflicted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
    }
}

#[cfg(test)]
mod tests;
