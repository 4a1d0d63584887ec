//! What to do next for one pod, from its spec and what the runtime shows —
//! the kubelet's `computePodActions`, pure:
//!
//! - init containers run one at a time, in order, each to a zero exit; a
//!   failed one is restarted (with back-off) unless the policy is Never,
//!   which fails the pod;
//! - then every app container is started; an exited one is restarted if
//!   the policy says so, once its back-off has passed;
//! - a sidecar (an init container with `restartPolicy: Always`) is started
//!   in its place among the init containers; the next one waits until it
//!   runs and its startup probe (if any) has succeeded; it is restarted
//!   (with back-off) whenever it exits, whatever the pod's policy, until
//!   every main container has exited for good: then it is stopped, never
//!   started again, and does not hold the pod's completion;
//! - a container whose startup or liveness probe gave up is killed;
//! - older exited attempts are removed (the latest stays for status/logs).

use std::collections::BTreeMap;

use keel_api::Pod;

use super::super::{
    backend::Observed,
    container::resolve::Kind,
    restart::{Backoff, should_restart},
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Start {
        kind: Kind,
        index: usize,
        attempt: u32,
    },
    /// Stop a running container (SIGTERM, SIGKILL after the grace period).
    Kill {
        id: String,
        reason: String,
    },
    Remove {
        id: String,
    },
}

/// Restart bookkeeping per container name, kept by the worker across syncs.
#[derive(Debug, Clone)]
pub struct RestartState {
    pub backoff: Backoff,
    /// The exited container whose exit was already counted.
    pub counted: Option<String>,
    /// No start before this (ms since the epoch).
    pub not_before_ms: u64,
}

impl RestartState {
    pub fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            counted: None,
            not_before_ms: 0,
        }
    }
}

/// The plan, and what it found out along the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// A failed init container with restartPolicy Never: the pod failed.
    pub init_failed: bool,
    /// Containers waiting out a back-off: name → ms left.
    pub backing_off: BTreeMap<String, u64>,
    /// Whether all init containers have completed.
    pub initialized: bool,
}

/// The latest attempt of each (kind, name), and the older ones.
pub fn latest<'a>(
    observed: &'a [Observed],
    init: bool,
    name: &str,
) -> (Option<&'a Observed>, Vec<&'a Observed>) {
    let mut mine: Vec<&Observed> = observed
        .iter()
        .filter(|o| o.kind_init == init && o.name == name)
        .collect();
    mine.sort_by_key(|o| o.attempt);
    let last = mine.pop();
    (last, mine)
}

/// Whether every main container has exited and will not be started again
/// (what ends a pod's sidecars).
pub fn main_done(pod: &Pod, observed: &[Observed]) -> bool {
    pod.spec.containers.iter().all(|c| {
        latest(observed, false, &c.name)
            .0
            .and_then(|o| o.exit.as_ref())
            .is_some_and(|e| !should_restart(pod.spec.restart_policy, e.code))
    })
}

