//! The per-pod shim: `keel-agent shim --dir POD_DIR`, a small
//! single-threaded process (in its own session) that creates the pod's
//! containers with libcontainer, is their parent, copies their output into
//! CRI log files and records how they exit. The agent talks to it over
//! `POD_DIR/shim.sock`; because the shim and not the agent owns the
//! containers, pods keep running while the agent restarts, and a new agent
//! re-adopts them by asking each shim for its state.
//!
//! `keel-agent shim-exec --root ROOT --id ID -- CMD…` runs a command inside
//! a running container (exec probes, `keelctl exec`) as a separate
//! short-lived process, so the agent's threads never fork.

pub mod client;
pub mod console;
pub mod exec;
pub mod oneshot;
pub mod propagation;
pub mod proto;
pub mod server;

pub use client::ShimClient;
pub use proto::{ContainerInfo, Exit, Request, Response};

/// Runs the shim, exec helper or containerd log driver when this process was started as one;
/// returns its exit code. Call first thing in `main`, before any thread or
/// async runtime exists.
pub fn dispatch() -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("shim") => Some(server::main(&args[2..])),
        Some("shim-exec") => Some(exec::main(&args[2..])),
        Some("shim-run") => Some(oneshot::main(&args[2..])),
        Some(crate::runtime::containerd::logger::SUBCOMMAND) => {
            Some(crate::runtime::containerd::logger::main(&args[2..]))
        }
        _ => None,
    }
}
