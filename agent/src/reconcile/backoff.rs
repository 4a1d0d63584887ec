//! The one retry back-off of the agent: exponential from a base to a cap,
//! with ±20% jitter so that many retries started by one event (every
//! informer after a control-plane restart, every key of a failed batch) do
//! not come back in lockstep.
//!
//! [`Backoff`] is the policy (pure: attempt → delay); [`Retry`] counts the
//! attempts of one loop that retries a single thing (an informer's watch,
//! the node's registration). The kubelet's crash-loop back-off of a
//! container is a different contract (no jitter, reset after ten minutes
//! of running) and lives in `runtime::restart`.

use std::time::Duration;

use rand::Rng;

/// How long to wait before attempt `n + 1` after `n` failures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    /// Relative jitter: a delay `d` becomes uniform in `d·(1±jitter)`.
    pub jitter: f64,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            jitter: 0.2,
        }
    }

    /// The un-jittered delay after `failures` failures in a row (≥ 1).
    pub fn nominal(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The delay after `failures` failures in a row, jittered.
    pub fn delay(&self, failures: u32) -> Duration {
        let d = self.nominal(failures);
        if self.jitter <= 0.0 {
            return d;
        }
        d.mul_f64(rand::rng().random_range(1.0 - self.jitter..1.0 + self.jitter))
    }
}

/// The attempts of one retrying loop.
#[derive(Debug, Clone)]
pub struct Retry {
    policy: Backoff,
    failures: u32,
}

impl Retry {
    pub fn new(policy: Backoff) -> Self {
        Self {
            policy,
            failures: 0,
        }
    }

    /// After a success: the next failure waits the base again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// After a failure: how long to wait before trying again.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.policy.delay(self.failures)
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Reconnecting to keel-control: 200 ms doubling to 10 s.
pub const CONTROL: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));

#[cfg(test)]
mod tests;
