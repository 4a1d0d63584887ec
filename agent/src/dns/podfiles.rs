//! A pod's `/etc/resolv.conf` and `/etc/hosts`, as the kubelet writes them
//! (pkg/kubelet/network/dns/dns.go and kubelet_pods.go), from the pod spec,
//! the node's own resolv.conf and the cluster DNS settings. Pure.
//!
//! - `ClusterFirst` (the default): the cluster DNS address, `search
//!   NS.svc.D svc.D D` plus the node's search domains, `options ndots:5`.
//!   With no cluster DNS configured the kubelet falls back to `Default`, and
//!   so does keel; on a hostNetwork pod `ClusterFirst` is `Default` too.
//! - `ClusterFirstWithHostNet`: as `ClusterFirst`, hostNetwork pods included.
//! - `Default`: the node's nameservers, search domains and options.
//! - `None`: only `dnsConfig`.
//!
//! `dnsConfig` is then merged in: nameservers appended (at most three kept,
//! as the kubelet does), search domains appended without duplicates (at
//! most 32), options by name (the pod's win).

use std::net::IpAddr;

use keel_api::{
    Pod,
    pod::{DnsPolicy, MAX_DNS_NAMESERVERS, MAX_DNS_SEARCHES},
};
use serde::{Deserialize, Serialize};

/// What a resolv.conf says (the parts the kubelet uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvConf {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl ResolvConf {
    /// Parses resolv.conf(5) text: `nameserver`, `search` (`domain` too,
    /// the last of them wins as in glibc), `options`; comments ignored.
    pub fn parse(text: &str) -> Self {
        let mut out = Self::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => out.nameservers.extend(words.next().map(str::to_string)),
                Some("search") | Some("domain") => {
                    out.searches = words.map(|w| w.trim_end_matches('.').to_string()).collect()
                }
                Some("options") => out.options.extend(words.map(str::to_string)),
                _ => {}
            }
        }
        out
    }

    /// resolv.conf(5) text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if !self.searches.is_empty() {
            s += &format!("search {}\n", self.searches.join(" "));
        }
        for ns in &self.nameservers {
            s += &format!("nameserver {ns}\n");
        }
        if !self.options.is_empty() {
            s += &format!("options {}\n", self.options.join(" "));
        }
        s
    }

    /// Upstream servers (port 53) among the nameservers, leaving out
    /// `skip` (the cluster DNS itself: forwarding there would loop).
    pub fn upstreams(&self, skip: Option<IpAddr>) -> Vec<std::net::SocketAddr> {
        self.nameservers
            .iter()
            .filter_map(|n| n.parse::<IpAddr>().ok())
            .filter(|ip| Some(*ip) != skip)
            .map(|ip| std::net::SocketAddr::new(ip, 53))
            .collect()
    }
}

/// The node's DNS facts pods' files are made from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeDns {
    /// The cluster DNS address; None: none (ClusterFirst acts as Default).
    pub cluster_dns: Option<IpAddr>,
    /// `cluster.local` by default.
    pub cluster_domain: String,
    /// The node's resolv.conf (`--resolv-conf`).
    pub host: ResolvConf,
}

impl NodeDns {
    /// Whether the pod gets a resolv.conf of keel's: always once the node
    /// knows its resolver or a cluster DNS (the agent reads
    /// `--resolv-conf` at start), and for `dnsPolicy: None`; otherwise
    /// (a runtime used on its own, in tests) the image's stays.
    pub fn writes_resolv_conf(&self, pod: &Pod) -> bool {
        self.cluster_dns.is_some()
            || self.host != ResolvConf::default()
            || pod.spec.dns_policy == Some(DnsPolicy::None)
    }
}

