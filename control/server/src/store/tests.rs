//! The store against the in-memory backend: CRUD semantics, conflicts,
//! status subresource, history, group commit, allocation under concurrency
//! and across restarts, and refusal when the disk fails.

use std::collections::BTreeSet;

use keel_api::{Kind, Node, Pod, Service};

use super::*;

fn open(backend: &MemoryBackend) -> Store {
    Store::open(
        Box::new(backend.clone()),
        StoreConfig {
            history: 100,
            ..StoreConfig::default()
        },
    )
    .unwrap()
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap()
}

fn service(name: &str) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}
    }))
    .unwrap()
}

fn node(name: &str) -> Node {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap()
}

#[tokio::test]
async fn create_fills_server_fields_and_rejects_duplicates() {
    let store = open(&MemoryBackend::new());
    let Obj::Pod(p) = store.create(pod("a")).await.unwrap() else {
        panic!()
    };
    assert_eq!(p.metadata.resource_version, "1");
    assert!(!p.metadata.uid.is_empty());
    assert_eq!(p.kind, "Pod");
    assert_eq!(p.status.phase, Some(keel_api::pod::PodPhase::Pending));
    let err = store.create(pod("a")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    assert_eq!(store.revision(), 1, "a refused write makes no revision");
}

#[tokio::test]
async fn invalid_objects_change_nothing() {
    let store = open(&MemoryBackend::new());
    let mut bad = pod("b");
    bad.spec.containers.clear();
    let err = store.create(bad).await.unwrap_err();
    let StoreError::Invalid { causes, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(causes[0].field, "spec.containers");
    assert_eq!(store.revision(), 0);
    assert_eq!(store.snapshot().pods.len(), 0);
}

#[tokio::test]
async fn update_is_optimistic_and_keeps_status() {
    let store = open(&MemoryBackend::new());
    let Obj::Pod(p) = store.create(pod("a")).await.unwrap() else {
        panic!()
    };
    // A status write by the agent.
    let mut st = (*p).clone();
    st.status.pod_ip = "10.244.0.5".into();
    st.spec.node_name = "sneaky".into();
    let Obj::Pod(p2) = store.update_status(st).await.unwrap() else {
        panic!()
    };
    assert_eq!(p2.status.pod_ip, "10.244.0.5");
    assert_eq!(
        p2.spec.node_name, "",
        "the status subresource does not change spec"
    );
    // A stale spec update conflicts.
    let mut stale = (*p).clone();
    stale.metadata.labels.insert("v".into(), "2".into());
    assert!(matches!(
        store.update(stale.clone()).await.unwrap_err(),
        StoreError::Conflict { .. }
    ));
    // A current one succeeds and keeps the status.
    stale.metadata.resource_version = p2.metadata.resource_version.clone();
    stale.status = Default::default();
    let Obj::Pod(p3) = store.update(stale).await.unwrap() else {
        panic!()
    };
    assert_eq!(p3.status.pod_ip, "10.244.0.5");
    assert_eq!(p3.metadata.labels["v"], "2");
    // An unchanged write makes no revision.
    let rev = store.revision();
    store.update((*p3).clone()).await.unwrap();
    assert_eq!(store.revision(), rev);
}

#[tokio::test]
async fn delete_records_an_event_and_frees_allocations() {
    let store = open(&MemoryBackend::new());
    let Obj::Service(s) = store.create(service("web")).await.unwrap() else {
        panic!()
    };
    let ip = s.spec.cluster_ip.clone();
    assert!(
        store
            .snapshot()
            .cluster_ips
            .contains_key(&ip.parse::<std::net::Ipv4Addr>().unwrap())
    );
    let pre = Precondition {
        uid: Some("wrong".into()),
        resource_version: None,
    };
    assert!(matches!(
        store.delete(Kind::Service, "default", "web", pre).await,
        Err(StoreError::Conflict { .. })
    ));
    store
        .delete(Kind::Service, "default", "web", Precondition::default())
        .await
        .unwrap();
    let snap = store.snapshot();
    assert!(snap.cluster_ips.is_empty() && snap.node_ports.is_empty());
    let events = store.events_after(0).unwrap();
    let types: Vec<_> = events.iter().map(|e| e.type_).collect();
    assert_eq!(types, vec![EventType::Added, EventType::Deleted]);
    assert_eq!(events[1].obj.meta().resource_version, "2");
    assert!(matches!(
        store
            .delete(Kind::Service, "default", "web", Precondition::default())
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn history_is_compacted_and_reports_expiry() {
    let store = open(&MemoryBackend::new());
    for i in 0..150 {
        store.create(pod(&format!("p{i}"))).await.unwrap();
    }
    assert_eq!(store.compacted(), 50);
    assert!(store.events_after(49).is_err());
    assert_eq!(store.events_after(50).unwrap().len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_allocations_are_distinct_and_survive_restart() {
    let backend = MemoryBackend::new();
    let store = open(&backend);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.create(service(&format!("s{i}"))).await
        }));
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.create(node(&format!("n{i}"))).await
        }));
    }
    let (mut ips, mut ports, mut cidrs) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Obj::Service(s) => {
                assert!(
                    ips.insert(s.spec.cluster_ip.clone()),
                    "cluster IP handed out twice"
                );
                assert!(
                    ports.insert(s.spec.ports[0].node_port.unwrap()),
                    "node port handed out twice"
                );
            }
            Obj::Node(n) => assert!(
                cidrs.insert(n.spec.pod_cidr.clone()),
                "pod CIDR handed out twice"
            ),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((ips.len(), ports.len(), cidrs.len()), (200, 200, 200));
    assert!(store.revision() == 400);

    // Restart on the same data: allocations are rebuilt, nothing is reused.
    drop(store);
    let store = open(&backend);
    assert_eq!(store.snapshot().services.len(), 200);
    let Obj::Service(s) = store.create(service("after")).await.unwrap() else {
        panic!()
    };
    assert!(!ips.contains(&s.spec.cluster_ip));
    assert!(!ports.contains(&s.spec.ports[0].node_port.unwrap()));
    let Obj::Node(n) = store.create(node("after")).await.unwrap() else {
        panic!()
    };
    assert!(!cidrs.contains(&n.spec.pod_cidr));
    // Requesting a taken value is refused, naming the field and the owner.
    let mut dup = service("dup");
    dup.spec.cluster_ip = s.spec.cluster_ip.clone();
    let StoreError::Invalid { causes, .. } = store.create(dup).await.unwrap_err() else {
        panic!()
    };
    assert_eq!(causes[0].field, "spec.clusterIP");
    assert!(
        causes[0].message.contains("default/after"),
        "{}",
        causes[0].message
    );
}

