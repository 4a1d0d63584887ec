//! The `default/kubernetes` Service, as Kubernetes keeps it: the first
//! address of the service CIDR (`10.96.0.1` by default), port 443 named
//! `https`, no selector, and Endpoints naming keel-control's advertised
//! address and port, so in-cluster clients find the API server the way
//! they do in Kubernetes. No other Service is given that address.
//!
//! One replica (redb) ensures both at start. Several replicas (etcd) keep
//! them as Kubernetes' lease endpoint reconciler does: each renews its own
//! lease every [`HEARTBEAT`] (a key of the ConfigMap
//! `kube-system/keel-apiserver-leases`, `IP_PORT` → the time it was
//! renewed, in Unix seconds), and the Endpoints list every replica whose
//! lease is younger than [`EXPIRY`], rewritten only when that set changes.
//! A replica that dies leaves the Endpoints within [`EXPIRY`]; the
//! replicas' clocks must agree to within a few seconds.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    time::{Duration, SystemTime},
};

use keel_api::{ConfigMap, Endpoints, Service};
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

/// Where the replicas' leases are kept.
pub const LEASE_NAMESPACE: &str = "kube-system";
pub const LEASES: &str = "keel-apiserver-leases";
/// How often a replica renews its lease.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a lease lives without renewal.
pub const EXPIRY: Duration = Duration::from_secs(15);

/// A replica's key in the leases ConfigMap (`IP_PORT`: a ConfigMap key
/// takes no `:`).
fn lease_key((ip, port): (Ipv4Addr, u16)) -> String {
    format!("{ip}_{port}")
}

fn parse_lease_key(k: &str) -> Option<(Ipv4Addr, u16)> {
    let (ip, port) = k.split_once('_')?;
    Some((ip.parse().ok()?, port.parse().ok()?))
}

