//! The cluster's names, answered from the agent's [`View`] alone (pure: no
//! I/O, no state of its own, so an answer reflects the view it is given —
//! the server passes the current one for every query).
//!
//! Names, as the Kubernetes DNS specification and CoreDNS's `kubernetes`
//! plugin (with `pods insecure`) have them, under the cluster domain `D`:
//!
//! | name | answer |
//! | --- | --- |
//! | `SVC.NS.svc.D` A | the ClusterIP; a headless Service's ready endpoint IPs |
//! | `SVC.NS.svc.D` SRV | one per named port (headless: per ready endpoint) |
//! | `_PORT._PROTO.SVC.NS.svc.D` SRV | that named port |
//! | `EP.SVC.NS.svc.D` A | a headless Service's endpoint, by its `hostname` or dashed IP |
//! | `A-B-C-D.NS.pod.D` A | `A.B.C.D` |
//! | `SVC.NS.svc.D` (ExternalName) | a CNAME to `spec.externalName` |
//! | `D.C.B.A.in-addr.arpa` PTR | a Service's or endpoint's name, a local pod's dashed name |
//!
//! A name that exists with no record of the asked type is NODATA (NOERROR,
//! no answer, the zone's SOA as authority); a name under `D` that does not
//! exist is NXDOMAIN. A headless Service without ready endpoints still
//! exists: NODATA (CoreDNS says NXDOMAIN there). Reverse names of addresses
//! the view does not know, and every name outside `D`, are not ours
//! ([`Answer::Forward`]).

use std::net::Ipv4Addr;

use hickory_proto::rr::{
    Name, RData, Record, RecordType,
    rdata::{A, CNAME, PTR, SOA, SRV},
};
use keel_api::{Endpoints, Protocol, Service, service::ServiceType};

use crate::sync::view::View;

/// The TTL of every cluster answer (CoreDNS's `kubernetes` default).
pub const TTL: u32 = 5;

/// What the zone says about one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The name exists: these records (none: NODATA), with records for
    /// the additional section (A records of SRV targets).
    Records {
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    /// No such name in the cluster domain.
    NxDomain,
    /// Not a cluster name: the upstream resolvers answer it.
    Forward,
}

impl Answer {
    fn nodata() -> Self {
        Answer::Records {
            answers: Vec::new(),
            additionals: Vec::new(),
        }
    }

    fn of(answers: Vec<Record>) -> Self {
        Answer::Records {
            answers,
            additionals: Vec::new(),
        }
    }
}

/// The cluster domain (`cluster.local`), lowercase, without a trailing dot.
#[derive(Debug, Clone)]
pub struct Zone {
    domain: String,
    apex: Name,
}

impl Zone {
    pub fn new(domain: &str) -> Result<Self, String> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if domain.is_empty() {
            return Err("the cluster domain is empty".into());
        }
        keel_api::validate::dns1123_subdomain(&domain)?;
        let apex = Name::from_ascii(format!("{domain}."))
            .map_err(|e| format!("{domain:?} is not a domain name: {e}"))?;
        Ok(Self { domain, apex })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The SOA record negative answers carry as authority (its minimum, the
    /// negative-caching TTL, is [`TTL`]).
    pub fn soa(&self) -> Record {
        let n = |s: &str| Name::from_ascii(format!("{s}.{}.", self.domain)).expect("valid");
        Record::from_rdata(
            self.apex.clone(),
            TTL,
            RData::SOA(SOA::new(
                n("ns.dns"),
                n("hostmaster"),
                1,
                7200,
                1800,
                86400,
                TTL,
            )),
        )
    }

    /// Answers `qtype` for `qname` from `view`.
    pub fn answer(&self, view: &View, qname: &Name, qtype: RecordType) -> Answer {
        let mut ascii = qname.to_ascii();
        ascii.make_ascii_lowercase();
        let name = ascii.trim_end_matches('.');
        if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
            return self.reverse(view, qname, qtype, rest);
        }
        let labels: Vec<&str> = if name == self.domain {
            Vec::new()
        } else if let Some(rest) = name
            .strip_suffix(self.domain.as_str())
            .and_then(|r| r.strip_suffix('.'))
        {
            rest.split('.').collect()
        } else {
            return Answer::Forward;
        };
        let mut q = Q {
            zone: self,
            view,
            qname,
            qtype,
        };
        match labels.as_slice() {
            [] => match qtype {
                RecordType::SOA => Answer::of(vec![self.soa()]),
                _ => Answer::nodata(),
            },
            ["svc"] | ["pod"] => Answer::nodata(),
            [ns, "svc"] | [ns, "pod"] => {
                if namespace_known(view, ns) {
                    Answer::nodata()
                } else {
                    Answer::NxDomain
                }
            }
            [svc, ns, "svc"] => q.service(ns, svc),
            [ep, svc, ns, "svc"] => q.endpoint(ns, svc, ep),
            [port, proto, svc, ns, "svc"] => q.port(ns, svc, port, proto),
            [ip, ns, "pod"] => match (undash(ip), valid_label(ns)) {
                (Some(ip), true) => q.a(vec![ip]),
                _ => Answer::NxDomain,
            },
            _ => Answer::NxDomain,
        }
    }

