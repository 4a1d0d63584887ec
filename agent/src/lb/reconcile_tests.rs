use std::{collections::BTreeMap, sync::Arc};

use keel_api::{Endpoints, Service};
use serde_json::json;

use super::*;
use crate::lb::maps::FakeMaps;

fn node() -> NodeInfo {
    NodeInfo {
        name: "n1".into(),
        ip: "10.0.0.1".parse().unwrap(),
    }
}

fn service(name: &str, ip: &str) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterIP": ip, "ports": [{"port": 80, "targetPort": 8080}]}
        }))
        .unwrap(),
    )
}

fn endpoints(name: &str, ips: &[&str]) -> Arc<Endpoints> {
    let addresses: Vec<_> = ips
        .iter()
        .map(|ip| json!({"ip": ip, "nodeName": "n2"}))
        .collect();
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "subsets": [{"addresses": addresses, "ports": [{"port": 8080}]}]
        }))
        .unwrap(),
    )
}

fn view(services: &[Arc<Service>], eps: &[Arc<Endpoints>], synced: bool) -> View {
    let key = |m: &keel_api::ObjectMeta| format!("{}/{}", m.namespace, m.name);
    View {
        services: services
            .iter()
            .map(|s| (key(&s.metadata), s.clone()))
            .collect::<BTreeMap<_, _>>(),
        endpoints: eps
            .iter()
            .map(|e| (key(&e.metadata), e.clone()))
            .collect::<BTreeMap<_, _>>(),
        synced,
        ..Default::default()
    }
}

fn vip(ip: &str) -> (u32, u16, u8) {
    let a: std::net::Ipv4Addr = ip.parse().unwrap();
    (u32::from_ne_bytes(a.octets()), 80u16.to_be(), 6)
}

fn backends_of(maps: &FakeMaps, ip: &str) -> Option<Vec<[u8; 4]>> {
    let (a, p, pr) = vip(ip);
    maps.resolve(a, p, pr)
        .map(|v| v.iter().map(|b| b.addr.to_ne_bytes()).collect())
}

#[test]
fn nothing_before_the_view_is_synced_then_everything() {
    let mut r = Reconciler::new(FakeMaps::default(), node()).unwrap();
    let web = service("web", "10.96.0.10");
    let ep = endpoints("web", &["10.244.2.5", "10.244.2.6"]);
    assert_eq!(
        r.sync(&view(
            std::slice::from_ref(&web),
            std::slice::from_ref(&ep),
            false
        ))
        .unwrap(),
        None
    );
    assert_eq!(r.maps().writes, 0);
    let rep = r.sync(&view(&[web], &[ep], true)).unwrap().unwrap();
    assert!(rep.full);
    assert_eq!(rep.created, 1);
    assert_eq!(
        backends_of(r.maps(), "10.96.0.10"),
        Some(vec![[10, 244, 2, 5], [10, 244, 2, 6]])
    );
    let shared = r.shared();
    let s = shared.read().unwrap();
    assert!(s.status.programmed);
    assert_eq!(s.services.values().next().unwrap(), "default/web");
}

#[test]
fn an_endpoints_change_recomputes_only_its_service() {
    let mut r = Reconciler::new(FakeMaps::default(), node()).unwrap();
    let (a, b) = (service("a", "10.96.0.10"), service("b", "10.96.0.11"));
    let (ea, eb) = (
        endpoints("a", &["10.244.2.5"]),
        endpoints("b", &["10.244.2.6"]),
    );
    r.sync(&view(
        &[a.clone(), b.clone()],
        &[ea.clone(), eb.clone()],
        true,
    ))
    .unwrap();
    let ea2 = endpoints("a", &["10.244.2.5", "10.244.2.7"]);
    let rep = r
        .sync(&view(
            &[a.clone(), b.clone()],
            &[ea2.clone(), eb.clone()],
            true,
        ))
        .unwrap()
        .unwrap();
    assert!(!rep.full);
    assert_eq!((rep.services, rep.frontends, rep.replaced), (1, 1, 1));
    assert_eq!(backends_of(r.maps(), "10.96.0.10").unwrap().len(), 2);
    // The same objects again: nothing to do at all.
    let rep = r
        .sync(&view(&[a, b.clone()], &[ea2, eb.clone()], true))
        .unwrap()
        .unwrap();
    assert_eq!((rep.services, rep.ops), (0, 0));
    // Service a deleted (its Endpoints too): its frontend goes.
    let rep = r.sync(&view(&[b], &[eb], true)).unwrap().unwrap();
    assert_eq!(rep.deleted, 1);
    assert_eq!(backends_of(r.maps(), "10.96.0.10"), None);
}

#[test]
fn a_restarted_reconciler_adopts_without_writing() {
    let mut r = Reconciler::new(FakeMaps::default(), node()).unwrap();
    let v = view(
        &[service("web", "10.96.0.10")],
        &[endpoints(
            "web",
            &["10.244.2.5", "10.244.2.6", "10.244.2.7"],
        )],
        true,
    );
    r.sync(&v).unwrap();
    let maps = r.maps().clone();
    let before = maps.services.clone();
    let writes = maps.writes;
    // A new agent over the same maps, first with an unsynced (empty) view:
    let mut r2 = Reconciler::new(maps, node()).unwrap();
    assert_eq!(r2.sync(&View::default()).unwrap(), None);
    let rep = r2.sync(&v).unwrap().unwrap();
    assert!(rep.full);
    assert_eq!(rep.ops, 0, "adoption wrote something");
    assert_eq!(r2.maps().writes, writes);
    assert_eq!(r2.maps().services, before);
}

#[test]
fn a_failed_apply_is_retried_from_a_fresh_read() {
    let mut r = Reconciler::new(FakeMaps::default(), node()).unwrap();
    let web = service("web", "10.96.0.10");
    r.sync(&view(
        std::slice::from_ref(&web),
        &[endpoints("web", &["10.244.2.5"])],
        true,
    ))
    .unwrap();
    r.maps.fail_at = Some(1);
    let v = view(
        &[web],
        &[endpoints("web", &["10.244.2.6", "10.244.2.7"])],
        true,
    );
    let err = r.sync(&v).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert!(r.shared().read().unwrap().status.last_error.is_some());
    assert!(r.maps().check_lookups().is_empty());
    // The same view again: a full sync from the kernel's truth finishes it.
    let rep = r.sync(&v).unwrap().unwrap();
    assert!(rep.full);
    assert_eq!(
        backends_of(r.maps(), "10.96.0.10"),
        Some(vec![[10, 244, 2, 6], [10, 244, 2, 7]])
    );
    assert!(r.shared().read().unwrap().status.last_error.is_none());
}

#[test]
fn diff_finds_added_removed_and_replaced_objects() {
    let (a, b, c) = (
        service("a", "1.1.1.1"),
        service("b", "1.1.1.2"),
        service("c", "1.1.1.3"),
    );
    let old: BTreeMap<String, Arc<Service>> =
        [("a".into(), a.clone()), ("b".into(), b.clone())].into();
    let new: BTreeMap<String, Arc<Service>> =
        [("b".into(), service("b", "1.1.1.2")), ("c".into(), c)].into();
    let mut out = BTreeSet::new();
    diff(&old, &new, &mut out);
    assert_eq!(out, ["a", "b", "c"].iter().map(|s| s.to_string()).collect());
    let mut out = BTreeSet::new();
    diff(&old, &old.clone(), &mut out);
    assert!(out.is_empty());
}
