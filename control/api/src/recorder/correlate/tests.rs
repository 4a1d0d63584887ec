//! Aggregation and the spam filter, as client-go's correlator behaves.

use std::time::{Duration, SystemTime};

use super::*;
use crate::Pod;

fn pod(name: &str) -> ObjectReference {
    let mut p = Pod::default();
    p.metadata.name = name.into();
    p.metadata.namespace = "default".into();
    p.metadata.uid = format!("uid-{name}");
    reference(&p)
}

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
}

fn ev(obj: &str, reason: &str, message: &str, at: SystemTime) -> Event {
    new_event(pod(obj), "Warning", reason, message, "kubelet", "n1", at)
}

#[test]
fn repeats_update_one_event_and_differences_make_new_ones() {
    let mut c = Correlator::new();
    let first = ev("web", "Unhealthy", "probe failed", t(0));
    let Decision::Create(stored) = c.observe(first, t(0)) else {
        panic!("first is a create")
    };
    assert_eq!(stored.count, 1);
    assert_eq!(stored.metadata.namespace, "default");
    assert!(stored.metadata.name.starts_with("web."));
    c.written(&stored);
    for n in 2..=4 {
        let Decision::Update(u) = c.observe(ev("web", "Unhealthy", "probe failed", t(n)), t(n))
        else {
            panic!("repeat {n} is an update")
        };
        assert_eq!(u.metadata.name, stored.metadata.name);
        assert_eq!(u.count, n as i32);
        assert_eq!(u.first_timestamp, stored.first_timestamp);
        assert_eq!(u.last_timestamp, Some(Time(t(n))));
        c.written(&u);
    }
    // Another message, reason or object is another event.
    for other in [
        ev("web", "Unhealthy", "probe failed again", t(9)),
        ev("web", "BackOff", "probe failed", t(9)),
        ev("db", "Unhealthy", "probe failed", t(9)),
    ] {
        assert!(matches!(c.observe(other, t(9)), Decision::Create(_)));
    }
    // Forgotten (deleted by the TTL): the next repeat is a create.
    c.forget(&stored);
    assert!(matches!(
        c.observe(ev("web", "Unhealthy", "probe failed", t(10)), t(10)),
        Decision::Create(_)
    ));
}

#[test]
fn a_flood_is_throttled_after_the_burst_and_refills() {
    let mut c = Correlator::new();
    let mut allowed = 0;
    for i in 0..40 {
        let e = ev("web", "Unhealthy", &format!("m{i}"), t(0));
        if !matches!(c.observe(e, t(0)), Decision::Throttled) {
            allowed += 1;
        }
    }
    assert_eq!(allowed, BURST as usize);
    // Another object has its own bucket.
    assert!(!matches!(
        c.observe(ev("db", "X", "m", t(0)), t(0)),
        Decision::Throttled
    ));
    // One token back after REFILL.
    let later = t(REFILL.as_secs());
    assert!(!matches!(
        c.observe(ev("web", "Unhealthy", "late", later), later),
        Decision::Throttled
    ));
    assert!(matches!(
        c.observe(ev("web", "Unhealthy", "later", later), later),
        Decision::Throttled
    ));
}

#[test]
fn the_memory_is_bounded() {
    let mut c = Correlator::new();
    for i in 0..(MAX_KEYS + 10) {
        let mut e = ev(&format!("p{i}"), "R", "m", t(0));
        e.count = 1;
        c.written(&e);
        let _ = c.observe(e, t(0));
    }
    assert!(c.written.len() <= MAX_KEYS);
    assert!(c.buckets.len() <= MAX_KEYS);
}

#[test]
fn a_cluster_scoped_objects_events_go_to_default() {
    let mut n = crate::Node::default();
    n.metadata.name = "n1".into();
    let e = new_event(
        reference(&n),
        "Normal",
        "NodeReady",
        "m",
        "kubelet",
        "n1",
        t(0),
    );
    assert_eq!(e.metadata.namespace, "default");
    assert_eq!(e.involved_object.namespace, "");
    assert_eq!(e.involved_object.kind, "Node");
    assert!(e.validate().is_empty(), "{:?}", e.validate());
}
