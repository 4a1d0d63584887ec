//! The sweeper lives in keel-lab (the lab's `down` uses it too); re-exported
//! here for the tests and the `keel-sweep` binary.

pub use keel_lab::sweep::*;
