//! The concrete kinds, each a [`Resource`](crate::resource::Resource) built
//! from the shared primitives: schema, defaults and validation. How each is
//! served is `crate::served`'s table; a kind knows another only as part of
//! its schema (a Deployment's Pod template).

pub mod config_map;
pub mod deployment;
pub mod endpoints;
pub mod event;
pub mod node;
pub mod pod;
pub mod secret;
pub mod service;

pub use self::{
    config_map::ConfigMap, deployment::Deployment, endpoints::Endpoints, event::Event, node::Node,
    pod::Pod, secret::Secret, service::Service,
};
