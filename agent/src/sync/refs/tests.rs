use serde_json::json;

use super::*;

#[test]
fn references_cover_env_env_from_volumes_and_pull_secrets() {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "imagePullSecrets": [{"name": "regcred"}],
            "initContainers": [{"name": "i", "image": "x",
                "envFrom": [{"secretRef": {"name": "s-from"}}]}],
            "containers": [{"name": "c", "image": "x",
                "envFrom": [{"configMapRef": {"name": "cm-from"}, "prefix": "P_"}],
                "env": [
                    {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-key", "key": "k"}}},
                    {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s-key", "key": "k"}}},
                    {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "D", "value": "plain"}
                ]}],
            "volumes": [
                {"name": "v1", "configMap": {"name": "cm-vol"}},
                {"name": "v2", "secret": {"secretName": "s-vol"}},
                {"name": "v3", "projected": {"sources": [
                    {"configMap": {"name": "cm-proj"}}, {"secret": {"name": "s-proj"}}]}},
                {"name": "v4", "emptyDir": {}}
            ]
        }
    }))
    .unwrap();
    let got: Vec<String> = references(&pod)
        .into_iter()
        .map(|r| format!("{:?} {}/{}", r.kind, r.namespace, r.name))
        .collect();
    assert_eq!(
        got,
        [
            "ConfigMap ns/cm-from",
            "ConfigMap ns/cm-key",
            "ConfigMap ns/cm-proj",
            "ConfigMap ns/cm-vol",
            "Secret ns/regcred",
            "Secret ns/s-from",
            "Secret ns/s-key",
            "Secret ns/s-proj",
            "Secret ns/s-vol",
        ]
    );
}

#[tokio::test]
async fn watches_follow_their_users_and_unfetched_objects_are_pending() {
    let refs = Refs::new(None, Views::default());
    let r = |name: &str| ObjRef {
        kind: RefKind::ConfigMap,
        namespace: "ns".into(),
        name: name.into(),
    };
    refs.set_pod("ns/a", [r("x"), r("y")].into());
    refs.set_pod("ns/b", [r("y")].into());
    assert_eq!(refs.watched(), 2);
    refs.set_pod("ns/a", BTreeSet::new());
    assert_eq!(refs.watched(), 1);
    // Without a client, a watched object is reported missing once its
    // (empty) fetch ran; an unwatched one is pending.
    assert_eq!(refs.config_map("ns", "x"), Fetched::Pending);
    refs.set_pod("ns/b", BTreeSet::new());
    assert_eq!(refs.watched(), 0);
}
