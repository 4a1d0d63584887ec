//! Pod status from what the runtime and probes say, as the kubelet
//! computes it (`getPhase`, `generateAPIPodStatus`): per-container state
//! (waiting with a reason, running, terminated with reason Completed,
//! Error or OOMKilled and the exit code), restart counts, the phase and the
//! conditions PodScheduled, Initialized, ContainersReady and Ready. Pure.

use std::time::{Duration, SystemTime};

use keel_api::{
    Pod, Time,
    pod::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
        ContainerStatus, PodPhase, PodStatus, RestartPolicy,
    },
};

use super::shim::Exit;

/// Everything known about one container of the spec.
#[derive(Debug, Clone, Default)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub container_id: String,
    /// Running since (ms since the epoch).
    pub running_since_ms: Option<u64>,
    /// The latest attempt's exit, if it exited.
    pub exit: Option<(u64, Exit)>,
    /// The exit before the current attempt (lastState).
    pub last_exit: Option<(u64, Exit)>,
    /// Why it is not running, when it is waiting.
    pub waiting: Option<(String, String)>,
    /// Whether it will be started again (restart policy allows it).
    pub will_restart: bool,
    pub ready: bool,
    pub started: bool,
    pub restart_count: u32,
    /// An init container with `restartPolicy: Always`: it does not
    /// complete; its readiness counts for the pod's.
    pub sidecar: bool,
}

fn time(ms: u64) -> Time {
    Time(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
}

fn terminated(started_ms: u64, e: &Exit) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: e.code,
        signal: e.signal,
        reason: if e.oom_killed {
            "OOMKilled".into()
        } else if e.code == 0 {
            "Completed".into()
        } else {
            "Error".into()
        },
        message: String::new(),
        started_at: Some(time(started_ms)),
        finished_at: Some(time(e.finished_at_ms)),
    }
}

/// The API status of one container.
pub fn container_status(v: &ContainerView) -> ContainerStatus {
    let state = if let Some((reason, message)) = &v.waiting {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: reason.clone(),
                message: message.clone(),
            }),
            ..Default::default()
        }
    } else if let Some(since) = v.running_since_ms {
        ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(time(since)),
            }),
            ..Default::default()
        }
    } else if let Some((started, e)) = &v.exit {
        ContainerState {
            terminated: Some(terminated(*started, e)),
            ..Default::default()
        }
    } else {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: "ContainerCreating".into(),
                message: String::new(),
            }),
            ..Default::default()
        }
    };
    // While waiting to restart, the exit shows as lastState.
    let last = if v.waiting.is_some() {
        v.exit.as_ref().or(v.last_exit.as_ref())
    } else {
        v.last_exit.as_ref()
    };
    ContainerStatus {
        name: v.name.clone(),
        image: v.image.clone(),
        image_id: v.image_id.clone(),
        container_id: if v.container_id.is_empty() {
            String::new()
        } else {
            format!("keel://{}", v.container_id)
        },
        ready: v.ready && v.running_since_ms.is_some() && v.waiting.is_none(),
        started: Some(v.started && v.running_since_ms.is_some()),
        restart_count: v.restart_count,
        state,
        last_state: last
            .map(|(s, e)| ContainerState {
                terminated: Some(terminated(*s, e)),
                ..Default::default()
            })
            .unwrap_or_default(),
    }
}

/// The kubelet's `getPhase`.
pub fn phase(
    policy: RestartPolicy,
    init: &[ContainerView],
    app: &[ContainerView],
    init_failed: bool,
) -> PodPhase {
    if init_failed {
        return PodPhase::Failed;
    }
    let init_done = init
        .iter()
        .filter(|v| !v.sidecar)
        .all(|v| v.exit.as_ref().is_some_and(|(_, e)| e.code == 0) && v.waiting.is_none());
    if !init_done {
        return PodPhase::Pending;
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for v in app {
        if v.running_since_ms.is_some() && v.waiting.is_none() {
            running += 1;
        } else if let Some((_, e)) = &v.exit {
            if v.will_restart {
                // Restarting: counts as running once it ever ran.
                running += 1;
            } else {
                stopped += 1;
                if e.code == 0 {
                    succeeded += 1;
                }
            }
        } else {
            waiting += 1;
        }
    }
    // Sidecars still stopping after the main containers keep the pod
    // Running: it is done once they have exited too.
    let sidecar_up = init
        .iter()
        .any(|v| v.sidecar && v.running_since_ms.is_some());
    if waiting > 0 {
        PodPhase::Pending
    } else if running > 0 || sidecar_up {
        PodPhase::Running
    } else if stopped == app.len() && stopped > 0 {
        if succeeded == stopped || policy == RestartPolicy::Always {
            if policy == RestartPolicy::Always {
                PodPhase::Running
            } else {
                PodPhase::Succeeded
            }
        } else {
            PodPhase::Failed
        }
    } else {
        PodPhase::Pending
    }
}

/// Fills `pod.status` (keeping podIP, hostIP and startTime as given).
pub fn apply(pod: &mut Pod, init: &[ContainerView], app: &[ContainerView], init_failed: bool) {
    let phase = phase(pod.spec.restart_policy, init, app, init_failed);
    let st: &mut PodStatus = &mut pod.status;
    st.phase = Some(phase);
    st.init_container_statuses = init.iter().map(container_status).collect();
    st.container_statuses = app.iter().map(container_status).collect();
    if st.start_time.is_none() {
        st.start_time = Some(Time::now());
    }
    let initialized = init
        .iter()
        .filter(|v| !v.sidecar)
        .all(|v| v.exit.as_ref().is_some_and(|(_, e)| e.code == 0));
    // Sidecars' readiness counts, as in Kubernetes.
    let sidecar_statuses = init
        .iter()
        .zip(&st.init_container_statuses)
        .filter(|(v, _)| v.sidecar)
        .map(|(_, s)| s);
    let not_ready: Vec<&str> = sidecar_statuses
        .chain(&st.container_statuses)
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let ready = not_ready.is_empty() && phase == PodPhase::Running;
    let msg = if not_ready.is_empty() {
        String::new()
    } else {
        format!("containers with unready status: [{}]", not_ready.join(" "))
    };
    let (reason, ready_reason) = if ready {
        ("", "")
    } else if matches!(phase, PodPhase::Succeeded | PodPhase::Failed) {
        ("PodCompleted", "PodCompleted")
    } else {
        ("ContainersNotReady", "ContainersNotReady")
    };
    pod.set_condition("PodScheduled", "True", "", "");
    if initialized {
        pod.set_condition("Initialized", "True", "", "");
    } else {
        let pending: Vec<&str> = init
            .iter()
            .filter(|v| !v.sidecar && v.exit.as_ref().is_none_or(|(_, e)| e.code != 0))
            .map(|v| v.name.as_str())
            .collect();
        pod.set_condition(
            "Initialized",
            "False",
            "ContainersNotInitialized",
            &format!("containers with incomplete status: [{}]", pending.join(" ")),
        );
    }
    let b = |r: bool| if r { "True" } else { "False" };
    pod.set_condition("ContainersReady", b(ready), reason, &msg);
    pod.set_condition("Ready", b(ready), ready_reason, &msg);
}

#[cfg(test)]
mod tests;
