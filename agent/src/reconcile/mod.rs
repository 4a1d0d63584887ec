//! The one reconcile driver every reconciler of the agent runs on (load
//! balancer, node networking, host routing, pods), in the manner of
//! Kubernetes' controllers and Cilium's: changes arrive as *keys*, a burst
//! is debounced into one batch, a key that fails is retried with a jittered
//! exponential back-off of its own while the others go on, and a periodic
//! full pass repairs whatever changed behind the agent's back.
//!
//! - [`queue`]: what is due when (pure, tested without sleeping).
//! - [`driver`]: the thread that runs a [`Reconcile`] over its queue, the
//!   [`Handle`] that triggers it, and its [`DriverStatus`].
//! - [`backoff`]: the retry back-off the whole agent uses.

pub mod backoff;
pub mod driver;
pub mod queue;

pub use driver::{DriverStatus, Handle, Reconcile, spawn};
pub use queue::{Batch, Options, Report};