    /// `d.c.b.a.in-addr.arpa`: a Service's ClusterIP, an endpoint, a local
    /// pod; anything else is the upstreams' (the node's own network).
    fn reverse(&self, view: &View, qname: &Name, qtype: RecordType, rest: &str) -> Answer {
        let octets: Vec<&str> = rest.split('.').collect();
        if octets.len() != 4 {
            return Answer::Forward;
        }
        let Ok(ip) =
            format!("{}.{}.{}.{}", octets[3], octets[2], octets[1], octets[0]).parse::<Ipv4Addr>()
        else {
            return Answer::Forward;
        };
        let Some(target) = self.name_of(view, ip) else {
            return Answer::Forward;
        };
        if qtype != RecordType::PTR && qtype != RecordType::ANY {
            return Answer::nodata();
        }
        Answer::of(vec![Record::from_rdata(
            qname.clone(),
            TTL,
            RData::PTR(PTR(target)),
        )])
    }

    /// The cluster name of `ip`, if the view knows it.
    fn name_of(&self, view: &View, ip: Ipv4Addr) -> Option<Name> {
        let s = ip.to_string();
        for svc in view.services.values() {
            if svc.spec.cluster_ip == s && svc.wants_cluster_ip() {
                return self.fqdn(&[&svc.metadata.name, &svc.metadata.namespace, "svc"]);
            }
        }
        for (key, ep) in view.endpoints.iter() {
            let (ns, svc) = key.split_once('/')?;
            for sub in &ep.subsets {
                if let Some(a) = sub.addresses.iter().find(|a| a.ip == s) {
                    return self.fqdn(&[&endpoint_label(&a.hostname, ip), svc, ns, "svc"]);
                }
            }
        }
        for pod in view.pods.values() {
            if pod.status.pod_ip == s {
                return self.fqdn(&[&dash(ip), &pod.metadata.namespace, "pod"]);
            }
        }
        None
    }

    fn fqdn(&self, labels: &[&str]) -> Option<Name> {
        Name::from_ascii(format!("{}.{}.", labels.join("."), self.domain)).ok()
    }
}

/// One question being answered.
struct Q<'a> {
    zone: &'a Zone,
    view: &'a View,
    qname: &'a Name,
    qtype: RecordType,
}