/// The replicas whose lease is alive at `now` (Unix seconds). Pure.
pub fn live(leases: &BTreeMap<String, String>, now: u64) -> BTreeSet<(Ipv4Addr, u16)> {
    leases
        .iter()
        .filter(|(_, at)| {
            at.parse::<u64>()
                .is_ok_and(|t| now.saturating_sub(t) < EXPIRY.as_secs())
        })
        .filter_map(|(k, _)| parse_lease_key(k))
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Keeps the Service and its Endpoints for a replica among several: renews
/// this replica's lease and writes the live replicas as the Endpoints, every
/// [`HEARTBEAT`], for as long as it runs.
pub async fn keep(store: Store, service_cidr: ipnet::Ipv4Net, url: String) {
    let Some(me) = address(&url) else {
        tracing::warn!(
            url,
            "the advertised URL has no IPv4 address and port: no default/kubernetes Service"
        );
        return;
    };
    loop {
        if let Err(e) = renew(&store, me).await {
            tracing::warn!(error = %e, "cannot renew this replica's API server lease");
        }
        let snap = store.snapshot();
        let leases = snap
            .get(
                keel_api::Kind::ConfigMap,
                &format!("{LEASE_NAMESPACE}/{LEASES}"),
            )
            .and_then(|o| match o {
                crate::store::Obj::ConfigMap(c) => Some(c.data.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let mut addrs = live(&leases, unix_now());
        addrs.insert(me);
        write(&store, service_cidr, me.1, &addrs).await;
        tokio::time::sleep(HEARTBEAT).await;
    }
}

/// Sets this replica's lease to now, dropping expired ones.
async fn renew(store: &Store, me: (Ipv4Addr, u16)) -> Result<(), StoreError> {
    let now = unix_now();
    let key = format!("{LEASE_NAMESPACE}/{LEASES}");
    for _ in 0..3 {
        let current = match store.snapshot().get(keel_api::Kind::ConfigMap, &key) {
            Some(crate::store::Obj::ConfigMap(c)) => Some(c),
            _ => None,
        };
        let mut data: BTreeMap<String, String> =
            current.as_ref().map(|c| c.data.clone()).unwrap_or_default();
        let keep = live(&data, now);
        data.retain(|k, _| parse_lease_key(k).is_some_and(|a| keep.contains(&a)));
        data.insert(lease_key(me), now.to_string());
        let result = match current {
            None => {
                let cm: ConfigMap = serde_json::from_value(json!({
                    "metadata": {"name": LEASES, "namespace": LEASE_NAMESPACE},
                    "data": data,
                }))
                .expect("a valid ConfigMap");
                store.create(cm).await
            }
            Some(c) => {
                let mut next = (*c).clone();
                next.data = data;
                store.update(next).await
            }
        };
        match result {
            Ok(_) => return Ok(()),
            // Another replica renewed at the same moment: read it again.
            Err(StoreError::Conflict { .. } | StoreError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Creates the Service and its Endpoints if missing, and points the
/// Endpoints at `url` if they name another address (one replica).
pub async fn ensure(store: &Store, service_cidr: ipnet::Ipv4Net, url: &str) {
    let Some(me) = address(url) else {
        tracing::warn!(
            url,
            "the advertised URL has no IPv4 address and port: no default/kubernetes Service"
        );
        return;
    };
    write(store, service_cidr, me.1, &BTreeSet::from([me])).await;
}

/// The Endpoints' subsets for `addrs`: one per port, as Kubernetes groups
/// them. Pure.
pub fn subsets(addrs: &BTreeSet<(Ipv4Addr, u16)>) -> serde_json::Value {
    let mut by_port: BTreeMap<u16, Vec<serde_json::Value>> = BTreeMap::new();
    for (ip, port) in addrs {
        by_port
            .entry(*port)
            .or_default()
            .push(json!({"ip": ip.to_string()}));
    }
    json!(
        by_port
            .into_iter()
            .map(|(port, addresses)| json!({"addresses": addresses,
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}))
            .collect::<Vec<_>>()
    )
}

/// Creates the Service if missing, and writes `addrs` as its Endpoints if
/// they list others.
async fn write(
    store: &Store,
    service_cidr: ipnet::Ipv4Net,
    port: u16,
    addrs: &BTreeSet<(Ipv4Addr, u16)>,
) {
    let ip = reserved_ip(service_cidr);
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
        "subsets": subsets(addrs),
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

    #[test]
    fn live_replicas_are_those_whose_lease_is_younger_than_the_expiry() {
        let leases: BTreeMap<String, String> = [
            ("172.30.0.2_6443", "1000"),
            ("172.30.0.3_6443", "990"),
            ("172.30.0.4_6443", "985"),
            ("not-an-address", "1000"),
            ("172.30.0.5_6443", "garbage"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            live(&leases, 1000),
            BTreeSet::from([(ip("172.30.0.2"), 6443), (ip("172.30.0.3"), 6443)]),
            "15 s old is expired"
        );
        // The keys are valid ConfigMap keys, and read back.
        let me = (ip("172.30.0.2"), 6443);
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": LEASES, "namespace": LEASE_NAMESPACE},
            "data": {lease_key(me): "1000"},
        }))
        .unwrap();
        use keel_api::Resource;
        assert!(cm.validate().is_empty(), "{:?}", cm.validate());
        assert_eq!(parse_lease_key(&lease_key(me)), Some(me));
        // One subset per port, addresses sorted.
        let s = subsets(&BTreeSet::from([
            (ip("172.30.0.3"), 6443),
            (ip("172.30.0.2"), 6443),
            (ip("127.0.0.1"), 7000),
        ]));
        assert_eq!(
            s,
            json!([
                {"addresses": [{"ip": "172.30.0.2"}, {"ip": "172.30.0.3"}],
                 "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]},
                {"addresses": [{"ip": "127.0.0.1"}],
                 "ports": [{"name": "https", "port": 7000, "protocol": "TCP"}]},
            ])
        );
    }
}
