//! keel-control: the thin control service. It stores desired state (nodes,
//! pods, services, endpoints, deployments), serves it over an HTTP/JSON API
//! with list + watch, and runs the controllers that allocate, schedule and
//! derive state.

pub mod alloc;
pub mod api;
pub mod auth;
pub mod authz;
pub mod bootstrap;
pub mod config;
pub mod conn;
pub mod controllers;
pub mod kubernetes_service;
pub mod nodeproxy;
pub mod pki;
pub mod server;
pub mod store;
pub mod tls;
pub mod vpc;