impl Q<'_> {
    fn service_of(&self, ns: &str, svc: &str) -> Option<&Service> {
        self.view
            .services
            .get(&format!("{ns}/{svc}"))
            .map(|s| s.as_ref())
    }

    fn endpoints_of(&self, ns: &str, svc: &str) -> Option<&Endpoints> {
        self.view
            .endpoints
            .get(&format!("{ns}/{svc}"))
            .map(|e| e.as_ref())
    }

    fn wants(&self, t: RecordType) -> bool {
        self.qtype == t || self.qtype == RecordType::ANY
    }

    fn a(&self, ips: Vec<Ipv4Addr>) -> Answer {
        if !self.wants(RecordType::A) {
            return Answer::nodata();
        }
        Answer::of(
            ips.into_iter()
                .map(|ip| Record::from_rdata(self.qname.clone(), TTL, RData::A(A(ip))))
                .collect(),
        )
    }

    /// `SVC.NS.svc.D`.
    fn service(&mut self, ns: &str, name: &str) -> Answer {
        let Some(svc) = self.service_of(ns, name) else {
            return Answer::NxDomain;
        };
        if svc.spec.type_ == ServiceType::ExternalName {
            return self.cname(&svc.spec.external_name);
        }
        let headless = svc.is_headless();
        match self.qtype {
            RecordType::SRV => {
                let ports: Vec<_> = svc
                    .spec
                    .ports
                    .iter()
                    .filter(|p| !p.name.is_empty())
                    .map(|p| (p.name.clone(), p.protocol))
                    .collect();
                let mut out = Vec::new();
                let mut adds = Vec::new();
                for (port, proto) in ports {
                    let (a, b) = self.srv(svc, &port, proto);
                    out.extend(a);
                    adds.extend(b);
                }
                dedup(&mut adds);
                Answer::Records {
                    answers: out,
                    additionals: adds,
                }
            }
            _ if headless => {
                let ips = self
                    .endpoints_of(ns, name)
                    .map(ready_ips)
                    .unwrap_or_default();
                self.a(ips.into_iter().map(|(ip, _)| ip).collect())
            }
            _ => match svc.spec.cluster_ip.parse::<Ipv4Addr>() {
                Ok(ip) => self.a(vec![ip]),
                Err(_) => Answer::nodata(),
            },
        }
    }

    fn cname(&self, target: &str) -> Answer {
        let Ok(mut t) = Name::from_ascii(target) else {
            return Answer::nodata();
        };
        t.set_fqdn(true);
        Answer::of(vec![Record::from_rdata(
            self.qname.clone(),
            TTL,
            RData::CNAME(CNAME(t)),
        )])
    }

    /// SRV records (and their targets' A records) for the named port
    /// `port`/`proto` of `svc`.
    fn srv(&self, svc: &Service, port: &str, proto: Protocol) -> (Vec<Record>, Vec<Record>) {
        let (ns, name) = (&svc.metadata.namespace, &svc.metadata.name);
        let mut answers = Vec::new();
        let mut adds = Vec::new();
        if svc.is_headless() {
            let Some(ep) = self.endpoints_of(ns, name) else {
                return (answers, adds);
            };
            let mut targets = Vec::new();
            for sub in &ep.subsets {
                let Some(p) = sub
                    .ports
                    .iter()
                    .find(|p| p.name == port && p.protocol == proto)
                else {
                    continue;
                };
                for a in &sub.addresses {
                    if let Ok(ip) = a.ip.parse::<Ipv4Addr>() {
                        targets.push((endpoint_label(&a.hostname, ip), ip, p.port));
                    }
                }
            }
            targets.sort();
            targets.dedup();
            let weight = weight(targets.len());
            for (label, ip, p) in targets {
                let Some(target) = self.zone.fqdn(&[&label, name, ns, "svc"]) else {
                    continue;
                };
                answers.push(Record::from_rdata(
                    self.qname.clone(),
                    TTL,
                    RData::SRV(SRV::new(0, weight, p, target.clone())),
                ));
                adds.push(Record::from_rdata(target, TTL, RData::A(A(ip))));
            }
        } else if let Some(p) = svc
            .spec
            .ports
            .iter()
            .find(|p| p.name == port && p.protocol == proto)
            && let (Ok(ip), Ok(n)) = (
                svc.spec.cluster_ip.parse::<Ipv4Addr>(),
                u16::try_from(p.port),
            )
            && let Some(target) = self.zone.fqdn(&[name, ns, "svc"])
        {
            answers.push(Record::from_rdata(
                self.qname.clone(),
                TTL,
                RData::SRV(SRV::new(0, 100, n, target.clone())),
            ));
            adds.push(Record::from_rdata(target, TTL, RData::A(A(ip))));
        }
        (answers, adds)
    }

    /// `_PORT._PROTO.SVC.NS.svc.D`.
    fn port(&mut self, ns: &str, name: &str, port: &str, proto: &str) -> Answer {
        let Some(svc) = self.service_of(ns, name) else {
            return Answer::NxDomain;
        };
        let (Some(port), Some(proto)) = (port.strip_prefix('_'), proto.strip_prefix('_')) else {
            return Answer::NxDomain;
        };
        let proto = match proto {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            _ => return Answer::NxDomain,
        };
        if !svc
            .spec
            .ports
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case(port) && p.protocol == proto)
        {
            return Answer::NxDomain;
        }
        if !self.wants(RecordType::SRV) {
            return Answer::nodata();
        }
        let port = svc
            .spec
            .ports
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(port) && p.protocol == proto)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let (answers, mut additionals) = self.srv(svc, &port, proto);
        dedup(&mut additionals);
        Answer::Records {
            answers,
            additionals,
        }
    }

    /// `EP.SVC.NS.svc.D`: a headless Service's ready endpoint.
    fn endpoint(&mut self, ns: &str, name: &str, ep: &str) -> Answer {
        let Some(svc) = self.service_of(ns, name) else {
            return Answer::NxDomain;
        };
        if !svc.is_headless() {
            return Answer::NxDomain;
        }
        let ips: Vec<Ipv4Addr> = self
            .endpoints_of(ns, name)
            .map(ready_ips)
            .unwrap_or_default()
            .into_iter()
            .filter(|(ip, hostname)| endpoint_label(hostname, *ip) == ep)
            .map(|(ip, _)| ip)
            .collect();
        if ips.is_empty() {
            return Answer::NxDomain;
        }
        self.a(ips)
    }
}

