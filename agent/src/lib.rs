//! keel-agent: the node agent. One daemon, several reconcilers, each a pure
//! plan over desired and observed state plus an apply step that alone touches
//! the kernel or the runtime.

pub mod api;
pub mod bpf;
pub mod dns;
pub mod health;
pub mod host;
pub mod join;
pub mod lb;
pub mod memory;
pub mod net;
pub mod nodeport;
pub mod pods;
pub mod private;
pub mod reconcile;
pub mod runtime;
pub mod sync;
