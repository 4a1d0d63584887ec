//! keel's self-test object (`keel-probe`): a cgroup connect4 program that
//! counts connects, proving the build → embed → load → attach pipeline.
//! Embedded only in test builds of the agent (its `testing` feature).
#![no_std]
#![no_main]

mod object;
mod probe;
