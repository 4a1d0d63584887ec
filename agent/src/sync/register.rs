//! Registering this node with keel-control and posting its status
//! (addresses, capacity, Ready with a heartbeat time) on an interval.

use std::{collections::BTreeMap, net::Ipv4Addr, time::Duration};

use keel_api::{
    Node, ObjectMeta, Quantity, Time,
    client::{Client, ClientError},
    node::{
        DaemonEndpoint, NodeAddress, NodeDaemonEndpoints, NodeSpec, NodeStatus, NodeSystemInfo,
    },
};

use crate::reconcile::backoff::{CONTROL, Retry};

/// What this machine offers, as the agent reports it.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub name: String,
    pub internal_ip: Ipv4Addr,
    pub labels: BTreeMap<String, String>,
    pub cpu_milli: u64,
    pub memory_bytes: u64,
    pub max_pods: u64,
    pub kernel_version: String,
    pub os_image: String,
    /// The agent's HTTPS port for keel-control, advertised as the Node's
    /// `status.daemonEndpoints.kubeletEndpoint.port` (None: off).
    pub agent_port: Option<u16>,
}

impl NodeFacts {
    /// Reads cpu count, memory, kernel and OS from this machine.
    pub fn detect(name: &str, internal_ip: Ipv4Addr) -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map(|kb| kb * 1024)
            .unwrap_or(0);
        let kernel_version = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|o| {
                o.lines().find_map(|l| {
                    l.strip_prefix("PRETTY_NAME=")
                        .map(|v| v.trim_matches('"').to_string())
                })
            })
            .unwrap_or_else(|| "Linux".into());
        let mut labels = BTreeMap::new();
        labels.insert("kubernetes.io/hostname".to_string(), name.to_string());
        labels.insert("kubernetes.io/os".to_string(), "linux".to_string());
        labels.insert(
            "kubernetes.io/arch".to_string(),
            std::env::consts::ARCH.to_string(),
        );
        Self {
            name: name.into(),
            internal_ip,
            labels,
            cpu_milli: cpus * 1000,
            memory_bytes,
            max_pods: 110,
            kernel_version,
            os_image,
            agent_port: None,
        }
    }

    fn status(&self) -> NodeStatus {
        let mut capacity = BTreeMap::new();
        capacity.insert("cpu".to_string(), Quantity::from_milli(self.cpu_milli));
        capacity.insert(
            "memory".to_string(),
            Quantity::from_bytes(self.memory_bytes),
        );
        capacity.insert(
            "pods".to_string(),
            Quantity::from_milli(self.max_pods * 1000),
        );
        NodeStatus {
            allocatable: capacity.clone(),
            capacity,
            conditions: Vec::new(),
            addresses: vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: self.internal_ip.to_string(),
                },
                NodeAddress {
                    type_: "Hostname".into(),
                    address: self.name.clone(),
                },
            ],
            node_info: Some(NodeSystemInfo {
                kernel_version: self.kernel_version.clone(),
                os_image: self.os_image.clone(),
                architecture: std::env::consts::ARCH.into(),
                operating_system: "linux".into(),
                container_runtime_version: format!("keel://{}", env!("CARGO_PKG_VERSION")),
                kubelet_version: format!("keel-agent/{}", env!("CARGO_PKG_VERSION")),
            }),
            daemon_endpoints: self.agent_port.map(|port| NodeDaemonEndpoints {
                kubelet_endpoint: Some(DaemonEndpoint { port }),
            }),
        }
    }
}

/// Creates the Node if needed, then posts status every `interval` until the
/// task is dropped. Errors are logged and retried with backoff.
/// `extra` carries conditions other parts of the agent report (e.g. node
/// networking's NetworkUnavailable); a change is posted at once.
/// The Node as the kubelet names it in its Events: the uid is the node's
/// name (kubectl's describe node looks for exactly that).
pub fn node_reference(name: &str) -> keel_api::endpoints::ObjectReference {
    keel_api::endpoints::ObjectReference {
        kind: "Node".into(),
        name: name.into(),
        uid: name.into(),
        ..Default::default()
    }
}

/// Registers the node, then posts its status every `interval` (and when
/// `extra` conditions change), recording `NodeReady` when it becomes Ready.
pub async fn run(
    client: Client,
    facts: NodeFacts,
    interval: Duration,
    mut extra: tokio::sync::watch::Receiver<Vec<keel_api::node::NodeCondition>>,
    events: keel_api::recorder::Recorder,
) {
    let mut backoff = Retry::new(CONTROL);
    let mut node = loop {
        match register(&client, &facts).await {
            Ok(n) => break n,
            Err(e) => {
                let d = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?d, "node registration failed");
                tokio::time::sleep(d).await;
            }
        }
    };
    tracing::info!(node = %facts.name, pod_cidr = %node.spec.pod_cidr, "node registered");
    loop {
        let previous = std::mem::take(&mut node.status.conditions);
        let was_ready = previous
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        node.status = facts.status();
        node.status.conditions = previous
            .into_iter()
            .filter(|c| c.type_ == "Ready")
            .collect();
        node.set_condition(
            "Ready",
            "True",
            "KeelAgentReady",
            "keel-agent is posting ready status",
            Some(Time::now()),
        );
        for c in extra.borrow_and_update().iter() {
            node.set_condition(
                &c.type_,
                &c.status,
                &c.reason,
                &c.message,
                Some(Time::now()),
            );
        }
        // Unconditional: only this agent writes its node's status.
        node.metadata.resource_version.clear();
        match client.update_status(&node).await {
            Ok(n) => {
                node = n;
                backoff.reset();
                if !was_ready {
                    events.normal(
                        node_reference(&facts.name),
                        "NodeReady",
                        format!("Node {} status is now: NodeReady", facts.name),
                    );
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = extra.changed() => {}
                }
            }
            Err(e) if e.is_not_found() => {
                tracing::warn!(node = %facts.name, "node object was deleted; registering again");
                match register(&client, &facts).await {
                    Ok(n) => node = n,
                    Err(e) => {
                        tracing::warn!(error = %e, "node registration failed");
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
            }
            Err(e) => {
                let d = backoff.next_delay().min(interval);
                tracing::warn!(error = %e, retry_in = ?d, "posting node status failed");
                tokio::time::sleep(d).await;
            }
        }
    }
}

/// Creates the Node, or adopts the existing one (its pod CIDR stays).
async fn register(client: &Client, facts: &NodeFacts) -> Result<Node, ClientError> {
    let want = Node {
        metadata: ObjectMeta {
            name: facts.name.clone(),
            labels: facts.labels.clone(),
            ..ObjectMeta::default()
        },
        spec: NodeSpec::default(),
        ..Node::default()
    };
    match client.create(&want).await {
        Ok(n) => Ok(n),
        Err(e) if e.code() == Some(409) => {
            let mut existing: Node = client.get("", &facts.name).await?;
            let mut labels = existing.metadata.labels.clone();
            labels.extend(facts.labels.clone());
            if labels != existing.metadata.labels {
                existing.metadata.labels = labels;
                existing.metadata.resource_version.clear();
                existing = client.update(&existing).await?;
            }
            Ok(existing)
        }
        Err(e) => Err(e),
    }
}
