use super::*;

fn deployment(replicas: i64, image: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "d", "uid": "dep-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}
        }
    }))
    .unwrap()
}

fn owned(d: &Deployment, n: usize, ready: bool) -> Vec<Arc<Pod>> {
    (0..n)
        .map(|i| {
            let mut p = new_pod(d, &template_hash(d));
            p.metadata.name = format!("web-{i}");
            p.metadata.uid = format!("p{i}-{}", template_hash(d));
            p.spec.node_name = "n1".into();
            p.set_condition("Ready", if ready { "True" } else { "False" }, "", "");
            Arc::new(p)
        })
        .collect()
}

fn count(actions: &[Action]) -> (usize, usize) {
    let c = actions
        .iter()
        .filter(|a| matches!(a, Action::Create(_)))
        .count();
    (c, actions.len() - c)
}

#[test]
fn creates_missing_and_deletes_extra() {
    let d = deployment(3, "v1");
    let (a, st) = plan(&d, &[]);
    assert_eq!(count(&a), (3, 0));
    assert_eq!(st.unavailable_replicas, 3);
    let Action::Create(p) = &a[0] else { panic!() };
    assert_eq!(p.metadata.owner_references[0].uid, "dep-uid");
    assert!(p.metadata.generate_name.starts_with("web-"));
    assert_eq!(p.metadata.labels[TEMPLATE_HASH_LABEL], template_hash(&d));
    let (a, st) = plan(&d, &owned(&d, 5, true));
    assert_eq!(count(&a), (0, 2));
    assert_eq!(st.ready_replicas, 5);
    let (a, st) = plan(&d, &owned(&d, 3, true));
    assert!(a.is_empty());
    assert_eq!(
        (st.replicas, st.available_replicas, st.unavailable_replicas),
        (3, 3, 0)
    );
}

#[test]
fn finished_pods_are_replaced() {
    let d = deployment(2, "v1");
    let mut pods = owned(&d, 2, true);
    let mut dead = (*pods[0]).clone();
    dead.status.phase = Some(keel_api::pod::PodPhase::Failed);
    pods[0] = Arc::new(dead);
    assert_eq!(count(&plan(&d, &pods).0), (1, 1));
}

#[test]
fn rolling_update_respects_surge_and_availability() {
    let old_d = deployment(4, "v1");
    let d = deployment(4, "v2");
    let old = owned(&old_d, 4, true);
    // maxSurge 1, maxUnavailable 1 (25% of 4): one new pod, one old pod goes.
    let (a, st) = plan(&d, &old);
    assert_eq!(count(&a), (1, 1));
    assert_eq!(st.updated_replicas, 0);
    // New pods ready: old pods may go while 3 stay available.
    let mut pods = owned(&d, 4, true);
    pods.extend(old.iter().take(1).cloned());
    let (a, _) = plan(&d, &pods);
    assert_eq!(count(&a), (0, 1));
    // New pods not ready yet: keep old ones beyond the unavailability budget.
    let mut pods = owned(&d, 2, false);
    pods.extend(old.iter().take(3).cloned());
    let (a, _) = plan(&d, &pods);
    assert_eq!(
        count(&a).1,
        0,
        "no ready old pod may go while new ones are not ready and 3 is the minimum"
    );
}

#[test]
fn recreate_deletes_old_before_creating_new() {
    let old_d = deployment(2, "v1");
    let mut d = deployment(2, "v2");
    d.spec.strategy = Some(keel_api::deployment::DeploymentStrategy {
        type_: "Recreate".into(),
        rolling_update: None,
    });
    let (a, _) = plan(&d, &owned(&old_d, 2, true));
    assert_eq!(count(&a), (0, 2));
    let (a, _) = plan(&d, &[]);
    assert_eq!(count(&a), (2, 0));
}

#[test]
fn template_hash_is_stable_and_template_sensitive() {
    assert_eq!(
        template_hash(&deployment(1, "v1")),
        template_hash(&deployment(3, "v1"))
    );
    assert_ne!(
        template_hash(&deployment(1, "v1")),
        template_hash(&deployment(1, "v2"))
    );
    assert_eq!(template_hash(&deployment(1, "v1")).len(), 10);
}

