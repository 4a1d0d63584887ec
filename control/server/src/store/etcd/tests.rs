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

#[test]
fn failed_etcd_calls_are_told_apart_by_whether_they_may_have_committed() {
    let cases = [
        // Texts as etcd-client and tonic print them (from the lab's logs).
        (
            "grpc request error: code: 'The service is currently unavailable', message: \"tcp connect error\": transport error: tcp connect error: Connection refused (os error 111)",
            Failure::NeverSent,
        ),
        (
            "tcp connect error: 172.30.0.102:2379: Os { code: 111, kind: ConnectionRefused }",
            Failure::NeverSent,
        ),
        (
            "grpc request error: code: 'Unknown error', message: \"transport error\": hyper::Error(Io, Kind(ConnectionReset))",
            Failure::Unknown,
        ),
        (
            "grpc request error: code: 'The service is currently unavailable', message: \"etcdserver: request timed out\"",
            Failure::Unknown,
        ),
        (
            "grpc request error: code: 'The service is currently unavailable', message: \"etcdserver: leader changed\"",
            Failure::Unknown,
        ),
        (
            "grpc request error: code: 'Resource has been exhausted', message: \"etcdserver: mvcc: database space exceeded\"",
            Failure::NoSpace,
        ),
    ];
    for (text, want) in cases {
        assert_eq!(failure_of(text), want, "{text}");
    }
}

#[test]
fn writes_etcd_did_not_take_answer_503_or_504_naming_etcd() {
    let e = unavailable("tcp connect error");
    assert!(matches!(&e, StoreError::Unavailable(m) if m.contains("etcd is unreachable")));
    let e = timed_out("no answer within 5s");
    assert!(matches!(&e, StoreError::Timeout(m)
        if m.contains("etcd did not confirm") && m.contains("may or may not have been committed")));
}

#[test]
fn only_etcd_not_answering_is_worth_waiting_for_at_start() {
    assert!(EtcdError::Watch("closed".into()).is_transient());
    assert!(EtcdError::Call(etcd_client::Error::InvalidArgs("x".into())).is_transient());
    assert!(!EtcdError::NoEndpoints.is_transient());
    assert!(!EtcdError::HalfIdentity.is_transient());
    assert!(
        !EtcdError::Decode {
            key: "k".into(),
            message: "bad".into()
        }
        .is_transient()
    );
    let wrapped = anyhow::Error::new(EtcdError::Watch("closed".into())).context("sharing the CA");
    assert!(is_transient_any(&wrapped));
    assert!(!is_transient_any(&anyhow::anyhow!("a bad certificate")));
}

#[tokio::test]
async fn a_start_step_is_tried_again_while_etcd_does_not_answer_and_not_otherwise() {
    let mut calls = 0;
    let r = patiently("test", EtcdError::is_transient, || {
        calls += 1;
        let n = calls;
        async move {
            if n < 3 {
                Err(EtcdError::Watch("closed".into()))
            } else {
                Ok(n)
            }
        }
    })
    .await;
    assert_eq!(r.unwrap(), 3);
    let mut calls = 0;
    let r: Result<(), _> = patiently("test", EtcdError::is_transient, || {
        calls += 1;
        async { Err(EtcdError::HalfIdentity) }
    })
    .await;
    assert!(matches!(r, Err(EtcdError::HalfIdentity)));
    assert_eq!(calls, 1);
}

#[test]
fn a_member_is_dialled_at_the_host_and_port_its_endpoint_names() {
    assert_eq!(
        member_addr("https://10.0.0.1:2379").as_deref(),
        Some("10.0.0.1:2379")
    );
    assert_eq!(
        member_addr("http://etcd-0.example:12379/").as_deref(),
        Some("etcd-0.example:12379")
    );
    assert_eq!(member_addr("10.0.0.2").as_deref(), Some("10.0.0.2:2379"));
    assert_eq!(
        member_addr("https://[fd00::1]:2379").as_deref(),
        Some("[fd00::1]:2379")
    );
    assert_eq!(
        member_addr("https://[fd00::1]").as_deref(),
        Some("[fd00::1]:2379")
    );
    assert_eq!(member_addr("https://"), None);
    let mut cfg = EtcdConfig::new(vec![]);
    assert_eq!(with_scheme(&cfg, "10.0.0.1:2379"), "http://10.0.0.1:2379");
    cfg.tls = Some(EtcdTls {
        ca: "/ca.pem".into(),
        cert: None,
        key: None,
    });
    assert_eq!(with_scheme(&cfg, "10.0.0.1:2379"), "https://10.0.0.1:2379");
    assert_eq!(with_scheme(&cfg, "http://h:1"), "http://h:1");
}
