//! kube-proxy-equivalent rule sets, for the load-balancer benchmark's
//! baselines: the same Services rendered the way kube-proxy's iptables mode
//! (`iptables-restore` input: KUBE-SERVICES → KUBE-SVC-* with `statistic`
//! random probabilities → KUBE-SEP-* DNAT, masquerade marking) and its
//! nftables mode (`nft -f` input: a `service-ips` verdict map →
//! per-service chains with `numgen random` vmaps → endpoint chains with
//! `dnat`) program them, plus the partial updates each mode writes when one
//! Service's endpoints change. They exist only inside benchmark namespaces.

use std::{fmt::Write as _, net::Ipv4Addr};

/// One Service port and its ready endpoints (TCP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Svc {
    /// `namespace/name:port`, as kube-proxy's comments say.
    pub name: String,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub endpoints: Vec<(Ipv4Addr, u16)>,
}

/// `n` Services of `per` endpoints each: cluster IPs from 10.96.0.1 up,
/// pod IPs from 10.128.0.1 up ([`pod_ip`]), all distinct.
pub fn services(n: usize, per: usize) -> Vec<Svc> {
    services_at(Ipv4Addr::new(10, 96, 0, 1), n, per, 0)
}

/// `n` Services of `per` endpoints each, cluster IPs from `first_vip` up,
/// endpoints `pod_ip(first_pod)` up.
pub fn services_at(first_vip: Ipv4Addr, n: usize, per: usize, first_pod: usize) -> Vec<Svc> {
    (0..n)
        .map(|i| Svc {
            name: format!("bench/svc-{i}:http"),
            vip: Ipv4Addr::from(u32::from(first_vip) + i as u32),
            port: 80,
            endpoints: (0..per)
                .map(|j| (pod_ip(first_pod + i * per + j), 8080))
                .collect(),
        })
        .collect()
}

/// The `k`-th pod IP (10.128.0.1 + k).
pub fn pod_ip(k: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 1)) + k as u32)
}

/// A stable 64-bit name hash (FNV-1a), like kube-proxy's hashed chain names.
fn h(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn svc_chain(s: &Svc) -> String {
    format!("KUBE-SVC-{:016X}", h(&s.name))
}

fn sep_chain(s: &Svc, ep: (Ipv4Addr, u16)) -> String {
    format!(
        "KUBE-SEP-{:016X}",
        h(&format!("{}{}:{}", s.name, ep.0, ep.1))
    )
}

/// The pod network of the synthetic Services (`pod_ip`).
pub const CLUSTER_CIDR: &str = "10.128.0.0/9";

fn iptables_service(out: &mut String, s: &Svc, cidr: &str) {
    let svc = svc_chain(s);
    let _ = writeln!(
        out,
        "-A KUBE-SERVICES -d {}/32 -p tcp -m comment --comment \"{} cluster IP\" -m tcp --dport {} -j {svc}",
        s.vip, s.name, s.port
    );
    let _ = writeln!(
        out,
        "-A {svc} ! -s {cidr} -d {}/32 -p tcp -m comment --comment \"{} cluster IP\" -m tcp --dport {} -j KUBE-MARK-MASQ",
        s.vip, s.name, s.port
    );
    iptables_endpoints(out, s);
}

/// The KUBE-SVC rules that pick an endpoint and the KUBE-SEP chains' rules.
fn iptables_endpoints(out: &mut String, s: &Svc) {
    let svc = svc_chain(s);
    let n = s.endpoints.len();
    for (i, ep) in s.endpoints.iter().enumerate() {
        let sep = sep_chain(s, *ep);
        if i + 1 < n {
            let p = 1.0 / (n - i) as f64;
            let _ = writeln!(
                out,
                "-A {svc} -m comment --comment \"{} -> {}:{}\" -m statistic --mode random --probability {p:.10} -j {sep}",
                s.name, ep.0, ep.1
            );
        } else {
            let _ = writeln!(
                out,
                "-A {svc} -m comment --comment \"{} -> {}:{}\" -j {sep}",
                s.name, ep.0, ep.1
            );
        }
    }
    for ep in &s.endpoints {
        let sep = sep_chain(s, *ep);
        let _ = writeln!(
            out,
            "-A {sep} -s {}/32 -m comment --comment \"{}\" -j KUBE-MARK-MASQ",
            ep.0, s.name
        );
        let _ = writeln!(
            out,
            "-A {sep} -p tcp -m comment --comment \"{}\" -m tcp -j DNAT --to-destination {}:{}",
            s.name, ep.0, ep.1
        );
    }
}

/// A full `iptables-restore` input for the nat table (kube-proxy's full
/// sync); `cidr` is the pod network (traffic from outside it is masqueraded).
pub fn iptables_full(svcs: &[Svc], cidr: &str) -> String {
    let mut out = String::from(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n",
    );
    for s in svcs {
        let _ = writeln!(out, ":{} - [0:0]", svc_chain(s));
        for ep in &s.endpoints {
            let _ = writeln!(out, ":{} - [0:0]", sep_chain(s, *ep));
        }
    }
    out.push_str(
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n\
         -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n\
         -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n\
         -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n\
         -A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE\n",
    );
    for s in svcs {
        iptables_service(&mut out, s, cidr);
    }
    out.push_str("COMMIT\n");
    out
}

/// kube-proxy's partial sync (`iptables-restore --noflush`) when `old`'s
/// endpoints became `new`'s: the Service chain rewritten, new endpoint
/// chains created, gone ones flushed and deleted.
pub fn iptables_update(old: &Svc, new: &Svc, cidr: &str) -> String {
    let mut out = String::from("*nat\n");
    let _ = writeln!(out, ":{} - [0:0]", svc_chain(new));
    for ep in &new.endpoints {
        let _ = writeln!(out, ":{} - [0:0]", sep_chain(new, *ep));
    }
    let gone: Vec<String> = old
        .endpoints
        .iter()
        .filter(|ep| !new.endpoints.contains(ep))
        .map(|ep| sep_chain(old, *ep))
        .collect();
    for c in &gone {
        let _ = writeln!(out, ":{c} - [0:0]");
    }
    let _ = writeln!(
        out,
        "-A {} ! -s {cidr} -d {}/32 -p tcp -m comment --comment \"{} cluster IP\" -m tcp --dport {} -j KUBE-MARK-MASQ",
        svc_chain(new),
        new.vip,
        new.name,
        new.port
    );
    iptables_endpoints(&mut out, new);
    for c in &gone {
        let _ = writeln!(out, "-X {c}");
    }
    out.push_str("COMMIT\n");
    out
}

const T: &str = "ip kube-proxy";

fn nft_svc_chain(s: &Svc) -> String {
    format!("service-{:016x}", h(&s.name))
}

fn nft_ep_chain(s: &Svc, ep: (Ipv4Addr, u16)) -> String {
    format!(
        "endpoint-{:016x}",
        h(&format!("{}{}:{}", s.name, ep.0, ep.1))
    )
}

fn nft_endpoints(out: &mut String, s: &Svc) {
    for ep in &s.endpoints {
        let c = nft_ep_chain(s, *ep);
        let _ = writeln!(out, "add chain {T} {c}");
        let _ = writeln!(
            out,
            "add rule {T} {c} ip saddr {} jump mark-for-masquerade",
            ep.0
        );
        let _ = writeln!(
            out,
            "add rule {T} {c} meta l4proto tcp dnat to {}:{}",
            ep.0, ep.1
        );
    }
}

fn nft_service_rules(out: &mut String, s: &Svc, cidr: &str) {
    let c = nft_svc_chain(s);
    let _ = writeln!(
        out,
        "add rule {T} {c} ip daddr {} tcp dport {} ip saddr != {cidr} jump mark-for-masquerade",
        s.vip, s.port
    );
    if !s.endpoints.is_empty() {
        let targets: Vec<String> = s
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, ep)| format!("{i} : goto {}", nft_ep_chain(s, *ep)))
            .collect();
        let _ = writeln!(
            out,
            "add rule {T} {c} numgen random mod {} vmap {{ {} }}",
            s.endpoints.len(),
            targets.join(", ")
        );
    }
}

