//! Which names and addresses keel-control's serving certificate covers, as
//! kubeadm's apiserver certificate does: localhost and 127.0.0.1, the
//! listen address (every local address when it is unspecified), the host
//! name, the advertised URL's host, and the in-cluster `kubernetes`
//! Service's names and ClusterIP (the first address of the Service CIDR).
//! Pure: the caller gathers the inputs.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, SocketAddr},
};

/// What the SANs are chosen from.
#[derive(Debug, Clone)]
pub struct SanInputs {
    pub listen: SocketAddr,
    /// The machine's addresses (used when `listen` is unspecified).
    pub local_addrs: Vec<IpAddr>,
    pub hostname: Option<String>,
    /// The host of `--advertise-url` (a name or an address).
    pub advertise_host: Option<String>,
    /// The `kubernetes` Service's ClusterIP.
    pub service_ip: Ipv4Addr,
    pub cluster_domain: String,
}

/// The SANs, sorted and without duplicates.
pub fn sans(i: &SanInputs) -> Vec<String> {
    let mut out = BTreeSet::new();
    out.insert("localhost".to_string());
    out.insert(Ipv4Addr::LOCALHOST.to_string());
    if i.listen.ip().is_unspecified() {
        out.extend(i.local_addrs.iter().map(IpAddr::to_string));
    } else {
        out.insert(i.listen.ip().to_string());
    }
    if let Some(h) = i.hostname.as_deref().filter(|h| !h.is_empty()) {
        out.insert(h.to_ascii_lowercase());
    }
    if let Some(h) = i.advertise_host.as_deref().filter(|h| !h.is_empty()) {
        out.insert(h.trim_matches(['[', ']']).to_ascii_lowercase());
    }
    out.insert(i.service_ip.to_string());
    for name in [
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        format!("kubernetes.default.svc.{}", i.cluster_domain),
    ] {
        out.insert(name);
    }
    out.into_iter().collect()
}

/// The host of a URL (`https://HOST:PORT/…`, `[v6]` allowed).
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// The SANs a certificate carries (DNS names and IP addresses), sorted.
pub fn of_cert(der: &[u8]) -> Option<Vec<String>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut out = BTreeSet::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => {
                    out.insert(d.to_ascii_lowercase());
                }
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => IpAddr::from(<[u8; 4]>::try_from(*b).ok()?),
                        16 => IpAddr::from(<[u8; 16]>::try_from(*b).ok()?),
                        _ => continue,
                    };
                    out.insert(ip.to_string());
                }
                _ => {}
            }
        }
    }
    Some(out.into_iter().collect())
}

/// The machine's up interfaces' addresses.
pub fn local_addrs() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out = BTreeSet::new();
    for ifa in addrs {
        let Some(a) = ifa.address else { continue };
        if let Some(v4) = a.as_sockaddr_in() {
            out.insert(IpAddr::V4(v4.ip()));
        } else if let Some(v6) = a.as_sockaddr_in6() {
            let ip = v6.ip();
            // Link-local addresses need a zone; no client dials them by URL.
            if ip.segments()[0] & 0xffc0 != 0xfe80 {
                out.insert(IpAddr::V6(ip));
            }
        }
    }
    out.into_iter().collect()
}
