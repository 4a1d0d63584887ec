//! Egress: pods' traffic to destinations outside the cluster network leaves
//! SNATed to the node's address (Calico's `natOutgoing`, GKE's
//! ip-masq-agent), so an outside host that has no route to pod CIDRs can
//! answer. Decided here (pure, unit-tested); [`nft`] is the only code that
//! touches the kernel.
//!
//! - Sources: this node's pod CIDR (the node's own traffic is left alone).
//! - Kept (never masqueraded): every node's pod CIDR and node IP, every
//!   Service's cluster IP, and the operator's `--non-masquerade-cidr`s
//!   (ip-masq-agent's `nonMasqueradeCIDRs`), merged into the fewest
//!   non-overlapping CIDRs (an nftables interval set refuses overlaps).
//! - Replies are never masqueraded. A reply of a connection the node's
//!   conntrack saw arrive is not NATed anyway, but keel's NodePort and
//!   hostPort programs DNAT to a local pod at TC and BPF host routing hands
//!   that packet straight into the pod, so the node's conntrack first
//!   meets such a flow in its reply, which keel's TC program on the uplink
//!   translates back to the NodePort (it must leave with the pod's
//!   address). So TCP is masqueraded only from a connection's first SYN
//!   (a mid-stream pickup is left alone), and packets from a local pod's
//!   served port (an endpoint of a Service, or a hostPort's container port)
//!   — the only way a UDP reply can be told apart — are left alone too.
//! - The rule is one nftables table in the node's network namespace that
//!   keel owns by name ([`TABLE`]): a `nat` chain at the `postrouting` hook,
//!   `ip saddr <pod CIDR> ip daddr != @no_masquerade masquerade` after the
//!   two exceptions above.
//! - The table carries a fingerprint of its content in its comment: a pass
//!   (or a restarted agent) that finds the same fingerprint changes
//!   nothing. A change replaces the whole table in one `nft -f` transaction
//!   (atomic: no packet sees a half-built table); conntrack is never
//!   flushed, so established flows keep their translation. With
//!   `--masquerade=false` the table is deleted.
//!
//! BPF host routing (`ebpf/programs/src/net`, `from_pod`) forwards only
//! destinations in the cluster's pod CIDRs itself and hands every other
//! packet to the IP stack, so this rule covers both host-routing modes.

pub mod nft;

use std::{fmt, net::Ipv4Addr};

use ipnet::Ipv4Net;

/// The nftables table keel owns (family `ip`).
pub const TABLE: &str = "keel-egress";
/// The set of destinations kept un-SNATed.
pub const SET: &str = "no_masquerade";
/// The set of local pods' served (address, protocol, port).
pub const SERVED: &str = "served";
/// The table comment's prefix; the fingerprint follows it.
const COMMENT_PREFIX: &str = "keel egress masquerade fp=";

/// The agent's egress settings (`--masquerade`, `--non-masquerade-cidr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressConfig {
    pub masquerade: bool,
    pub non_masquerade: Vec<Ipv4Net>,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            masquerade: true,
            non_masquerade: Vec::new(),
        }
    }
}

/// What `/net/status` (`keelctl net status`) reports of egress.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// `--masquerade`.
    pub masquerade: bool,
    /// keel's nftables table, while it holds the rule.
    pub table: Option<String>,
    /// The sources masqueraded (this node's pod CIDR).
    pub source: Option<String>,
    /// The destinations kept un-SNATed, aggregated.
    pub kept: Vec<String>,
    /// Changes made to the table since the agent started.
    pub changes: u64,
    pub last_error: Option<String>,
}

/// Shared between the net reconciler (the writer) and the status route.
pub type SharedStatus = std::sync::Arc<std::sync::RwLock<Status>>;

/// What the rule is built from: the config and the cluster as the agent
/// sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs<'a> {
    pub config: &'a EgressConfig,
    /// This node's pod CIDR: the sources masqueraded.
    pub pod_cidr: Ipv4Net,
    /// Every node's pod CIDR.
    pub pod_cidrs: Vec<Ipv4Net>,
    /// Every node's IP.
    pub node_ips: Vec<Ipv4Addr>,
    /// Every Service's cluster IP.
    pub service_ips: Vec<Ipv4Addr>,
    /// Ports pods serve on: Endpoints' (address, protocol, port) and
    /// hostPorts' (pod IP, protocol, containerPort); only those of this
    /// node's pod CIDR are kept.
    pub served: Vec<Served>,
}

/// A port a pod serves on: its packets from there are replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Served {
    pub ip: Ipv4Addr,
    pub proto: L4,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum L4 {
    Tcp,
    Udp,
}

impl From<keel_api::Protocol> for L4 {
    fn from(p: keel_api::Protocol) -> Self {
        match p {
            keel_api::Protocol::Tcp => L4::Tcp,
            keel_api::Protocol::Udp => L4::Udp,
        }
    }
}

impl fmt::Display for Served {
    /// An element of the nft set: `10.244.0.5 . udp . 53`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.proto {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
        };
        write!(f, "{} . {proto} . {}", self.ip, self.port)
    }
}

/// The masquerade rule wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub source: Ipv4Net,
    /// Destinations kept, aggregated (sorted, non-overlapping).
    pub keep: Vec<Ipv4Net>,
    /// This node's pods' served ports (sorted, no duplicates).
    pub served: Vec<Served>,
}

