//! `pods/NAME/exec` as Kubernetes streams it to kubectl: the channel
//! protocol of [`keel_api::exec`] over a WebSocket.
//!
//! Commands without stdin or a terminal run through the agent's exec route
//! (the whole output, then the exit code) and are sent on these channels;
//! with stdin or a terminal (`-i`, `-t`) keel-control opens the same
//! WebSocket protocol to the agent's exec stream and relays messages both
//! ways unchanged ([`super::relay`]).

pub use keel_api::exec::{ERROR, PROTOCOLS, STDERR, STDOUT, failure, frame, parse, status};