#[tokio::test]
async fn failed_commits_publish_nothing() {
    let backend = MemoryBackend::new();
    let store = open(&backend);
    store.create(pod("a")).await.unwrap();
    backend.fail_commits(true);
    assert!(matches!(
        store.create(pod("b")).await,
        Err(StoreError::Backend(_))
    ));
    assert_eq!(store.snapshot().pods.len(), 1);
    assert_eq!(store.revision(), 1);
    backend.fail_commits(false);
    store.create(pod("b")).await.unwrap();
    assert_eq!(backend.object_count(), 2);
}

#[tokio::test]
async fn updates_keep_allocations_and_watch_history_survives_restart() {
    let backend = MemoryBackend::new();
    let store = open(&backend);
    let Obj::Service(s) = store.create(service("web")).await.unwrap() else {
        panic!()
    };
    let mut changed = service("web");
    changed.spec.selector.insert("tier".into(), "front".into());
    let Obj::Service(s2) = store.update(changed).await.unwrap() else {
        panic!()
    };
    assert_eq!(s2.spec.cluster_ip, s.spec.cluster_ip);
    assert_eq!(s2.spec.ports[0].node_port, s.spec.ports[0].node_port);
    assert_eq!(s2.metadata.generation, 2);
    drop(store);
    let store = open(&backend);
    let events = store.events_after(1).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].type_, EventType::Modified);
}

#[tokio::test]
async fn bind_sets_node_and_condition_once() {
    let store = open(&MemoryBackend::new());
    let Obj::Pod(p) = store.create(pod("a")).await.unwrap() else {
        panic!()
    };
    let bind = |node: &str, uid: &str| WriteOp::Bind {
        namespace: "default".into(),
        name: "a".into(),
        uid: uid.into(),
        node: node.into(),
    };
    assert!(matches!(
        store.write(bind("n1", "other-uid")).await,
        Err(StoreError::Conflict { .. })
    ));
    let Obj::Pod(b) = store.write(bind("n1", &p.metadata.uid)).await.unwrap() else {
        panic!()
    };
    assert_eq!(b.spec.node_name, "n1");
    assert!(
        b.condition("PodScheduled")
            .is_some_and(|c| c.status == "True")
    );
    assert_eq!(store.snapshot().pods_on("n1").len(), 1);
    assert!(matches!(
        store.write(bind("n2", &p.metadata.uid)).await,
        Err(StoreError::Conflict { .. })
    ));
}

