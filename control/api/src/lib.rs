//! keel's API: Kubernetes-shaped objects (`Node`, `Pod`, `Service`,
//! `Endpoints`, `Deployment`), their validation, label and field selectors,
//! and the HTTP client the agent, the CLI and the tests use.

pub mod client;
pub mod deployment;
pub mod endpoints;
pub mod meta;
pub mod node;
pub mod object;
pub mod pod;
pub mod quantity;
pub mod selector;
pub mod service;
pub mod validate;
pub mod vpc;

pub use deployment::Deployment;
pub use endpoints::Endpoints;
pub use meta::{ObjectMeta, Time};
pub use node::Node;
pub use object::{AnyObject, DecodeError, EventType, Kind, List, Resource, Status, WatchEvent};
pub use pod::Pod;
pub use quantity::Quantity;
pub use selector::{FieldSelector, LabelSelector, Selector};
pub use service::Service;
pub use validate::FieldError;

#[cfg(test)]
mod tests;
