use std::sync::Arc;

use keel_api::{Endpoints, Service};
use serde_json::json;

use super::*;
use crate::{
    lb::maps::FakeMaps,
    sync::view::{Update, apply},
};

fn node() -> NodeInfo {
    NodeInfo::new("n1", "10.0.0.1".parse().unwrap())
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

/// Successive views as the informers publish them, with the keys each
/// step changed (what the view's subscription hands the reconciler).
#[derive(Default)]
struct Feed {
    view: View,
}

impl Feed {
    fn step(
        &mut self,
        services: &[Arc<Service>],
        eps: &[Arc<Endpoints>],
        synced: bool,
    ) -> (View, BTreeSet<String>) {
        let mut keys = BTreeSet::new();
        apply(
            &mut self.view.services,
            Update::Replace(services.to_vec()),
            &mut keys,
        );
        apply(
            &mut self.view.endpoints,
            Update::Replace(eps.to_vec()),
            &mut keys,
        );
        self.view.synced = synced;
        (self.view.clone(), keys)
    }
}

/// Syncs the keys `step` changed.
fn sync<M: LbMaps>(
    r: &mut Reconciler<M>,
    (view, keys): (View, BTreeSet<String>),
) -> Result<Option<SyncReport>, ReconcileError> {
    r.sync(&view, &keys, false)
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
    let mut feed = Feed::default();
    let web = service("web", "10.96.0.10");
    let ep = endpoints("web", &["10.244.2.5", "10.244.2.6"]);
    assert_eq!(
        sync(
            &mut r,
            feed.step(std::slice::from_ref(&web), std::slice::from_ref(&ep), false)
        )
        .unwrap(),
        None
    );
    assert_eq!(r.maps().writes, 0);
    let rep = sync(&mut r, feed.step(&[web], &[ep], true))
        .unwrap()
        .unwrap();
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
    let mut feed = Feed::default();
    let (a, b) = (service("a", "10.96.0.10"), service("b", "10.96.0.11"));
    let (ea, eb) = (
        endpoints("a", &["10.244.2.5"]),
        endpoints("b", &["10.244.2.6"]),
    );
    sync(
        &mut r,
        feed.step(&[a.clone(), b.clone()], &[ea.clone(), eb.clone()], true),
    )
    .unwrap();
    let ea2 = endpoints("a", &["10.244.2.5", "10.244.2.7"]);
    let rep = sync(
        &mut r,
        feed.step(&[a.clone(), b.clone()], &[ea2.clone(), eb.clone()], true),
    )
    .unwrap()
    .unwrap();
    assert!(!rep.full);
    assert_eq!((rep.services, rep.frontends, rep.replaced), (1, 1, 1));
    assert_eq!(backends_of(r.maps(), "10.96.0.10").unwrap().len(), 2);
    // The same objects again: nothing to do at all.
    let rep = sync(&mut r, feed.step(&[a, b.clone()], &[ea2, eb.clone()], true))
        .unwrap()
        .unwrap();
    assert_eq!((rep.services, rep.ops), (0, 0));
    // Service a deleted (its Endpoints too): its frontend goes.
    let rep = sync(&mut r, feed.step(&[b], &[eb], true)).unwrap().unwrap();
    assert_eq!(rep.deleted, 1);
    assert_eq!(backends_of(r.maps(), "10.96.0.10"), None);
}

#[test]
fn a_restarted_reconciler_adopts_without_writing() {
    let mut r = Reconciler::new(FakeMaps::default(), node()).unwrap();
    let v = Feed::default().step(
        &[service("web", "10.96.0.10")],
        &[endpoints(
            "web",
            &["10.244.2.5", "10.244.2.6", "10.244.2.7"],
        )],
        true,
    );
    sync(&mut r, v.clone()).unwrap();
    let maps = r.maps().clone();
    let before = maps.services.clone();
    let writes = maps.writes;
    // A new agent over the same maps, first with an unsynced (empty) view:
    let mut r2 = Reconciler::new(maps, node()).unwrap();
    assert_eq!(
        sync(&mut r2, Feed::default().step(&[], &[], false)).unwrap(),
        None
    );
    let rep = sync(&mut r2, v).unwrap().unwrap();
    assert!(rep.full);
    assert_eq!(rep.ops, 0, "adoption wrote something");
    assert_eq!(r2.maps().writes, writes);
    assert_eq!(r2.maps().services, before);
}

#[test]
fn a_failed_apply_is_retried_from_a_fresh_read() {
    let mut r = Reconciler::new(FakeMaps::default(), node()).unwrap();
    let mut feed = Feed::default();
    let web = service("web", "10.96.0.10");
    sync(
        &mut r,
        feed.step(
            std::slice::from_ref(&web),
            &[endpoints("web", &["10.244.2.5"])],
            true,
        ),
    )
    .unwrap();
    r.maps.fail_at = Some(1);
    let v = feed.step(
        &[web],
        &[endpoints("web", &["10.244.2.6", "10.244.2.7"])],
        true,
    );
    let err = sync(&mut r, v.clone()).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert!(r.shared().read().unwrap().status.last_error.is_some());
    assert!(r.maps().check_lookups().is_empty());
    // The batch again (the driver's retry): a full sync from the kernel's
    // truth finishes it.
    let rep = sync(&mut r, v).unwrap().unwrap();
    assert!(rep.full);
    assert_eq!(
        backends_of(r.maps(), "10.96.0.10"),
        Some(vec![[10, 244, 2, 6], [10, 244, 2, 7]])
    );
    assert!(r.shared().read().unwrap().status.last_error.is_none());
}

#[test]
fn a_pods_host_port_is_programmed_while_the_pod_is_there() {
    let mut r = Reconciler::new(FakeMaps::default(), node()).unwrap();
    let web: Arc<keel_api::Pod> = Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i",
                "ports": [{"containerPort": 8080, "hostPort": 80}]}]},
            "status": {"podIP": "10.244.1.7", "phase": "Running"}
        }))
        .unwrap(),
    );
    let plain: Arc<keel_api::Pod> = Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "plain", "namespace": "default"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
            "status": {"podIP": "10.244.1.8", "phase": "Running"}
        }))
        .unwrap(),
    );
    let mut view = View {
        synced: true,
        ..Default::default()
    };
    let mut keys = BTreeSet::new();
    apply(
        &mut view.pods,
        Update::Replace(vec![web.clone(), plain]),
        &mut keys,
    );
    // A full pass finds it.
    r.sync(&view, &BTreeSet::new(), true).unwrap().unwrap();
    let backends = |m: &FakeMaps| m.resolve(vip("10.0.0.1").0, 80u16.to_be(), 6);
    let b = backends(r.maps()).expect("node IP:80 is a frontend");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].addr.to_ne_bytes(), [10, 244, 1, 7]);
    assert_eq!(b[0].port, 8080u16.to_be());
    assert_eq!(
        r.observed().frontends.len(),
        1,
        "the plain pod claims nothing"
    );
    {
        let shared = r.shared();
        let s = shared.read().unwrap();
        assert_eq!(s.services.values().next().unwrap(), "default/web hostPort");
    }
    // Deleted: its key (as the view's subscription names it) removes it.
    let mut keys = BTreeSet::new();
    apply(
        &mut view.pods,
        Update::Delete("default/web".into()),
        &mut keys,
    );
    let keys: BTreeSet<String> = keys.iter().map(|k| model::host_port_key(k)).collect();
    let rep = r.sync(&view, &keys, false).unwrap().unwrap();
    assert_eq!(rep.deleted, 1);
    assert_eq!(backends(r.maps()), None);
}