#[tokio::test]
async fn an_agent_status_write_keeps_the_route_controllers_condition() {
    use crate::controllers::routes::CONDITION;
    let store = open(&MemoryBackend::new());
    let Obj::Node(n) = store.create(node("n1")).await.unwrap() else {
        panic!()
    };
    // The route controller's write (with a precondition, from its copy).
    let mut by_controller = (*n).clone();
    by_controller.set_condition(CONDITION, "True", "RouteLimitExceeded", "quota", None);
    store.update_status(by_controller).await.unwrap();
    // The agent posts its whole status, unconditionally, without it.
    let mut by_agent = (*n).clone();
    by_agent.metadata.resource_version.clear();
    by_agent.set_condition("Ready", "True", "KeelAgentReady", "posting", None);
    let Obj::Node(after) = store.update_status(by_agent).await.unwrap() else {
        panic!()
    };
    assert!(after.is_ready());
    let c = after.condition(CONDITION).expect("carried");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", "RouteLimitExceeded")
    );
    // The controller's own next write changes it.
    let mut fixed = (*after).clone();
    fixed.set_condition(CONDITION, "False", "RouteCreated", "in place", None);
    let Obj::Node(fixed) = store.update_status(fixed).await.unwrap() else {
        panic!()
    };
    assert_eq!(fixed.condition(CONDITION).unwrap().status, "False");
    // Conditions nobody in keel-control owns are the writer's to drop.
    let mut agent_again = (*fixed).clone();
    agent_again.metadata.resource_version.clear();
    agent_again
        .status
        .conditions
        .retain(|c| c.type_ == CONDITION);
    let Obj::Node(dropped) = store.update_status(agent_again).await.unwrap() else {
        panic!()
    };
    assert!(dropped.condition("Ready").is_none());
}

#[tokio::test]
async fn headless_and_external_name_services_get_no_cluster_ip() {
    let store = open(&MemoryBackend::new());
    let headless: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}}
    }))
    .unwrap();
    let Obj::Service(h) = store.create(headless).await.unwrap() else {
        panic!()
    };
    assert_eq!(h.spec.cluster_ip, "None");
    let ext: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "ext", "namespace": "default"},
        "spec": {"type": "ExternalName", "externalName": "example.com"}
    }))
    .unwrap();
    let Obj::Service(e) = store.create(ext).await.unwrap() else {
        panic!()
    };
    assert_eq!(e.spec.cluster_ip, "");
    assert!(store.snapshot().cluster_ips.is_empty(), "nothing allocated");
    // clusterIP stays immutable: a headless Service cannot take an address.
    let mut h2 = (*h).clone();
    h2.spec.cluster_ip = "10.96.0.50".into();
    h2.spec.ports = vec![serde_json::from_value(serde_json::json!({"port": 80})).unwrap()];
    assert!(store.update(h2).await.is_err());
}

#[tokio::test]
async fn kept_kubernetes_fields_survive_a_restart_on_redb() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keel.redb");
    // The committer of a dropped store lets the file go soon after: the
    // reopen waits for it, boundedly.
    let open_redb = async || {
        for _ in 0..100 {
            if let Ok(b) = redb::RedbBackend::open(&db) {
                return Store::open(Box::new(b), StoreConfig::default()).unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{} stayed locked for 5 s", db.display());
    };
    let mut p = pod("web");
    let mut v = serde_json::to_value(&p).unwrap();
    v["spec"]["tolerations"] = serde_json::json!([{"operator": "Exists"}]);
    v["spec"]["containers"][0]["terminationMessagePolicy"] = "File".into();
    p = serde_json::from_value(v).unwrap();
    let store = open_redb().await;
    store.create(p).await.unwrap();
    drop(store);
    let store = open_redb().await;
    let stored = store
        .snapshot()
        .get(Kind::Pod, "default/web")
        .unwrap()
        .to_value();
    assert_eq!(
        stored["spec"]["tolerations"],
        serde_json::json!([{"operator": "Exists"}])
    );
    assert_eq!(
        stored["spec"]["containers"][0]["terminationMessagePolicy"],
        "File"
    );
    // The watch history read back from the file has them too.
    let events = store.events_after(0).unwrap();
    assert_eq!(
        events[0].obj.to_value()["spec"]["tolerations"][0]["operator"],
        "Exists"
    );
}

fn sealed_config(dir: &std::path::Path) -> StoreConfig {
    StoreConfig {
        history: 100,
        encryption: Some(Arc::new(
            envelope::KeyRing::load_or_create(&dir.join("encryption.key"), true).unwrap(),
        )),
        ..StoreConfig::default()
    }
}

fn secret(name: &str, value: &str) -> keel_api::Secret {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "stringData": {"password": value}
    }))
    .unwrap()
}