/// A full `nft -f` input (kube-proxy's nftables mode, first sync).
pub fn nft_full(svcs: &[Svc], cidr: &str) -> String {
    let mut out = format!(
        "add table {T}\n\
         add chain {T} mark-for-masquerade\n\
         add rule {T} mark-for-masquerade mark set mark or 0x4000\n\
         add chain {T} masquerading {{ type nat hook postrouting priority srcnat ; }}\n\
         add rule {T} masquerading mark and 0x4000 == 0 return\n\
         add rule {T} masquerading mark set mark xor 0x4000\n\
         add rule {T} masquerading masquerade fully-random\n\
         add chain {T} services\n\
         add map {T} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}\n\
         add chain {T} nat-prerouting {{ type nat hook prerouting priority dstnat ; }}\n\
         add rule {T} nat-prerouting jump services\n\
         add chain {T} nat-output {{ type nat hook output priority -100 ; }}\n\
         add rule {T} nat-output jump services\n\
         add rule {T} services ip daddr . meta l4proto . th dport vmap @service-ips\n"
    );
    for s in svcs {
        nft_endpoints(&mut out, s);
        let _ = writeln!(out, "add chain {T} {}", nft_svc_chain(s));
        nft_service_rules(&mut out, s, cidr);
        let _ = writeln!(
            out,
            "add element {T} service-ips {{ {} . tcp . {} : goto {} }}",
            s.vip,
            s.port,
            nft_svc_chain(s)
        );
    }
    out
}

/// kube-proxy's nftables partial sync when `old`'s endpoints became
/// `new`'s: one transaction that adds the new endpoint chains, rewrites the
/// service chain and deletes the gone endpoint chains.
pub fn nft_update(old: &Svc, new: &Svc, cidr: &str) -> String {
    let mut out = String::new();
    let added = Svc {
        endpoints: new
            .endpoints
            .iter()
            .copied()
            .filter(|ep| !old.endpoints.contains(ep))
            .collect(),
        ..new.clone()
    };
    nft_endpoints(&mut out, &added);
    let _ = writeln!(out, "flush chain {T} {}", nft_svc_chain(new));
    nft_service_rules(&mut out, new, cidr);
    for ep in old
        .endpoints
        .iter()
        .filter(|ep| !new.endpoints.contains(ep))
    {
        let c = nft_ep_chain(old, *ep);
        let _ = writeln!(out, "flush chain {T} {c}");
        let _ = writeln!(out, "delete chain {T} {c}");
    }
    out
}

#[cfg(test)]
mod tests;
