//! keel-control: the thin control service. It stores desired state (nodes,
//! pods, services, endpoints, deployments), serves it over an HTTP/JSON API
//! with list + watch, and runs the controllers that allocate, schedule and
//! derive state.

pub mod alloc;
pub mod store;
