//! The pure parts of the etcd store: key layout, which writes take the
//! allocation guard, and folding watched events into a state.

use keel_api::{Node, Pod};

use super::*;

fn pod(name: &str, rv: u64) -> Obj {
    let p: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "resourceVersion": rv.to_string()},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    Obj::Pod(Arc::new(p))
}

fn node(name: &str) -> Node {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap()
}

#[test]
fn keys_follow_the_registry_layout() {
    let mut cfg = EtcdConfig::new(vec!["http://127.0.0.1:2379".into()]);
    assert_eq!(
        cfg.object_key(&pod("a", 1)),
        "/keel/registry/pods/default/a"
    );
    assert_eq!(
        cfg.object_key(&Obj::Node(Arc::new(node("n1")))),
        "/keel/registry/nodes/n1"
    );
    cfg.prefix = "/other".into();
    assert_eq!(cfg.alloc_key(), "/other/alloc");
}

#[test]
fn only_spec_writes_of_allocating_kinds_take_the_allocation_guard() {
    let p: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}})).unwrap();
    assert!(may_allocate(&WriteOp::Create(node("n").into())));
    assert!(may_allocate(&WriteOp::Update {
        obj: node("n").into(),
        status: false
    }));
    assert!(!may_allocate(&WriteOp::Update {
        obj: node("n").into(),
        status: true
    }));
    assert!(!may_allocate(&WriteOp::Create(p.into())));
    assert!(!may_allocate(&WriteOp::Delete {
        kind: Kind::Node,
        namespace: String::new(),
        name: "n".into(),
        precondition: Default::default(),
    }));
}

#[test]
fn folding_applies_only_newer_events_and_advances_the_revision() {
    let mut state = State {
        revision: 5,
        ..State::default()
    };
    state.put(pod("a", 3));
    let events = vec![
        // Already in the state (read by the list at 5): skipped.
        Arc::new(Event::new(4, EventType::Deleted, pod("a", 4))),
        Arc::new(Event::new(7, EventType::Added, pod("b", 7))),
        Arc::new(Event::new(9, EventType::Deleted, pod("a", 9))),
    ];
    fold(&mut state, &events, 12);
    assert_eq!(state.revision, 12);
    assert!(state.get(Kind::Pod, "default/a").is_none());
    assert_eq!(
        state.get(Kind::Pod, "default/b").unwrap().meta().revision(),
        7
    );
    // A progress notification older than the state changes nothing.
    fold(&mut state, &[], 10);
    assert_eq!(state.revision, 12);
}