/// Every byte the backend holds (objects and events).
fn persisted(backend: &MemoryBackend) -> Vec<u8> {
    let snap = backend.clone().load().unwrap();
    let mut all = Vec::new();
    for (k, v) in &snap.objects {
        all.extend_from_slice(k.as_bytes());
        all.extend_from_slice(v);
    }
    for (_, v) in &snap.events {
        all.extend_from_slice(v);
    }
    all
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn secrets_are_sealed_in_the_backend_and_read_back_after_restart() {
    use base64::Engine;
    let t = tempfile::tempdir().unwrap();
    let backend = MemoryBackend::new();
    let store = Store::open(Box::new(backend.clone()), sealed_config(t.path())).unwrap();
    store
        .create(secret("db", "pl41ntext-hunter2"))
        .await
        .unwrap();
    store.create(node("n1")).await.unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode("pl41ntext-hunter2");
    let mut updated = secret("db", "second-v4lue");
    updated.metadata.resource_version = String::new();
    store.update(updated).await.unwrap();
    store
        .delete(Kind::Secret, "default", "db", Precondition::default())
        .await
        .unwrap();
    store.create(secret("kept", "th1rd-v4lue")).await.unwrap();
    let raw = persisted(&backend);
    for plain in [
        "pl41ntext-hunter2",
        &b64,
        "second-v4lue",
        "th1rd-v4lue",
        "password",
    ] {
        assert!(
            !contains(&raw, plain.as_bytes()),
            "{plain} is stored in the clear"
        );
    }
    // Other kinds stay readable as they are.
    assert!(contains(&raw, b"\"name\":\"n1\""));
    drop(store);
    let store = Store::open(Box::new(backend.clone()), sealed_config(t.path())).unwrap();
    let s = store.snapshot();
    let kept = s.get(Kind::Secret, "default/kept").unwrap().to_json();
    assert!(contains(
        &kept,
        base64::engine::general_purpose::STANDARD
            .encode("th1rd-v4lue")
            .as_bytes()
    ));
    // The history (every write above) also came back.
    assert_eq!(store.events_after(0).unwrap().len(), 5);
}

#[tokio::test]
async fn a_plaintext_secret_from_before_is_read_and_sealed_on_its_next_write() {
    let t = tempfile::tempdir().unwrap();
    let backend = MemoryBackend::new();
    // Written by a keel-control without encryption.
    let plain = Store::open(Box::new(backend.clone()), StoreConfig::default()).unwrap();
    plain.create(secret("old", "0ld-plaintext")).await.unwrap();
    drop(plain);
    assert!(contains(&persisted(&backend), b"\"name\":\"old\""));
    let store = Store::open(Box::new(backend.clone()), sealed_config(t.path())).unwrap();
    let old = store
        .snapshot()
        .get(Kind::Secret, "default/old")
        .unwrap()
        .clone();
    let mut s: keel_api::Secret = serde_json::from_slice(&old.to_json()).unwrap();
    s.metadata.labels.insert("rotated".into(), "yes".into());
    store.update(s).await.unwrap();
    let snap = backend.clone().load().unwrap();
    let (_, v) = snap
        .objects
        .iter()
        .find(|(k, _)| k == "Secret/default/old")
        .unwrap();
    assert!(envelope::is_sealed(v));
}

#[tokio::test]
async fn a_wrong_or_missing_key_refuses_to_start_naming_the_secret() {
    let t = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let backend = MemoryBackend::new();
    let store = Store::open(Box::new(backend.clone()), sealed_config(t.path())).unwrap();
    store.create(secret("db", "v")).await.unwrap();
    drop(store);
    let before = persisted(&backend);
    let Err(e) = Store::open(Box::new(backend.clone()), sealed_config(other.path())) else {
        panic!("opened with the wrong key");
    };
    assert!(e.to_string().contains("Secret default/db"), "{e}");
    let Err(e) = Store::open(Box::new(backend.clone()), StoreConfig::default()) else {
        panic!("opened without a key");
    };
    assert!(e.to_string().contains("Secret default/db"), "{e}");
    // Nothing was lost: the right key still reads it.
    assert_eq!(persisted(&backend), before);
    let store = Store::open(Box::new(backend.clone()), sealed_config(t.path())).unwrap();
    assert!(store.snapshot().get(Kind::Secret, "default/db").is_some());
}

#[tokio::test]
async fn finalizers_hold_a_deleted_object_until_the_last_is_removed() {
    let store = open(&MemoryBackend::new());
    let mut s = service("web");
    s.metadata.finalizers = vec!["example.com/cleanup".into(), "example.com/other".into()];
    let Obj::Service(created) = store.create(s).await.unwrap() else {
        panic!()
    };
    assert!(created.metadata.deletion_timestamp.is_none());

    // DELETE only marks it; its cluster IP stays allocated.
    let Obj::Service(marked) = store
        .delete(Kind::Service, "default", "web", Precondition::default())
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(0));
    let snap = store.snapshot();
    assert!(snap.services.contains_key("default/web"));
    assert_eq!(snap.cluster_ips.len(), 1);
    // A second DELETE changes nothing.
    let rev = store.revision();
    store
        .delete(Kind::Service, "default", "web", Precondition::default())
        .await
        .unwrap();
    assert_eq!(store.revision(), rev);

    // No new finalizer on an object being deleted, and the mark cannot be
    // cleared by an update.
    let mut add = (*marked).clone();
    add.metadata.finalizers.push("example.com/late".into());
    let err = store.update(add).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("no new finalizers can be added if the object is being deleted"),
        "{err}"
    );
    let mut one = (*marked).clone();
    one.metadata.finalizers.remove(0);
    one.metadata.deletion_timestamp = None;
    let Obj::Service(one) = store.update(one).await.unwrap() else {
        panic!()
    };
    assert!(
        one.metadata.deletion_timestamp.is_some(),
        "kept by the server"
    );
    assert_eq!(one.metadata.finalizers, ["example.com/other"]);

    // Removing the last one deletes it, and frees its allocations.
    let mut last = (*one).clone();
    last.metadata.finalizers.clear();
    store.update(last).await.unwrap();
    let snap = store.snapshot();
    assert!(!snap.services.contains_key("default/web"));
    assert!(snap.cluster_ips.is_empty());
    let types: Vec<_> = store
        .events_after(0)
        .unwrap()
        .iter()
        .map(|e| e.type_)
        .collect();
    assert_eq!(
        types,
        [
            EventType::Added,
            EventType::Modified,
            EventType::Modified,
            EventType::Deleted
        ]
    );

    // A create ignores a deletionTimestamp sent with it; a finalizer name
    // must be qualified, and the garbage collector's are refused.
    let mut p = pod("p");
    p.metadata.deletion_timestamp = Some(keel_api::Time::now());
    let Obj::Pod(p) = store.create(p).await.unwrap() else {
        panic!()
    };
    assert!(p.metadata.deletion_timestamp.is_none());
    for (name, why) in [
        ("cleanup", "neither a standard finalizer name"),
        ("orphan", "does not process this finalizer"),
        ("foregroundDeletion", "does not process this finalizer"),
    ] {
        let mut p = pod("q");
        p.metadata.finalizers = vec![name.into()];
        let err = store.create(p).await.unwrap_err();
        assert!(err.to_string().contains("metadata.finalizers[0]"), "{err}");
        assert!(err.to_string().contains(why), "{err}");
    }
}