/// The rule for `inputs`, or None when masquerading is off.
pub fn desired(inputs: &Inputs<'_>) -> Option<Rules> {
    if !inputs.config.masquerade {
        return None;
    }
    let mut all: Vec<Ipv4Net> = Vec::new();
    all.push(inputs.pod_cidr.trunc());
    all.extend(inputs.pod_cidrs.iter().map(Ipv4Net::trunc));
    all.extend(
        inputs
            .node_ips
            .iter()
            .chain(&inputs.service_ips)
            .map(|ip| Ipv4Net::from(*ip)),
    );
    all.extend(inputs.config.non_masquerade.iter().map(Ipv4Net::trunc));
    let source = inputs.pod_cidr.trunc();
    let served: std::collections::BTreeSet<Served> = inputs
        .served
        .iter()
        .filter(|s| source.contains(&s.ip) && s.port != 0)
        .copied()
        .collect();
    Some(Rules {
        source,
        keep: Ipv4Net::aggregate(&all),
        served: served.into_iter().collect(),
    })
}

impl Rules {
    /// The table's content (without its comment), one nft statement a line.
    fn body(&self) -> String {
        let elements: Vec<String> = self.keep.iter().map(|n| n.to_string()).collect();
        let mut s = String::new();
        s.push_str(&format!(
            "\tset {SET} {{\n\t\ttype ipv4_addr\n\t\tflags interval\n"
        ));
        if !elements.is_empty() {
            s.push_str(&format!("\t\telements = {{ {} }}\n", elements.join(", ")));
        }
        s.push_str("\t}\n");
        s.push_str(&format!(
            "\tset {SERVED} {{\n\t\ttype ipv4_addr . inet_proto . inet_service\n"
        ));
        if !self.served.is_empty() {
            let served: Vec<String> = self.served.iter().map(|s| s.to_string()).collect();
            s.push_str(&format!("\t\telements = {{ {} }}\n", served.join(", ")));
        }
        s.push_str("\t}\n");
        s.push_str("\tchain postrouting {\n");
        s.push_str("\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
        s.push_str(&format!(
            "\t\tip saddr . meta l4proto . th sport @{SERVED} accept\n"
        ));
        s.push_str(&format!(
            "\t\tip saddr {} meta l4proto tcp tcp flags & (fin | syn | rst | ack) != syn accept\n",
            self.source
        ));
        s.push_str(&format!(
            "\t\tip saddr {} ip daddr != @{SET} masquerade\n",
            self.source
        ));
        s.push_str("\t}\n");
        s
    }

    /// A stable fingerprint of the content (FNV-1a, 64 bits, hex), kept in
    /// the table's comment so a later agent can tell it is current.
    pub fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.body().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// The `nft -f` script that replaces keel's table with this one in one
    /// transaction: create it if missing (so the delete cannot fail),
    /// delete it, build it anew.
    pub fn script(&self) -> String {
        format!(
            "table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n\tcomment \"{COMMENT_PREFIX}{}\"\n{}}}\n",
            self.fingerprint(),
            self.body()
        )
    }
}

/// What the node's namespace holds of keel's table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub present: bool,
    /// The fingerprint in its comment, if it has keel's comment.
    pub fingerprint: Option<String>,
    /// It still holds the masquerade rule (an edit by hand that removed it
    /// is repaired).
    pub has_rule: bool,
}

impl Observed {
    /// Reads `nft list table ip keel-egress` output (None: no such table).
    pub fn parse(listing: Option<&str>) -> Self {
        let Some(text) = listing else {
            return Self::default();
        };
        let fingerprint = text.lines().find_map(|l| {
            let rest = l.trim().strip_prefix("comment \"")?;
            let rest = rest.strip_prefix(COMMENT_PREFIX)?;
            Some(rest.trim_end_matches(';').trim_end_matches('"').to_string())
        });
        Self {
            present: true,
            fingerprint,
            has_rule: text.contains(&format!("@{SET} masquerade")),
        }
    }
}

/// One change to the node's nftables state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Replace (or create) keel's table with this `nft -f` script.
    Replace(String),
    /// Delete keel's table.
    Delete,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Replace(_) => write!(f, "replace table ip {TABLE}"),
            Op::Delete => write!(f, "delete table ip {TABLE}"),
        }
    }
}

/// The change from `have` to `want` (None: nothing to do).
pub fn plan(want: Option<&Rules>, have: &Observed) -> Option<Op> {
    match want {
        Some(w) => {
            let current = have.present
                && have.has_rule
                && have.fingerprint.as_deref() == Some(&*w.fingerprint());
            (!current).then(|| Op::Replace(w.script()))
        }
        None => have.present.then_some(Op::Delete),
    }
}

/// A `--non-masquerade-cidr` value: an IPv4 CIDR whose host bits are zero.
pub fn parse_cidr(s: &str) -> Result<Ipv4Net, String> {
    let net: Ipv4Net = s
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv4 CIDR (like 10.0.0.0/8)"))?;
    if net.trunc() != net {
        return Err(format!(
            "{s:?} has host bits set (did you mean {}?)",
            net.trunc()
        ));
    }
    Ok(net)
}

#[cfg(test)]
mod tests;
