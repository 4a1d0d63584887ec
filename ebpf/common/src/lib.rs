//! Types shared byte for byte by keel's BPF programs and the agent.
//!
//! Every map key and value is `#[repr(C)]` with explicit padding and `u32`
//! flags instead of `bool`, and has a compile-time size assertion, so the
//! kernel and userspace never disagree about a layout. With the `user`
//! feature each type also implements `aya::Pod`.
#![cfg_attr(not(test), no_std)]

pub mod lb;
pub mod net;
pub mod probe;
