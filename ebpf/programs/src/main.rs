//! keel's load-balancer object (`keel-ebpf`): the Service programs. Entry
//! points are thin: they call a `try_*` function and turn any error into
//! the safe verdict for their hook. Host routing is a separate object
//! (`keel-net`, `net_main.rs`) so each loads only its own maps, and so is
//! the pipeline self-test (`keel-probe`, `probe_main.rs`), which only test
//! builds of the agent carry.
#![no_std]
#![no_main]

mod lb;
mod object;