#[test]
fn nodeports_follow_the_addresses_they_answer_on() {
    let mut r = Reconciler::new(FakeMaps::default(), node()).unwrap();
    let mut feed = Feed::default();
    let web: Arc<Service> = Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
                     "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}
        }))
        .unwrap(),
    );
    let ep = endpoints("web", &["10.244.2.5"]);
    let np = |ip: &str| {
        let a: std::net::Ipv4Addr = ip.parse().unwrap();
        (u32::from_ne_bytes(a.octets()), 30080u16.to_be(), 6)
    };
    sync(&mut r, feed.step(&[web], &[ep], true)).unwrap();
    assert!(
        r.maps()
            .resolve(np("10.0.0.1").0, np("10.0.0.1").1, 6)
            .is_some()
    );
    assert!(
        r.maps()
            .resolve(np("10.0.0.9").0, np("10.0.0.9").1, 6)
            .is_none()
    );
    // A second address on the uplink: the next sync answers there too,
    // whatever keys it was handed.
    *r.node_port_ips().write().unwrap() =
        vec!["10.0.0.1".parse().unwrap(), "10.0.0.9".parse().unwrap()];
    let rep = r
        .sync(&feed.view.clone(), &BTreeSet::new(), false)
        .unwrap()
        .unwrap();
    assert!(rep.full);
    assert!(
        r.maps()
            .resolve(np("10.0.0.9").0, np("10.0.0.9").1, 6)
            .is_some()
    );
    // Gone again: so is its frontend.
    *r.node_port_ips().write().unwrap() = vec!["10.0.0.1".parse().unwrap()];
    r.sync(&feed.view.clone(), &BTreeSet::new(), false).unwrap();
    assert!(
        r.maps()
            .resolve(np("10.0.0.9").0, np("10.0.0.9").1, 6)
            .is_none()
    );
    assert!(
        r.maps()
            .resolve(np("10.0.0.1").0, np("10.0.0.1").1, 6)
            .is_some()
    );
}
