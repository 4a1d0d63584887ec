//! keel-cni: a CNI 1.1 plugin that attaches pods with a point-to-point veth,
//! plus the network helpers the agent and the tests share with it.

pub mod ns;
pub mod netlink;