fn deployment(name: &str, replicas: i64) -> keel_api::Deployment {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        }
    }))
    .unwrap()
}

fn causes(e: StoreError) -> Vec<String> {
    match e {
        StoreError::Invalid { causes, .. } => causes.iter().map(|c| c.to_string()).collect(),
        other => panic!("not Invalid: {other}"),
    }
}

#[tokio::test]
async fn replicas_service_ports_and_namespace_objects_are_bounded() {
    let store = Store::open(
        Box::new(MemoryBackend::new()),
        StoreConfig {
            limits: Limits {
                max_replicas: 100,
                max_service_ports: 4,
                max_objects_per_namespace: 5,
            },
            ..StoreConfig::default()
        },
    )
    .unwrap();
    // Replicas: on create and on update (how `kubectl scale` lands).
    let refused = store
        .create(deployment("big", 10_000_000))
        .await
        .unwrap_err();
    assert_eq!(
        causes(refused),
        [
            "spec.replicas: Invalid value: 10000000: must be no more than 100 (keel-control --max-replicas)"
        ]
    );
    store.create(deployment("web", 100)).await.unwrap();
    let refused = store.update(deployment("web", 101)).await.unwrap_err();
    assert!(causes(refused)[0].starts_with("spec.replicas: "));

    // Ports per Service.
    let mut many = service("many");
    many.spec.ports = (0..5)
        .map(|i| {
            serde_json::from_value(serde_json::json!({"name": format!("p{i}"), "port": 80 + i}))
                .unwrap()
        })
        .collect();
    let refused = store.create(many).await.unwrap_err();
    assert_eq!(
        causes(refused),
        ["spec.ports: Too many: 5: must have at most 4 (keel-control --max-service-ports)"]
    );

    // Objects per namespace: the Deployment and four pods fill it; Events
    // are not counted; a delete frees a place; another namespace is apart.
    for i in 0..4 {
        store.create(pod(&format!("p{i}"))).await.unwrap();
    }
    let refused = store.create(pod("p4")).await.unwrap_err();
    assert!(
        matches!(&refused, StoreError::Forbidden { message, .. } if message.contains("exceeded quota") && message.contains("--max-objects-per-namespace 5")),
        "{refused}"
    );
    let mut other = pod("p4");
    other.metadata.namespace = "other".into();
    store.create(other).await.unwrap();
    assert_eq!(store.snapshot().objects_in("default"), 5);
    store
        .delete(Kind::Pod, "default", "p0", Precondition::default())
        .await
        .unwrap();
    assert_eq!(store.snapshot().objects_in("default"), 4);
    store.create(pod("p4")).await.unwrap();
}