/// The pod's resolv.conf.
pub fn resolv_conf(pod: &Pod, node: &NodeDns) -> ResolvConf {
    let policy = pod.spec.dns_policy.unwrap_or_default();
    let ns = &pod.metadata.namespace;
    let d = node.cluster_domain.trim_end_matches('.');
    let mut rc = match (policy, node.cluster_dns) {
        (DnsPolicy::ClusterFirst, Some(ip)) if !pod.spec.host_network => {
            cluster_first(ns, d, ip, node)
        }
        (DnsPolicy::ClusterFirstWithHostNet, Some(ip)) => cluster_first(ns, d, ip, node),
        (DnsPolicy::None, _) => ResolvConf::default(),
        _ => node.host.clone(),
    };
    if let Some(cfg) = &pod.spec.dns_config {
        rc.nameservers.extend(cfg.nameservers.iter().cloned());
        rc.searches.extend(
            cfg.searches
                .iter()
                .map(|s| s.trim_end_matches('.').to_string()),
        );
        for o in &cfg.options {
            let opt = match &o.value {
                Some(v) => format!("{}:{v}", o.name),
                None => o.name.clone(),
            };
            rc.options
                .retain(|x| x.split(':').next() != Some(o.name.as_str()));
            rc.options.push(opt);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    rc.searches.retain(|s| seen.insert(s.clone()));
    rc.searches.truncate(MAX_DNS_SEARCHES);
    rc.nameservers.truncate(MAX_DNS_NAMESERVERS);
    rc
}

/// What `ClusterFirst` gives a pod of namespace `ns` (cluster domain `d`).
fn cluster_first(ns: &str, d: &str, ip: IpAddr, node: &NodeDns) -> ResolvConf {
    let mut searches = vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.to_string()];
    searches.extend(node.host.searches.iter().cloned());
    ResolvConf {
        nameservers: vec![ip.to_string()],
        searches,
        options: vec!["ndots:5".into()],
    }
}

/// The node's hostname: what a hostNetwork pod's containers see (they
/// share the node's UTS namespace, as under the kubelet).
pub fn node_hostname() -> String {
    // The agent's own UTS namespace (the node's).
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// A hostNetwork pod's `/etc/hosts`: the node's own (as the kubelet copies
/// it), plus `hostAliases`.
pub fn host_network_hosts(node_hosts: &str, pod: &Pod) -> String {
    let mut s = node_hosts.to_string();
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    if !pod.spec.host_aliases.is_empty() {
        s += "\n# Entries added by HostAliases.\n";
        for a in &pod.spec.host_aliases {
            s += &format!("{}\t{}\n", a.ip, a.hostnames.join("\t"));
        }
    }
    s
}

/// The pod's hostname: `spec.hostname`, else its name (truncated to 63
/// characters, as the kubelet does).
pub fn hostname(pod: &Pod) -> String {
    let h = if pod.spec.hostname.is_empty() {
        &pod.metadata.name
    } else {
        &pod.spec.hostname
    };
    let h = &h[..h.len().min(63)];
    h.trim_end_matches(['-', '.']).to_string()
}

/// The pod's `/etc/hosts`, in the kubelet's layout: localhost entries,
/// the pod's IP with its FQDN (when it has a subdomain) and hostname, and
/// `hostAliases`.
pub fn hosts(pod: &Pod, cluster_domain: &str) -> String {
    let mut s = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    let host = hostname(pod);
    let ip = &pod.status.pod_ip;
    if ip.is_empty() {
        // No sandbox address (no network): the hostname still resolves.
        s += &format!("127.0.1.1\t{host}\n");
    } else {
        if pod.spec.subdomain.is_empty() {
            s += &format!("{ip}\t{host}\n");
        } else {
            let d = cluster_domain.trim_end_matches('.');
            s += &format!(
                "{ip}\t{host}.{}.{}.svc.{d}\t{host}\n",
                pod.spec.subdomain, pod.metadata.namespace
            );
        }
    }
    if !pod.spec.host_aliases.is_empty() {
        s += "\n# Entries added by HostAliases.\n";
        for a in &pod.spec.host_aliases {
            s += &format!("{}\t{}\n", a.ip, a.hostnames.join("\t"));
        }
    }
    s
}

#[cfg(test)]
mod tests;
