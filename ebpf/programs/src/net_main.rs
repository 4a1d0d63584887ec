//! keel's host-routing object (`keel-net`): the TC programs that forward
//! pod traffic without the node's IP stack (see `net`).
#![no_std]
#![no_main]

mod net;
mod object;