#[tokio::test]
async fn a_full_disk_takes_only_deletes_until_it_has_room() {
    let backend = MemoryBackend::new();
    let store = open(&backend);
    store.create(pod("a")).await.unwrap();
    store.create(pod("b")).await.unwrap();
    backend.set_disk_full(true);
    let refused = store.create(pod("c")).await.unwrap_err();
    assert!(matches!(refused, StoreError::NoSpace(_)), "{refused}");
    assert!(refused.to_string().contains("deletes are still taken"));
    assert!(matches!(store.health(), WriterHealth::DiskFull(_)));
    // Deletes (which free space) go through; updates do not.
    store
        .delete(Kind::Pod, "default", "a", Precondition::default())
        .await
        .unwrap();
    assert!(matches!(
        store.update(pod("b")).await,
        Err(StoreError::NoSpace(_))
    ));
    backend.set_disk_full(false);
    store.create(pod("c")).await.unwrap();
    assert_eq!(store.health(), WriterHealth::Ok);
    assert_eq!(backend.object_count(), 2);
}

#[tokio::test]
async fn the_history_is_bounded_in_bytes_in_memory_and_in_the_backend() {
    let backend = MemoryBackend::new();
    let store = Store::open(
        Box::new(backend.clone()),
        StoreConfig {
            history_bytes: 1 << 20,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let cm = |v: usize| -> keel_api::ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "big", "namespace": "default"},
            "data": {"blob": format!("{v}{}", "z".repeat(200 << 10))}
        }))
        .unwrap()
    };
    store.create(cm(0)).await.unwrap();
    for v in 1..=50 {
        store.update(cm(v)).await.unwrap();
    }
    // 51 events of ~200 KiB: ~10 MiB counted in events, ~5 kept.
    let kept = store.shared.history.read().unwrap().len();
    assert!((3..=5).contains(&kept), "{kept} events kept");
    assert!(store.shared.history.read().unwrap().bytes() <= 1 << 20);
    assert_eq!(backend.event_count(), kept);
    assert_eq!(store.compacted(), 51 - kept as u64);
}
