//! The pod runtime: images, containers (through a per-pod shim that owns
//! them with youki's libcontainer, or through containerd), restart policy,
//! probes, logs and pod status. Everything kernel- or process-facing sits
//! behind [`backend::PodRuntime`]; the lifecycle decisions are pure.

pub mod container;
pub mod images;
