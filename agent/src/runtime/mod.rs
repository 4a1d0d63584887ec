//! The pod runtime: images, containers (through a per-pod shim that owns
//! them with youki's libcontainer, or through containerd), restart policy, probes, logs and pod
//! status. Everything kernel- or process-facing sits behind
//! [`backend::PodRuntime`]; the lifecycle decisions ([`worker::plan`],
//! [`restart`], [`probe::Prober`], [`status`]) are pure.

pub mod api;
pub mod backend;
pub mod container;
pub mod containerd;
pub mod direct;
pub mod images;
pub mod logs;
pub mod manager;
pub mod probe;
pub mod restart;
pub mod shim;
pub mod status;
pub mod worker;
