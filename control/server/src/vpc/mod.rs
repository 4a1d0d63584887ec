//! The VPC route table of `vpc` mode: pod CIDR → node, programmed by
//! keel-control's route controller through a [`VpcProvider`] (a cloud's
//! route-table API; in the lab, the router namespace's routing table).

pub mod lab;

use std::{collections::BTreeMap, net::Ipv4Addr};

use ipnet::Ipv4Net;

#[derive(Debug, thiserror::Error)]
#[error("VPC provider {provider}: {message}")]
pub struct VpcError {
    pub provider: String,
    pub message: String,
}

/// A VPC route table keel owns entries in. Implementations only ever list,
/// replace and delete keel's own entries.
pub trait VpcProvider: Send + Sync + 'static {
    fn name(&self) -> String;
    /// keel's routes: destination → next hop (a node's IP).
    fn list(&self) -> Result<BTreeMap<Ipv4Net, Ipv4Addr>, VpcError>;
    fn replace(&self, dst: Ipv4Net, next_hop: Ipv4Addr) -> Result<(), VpcError>;
    fn delete(&self, dst: Ipv4Net) -> Result<(), VpcError>;
}

/// Parses `--vpc-provider`: `lab:<router netns name>`.
pub fn from_flag(flag: &str) -> Result<Box<dyn VpcProvider>, String> {
    match flag.split_once(':') {
        Some(("lab", netns)) if !netns.is_empty() => Ok(Box::new(lab::LabRouter::new(netns))),
        _ => Err(format!(
            "--vpc-provider: {flag:?} is not a known provider (lab:<router netns>)"
        )),
    }
}

/// Changes to a VPC route table (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOp {
    Replace(Ipv4Net, Ipv4Addr),
    Delete(Ipv4Net),
}

pub fn plan(
    desired: &BTreeMap<Ipv4Net, Ipv4Addr>,
    actual: &BTreeMap<Ipv4Net, Ipv4Addr>,
) -> Vec<RouteOp> {
    let mut ops: Vec<RouteOp> = desired
        .iter()
        .filter(|(dst, hop)| actual.get(*dst) != Some(*hop))
        .map(|(dst, hop)| RouteOp::Replace(*dst, *hop))
        .collect();
    ops.extend(
        actual
            .keys()
            .filter(|dst| !desired.contains_key(*dst))
            .map(|dst| RouteOp::Delete(*dst)),
    );
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<Ipv4Net, Ipv4Addr> {
        pairs
            .iter()
            .map(|(d, h)| (d.parse().unwrap(), h.parse().unwrap()))
            .collect()
    }

    #[test]
    fn plan_adds_moves_and_withdraws() {
        let desired = m(&[
            ("10.244.0.0/24", "172.30.0.11"),
            ("10.244.1.0/24", "172.30.1.12"),
        ]);
        let actual = m(&[
            ("10.244.1.0/24", "172.30.1.99"),
            ("10.244.9.0/24", "172.30.0.19"),
        ]);
        assert_eq!(
            plan(&desired, &actual),
            vec![
                RouteOp::Replace(
                    "10.244.0.0/24".parse().unwrap(),
                    "172.30.0.11".parse().unwrap()
                ),
                RouteOp::Replace(
                    "10.244.1.0/24".parse().unwrap(),
                    "172.30.1.12".parse().unwrap()
                ),
                RouteOp::Delete("10.244.9.0/24".parse().unwrap()),
            ]
        );
        assert!(plan(&desired, &desired).is_empty());
        assert!(from_flag("aws:x").is_err());
        assert!(from_flag("lab:keel-lab-x-router").is_ok());
    }
}