/// Decides the next actions. `kills` holds the container IDs whose probes
/// gave up (with the message); `started` the running sidecars whose
/// startup probe (if any) has succeeded; `restarts` is updated with exits
/// it counts.
pub fn plan(
    pod: &Pod,
    observed: &[Observed],
    now_ms: u64,
    kills: &BTreeMap<String, String>,
    started: &std::collections::BTreeSet<String>,
    restarts: &mut BTreeMap<String, RestartState>,
    new_backoff: impl Fn() -> Backoff,
) -> Plan {
    let mut out = Plan::default();
    let policy = pod.spec.restart_policy;

    // Old attempts go.
    for (init, list) in [
        (true, &pod.spec.init_containers),
        (false, &pod.spec.containers),
    ] {
        for c in list.iter() {
            let (_, older) = latest(observed, init, &c.name);
            for o in older {
                if o.exit.is_some() {
                    out.actions.push(Action::Remove { id: o.id.clone() });
                }
            }
        }
    }

    let mut start_or_restart = |kind: Kind,
                                index: usize,
                                name: &str,
                                last: Option<&Observed>,
                                restart_on_success: bool,
                                always: bool,
                                out: &mut Plan|
     -> bool {
        // Returns true when the container is done (exited for good).
        let Some(o) = last else {
            let st = restarts
                .entry(name.to_string())
                .or_insert_with(|| RestartState::new(new_backoff()));
            if now_ms >= st.not_before_ms {
                out.actions.push(Action::Start {
                    kind,
                    index,
                    attempt: 0,
                });
            } else {
                out.backing_off
                    .insert(name.to_string(), st.not_before_ms - now_ms);
            }
            return false;
        };
        let Some(exit) = &o.exit else {
            if let Some(reason) = kills.get(&o.id) {
                out.actions.push(Action::Kill {
                    id: o.id.clone(),
                    reason: reason.clone(),
                });
            }
            return false;
        };
        let again = if always {
            true
        } else if restart_on_success {
            should_restart(policy, exit.code)
        } else {
            // Init containers: a success is final; failures follow the policy.
            exit.code != 0 && should_restart(policy, exit.code)
        };
        if !again {
            return true;
        }
        let st = restarts
            .entry(name.to_string())
            .or_insert_with(|| RestartState::new(new_backoff()));
        if st.counted.as_deref() != Some(o.id.as_str()) {
            let ran = exit.finished_at_ms.saturating_sub(o.started_at_ms);
            let wait = st.backoff.on_exit(std::time::Duration::from_millis(ran));
            st.not_before_ms = exit.finished_at_ms + wait.as_millis() as u64;
            st.counted = Some(o.id.clone());
        }
        if now_ms >= st.not_before_ms {
            out.actions.push(Action::Start {
                kind,
                index,
                attempt: o.attempt + 1,
            });
        } else {
            out.backing_off
                .insert(name.to_string(), st.not_before_ms - now_ms);
        }
        false
    };

    let finished = main_done(pod, observed);
    let inits = &pod.spec.init_containers;
    for (i, c) in inits.iter().enumerate() {
        let (last, _) = latest(observed, true, &c.name);
        if c.is_sidecar() {
            if finished {
                // The main containers are done: the sidecar goes, last.
                if let Some(o) = last.filter(|o| o.exit.is_none()) {
                    out.actions.push(Action::Kill {
                        id: o.id.clone(),
                        reason: "the pod's main containers have completed".into(),
                    });
                }
                continue;
            }
            start_or_restart(Kind::Init, i, &c.name, last, true, true, &mut out);
            let up = last.is_some_and(|o| o.exit.is_none() && started.contains(&o.id));
            // Only init containers still to complete wait for it; once
            // they all have, a restarting sidecar holds nothing up.
            let later_pending = inits[i + 1..].iter().any(|l| {
                !l.is_sidecar()
                    && latest(observed, true, &l.name)
                        .0
                        .and_then(|o| o.exit.as_ref())
                        .is_none_or(|e| e.code != 0)
            });
            let main_waiting = pod
                .spec
                .containers
                .iter()
                .any(|m| latest(observed, false, &m.name).0.is_none());
            if !up && (later_pending || main_waiting) {
                return out;
            }
            continue;
        }
        let done = start_or_restart(Kind::Init, i, &c.name, last, false, false, &mut out);
        if done {
            if last
                .and_then(|o| o.exit.as_ref())
                .is_some_and(|e| e.code != 0)
            {
                out.init_failed = true;
                return out;
            }
            continue;
        }
        return out;
    }
    out.initialized = true;
    for (i, c) in pod.spec.containers.iter().enumerate() {
        let (last, _) = latest(observed, false, &c.name);
        start_or_restart(Kind::App, i, &c.name, last, true, false, &mut out);
    }
    out
}

#[cfg(test)]
mod tests;
