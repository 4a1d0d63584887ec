//! The `default/kubernetes` Service, as Kubernetes keeps it: the first
//! address of the service CIDR (`10.96.0.1` by default), port 443 named
//! `https`, no selector, and Endpoints naming keel-control's own advertised
//! address and port, so in-cluster clients find the API server the way
//! they do in Kubernetes. Ensured at every start; no other Service is given
//! that address.

use std::net::Ipv4Addr;

use keel_api::{Endpoints, Service};
use serde_json::json;

use crate::store::{Store, StoreError};

pub const NAMESPACE: &str = "default";
pub const NAME: &str = "kubernetes";

/// The address reserved for the Service: the service CIDR's first host.
pub fn reserved_ip(service_cidr: ipnet::Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(service_cidr.network()) + 1)
}

/// The host and port of an advertised URL (`https://10.1.2.3:6443`), when
/// the host is an IPv4 address.
fn address(url: &str) -> Option<(Ipv4Addr, u16)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    Some((host.parse().ok()?, port.parse().ok()?))
}

/// Creates the Service and its Endpoints if missing, and points the
/// Endpoints at `url` if they name another address.
pub async fn ensure(store: &Store, service_cidr: ipnet::Ipv4Net, url: &str) {
    let ip = reserved_ip(service_cidr);
    let Some((host, port)) = address(url) else {
        tracing::warn!(
            url,
            "the advertised URL has no IPv4 address and port: no default/kubernetes Service"
        );
        return;
    };
    let key = format!("{NAMESPACE}/{NAME}");
    let snap = store.snapshot();
    if snap.get(keel_api::Kind::Service, &key).is_none() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": NAME, "namespace": NAMESPACE,
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": ip.to_string(),
                     "ports": [{"name": "https", "port": 443, "targetPort": port, "protocol": "TCP"}]}
        }))
        .expect("a valid Service");
        if let Err(e) = store.create(svc).await {
            tracing::warn!(error = %e, "cannot create the default/kubernetes Service");
            return;
        }
    }
    let want: Endpoints = serde_json::from_value(json!({
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "subsets": [{"addresses": [{"ip": host.to_string()}],
                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
    }))
    .expect("valid Endpoints");
    let result = match snap.get(keel_api::Kind::Endpoints, &key) {
        None => store.create(want).await,
        Some(cur)
            if cur.to_value()["subsets"]
                == serde_json::to_value(&want.subsets).unwrap_or_default() =>
        {
            return;
        }
        Some(cur) => {
            let mut want = want;
            want.metadata.resource_version = cur.meta().resource_version.clone();
            store.update(want).await
        }
    };
    if let Err(e) = result
        && !matches!(e, StoreError::AlreadyExists { .. })
    {
        tracing::warn!(error = %e, "cannot write the default/kubernetes Endpoints");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserved_address_is_the_first_host_and_the_url_gives_the_endpoint() {
        assert_eq!(
            reserved_ip("10.96.0.0/16".parse().unwrap()),
            Ipv4Addr::new(10, 96, 0, 1)
        );
        assert_eq!(
            address("https://172.30.0.2:6443"),
            Some((Ipv4Addr::new(172, 30, 0, 2), 6443))
        );
        assert_eq!(address("https://control.example:6443"), None);
    }
}