#[test]
fn pods_carry_the_templates_kept_kubernetes_fields_and_a_change_of_them_is_a_rollout() {
    let with = |tolerations: serde_json::Value| -> Deployment {
        let mut v = serde_json::to_value(deployment(1, "v1")).unwrap();
        v["spec"]["template"]["spec"]["tolerations"] = tolerations;
        v["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] =
            "/dev/termination-log".into();
        serde_json::from_value(v).unwrap()
    };
    let d = with(serde_json::json!([{"operator": "Exists"}]));
    let (a, _) = plan(&d, &[]);
    let Action::Create(p) = &a[0] else { panic!() };
    let pod = serde_json::to_value(p).unwrap();
    assert_eq!(
        pod["spec"]["tolerations"],
        serde_json::json!([{"operator": "Exists"}])
    );
    assert_eq!(
        pod["spec"]["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    // As Kubernetes' pod-template-hash: the whole template counts.
    let other = with(serde_json::json!([{"operator": "Exists", "effect": "NoSchedule"}]));
    assert_ne!(template_hash(&d), template_hash(&other));
    assert_ne!(template_hash(&d), template_hash(&deployment(1, "v1")));
    let (a, _) = plan(&other, &owned(&d, 1, true));
    assert_eq!(count(&a), (1, 0), "a new pod of the new template first");
}

fn progressing(st: &keel_api::deployment::DeploymentStatus) -> (&str, &str) {
    let c = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .expect("a Progressing condition");
    (c.status.as_str(), c.reason.as_str())
}

#[test]
fn a_paused_deployment_does_not_roll_but_still_scales_and_replaces() {
    let old_d = deployment(3, "v1");
    let mut d = deployment(3, "v2");
    d.spec.paused = true;
    let old = owned(&old_d, 3, true);

    // A new template while paused: nothing rolls.
    let (a, st) = plan(&d, &old);
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(progressing(&st), ("Unknown", "DeploymentPaused"));
    assert_eq!(st.updated_replicas, 0);

    // A lost pod is replaced from its own (old) template group.
    let (a, _) = plan(&d, &old[..2]);
    assert_eq!(count(&a), (1, 0));
    let Action::Create(p) = &a[0] else { panic!() };
    assert_eq!(
        p.metadata.labels[TEMPLATE_HASH_LABEL],
        template_hash(&old_d)
    );
    assert_eq!(p.spec.containers[0].image, "v1");
    assert!(p.spec.node_name.is_empty(), "the copy is not yet scheduled");
    assert_eq!(p.metadata.owner_references[0].uid, "dep-uid");

    // Scaling while paused: up from the group, down old first.
    let mut up = d.clone();
    up.spec.replicas = Some(5);
    assert_eq!(count(&plan(&up, &old).0), (2, 0));
    let mut mixed = old.clone();
    mixed.extend(owned(&d, 1, true));
    let mut down = d.clone();
    down.spec.replicas = Some(2);
    let (a, _) = plan(&down, &mixed);
    assert_eq!(count(&a), (0, 2));
    assert!(a.iter().all(|x| matches!(x, Action::Delete(p)
        if p.metadata.labels[TEMPLATE_HASH_LABEL] == template_hash(&old_d))));
    // Mid-rollout, the current template's group gets the new pods.
    let (a, _) = plan(&up, &mixed);
    assert_eq!(count(&a), (1, 0));
    let Action::Create(p) = &a[0] else { panic!() };
    assert_eq!(p.spec.containers[0].image, "v2");

    // Created paused: no pods at all, as Kubernetes makes no ReplicaSet.
    assert!(plan(&d, &[]).0.is_empty());

    // Resumed: the rollout starts, and the condition says so once.
    let mut resumed = d.clone();
    resumed.spec.paused = false;
    resumed.status = st.clone();
    let (a, st) = plan(&resumed, &old);
    assert_eq!(count(&a), (1, 0), "maxSurge 1 of 3");
    assert_eq!(progressing(&st), ("Unknown", "DeploymentResumed"));
    resumed.status = st;
    let (_, st) = plan(&resumed, &old);
    assert_eq!(progressing(&st), ("True", "ReplicaSetUpdated"));
}

#[test]
fn revision_history_limit_is_validated() {
    use keel_api::Resource;
    let mut d = deployment(1, "v1");
    d.spec.revision_history_limit = Some(-1);
    let errs = d.validate();
    assert!(
        errs.iter().any(|e| e.field == "spec.revisionHistoryLimit"),
        "{errs:?}"
    );
}

#[test]
fn deleted_pods_waiting_for_finalizers_count_for_nothing_and_a_deleted_deployment_only_reports() {
    let d = deployment(2, "v1");
    let mut pods = owned(&d, 2, true);
    let mut held = (*pods[0]).clone();
    held.metadata.deletion_timestamp = Some(keel_api::Time::now());
    held.metadata.finalizers = vec!["example.com/hold".into()];
    pods[0] = Arc::new(held);
    let (a, st) = plan(&d, &pods);
    assert_eq!(count(&a), (1, 0), "replaced, and not deleted again");
    assert_eq!(st.replicas, 1);

    let mut gone = deployment(2, "v1");
    gone.metadata.deletion_timestamp = Some(keel_api::Time::now());
    let (a, st) = plan(&gone, &[]);
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(st.unavailable_replicas, 2);
}

#[test]
fn one_pass_creates_at_most_a_burst_however_many_replicas() {
    let d = deployment(10_000_000, "v1");
    let (a, _) = plan(&d, &[]);
    assert_eq!(count(&a), (BURST, 0));
}

#[tokio::test]
async fn a_namespace_quota_stops_the_controller_which_reports_it() {
    use std::time::Duration;

    use crate::store::{Limits, MemoryBackend, StoreConfig};
    let store = Store::open(
        Box::new(MemoryBackend::new()),
        StoreConfig {
            limits: Limits {
                max_objects_per_namespace: 10,
                ..Limits::default()
            },
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let config = ControllerConfig {
        resync: Duration::from_millis(200),
        ..ControllerConfig::default()
    };
    let task = tokio::spawn(run(
        store.clone(),
        config,
        crate::controllers::events::recorder(
            &store,
            crate::controllers::events::DEPLOYMENT_CONTROLLER,
        ),
    ));
    let mut d = deployment(50, "v1");
    d.metadata.uid = String::new();
    d.metadata.generation = 0;
    store.create(d).await.unwrap();
    let mut seen = None;
    for _ in 0..300 {
        let s = store.snapshot();
        let dep = s.deployments.get("d/web").cloned().unwrap();
        let failure = dep
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == REPLICA_FAILURE)
            .cloned();
        let warned = s.events.values().any(|e| e.reason == "FailedCreate");
        if let Some(c) = failure
            && warned
        {
            seen = Some((c, s.pods.len()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (c, pods) = seen.expect("a ReplicaFailure condition and a FailedCreate event");
    assert_eq!(c.status, "True");
    assert_eq!(c.reason, "FailedCreate");
    assert!(c.message.contains("exceeded quota"), "{}", c.message);
    // The Deployment and nine pods fill the namespace; nothing more.
    assert_eq!(pods, 9);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.snapshot().pods.len(), 9);
    assert!(!task.is_finished(), "the controller keeps running");
    task.abort();
}
