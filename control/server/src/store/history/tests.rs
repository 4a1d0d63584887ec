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

fn sized(rev: u64, bytes: usize) -> Arc<Event> {
    let mut n = Node::default();
    n.metadata.name = "x".repeat(bytes);
    Arc::new(Event::new(rev, EventType::Modified, Obj::Node(Arc::new(n))))
}

#[test]
fn the_byte_budget_drops_the_oldest_and_keeps_the_newest() {
    let mut h = History::with_budget(100, 3_500, 0);
    let first: Vec<_> = (1..=3).map(|r| sized(r, 1_000)).collect();
    assert_eq!(h.compaction_after(&first), 0);
    assert_eq!(h.push(first), 0);
    let next = vec![sized(4, 1_000)];
    // Four lines of ~1 KiB are over 3,500 bytes: the first goes.
    assert_eq!(h.compaction_after(&next), 1);
    assert_eq!(h.push(next), 1);
    assert_eq!(h.len(), 3);
    assert!(h.bytes() <= 3_500);
    // One event larger than the budget is kept alone.
    let huge = vec![sized(5, 10_000)];
    assert_eq!(h.compaction_after(&huge), 4);
    assert_eq!(h.push(huge), 4);
    assert_eq!(h.len(), 1);
    assert!(h.after(3).is_err());
}
