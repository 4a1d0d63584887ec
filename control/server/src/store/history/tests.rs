use std::sync::Arc;

use keel_api::Node;

use super::*;

fn ev(rev: u64) -> Arc<Event> {
    Arc::new(Event::new(
        rev,
        EventType::Added,
        Obj::Node(Arc::new(Node::default())),
    ))
}

#[test]
fn keeps_capacity_and_reports_expiry() {
    let mut h = History::new(3, 0);
    h.push((1..=5).map(ev));
    assert_eq!(h.compacted(), 2);
    assert_eq!(
        h.after(2)
            .unwrap()
            .iter()
            .map(|e| e.revision)
            .collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert_eq!(h.after(4).unwrap().len(), 1);
    assert_eq!(h.after(5).unwrap().len(), 0);
    assert_eq!(
        h.after(1).unwrap_err(),
        Expired {
            requested: 1,
            oldest: 3
        }
    );
}

#[test]
fn line_is_a_watch_event() {
    let e = ev(7);
    let v: serde_json::Value = serde_json::from_slice(e.line()).unwrap();
    assert_eq!(v["type"], "ADDED");
    assert!(e.line().ends_with(b"\n"));
    assert!(!e.record().ends_with(b"\n"));
}

#[test]
fn the_largest_revision_wraps_to_nothing() {
    let mut h = History::new(3, 0);
    h.push((1..=3).map(ev));
    // `after + 1` would wrap to 0 and replay everything.
    assert!(h.after(u64::MAX).unwrap().is_empty());
}
