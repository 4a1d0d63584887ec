//! The pod runtime: images, containers (through a per-pod shim that owns
//! them with youki's libcontainer, or through containerd), restart policy,
//! probes, logs and pod status. Everything kernel- or process-facing sits
//! behind [`backend::PodRuntime`]; the lifecycle decisions
//! ([`lifecycle::plan`], [`restart`], [`probe::Prober`], [`status`]) are
//! pure. A pod's whole life — its sandbox, then these containers — is run
//! by its worker in `crate::pods`.
//!
//! - [`container`]: one container from pod spec to [`container::ContainerRequest`].
//! - [`bundle`]: a request to an OCI bundle (both runtimes).
//! - [`direct`], [`containerd`]: the two runtimes; [`shim`]: keel's per-pod shim.
//! - [`lifecycle`]: a pod's containers over time; [`probe`], [`restart`], [`status`].
//! - [`images`], [`logs`]; [`api`]: logs and exec on the agent's socket;
//!   [`exec_ws`]: interactive exec as a WebSocket, over [`exec_session`]'s streams.
//! - [`inroot`]: paths resolved inside a root before anything is created.

pub mod api;
pub mod backend;
pub mod bundle;
pub mod container;
pub mod containerd;
pub mod direct;
pub mod exec_session;
pub mod exec_ws;
pub mod images;
pub mod inroot;
pub mod lifecycle;
pub mod logs;
pub mod portforward;
pub mod probe;
pub mod restart;
pub mod shim;
pub mod status;
