//! Restart policy and the kubelet's crash-loop back-off, as pure functions.
//!
//! - `Always` restarts any exited container, `OnFailure` only a non-zero
//!   exit, `Never` none (Kubernetes "Container restart policy").
//! - After an exit the next start waits 10 s, doubling each time up to
//!   5 min; a container that ran 10 min without trouble starts the sequence
//!   again (kubelet `backOffPeriod`/`MaxContainerBackOff`, and the reset of
//!   "Container restarts" in the Pod lifecycle docs).

use std::time::Duration;

use keel_api::pod::RestartPolicy;

pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
pub const BACKOFF_RESET: Duration = Duration::from_secs(600);

/// Whether an exited container should run again.
pub fn should_restart(policy: RestartPolicy, exit_code: i32) -> bool {
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => exit_code != 0,
        RestartPolicy::Never => false,
    }
}

/// Back-off state of one container of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    /// The wait before the next restart.
    next: Duration,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            next: base,
        }
    }

    pub fn kubelet() -> Self {
        Self::new(BACKOFF_BASE, BACKOFF_MAX)
    }

    /// Records an exit after running for `ran` and returns how long to wait
    /// before starting the container again.
    pub fn on_exit(&mut self, ran: Duration) -> Duration {
        if ran >= BACKOFF_RESET {
            self.next = self.base;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// The wait the next exit will get.
    pub fn peek(&self) -> Duration {
        self.next
    }
}

#[cfg(test)]
mod tests;