/// A Service in the namespace makes it known (the agent watches no
/// Namespaces).
fn namespace_known(view: &View, ns: &str) -> bool {
    let prefix = format!("{ns}/");
    view.services
        .range(prefix.clone()..)
        .next()
        .is_some_and(|(k, _)| k.starts_with(&prefix))
}

/// Ready addresses (deduplicated, in order) with their hostnames.
fn ready_ips(ep: &Endpoints) -> Vec<(Ipv4Addr, String)> {
    let mut out: Vec<(Ipv4Addr, String)> = ep
        .subsets
        .iter()
        .flat_map(|s| &s.addresses)
        .filter_map(|a| Some((a.ip.parse().ok()?, a.hostname.clone())))
        .collect();
    out.sort();
    out.dedup_by_key(|(ip, _)| *ip);
    out
}

/// An endpoint's label under its Service: its hostname, else its dashed IP.
fn endpoint_label(hostname: &str, ip: Ipv4Addr) -> String {
    if hostname.is_empty() {
        dash(ip)
    } else {
        hostname.to_ascii_lowercase()
    }
}

/// `10.244.1.5` → `10-244-1-5`.
pub fn dash(ip: Ipv4Addr) -> String {
    ip.to_string().replace('.', "-")
}

/// `10-244-1-5` → `10.244.1.5`.
fn undash(label: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = label.split('-').collect();
    if parts.len() != 4 {
        return None;
    }
    parts.join(".").parse().ok()
}

fn valid_label(s: &str) -> bool {
    keel_api::validate::dns1123_label(s).is_ok()
}

/// CoreDNS's SRV weight: 100 shared evenly.
fn weight(n: usize) -> u16 {
    100usize.checked_div(n).map_or(100, |w| w.max(1) as u16)
}

fn dedup(records: &mut Vec<Record>) {
    let mut seen = Vec::new();
    records.retain(|r| {
        let k = (r.name().clone(), r.data().clone());
        if seen.contains(&k) {
            false
        } else {
            seen.push(k);
            true
        }
    });
}

#[cfg(test)]
mod tests;
